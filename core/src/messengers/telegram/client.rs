//! HTTP client of the Telegram Bot API (`{base}/bot{token}/{method}`, JSON bodies).

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::{ChatId, Message, Update, User, WebhookInfo};
use crate::messengers::multipart::Multipart;
use crate::messengers::retry_after_header;
use crate::upstream::{
    self, BodyError, HttpClient, OutboundPolicy, Refused, Retry, UpstreamFailure,
};

pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The Bot API server clamps long-poll timeouts to this.
pub const MAX_LONG_POLL: u32 = 50;
/// Room for the server to answer after a long poll ends, so it is not cut by our own timeout.
const LONG_POLL_GRACE: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Telegram {
    http: HttpClient,
    base: Url,
    token: String,
}

impl fmt::Debug for Telegram {
    // Whoever holds the token controls the bot; only its public bot-id half is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telegram")
            .field("base", &self.base.as_str())
            .field("bot_id", &self.bot_id())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// `{"ok":false,…}`: the description is Telegram's own ("Forbidden: bot was blocked by the user").
    #[error("Telegram: {description}")]
    Api {
        code: u16,
        description: String,
        /// From `parameters.retry_after`, else from the `Retry-After` header.
        retry_after: Option<Duration>,
        /// Set when a group became a supergroup: resend to this chat.
        migrate_to_chat_id: Option<i64>,
    },
    /// The URL is stripped from the error because it contains the bot token.
    #[error("Telegram is unreachable: {0}")]
    Network(#[source] reqwest::Error),
    /// The outbound policy forbids calling this address.
    #[error("Bot API address refused: {0}")]
    Refused(Refused),
    #[error("Telegram answered HTTP {status} with an unexpected body: {detail}")]
    BadResponse { status: u16, detail: String },
    #[error("Telegram settings are invalid: {0}")]
    Config(String),
}

impl TelegramError {
    /// Telegram's `description`, when the error came from the Bot API itself.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Api { description, .. } => Some(description),
            _ => None,
        }
    }

    /// Telegram's `error_code` (equal to the HTTP status).
    pub fn error_code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl UpstreamFailure for TelegramError {
    fn retry(&self) -> Retry {
        match self {
            Self::Api {
                code, retry_after, ..
            } if *code == 429 || *code >= 500 => Retry::Transient {
                after: *retry_after,
            },
            Self::Network(_) => Retry::Transient { after: None },
            // Proxies in front of a self-hosted Bot API server answer 502/503 pages.
            Self::BadResponse { status, .. } if *status == 429 || *status >= 500 => {
                Retry::Transient { after: None }
            }
            // 400 bad chat/text, 401 token, 403 blocked, 404 method, 409 webhook/poller conflict:
            // the same request will fail the same way.
            _ => Retry::Permanent,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

impl Telegram {
    pub fn new(token: &str) -> Result<Self, TelegramError> {
        Self::with_base_url(DEFAULT_BASE_URL, token)
    }

    /// A self-hosted Bot API server, under the production outbound policy.
    pub fn with_base_url(base_url: &str, token: &str) -> Result<Self, TelegramError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            base_url,
            token,
        )
    }

    /// The base URL must pass the client's outbound policy and have no query or fragment:
    /// method URLs are built as path segments under it, so nothing in it can cut the
    /// `/bot{token}/{method}` suffix off.
    pub fn with_client(
        http: HttpClient,
        base_url: &str,
        token: &str,
    ) -> Result<Self, TelegramError> {
        let mut parsed = Url::parse(base_url.trim()).map_err(|e| {
            TelegramError::Config(format!("Bot API URL {base_url:?} is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.cannot_be_a_base()
            || parsed.host().is_none()
            || parsed.query().is_some()
        {
            return Err(TelegramError::Config(format!(
                "Bot API URL {base_url:?} must be an http(s) address like {DEFAULT_BASE_URL}"
            )));
        }
        http.policy()
            .check_url(&parsed)
            .map_err(TelegramError::Refused)?;
        if let Ok(mut segments) = parsed.path_segments_mut() {
            segments.pop_if_empty();
        }
        let token = token.trim();
        // The token becomes a path segment: anything else would change the URL it is put in.
        let well_formed = !token.is_empty()
            && token.contains(':')
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
        if !well_formed {
            return Err(TelegramError::Config(
                "the bot token must look like 123456789:AAF… as given by @BotFather".into(),
            ));
        }
        Ok(Self {
            http,
            base: parsed,
            token: token.to_owned(),
        })
    }

    /// The bot's user id, which is the token's part before the colon.
    pub fn bot_id(&self) -> Option<i64> {
        self.token.split(':').next()?.parse().ok()
    }

    pub async fn get_me(&self) -> Result<User, TelegramError> {
        self.call("getMe", &json!({}), None).await
    }

    /// Plain text (no parse mode), so customer-supplied characters are never read as markup.
    pub async fn send_message(
        &self,
        chat_id: impl Into<ChatId>,
        text: &str,
    ) -> Result<Message, TelegramError> {
        let params = json!({ "chat_id": chat_id.into(), "text": text });
        self.call("sendMessage", &params, None).await
    }

    /// `sendPhoto` of a picture Telegram downloads from `url` itself, with a plain caption.
    pub async fn send_photo_url(
        &self,
        chat_id: impl Into<ChatId>,
        url: &str,
        caption: &str,
    ) -> Result<Message, TelegramError> {
        let mut params = json!({ "chat_id": chat_id.into(), "photo": url });
        if !caption.trim().is_empty() {
            params["caption"] = Value::from(caption);
        }
        self.call("sendPhoto", &params, None).await
    }

    /// `sendDocument` uploading `bytes` as `file_name` (multipart/form-data): Telegram takes
    /// only GIF, PDF and ZIP documents by URL, so any other file is sent as bytes.
    pub async fn send_document(
        &self,
        chat_id: impl Into<ChatId>,
        file_name: &str,
        bytes: Vec<u8>,
        caption: &str,
    ) -> Result<Message, TelegramError> {
        let chat = match chat_id.into() {
            ChatId::Id(id) => id.to_string(),
            ChatId::Username(name) => name,
        };
        let mut form = Multipart::new();
        form.text("chat_id", &chat);
        if !caption.trim().is_empty() {
            form.text("caption", caption);
        }
        form.file("document", file_name, bytes);
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .push(&format!("bot{}", self.token))
                .push("sendDocument");
        }
        let (content_type, body) = form.finish();
        let request = self
            .http
            .request(reqwest::Method::POST, url)
            .map_err(TelegramError::Refused)?
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.answer(request).await
    }

    /// `editMessageText` of a text message the bot sent, plain text like [`Self::send_message`].
    pub async fn edit_message_text(
        &self,
        chat_id: impl Into<ChatId>,
        message_id: i64,
        text: &str,
    ) -> Result<Message, TelegramError> {
        let params = json!({ "chat_id": chat_id.into(), "message_id": message_id, "text": text });
        self.call("editMessageText", &params, None).await
    }

    /// `deleteMessage` of a message the bot sent (Telegram allows it for 48 hours).
    pub async fn delete_message(
        &self,
        chat_id: impl Into<ChatId>,
        message_id: i64,
    ) -> Result<(), TelegramError> {
        let _: Value = self
            .call(
                "deleteMessage",
                &json!({ "chat_id": chat_id.into(), "message_id": message_id }),
                None,
            )
            .await?;
        Ok(())
    }

    /// `getFile`: where a file the customer sent can be downloaded (valid for an hour).
    pub async fn get_file(&self, file_id: &str) -> Result<super::File, TelegramError> {
        self.call("getFile", &json!({ "file_id": file_id }), None)
            .await
    }

    /// Downloads a file by its `file_id`: `getFile`, then `{base}/file/bot{token}/{path}`.
    /// The URL holds the token, so the bytes go through us rather than the URL to anyone.
    /// Answers the bytes and the file's name in Telegram's path (`photos/file_0.jpg`).
    pub async fn download(&self, file_id: &str) -> Result<(Vec<u8>, String), TelegramError> {
        let file = self.get_file(file_id).await?;
        let path =
            file.file_path
                .filter(|p| !p.is_empty())
                .ok_or_else(|| TelegramError::BadResponse {
                    status: 200,
                    detail: "getFile gave no file_path (the file is too big for a bot)".to_owned(),
                })?;
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("file").push(&format!("bot{}", self.token));
            for part in path.split('/') {
                segments.push(part);
            }
        }
        let response = self
            .http
            .request(reqwest::Method::GET, url)
            .map_err(TelegramError::Refused)?
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            let body = upstream::read_body(response).await.unwrap_or_default();
            return decode::<Value>(status, None, &body).and_then(|_| {
                Err(TelegramError::BadResponse {
                    status: status.as_u16(),
                    detail: "the file download failed".to_owned(),
                })
            });
        }
        let bytes = upstream::read_body_max(response, upstream::MAX_MEDIA)
            .await
            .map_err(|e| match e {
                BodyError::Transport(e) => network(e),
                BodyError::TooLarge => TelegramError::BadResponse {
                    status: status.as_u16(),
                    detail: format!(
                        "the file is larger than {} MiB",
                        upstream::MAX_MEDIA / 1024 / 1024
                    ),
                },
            })?;
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        Ok((bytes, name))
    }

    /// Switch the bot to webhook delivery; Telegram then sends `secret_token` in the
    /// `X-Telegram-Bot-Api-Secret-Token` header of every POST (none when empty).
    pub async fn set_webhook(&self, url: &str, secret_token: &str) -> Result<(), TelegramError> {
        let mut params = json!({ "url": url });
        if !secret_token.is_empty() {
            params["secret_token"] = Value::from(secret_token);
        }
        self.expect_true("setWebhook", &params).await
    }

    /// Back to `getUpdates`; pending updates are kept.
    pub async fn delete_webhook(&self) -> Result<(), TelegramError> {
        self.expect_true("deleteWebhook", &json!({})).await
    }

    pub async fn get_webhook_info(&self) -> Result<WebhookInfo, TelegramError> {
        self.call("getWebhookInfo", &json!({}), None).await
    }

    /// Long-poll for updates. `offset` = last seen `update_id + 1` confirms everything before it.
    /// An update whose body does not match our types comes back with `unreadable` set rather
    /// than failing the batch, so the caller can still advance past it.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout_secs: u32,
    ) -> Result<Vec<Update>, TelegramError> {
        let timeout_secs = timeout_secs.min(MAX_LONG_POLL);
        let mut params = json!({ "timeout": timeout_secs });
        if let Some(offset) = offset {
            params["offset"] = Value::from(offset);
        }
        let wait = Duration::from_secs(u64::from(timeout_secs)) + LONG_POLL_GRACE;
        let raw: Vec<Value> = self.call("getUpdates", &params, Some(wait)).await?;
        let mut updates = Vec::with_capacity(raw.len());
        for value in raw {
            match Update::deserialize(&value) {
                Ok(update) => updates.push(update),
                Err(e) => {
                    let Some(update_id) = value.get("update_id").and_then(Value::as_i64) else {
                        return Err(TelegramError::BadResponse {
                            status: 200,
                            detail: format!("an update without update_id: {e}"),
                        });
                    };
                    tracing::warn!(update_id, error = %e, "unreadable Telegram update skipped");
                    updates.push(Update::unreadable(update_id, e.to_string()));
                }
            }
        }
        Ok(updates)
    }

    async fn expect_true(&self, method: &str, params: &Value) -> Result<(), TelegramError> {
        let done: Value = self.call(method, params, None).await?;
        if done == Value::Bool(true) {
            Ok(())
        } else {
            Err(TelegramError::BadResponse {
                status: 200,
                detail: format!("{method} returned {done} instead of true"),
            })
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
        timeout: Option<Duration>,
    ) -> Result<T, TelegramError> {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(&format!("bot{}", self.token)).push(method);
        }
        let mut request = self
            .http
            .request(reqwest::Method::POST, url)
            .map_err(TelegramError::Refused)?
            .json(params);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        self.answer(request).await
    }

    /// Sends a Bot API request and reads its `{"ok": …}` answer.
    async fn answer<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, TelegramError> {
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let header_retry = retry_after_header(response.headers());
        let body = upstream::read_body(response).await.map_err(|e| match e {
            BodyError::Transport(e) => network(e),
            BodyError::TooLarge => TelegramError::BadResponse {
                status: status.as_u16(),
                detail: e.to_string(),
            },
        })?;
        let answer = decode(status, header_retry, &body);
        if let Err(TelegramError::BadResponse { .. }) = &answer {
            upstream::log_unexpected_body("Telegram", status.as_u16(), &body, &[&self.token]);
        }
        answer
    }
}

fn network(e: reqwest::Error) -> TelegramError {
    match upstream::refusal(&e) {
        Some(refused) => TelegramError::Refused(refused),
        None => TelegramError::Network(e.without_url()),
    }
}

fn decode<T: DeserializeOwned>(
    status: StatusCode,
    header_retry: Option<Duration>,
    body: &[u8],
) -> Result<T, TelegramError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| TelegramError::BadResponse {
            status: status.as_u16(),
            detail: {
                tracing::debug!(error = %e, "Telegram answer is not the Bot API's JSON");
                upstream::describe_body(body).to_owned()
            },
        })?;
    if !envelope.ok {
        let parameters = envelope.parameters;
        let code = envelope
            .error_code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or_else(|| status.as_u16());
        return Err(TelegramError::Api {
            code,
            description: envelope
                .description
                .map(|d| upstream::short_text(&d))
                .unwrap_or_else(|| format!("error {code} without a description")),
            retry_after: parameters
                .as_ref()
                .and_then(|p| p.retry_after)
                .map(Duration::from_secs)
                .or(header_retry),
            migrate_to_chat_id: parameters.and_then(|p| p.migrate_to_chat_id),
        });
    }
    let result = envelope.result.unwrap_or(Value::Null);
    // serde's message may quote values from the body, which stays out of the page.
    serde_json::from_value(result).map_err(|e| {
        tracing::warn!(error = %e, "Telegram result does not match the Bot API");
        TelegramError::BadResponse {
            status: status.as_u16(),
            detail: "the result does not have the expected fields".to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, header: Option<u64>, body: &str) -> TelegramError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        match decode::<Value>(status, header.map(Duration::from_secs), body.as_bytes()) {
            Err(e) => e,
            Ok(v) => panic!("expected an error, got {v}"),
        }
    }

    #[test]
    fn flood_control_reads_retry_after_from_body_then_header() {
        let body = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let e = err(429, Some(3), body);
        assert_eq!(
            e.retry(),
            Retry::Transient {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(e.to_string(), "Telegram: Too Many Requests: retry after 7");
        let e = err(
            429,
            Some(3),
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3"}"#,
        );
        assert_eq!(
            e.retry(),
            Retry::Transient {
                after: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn classes_of_errors() {
        for (code, retry) in [
            (400, Retry::Permanent),
            (401, Retry::Permanent),
            (403, Retry::Permanent),
            (404, Retry::Permanent),
            (409, Retry::Permanent),
            (500, Retry::Transient { after: None }),
            (502, Retry::Transient { after: None }),
        ] {
            let e = err(
                code,
                None,
                &format!(r#"{{"ok":false,"error_code":{code},"description":"d"}}"#),
            );
            assert_eq!(e.retry(), retry, "{code}");
            assert_eq!(e.error_code(), Some(code));
            assert_eq!(e.description(), Some("d"));
        }
        let e = err(502, None, "<html>bad gateway</html>");
        assert!(matches!(e, TelegramError::BadResponse { status: 502, .. }));
        assert_eq!(e.retry(), Retry::Transient { after: None });
        let e = err(200, None, "");
        assert_eq!(e.retry(), Retry::Permanent);
        let e = err(
            400,
            None,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#,
        );
        assert!(matches!(
            e,
            TelegramError::Api {
                migrate_to_chat_id: Some(-1_001_234_567_890),
                ..
            }
        ));
    }

    #[test]
    fn tokens_and_urls_are_validated() {
        assert!(Telegram::new("123456:ABC-def_ghi").is_ok());
        for token in ["", "nocolon", "123:abc/../x", "123:a b", "123:a?x=1"] {
            assert!(
                matches!(Telegram::new(token), Err(TelegramError::Config(_))),
                "{token}"
            );
        }
        assert!(Telegram::with_base_url("ftp://x", "1:a").is_err());
        assert!(Telegram::with_base_url("not a url", "1:a").is_err());
        for internal in [
            "http://api.telegram.org",
            "https://127.0.0.1:9/",
            "https://169.254.169.254",
            "https://[fd00::1]",
            "https://user:pw@api.telegram.org",
            "https://api.telegram.org/#",
        ] {
            assert!(
                matches!(
                    Telegram::with_base_url(internal, "1:a"),
                    Err(TelegramError::Refused(_))
                ),
                "{internal}"
            );
        }
        let dev = HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::DEVELOPMENT);
        let t = Telegram::with_client(dev, "http://127.0.0.1:9/", "5000000001:secret").ok();
        assert_eq!(t.as_ref().and_then(Telegram::bot_id), Some(5_000_000_001));
        assert!(!format!("{t:?}").contains("secret"));
    }
}
