//! HTTP client of a ChatAPI-style WhatsApp gateway (chat-api.com and its successor 1msg.io).

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::messengers::phone::WaRecipient;
use crate::messengers::templates::{Filled, Listed, Template};
use crate::messengers::{ExchangeError, Reply};
use crate::upstream::{self, HttpClient, OutboundPolicy, Refused, Retry, UpstreamFailure};

/// Sends are queued by the gateway, so a healthy instance answers fast; a slow one is better
/// retried later than waited on.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait before checking an instance that said it is starting.
const STARTING_RETRY: Duration = Duration::from_secs(60);

/// A ChatAPI-family instance: base URL (`https://api.chat-api.com/instance123456`,
/// `https://api.1msg.io/123456`, or `https://host?instanceId=123456`) plus its token.
#[derive(Clone)]
pub struct ChatApi {
    http: HttpClient,
    base: Url,
    token: String,
}

impl fmt::Debug for ChatApi {
    // The token grants full control of the WhatsApp account; keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatApi")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What the gateway said about a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Gateway message id (`true_79991234567@c.us_3EB0…`); acks refer to it. Empty only when the
    /// gateway confirmed the send without naming the message.
    pub id: String,
    pub queue_number: Option<i64>,
    /// The gateway's status text ("ok", "Message has been sent to the provider", …).
    pub message: Option<String>,
}

/// `GET /status` as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub account_status: String,
    /// Base64 PNG (or data URL) while `account_status` is "got qr code".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_data: Option<Value>,
}

impl InstanceStatus {
    pub fn state(&self) -> AccountState {
        AccountState::from_status(&self.account_status)
    }
}

/// The documented `accountStatus` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountState {
    Authenticated,
    GotQrCode,
    Loading,
    Init,
    NotPaid,
    Other(String),
}

impl AccountState {
    pub fn from_status(status: &str) -> Self {
        match status.trim().to_ascii_lowercase().as_str() {
            "authenticated" => Self::Authenticated,
            "got qr code" => Self::GotQrCode,
            "loading" => Self::Loading,
            "init" => Self::Init,
            "not_paid" | "not paid" => Self::NotPaid,
            _ => Self::Other(status.to_owned()),
        }
    }

