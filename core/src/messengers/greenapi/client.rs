//! HTTP client of a Green-API instance: account state, settings (our webhook), sends and the
//! chat history a retry is checked against.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::messengers::phone::WaRecipient;
use crate::messengers::{ExchangeError, Reply};
use crate::upstream::{self, HttpClient, OutboundPolicy, Refused, Retry, UpstreamFailure};

pub const DEFAULT_API_URL: &str = "https://api.green-api.com";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Green-API's answer to an instance that is starting: try again in a minute.
const STARTING_RETRY: Duration = Duration::from_secs(60);

/// The one `stateInstance` in which the account sends.
pub const AUTHORIZED: &str = "authorized";

#[derive(Clone)]
pub struct GreenApi {
    http: HttpClient,
    base: Url,
    id_instance: String,
    token: String,
}

impl fmt::Debug for GreenApi {
    // The token controls the WhatsApp account; keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenApi")
            .field("base", &self.base.as_str())
            .field("id_instance", &self.id_instance)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GreenApiError {
    /// 401 (apiTokenInstance) or 403 (idInstance or address).
    #[error("Green-API rejected the credentials (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// From `check()`: the account answers but is not `authorized`; `state` in its words.
    #[error("Green-API account state is {state:?}")]
    NotAuthorized { state: String },
    /// 466: the plan's limit of correspondents is used up; retrying does not lift it.
    #[error("Green-API plan limit reached: {message}")]
    Quota { message: String },
    /// 200 but the call did not do it (`saveSettings` not true).
    #[error("Green-API did not {op}")]
    Rejected { op: &'static str },
    #[error("Green-API answered HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Connection refused, DNS, TLS, timeout; the URL (which holds the token) is stripped.
    #[error("Green-API is unreachable: {0}")]
    Network(#[source] reqwest::Error),
    #[error("Green-API address refused: {0}")]
    Refused(Refused),
    #[error("Green-API answered {what} with an unexpected body: {detail}")]
    BadResponse { what: &'static str, detail: String },
    #[error("Green-API settings are invalid: {0}")]
    Config(String),
}

impl GreenApiError {
    /// The upstream's own words, when it gave any.
    pub fn upstream_error(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { message, .. }
            | Self::Quota { message }
            | Self::Http { message, .. } => Some(message),
            Self::NotAuthorized { state } => Some(state),
            _ => None,
        }
    }

    fn starting(&self) -> bool {
        match self {
            Self::NotAuthorized { state } => state == "starting",
            Self::Http {
                status: 400,
                message,
                ..
            } => message.to_lowercase().contains("starting"),
            _ => false,
        }
    }
}

impl UpstreamFailure for GreenApiError {
    fn retry(&self) -> Retry {
        if self.starting() {
            return Retry::Transient {
                after: Some(STARTING_RETRY),
            };
        }
        match self {
            // 499: the server gave up waiting for us; 502: "retry 3× with delay" (common errors).
            Self::Http {
                status,
                retry_after,
                ..
            } if *status >= 500 || matches!(*status, 408 | 425 | 429 | 499) => Retry::Transient {
                after: *retry_after,
            },
            Self::Network(_) => Retry::Transient { after: None },
            _ => Retry::Permanent,
        }
    }
}

/// One message of `getChatHistory`, as far as reconciling a send needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryMessage {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub id_message: String,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub text_message: Option<String>,
    /// `textMessage`, `imageMessage`, `documentMessage`, …
    #[serde(default)]
    pub type_message: String,
    /// A file's name and caption (file messages only).
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
}

impl HistoryMessage {
    pub fn is_outgoing(&self) -> bool {
        self.kind == "outgoing"
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateReply {
    state_instance: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SendReply {
    pub(super) id_message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsReply {
    #[serde(default)]
    save_settings: bool,
}

impl GreenApi {
    pub fn new(api_url: &str, id_instance: &str, token: &str) -> Result<Self, GreenApiError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            api_url,
            id_instance,
            token,
        )
    }

    /// `api_url` is the instance's host (`https://api.green-api.com`, or the per-instance
    /// `https://1103.api.green-api.com` shown in the console); it must pass the client's policy.
    pub fn with_client(
        http: HttpClient,
        api_url: &str,
        id_instance: &str,
        token: &str,
    ) -> Result<Self, GreenApiError> {
        let base = http
            .policy()
            .parse_base(api_url)
            .map_err(GreenApiError::Refused)?;
        let id_instance = id_instance.trim();
        if id_instance.is_empty() || !id_instance.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GreenApiError::Config(
                "idInstance is a number, e.g. 1101000001".into(),
            ));
        }
        let token = token.trim();
        if token.is_empty() || token.contains(['/', '?', '#']) {
            return Err(GreenApiError::Config(
                "apiTokenInstance is empty or malformed".into(),
            ));
        }
        Ok(Self {
            http,
            base,
            id_instance: id_instance.to_owned(),
            token: token.to_owned(),
        })
    }

    /// `GET getStateInstance`: the account's state in Green-API's words.
    pub async fn state(&self) -> Result<String, GreenApiError> {
        let reply = self
            .call(Method::GET, "getStateInstance", &[], None)
            .await?;
        let parsed: StateReply = decode(reply, "getStateInstance")?;
        Ok(parsed.state_instance)
    }

    /// The live check of the provider form: the account must be `authorized`.
    pub async fn check(&self) -> Result<String, GreenApiError> {
        let state = self.state().await?;
        if state == AUTHORIZED {
            Ok(state)
        } else {
            Err(GreenApiError::NotAuthorized { state })
        }
    }

    /// `POST setSettings`: our webhook address and its Authorization token; incoming messages
    /// and the statuses of ours are switched on. The instance applies them within 5 minutes.
    pub async fn set_webhook(&self, url: &str, token: &str) -> Result<(), GreenApiError> {
        let body = json!({
            "webhookUrl": url,
            "webhookUrlToken": token,
            "incomingWebhook": "yes",
            "outgoingWebhook": "yes",
            "outgoingAPIMessageWebhook": "yes",
            "stateWebhook": "yes",
        });
        let reply = self
            .call(Method::POST, "setSettings", &[], Some(&body))
            .await?;
        let parsed: SettingsReply = decode(reply, "setSettings")?;
        if parsed.save_settings {
            Ok(())
        } else {
            Err(GreenApiError::Rejected {
                op: "save the settings",
            })
        }
    }

    /// `POST sendMessage` to a person or group chat id; answers the message id.
    pub async fn send_text(&self, to: &WaRecipient, text: &str) -> Result<String, GreenApiError> {
        let body = json!({ "chatId": to.chat_id(), "message": text });
        let reply = self
            .call(Method::POST, "sendMessage", &[], Some(&body))
            .await?;
        let parsed: SendReply = decode(reply, "sendMessage")?;
        Ok(parsed.id_message)
    }

    /// Our messages to `to` stamped at or after `since` (unix seconds), from
    /// `POST getChatHistory` (newest first there). Lets a retry see whether an earlier attempt
    /// whose answer was lost went out.
    pub async fn sent_since(
        &self,
        to: &WaRecipient,
        since: i64,
    ) -> Result<Vec<HistoryMessage>, GreenApiError> {
        let body = json!({ "chatId": to.chat_id(), "count": 100 });
        let reply = self
            .call(Method::POST, "getChatHistory", &[], Some(&body))
            .await?;
        let items: Vec<HistoryMessage> = decode(reply, "getChatHistory")?;
        Ok(items
            .into_iter()
            .filter(|m| m.is_outgoing() && m.timestamp >= since)
            .collect())
    }

    fn url(&self, method: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let path = format!(
            "{}/waInstance{}/{method}/{}",
            url.path().trim_end_matches('/'),
            self.id_instance,
            self.token
        );
        url.set_path(&path);
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    pub(super) async fn call(
        &self,
        method: Method,
        name: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, GreenApiError> {
        let mut request = self
            .http
            .request(method, self.url(name, query))
            .map_err(GreenApiError::Refused)?
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        crate::messengers::exchange(request, "Green-API", &[&self.token], true)
            .await
            .map_err(|e| match e {
                ExchangeError::Network(e) => network(e),
                too_large @ ExchangeError::TooLarge { .. } => GreenApiError::BadResponse {
                    what: "a request",
                    detail: too_large.to_string(),
                },
            })
    }
}

fn network(e: reqwest::Error) -> GreenApiError {
    match upstream::refusal(&e) {
        Some(refused) => GreenApiError::Refused(refused),
        None => GreenApiError::Network(e.without_url()),
    }
}

/// Green-API's error bodies are plain text ("Unauthorized", "instance account not
/// authorized") or JSON with `message`; the words are kept, a page is only described.
fn error_words(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error", "description"] {
            if let Some(t) = v.get(key).and_then(Value::as_str) {
                return upstream::short_text(t);
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        return upstream::describe_body(body).to_owned();
    }
    upstream::short_text(text)
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    reply: Reply,
    what: &'static str,
) -> Result<T, GreenApiError> {
    if !reply.status.is_success() {
        let message = error_words(&reply.body);
        return Err(match reply.status.as_u16() {
            code @ (401 | 403) => GreenApiError::Unauthorized {
                status: code,
                message,
            },
            466 => GreenApiError::Quota { message },
            code => GreenApiError::Http {
                status: code,
                message,
                retry_after: reply.retry_after,
            },
        });
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        tracing::warn!(error = %e, what, "Green-API answer does not match the API");
        GreenApiError::BadResponse {
            what,
            detail: upstream::describe_body(&reply.body).to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_put_instance_and_token_in_the_path() {
        let api = GreenApi::new("https://api.green-api.com/", "1101000001", "tok")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            api.url("getStateInstance", &[]).as_str(),
            "https://api.green-api.com/waInstance1101000001/getStateInstance/tok"
        );
        assert!(!format!("{api:?}").contains("tok\""));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            GreenApi::new("https://api.green-api.com", "abc", "t"),
            Err(GreenApiError::Config(_))
        ));
        assert!(matches!(
            GreenApi::new("https://api.green-api.com", "1", "a/b"),
            Err(GreenApiError::Config(_))
        ));
        assert!(matches!(
            GreenApi::new("http://10.0.0.1", "1", "t"),
            Err(GreenApiError::Refused(_))
        ));
    }

    #[test]
    fn statuses_are_classified() {
        let e = decode::<Value>(reply(401, "Unauthorized"), "x").err();
        assert!(
            matches!(&e, Some(GreenApiError::Unauthorized { status: 401, message }) if message == "Unauthorized")
        );
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Permanent));
        let e = decode::<Value>(
            reply(466, r#"{"message":"correspondentsStatus limit exceeded"}"#),
            "x",
        )
        .err();
        assert!(matches!(&e, Some(GreenApiError::Quota { .. })));
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Permanent));
        let e = decode::<Value>(reply(429, "Too Many Requests"), "x").err();
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Transient { after: None }));
        let e = decode::<Value>(reply(400, "instance in starting process try later"), "x").err();
        assert_eq!(
            e.map(|e| e.retry()),
            Some(Retry::Transient {
                after: Some(STARTING_RETRY)
            })
        );
        let e = decode::<Value>(reply(502, "<html>bad gateway</html>"), "x").err();
        assert!(matches!(&e, Some(GreenApiError::Http { message, .. }) if message == "body:html"));
    }
}