    /// What the admin has to do for the instance to send messages.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Authenticated => "the instance is connected to WhatsApp",
            Self::GotQrCode => {
                "WhatsApp is not linked: open the instance in the gateway's dashboard and scan the QR \
                 code with WhatsApp on the shop's phone (a code is valid for one minute)"
            }
            Self::Loading => "the instance is starting; try again in a minute",
            Self::Init => "the instance was asleep and is waking up; try again in a minute",
            Self::NotPaid => "the instance is not paid; pay for it in the gateway's dashboard",
            Self::Other(_) => {
                "the gateway reported an unknown status; check the instance in its dashboard"
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChatApiError {
    /// Wrong token or instance id (HTTP 401/403).
    #[error("ChatAPI rejected the credentials: {message}")]
    Unauthorized { status: u16, message: String },
    /// The instance's subscription ran out; sends fail until someone pays.
    #[error("ChatAPI instance is not paid: {message}")]
    NotPaid { message: String },
    /// HTTP 200 but the gateway did not do it (`sent`/`set` not true).
    #[error("ChatAPI did not {op}: {message}")]
    Rejected { op: &'static str, message: String },
    /// Any other HTTP error status, with the upstream's `error` text.
    #[error("ChatAPI answered HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Connection refused, DNS, TLS, timeout. The URL is stripped because it carries the token.
    #[error("ChatAPI is unreachable: {0}")]
    Network(#[source] reqwest::Error),
    /// The outbound policy forbids calling this address.
    #[error("ChatAPI address refused: {0}")]
    Refused(Refused),
    /// A success status with a body that is not the gateway's JSON: usually a wrong base URL.
    #[error("ChatAPI answered {what} with an unexpected body: {detail}")]
    BadResponse { what: &'static str, detail: String },
    /// From `check()`: the instance answers but cannot send yet.
    #[error("WhatsApp instance status is {status:?}: {advice}")]
    NotReady {
        status: String,
        state: AccountState,
        advice: &'static str,
    },
    #[error("ChatAPI settings are invalid: {0}")]
    Config(String),
}

impl ChatApiError {
    /// The gateway's own words (`error` or `message` field), when it gave any.
    pub fn upstream_error(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { message, .. }
            | Self::NotPaid { message }
            | Self::Rejected { message, .. }
            | Self::Http { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl UpstreamFailure for ChatApiError {
    fn retry(&self) -> Retry {
        match self {
            Self::Http {
                status,
                retry_after,
                ..
            } if *status >= 500 || matches!(*status, 408 | 425 | 429) => Retry::Transient {
                after: *retry_after,
            },
            // 1msg passes Meta's throughput error (130429) on, whatever status it answers with.
            Self::Http {
                message,
                retry_after,
                ..
            } if message.contains("130429") => Retry::Transient {
                after: *retry_after,
            },
            Self::Network(_) => Retry::Transient { after: None },
            Self::NotReady {
                state: AccountState::Loading | AccountState::Init,
                ..
            } => Retry::Transient {
                after: Some(STARTING_RETRY),
            },
            // `sent:false` has no documented reasons; resending the same text to the same chat
            // is expected to be refused again, and a blind retry risks a duplicate.
            _ => Retry::Permanent,
        }
    }
}

#[derive(Deserialize)]
struct SendReply {
    #[serde(default)]
    sent: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, rename = "queueNumber")]
    queue_number: Option<Value>,
}

/// One message of the instance's history (`GET /messages`), as far as reconciling a send
/// needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryMessage {
    #[serde(default, deserialize_with = "lenient_text")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub body: String,
    #[serde(default, rename = "fromMe")]
    pub from_me: bool,
    #[serde(default, rename = "chatId", deserialize_with = "lenient_text")]
    pub chat_id: String,
}

#[derive(Deserialize)]
struct HistoryReply {
    #[serde(default)]
    messages: Vec<HistoryMessage>,
}

/// Ids and bodies arrive as strings, but a null or a number must not fail the whole list.
fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(text_of(&v).unwrap_or_default())
}

#[derive(Deserialize)]
struct TemplatesReply {
    #[serde(default)]
    templates: Vec<Listed>,
}

#[derive(Deserialize)]
struct WebhookSetReply {
    #[serde(default)]
    set: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct WebhookGetReply {
    #[serde(default, rename = "webhookUrl")]
    webhook_url: Option<String>,
}

impl ChatApi {
    /// An instance under the production outbound policy.
    pub fn new(base_url: &str, token: &str) -> Result<Self, ChatApiError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            base_url,
            token,
        )
    }

    /// Use a shared or differently configured client (tests shorten the timeout); the
    /// instance URL must pass the client's outbound policy.
    pub fn with_client(
        http: HttpClient,
        base_url: &str,
        token: &str,
    ) -> Result<Self, ChatApiError> {
        let base = Url::parse(base_url.trim()).map_err(|e| {
            ChatApiError::Config(format!("instance URL {base_url:?} is not a URL: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.host().is_none()
        {
            return Err(ChatApiError::Config(format!(
                "instance URL {base_url:?} must be an http(s) address like https://api.chat-api.com/instance123456"
            )));
        }
        http.policy()
            .check_url(&base)
            .map_err(ChatApiError::Refused)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(ChatApiError::Config("the instance token is empty".into()));
        }
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    /// The instance URL as configured (no token in it).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Queue a text message. Always addressed by `chatId`, which covers people and groups alike.
    pub async fn send_text(
        &self,
        to: &WaRecipient,
        text: &str,
    ) -> Result<SentMessage, ChatApiError> {
        let body = json!({ "chatId": to.chat_id(), "body": text });
        self.send("sendMessage", &body).await
    }

    /// Queue a file the gateway downloads from `url` (`sendFile`: `body` = the URL,
    /// `filename` with its extension, an optional caption).
    pub async fn send_file(
        &self,
        to: &WaRecipient,
        url: &str,
        filename: &str,
        caption: &str,
    ) -> Result<SentMessage, ChatApiError> {
        let mut body = json!({ "chatId": to.chat_id(), "body": url, "filename": filename });
        if !caption.trim().is_empty() {
            body["caption"] = Value::from(caption);
        }
        self.send("sendFile", &body).await
    }

    /// `sendTemplate` (1msg.io): an approved template, delivered outside the 24-hour window
    /// too. `template` is its name, `namespace` the one `GET /templates` gave (sent when known),
    /// `values` its header value, body variables and URL button variables, sent as Cloud API
    /// components ("never a list of strings"); header and button components are taken to be
    /// passed on to Meta as they are (Unconfirmed: 1msg documents `params` only as the Cloud
    /// API's components).
    /// The answer is assumed to be `sendMessage`'s `{"sent", "id", "message"}` (the SDK types it
    /// as a free map: UNCONFIRMED).
    pub async fn send_template(
        &self,
        to: &WaRecipient,
        template: &str,
        namespace: &str,
        language: &str,
        values: &Filled,
    ) -> Result<SentMessage, ChatApiError> {
        let mut body = json!({
            "chatId": to.chat_id(),
            "template": template,
            "language": { "policy": "deterministic", "code": language },
        });
        if !namespace.trim().is_empty() {
            body["namespace"] = Value::from(namespace.trim());
        }
        // Unconfirmed: that 1msg passes header and button components on to Meta as the Cloud
        // API takes them (its SDK types `params` only as "Cloud API components").
        if let Some(components) = values.components() {
            body["params"] = components;
        }
        self.send("sendTemplate", &body).await
    }

    /// `GET /templates` (1msg.io): `{"total", "templates": [...]}`, each template as the Cloud
    /// API lists it plus its `namespace` (the items' fields are UNCONFIRMED: the SDK types them
    /// as free maps); only the approved ones are answered.
    pub async fn templates(&self) -> Result<Vec<Template>, ChatApiError> {
        let reply = self.call(Method::GET, "templates", &[], None).await?;
        let parsed: TemplatesReply = decode(reply, "templates", "list the templates")?;
        Ok(parsed
            .templates
            .into_iter()
            .filter_map(Listed::approved)
            .collect())
    }

    /// `readMessage`: the customer's message `message_id` is read (1msg.io; the gateway shows
    /// the customer the read ticks).
    pub async fn read_message(&self, message_id: &str) -> Result<(), ChatApiError> {
        let body = json!({ "messageId": message_id });
        let reply = self
            .call(Method::POST, "readMessage", &[], Some(&body))
            .await?;
        let _: Value = decode(reply, "readMessage", READ)?;
        Ok(())
    }

    /// A send method's call: `{"sent": true, "id": …}` or why not.
    async fn send(&self, method: &'static str, body: &Value) -> Result<SentMessage, ChatApiError> {
        let reply = self.call(Method::POST, method, &[], Some(body)).await?;
        let parsed: SendReply = decode(reply, method, SEND)?;
        let message = parsed.message.as_ref().and_then(text_of);
        if !truthy(parsed.sent.as_ref()) {
            let message =
                message.unwrap_or_else(|| "the gateway answered without \"sent\": true".into());
            return Err(classify_refusal(SEND, message));
        }
        Ok(SentMessage {
            // A confirmed send without an id is still sent: reporting it as failed would make the
            // engine resend a message the customer already got.
            id: parsed.id.as_ref().and_then(text_of).unwrap_or_default(),
            queue_number: parsed.queue_number.as_ref().and_then(integer_of),
            message,
        })
    }

    /// Messages this instance sent to `to` since `since` (unix seconds), newest last:
    /// `GET /messages?chatId=…&min_time=…`. Lets a retry find out whether an earlier attempt,
    /// whose answer never arrived, was in fact sent.
    pub async fn sent_since(
        &self,
        to: &WaRecipient,
        since: i64,
    ) -> Result<Vec<HistoryMessage>, ChatApiError> {
        let since = since.to_string();
        let query = [
            ("chatId", to.chat_id()),
            ("min_time", since.as_str()),
            ("limit", "100"),
        ];
        let reply = self.call(Method::GET, "messages", &query, None).await?;
        let parsed: HistoryReply = decode(reply, "messages", "read the message history")?;
        Ok(parsed.messages.into_iter().filter(|m| m.from_me).collect())
    }

    /// Instance state without waking a sleeping instance (`no_wakeup=true`), for dashboards
    /// that poll.
    pub async fn status(&self) -> Result<InstanceStatus, ChatApiError> {
        self.status_query(false).await
    }

    /// The provider live check: fails with advice unless WhatsApp is linked and the instance
    /// is paid. Unlike `status()` it wakes a sleeping instance, so that "try again in a
    /// minute" advice for `init` comes true.
    pub async fn check(&self) -> Result<InstanceStatus, ChatApiError> {
        let status = self.status_query(true).await?;
        match status.state() {
            AccountState::Authenticated => Ok(status),
            state => Err(ChatApiError::NotReady {
                status: status.account_status.clone(),
                advice: state.advice(),
                state,
            }),
        }
    }

    async fn status_query(&self, wake_up: bool) -> Result<InstanceStatus, ChatApiError> {
        let query: &[(&str, &str)] = if wake_up {
            &[]
        } else {
            &[("no_wakeup", "true")]
        };
        let reply = self.call(Method::GET, "status", query, None).await?;
        decode(reply, "status", "report the instance status")
    }

    /// Point the instance's webhook at `url` (an empty string switches webhooks off).
    pub async fn set_webhook(&self, url: &str) -> Result<(), ChatApiError> {
        let body = json!({ "webhookUrl": url });
        let reply = self.call(Method::POST, "webhook", &[], Some(&body)).await?;
        let parsed: WebhookSetReply = decode(reply, "webhook", SET_WEBHOOK)?;
        if truthy(parsed.set.as_ref()) {
            return Ok(());
        }
        let message = parsed
            .message
            .as_ref()
            .and_then(text_of)
            .unwrap_or_else(|| "the gateway answered without \"set\": true".into());
        Err(classify_refusal(SET_WEBHOOK, message))
    }

    /// The webhook URL the instance currently posts to, `None` when unset.
    pub async fn webhook_url(&self) -> Result<Option<String>, ChatApiError> {
        let reply = self.call(Method::GET, "webhook", &[], None).await?;
        let parsed: WebhookGetReply = decode(reply, "webhook", "read the webhook")?;
        Ok(parsed.webhook_url.filter(|u| !u.trim().is_empty()))
    }

    fn url(&self, method: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/{method}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("token", &self.token);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        name: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, ChatApiError> {
        let mut request = self
            .http
            .request(method, self.url(name, query))
            .map_err(ChatApiError::Refused)?
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        crate::messengers::exchange(request, "ChatAPI", &[&self.token], false)
            .await
            .map_err(|e| match e {
                ExchangeError::Network(e) => network(e),
                too_large @ ExchangeError::TooLarge { .. } => ChatApiError::BadResponse {
                    what: "a request",
                    detail: too_large.to_string(),
                },
            })
    }
}

fn network(e: reqwest::Error) -> ChatApiError {
    match upstream::refusal(&e) {
        Some(refused) => ChatApiError::Refused(refused),
        None => ChatApiError::Network(e.without_url()),
    }
}

const SEND: &str = "send the message";
const READ: &str = "mark the message read";
const SET_WEBHOOK: &str = "set the webhook";

/// Error statuses become typed errors; a 2xx body is decoded unless it is an `{"error": …}`.
/// `op` says what the call was for, in the words of `ChatApiError::Rejected`.
fn decode<T: serde::de::DeserializeOwned>(
    reply: Reply,
    what: &'static str,
    op: &'static str,
) -> Result<T, ChatApiError> {
    let json: Option<Value> = serde_json::from_slice(&reply.body).ok();
    let upstream_error = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(text_of)
        .map(|t| upstream::short_text(&t));
    if !reply.status.is_success() {
        let message = upstream_error
            .or_else(|| {
                json.as_ref()
                    .and_then(|v| v.get("message"))
                    .and_then(text_of)
                    .map(|t| upstream::short_text(&t))
            })
            // The body itself is logged, never shown: it may be any server's page. The status
            // travels with the error; the message says only what kind of body came back.
            .unwrap_or_else(|| upstream::describe_body(&reply.body).to_owned());
        return Err(classify_status(reply.status, reply.retry_after, message));
    }
    // Some gateway versions report failures with a 200 and an `error` field.
    if let Some(message) = upstream_error {
        return Err(classify_refusal(op, message));
    }
    let Some(json) = json else {
        return Err(ChatApiError::BadResponse {
            what,
            detail: upstream::describe_body(&reply.body).to_owned(),
        });
    };
    // serde's message may quote values from the body, which stays out of the page.
    serde_json::from_value(json).map_err(|e| {
        tracing::warn!(error = %e, what, "ChatAPI answer does not match the API");
        ChatApiError::BadResponse {
            what,
            detail: "the answer does not have the expected fields".to_owned(),
        }
    })
}

fn classify_status(
    status: StatusCode,
    retry_after: Option<Duration>,
    message: String,
) -> ChatApiError {
    if mentions_not_paid(&message) {
        return ChatApiError::NotPaid { message };
    }
    match status.as_u16() {
        code @ (401 | 403) => ChatApiError::Unauthorized {
            status: code,
            message,
        },
        code => ChatApiError::Http {
            status: code,
            message,
            retry_after,
        },
    }
}

fn classify_refusal(op: &'static str, message: String) -> ChatApiError {
    if mentions_not_paid(&message) {
        ChatApiError::NotPaid { message }
    } else {
        ChatApiError::Rejected { op, message }
    }
}

/// The only documented marker of an unpaid instance is this phrase in the error text.
fn mentions_not_paid(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.contains("not paid") || lower.contains("not_paid")
}

/// Gateways of this family disagree on types (`true`, `"true"`, `1`); the 1msg module only
/// checks truthiness, and so do we.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        _ => false,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn integer_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_append_method_and_token_to_every_base_form() {
        let cases = [
            (
                "https://api.chat-api.com/instance123456",
                "https://api.chat-api.com/instance123456/status?no_wakeup=true&token=t%26k",
            ),
            (
                "https://api.chat-api.com/instance123456/",
                "https://api.chat-api.com/instance123456/status?no_wakeup=true&token=t%26k",
            ),
            (
                "https://api.1msg.io/123456",
                "https://api.1msg.io/123456/status?no_wakeup=true&token=t%26k",
            ),
            (
                "https://api.chat-api.com?instanceId=42",
                "https://api.chat-api.com/status?instanceId=42&no_wakeup=true&token=t%26k",
            ),
        ];
        for (base, expected) in cases {
            let api = ChatApi::new(base, "t&k").unwrap_or_else(|e| panic!("{base}: {e}"));
            assert_eq!(
                api.url("status", &[("no_wakeup", "true")]).as_str(),
                expected
            );
        }
    }

    #[test]
    fn bad_settings_are_config_errors() {
        for (base, token) in [
            ("not a url", "t"),
            ("ftp://x/instance1", "t"),
            ("mailto:a@b", "t"),
            ("https://x/instance1", " "),
        ] {
            assert!(
                matches!(ChatApi::new(base, token), Err(ChatApiError::Config(_))),
                "{base}"
            );
        }
    }

    #[test]
    fn internal_and_odd_instance_urls_are_refused() {
        for base in [
            "http://api.chat-api.com/instance1",
            "https://127.0.0.1:9102/instance1",
            "https://[::1]/instance1",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/instance1",
            "https://user:pw@api.chat-api.com/instance1",
            "https://api.chat-api.com/instance1#x",
        ] {
            assert!(
                matches!(ChatApi::new(base, "t"), Err(ChatApiError::Refused(_))),
                "{base}"
            );
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let api = ChatApi::new("https://api.chat-api.com/instance1", "secret-token").ok();
        assert!(!format!("{api:?}").contains("secret-token"));
    }

    #[test]
    fn error_statuses_are_classified() {
        let e = decode::<Value>(
            reply(401, r#"{"error":"Wrong token \"x\" for instance \"1\"."}"#),
            "status",
            "x",
        )
        .err();
        assert!(matches!(
            &e,
            Some(ChatApiError::Unauthorized { status: 401, .. })
        ));
        assert_eq!(
            e.as_ref().and_then(|e| e.upstream_error()),
            Some("Wrong token \"x\" for instance \"1\".")
        );
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Permanent));

        let e = decode::<Value>(
            reply(402, r#"{"error":"Instance is not paid"}"#),
            "status",
            "x",
        )
        .err();
        assert!(matches!(e, Some(ChatApiError::NotPaid { .. })));
        let e = decode::<Value>(
            reply(200, r#"{"error":"instance not paid"}"#),
            "status",
            "x",
        )
        .err();
        assert!(matches!(e, Some(ChatApiError::NotPaid { .. })));

        let e = decode::<Value>(reply(502, "<html>Bad gateway</html>"), "status", "x").err();
        assert!(
            matches!(&e, Some(ChatApiError::Http { status: 502, message, .. })
                if message == "body:html"),
            "the page is described, not echoed: {e:?}"
        );
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Transient { after: None }));

        let e = decode::<Value>(
            reply(400, r#"{"message":"chatId is invalid"}"#),
            "status",
            "x",
        )
        .err();
        assert_eq!(
            e.as_ref().and_then(|e| e.upstream_error()),
            Some("chatId is invalid")
        );
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Permanent));

        let e = decode::<InstanceStatus>(reply(200, "<html>login</html>"), "status", "x").err();
        assert!(matches!(e, Some(ChatApiError::BadResponse { .. })));
    }

    #[test]
    fn truthiness_matches_the_gateways() {
        for v in [json!(true), json!("true"), json!(1), json!("1")] {
            assert!(truthy(Some(&v)), "{v}");
        }
        for v in [
            json!(false),
            json!("false"),
            json!(0),
            json!(null),
            json!({}),
        ] {
            assert!(!truthy(Some(&v)), "{v}");
        }
        assert!(!truthy(None));
    }

    #[test]
    fn account_states_carry_advice() {
        assert_eq!(
            AccountState::from_status("got qr code"),
            AccountState::GotQrCode
        );
        assert!(
            AccountState::GotQrCode
                .advice()
                .contains("scan the QR code")
        );
        assert!(
            AccountState::Loading
                .advice()
                .contains("try again in a minute")
        );
        assert!(
            AccountState::Init
                .advice()
                .contains("try again in a minute")
        );
        assert!(AccountState::NotPaid.advice().contains("not paid"));
        assert_eq!(
            AccountState::from_status("weird"),
            AccountState::Other("weird".into())
        );
    }
}
