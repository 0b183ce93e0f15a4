//! Message Gateway transport API client: how Svyazka, registered as a chat transport, creates
//! its channel and delivers customers' messages into RetailCRM chats.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rate_limit::{self, Limiter};
use super::types::MgTransportInfo;
use crate::upstream::{
    self, BodyError, HttpClient, OutboundPolicy, Refused, Retry, UpstreamFailure,
};

/// Path of the transport API under the endpoint RetailCRM hands out.
const API_PREFIX: &str = "/api/transport/v1";
/// The official transport client throttles to 100 requests per second per token.
const MG_RPS: f64 = 100.0;
/// Retries of a 429 before giving up, as the official transport client does.
const RATE_LIMIT_RETRIES: u32 = 3;
const RATE_LIMIT_BACKOFF: Duration = Duration::from_millis(100);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed transport API call. MG answers errors as `{"errors":["…"]}`.
#[derive(Debug, thiserror::Error)]
pub enum MgError {
    /// 401/403: the transport token is wrong or was revoked (module re-registered).
    #[error("MG rejected the transport token (HTTP {status}): {}", errors.join("; "))]
    Unauthorized { status: u16, errors: Vec<String> },
    /// Other 4xx: validation failure, unknown channel, …
    #[error("MG refused the request (HTTP {status}): {}", errors.join("; "))]
    Rejected { status: u16, errors: Vec<String> },
    /// 429 still answered after the client's own retries.
    #[error("MG rate limit exceeded")]
    RateLimited { retry_after: Option<Duration> },
    #[error("MG server error (HTTP {status}): {}", errors.join("; "))]
    Server { status: u16, errors: Vec<String> },
    #[error("MG did not answer in time")]
    Timeout,
    #[error("cannot reach MG: {0}")]
    Network(#[source] reqwest::Error),
    /// The endpoint RetailCRM handed out breaks the outbound policy.
    #[error("MG endpoint refused: {0}")]
    Refused(Refused),
    #[error("unexpected answer from MG (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
}

impl MgError {
    fn from_transport(error: reqwest::Error) -> Self {
        if let Some(refused) = upstream::refusal(&error) {
            Self::Refused(refused)
        } else if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Network(error.without_url())
        }
    }

    fn from_body(status: u16, error: BodyError) -> Self {
        match error {
            BodyError::Transport(e) => Self::from_transport(e),
            BodyError::TooLarge => Self::Unexpected {
                status,
                detail: error.to_string(),
            },
        }
    }

    fn from_answer(status: u16, body: &str) -> Self {
        let errors = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("errors").cloned())
            .map(|errors| match errors {
                Value::Array(items) => items
                    .into_iter()
                    .map(|e| match e {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                Value::String(s) => vec![s],
                other => vec![other.to_string()],
            })
            .unwrap_or_default();
        // MG's own words, but never a whole page of them.
        let errors: Vec<String> = errors
            .iter()
            .take(20)
            .map(|e| upstream::short_text(e))
            .collect();
        let errors: Vec<String> = if errors.is_empty() {
            vec![format!("HTTP {status}")]
        } else {
            errors
        };
        match status {
            401 | 403 => Self::Unauthorized { status, errors },
            429 => Self::RateLimited { retry_after: None },
            400..=499 => Self::Rejected { status, errors },
            500..=599 => Self::Server { status, errors },
            _ => Self::Unexpected {
                status,
                detail: errors.join("; "),
            },
        }
    }
}

impl UpstreamFailure for MgError {
    fn retry(&self) -> Retry {
        match self {
            Self::RateLimited { retry_after } => Retry::Transient {
                after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            },
            Self::Server { .. } | Self::Timeout | Self::Network(_) => {
                Retry::Transient { after: None }
            }
            _ => Retry::Permanent,
        }
    }
}

/// Client of the MG transport API for one registered transport (endpoint + token from
/// [`super::RetailCrm::integration_module_edit`]). Cheap to clone.
#[derive(Clone)]
pub struct MgTransport {
    base: Arc<str>,
    token: Arc<str>,
    http: HttpClient,
    limiter: Arc<Limiter>,
}

impl fmt::Debug for MgTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MgTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl MgTransport {
    /// `endpoint_url` as RetailCRM returned it: a bare origin or already ending in
    /// `/api/transport/v1` (both are seen), with or without a trailing slash. Production
    /// outbound policy.
    pub fn new(endpoint_url: &str, token: &str) -> Result<Self, MgError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            endpoint_url,
            token,
        )
    }

    /// Like [`MgTransport::new`] on a caller's client (shared, not rebuilt per job). The
    /// endpoint comes from RetailCRM's answer, so it passes the same outbound policy as an
    /// address the admin typed.
    pub fn with_client(http: HttpClient, endpoint_url: &str, token: &str) -> Result<Self, MgError> {
        let trimmed = endpoint_url.trim().trim_end_matches('/');
        let base = if trimmed.ends_with(API_PREFIX) {
            trimmed.to_owned()
        } else {
            format!("{trimmed}{API_PREFIX}")
        };
        let parsed = http.policy().parse_base(&base).map_err(MgError::Refused)?;
        if parsed.query().is_some() {
            return Err(MgError::Refused(Refused::NotUrl));
        }
        let limiter = rate_limit::shared_with_rate(&format!("mg:{base}"), token, MG_RPS);
        Ok(Self {
            base: base.into(),
            token: token.into(),
            http,
            limiter,
        })
    }

    pub fn from_info(http: HttpClient, info: &MgTransportInfo) -> Result<Self, MgError> {
        Self::with_client(http, &info.endpoint_url, &info.token)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = HttpClient::new(timeout, self.http.policy());
        self
    }

    /// Base of the transport API, ending in `/api/transport/v1`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /channels`: creates a channel and returns its MG id.
    pub async fn create_channel(&self, channel: &Channel) -> Result<i64, MgError> {
        #[derive(Deserialize)]
        struct Answer {
            id: i64,
        }
        let answer: Answer = self.call(Method::POST, "/channels", channel).await?;
        Ok(answer.id)
    }

    /// `PUT /channels/{id}`: brings an existing channel's settings (capabilities) up to date.
    pub async fn update_channel(&self, id: i64, channel: &Channel) -> Result<(), MgError> {
        let _: Value = self
            .call(Method::PUT, &format!("/channels/{id}"), channel)
            .await?;
        Ok(())
    }

    /// `POST /messages/ack`: the outcome of an operator's message we answered `async` for.
    pub async fn ack(&self, ack: &super::mg_webhook::Ack) -> Result<(), MgError> {
        let _: Value = self.call(Method::POST, "/messages/ack", ack).await?;
        Ok(())
    }

    /// `POST /messages/read`: the customer read our message `external_id` (an operator's).
    pub async fn mark_read(&self, channel_id: i64, external_id: &str) -> Result<(), MgError> {
        let body = serde_json::json!({
            "channel_id": channel_id,
            "message": {"external_id": external_id},
        });
        let _: Value = self.call(Method::POST, "/messages/read", &body).await?;
        Ok(())
    }

    /// `POST /messages`: delivers a customer's message; returns the MG message id.
    pub async fn send_message(&self, message: &InboundMessage) -> Result<i64, MgError> {
        #[derive(Deserialize)]
        struct Answer {
            message_id: i64,
        }
        let answer: Answer = self.call(Method::POST, "/messages", message).await?;
        Ok(answer.message_id)
    }

    async fn call<B: Serialize, T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, MgError> {
        let url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|_| MgError::Refused(Refused::NotUrl))?;
        let mut retries = 0;
        loop {
            self.limiter.acquire().await;
            let response = self
                .http
                .request(method.clone(), url.clone())
                .map_err(MgError::Refused)?
                .header("X-Transport-Token", &*self.token)
                .json(body)
                .send()
                .await
                .map_err(MgError::from_transport)?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let body = upstream::read_body(response)
                .await
                .map_err(|e| MgError::from_body(status, e))?;
            let text = String::from_utf8_lossy(&body);
            if status == 429 {
                if retries < RATE_LIMIT_RETRIES {
                    tokio::time::sleep(RATE_LIMIT_BACKOFF * 2u32.pow(retries)).await;
                    retries += 1;
                    continue;
                }
                return Err(MgError::RateLimited { retry_after });
            }
            if !(200..300).contains(&status) {
                let error = MgError::from_answer(status, &text);
                if serde_json::from_str::<Value>(&text).is_err() {
                    upstream::log_unexpected_body("MG", status, &body, &[&self.token]);
                }
                return Err(error);
            }
            return serde_json::from_str(&text).map_err(|e| {
                tracing::warn!(error = %e, "MG answer does not match the API");
                upstream::log_unexpected_body("MG", status, &body, &[&self.token]);
                MgError::Unexpected {
                    status,
                    detail: "the answer does not match the transport API".to_owned(),
                }
            });
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A channel (`POST /channels`): one messenger account of the shop as seen by RetailCRM chats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Messenger kind: "whatsapp", "telegram", … or "custom".
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Our id of the channel (≤ 64 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub settings: ChannelSettings,
}

impl Channel {
    /// A channel that exchanges text both ways: customers' messages come in ("send", we
    /// report them to MG) and operators' replies go out ("receive", MG posts them to our
    /// webhook). Nothing is declared that the bridge does not do: no editing, deleting,
    /// quoting, files or statuses, so RetailCRM does not offer the operator what would fail.
    pub fn text_only(kind: &str, name: &str, max_chars: u32) -> Self {
        Self {
            kind: kind.to_owned(),
            name: Some(name.to_owned()),
            external_id: None,
            avatar_url: None,
            settings: ChannelSettings {
                text: Some(TextSettings {
                    creating: Some("both".to_owned()),
                    editing: Some("none".to_owned()),
                    quoting: Some("none".to_owned()),
                    deleting: Some("none".to_owned()),
                    max_chars_count: Some(max_chars),
                }),
                status: Some(StatusSettings {
                    delivered: Some("none".to_owned()),
                    read: Some("none".to_owned()),
                }),
                extra: Map::new(),
            },
        }
    }

    /// The channel for one messenger type, with what the bridge can do there: text both ways,
    /// within the messenger's length limit (Telegram 4096, WhatsApp Cloud API 4096). A
    /// Telegram bot may also edit and delete what it sent, so operators may there; the
    /// WhatsApp gateway says when the customer read a reply, and MG hears it.
    pub fn for_messenger(kind: &str, name: &str) -> Self {
        let mut channel = Self::text_only(kind, name, 4096);
        if kind == "whatsapp"
            && let Some(status) = channel.settings.status.as_mut()
        {
            status.read = Some("send".to_owned());
        }
        if kind == "telegram"
            && let Some(text) = channel.settings.text.as_mut()
        {
            text.editing = Some("receive".to_owned());
            text.deleting = Some("receive".to_owned());
        }
        channel
    }
}

/// Capabilities of a channel; only the text part is typed, the rest goes through `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSettings>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Each capability is "none", "receive", "send" or "both".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars_count: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
}

/// A customer's message for `POST /messages`. The first message of a new
/// `external_chat_id` makes MG create the chat and the CRM customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// MG channel id from [`MgTransport::create_channel`].
    pub channel: i64,
    /// Our chat id (≤ 64 chars), e.g. "wa_79001234567".
    pub external_chat_id: String,
    pub customer: MgCustomer,
    pub message: MgMessage,
}

/// The sender as MG shows it to the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgCustomer {
    /// Our id of the customer (1–64 chars), e.g. the phone digits.
    pub external_id: String,
    /// Display name (1–255 chars), required by MG.
    pub nickname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgMessage {
    /// Messenger's message id (≤ 255 chars); lets MG recognise a re-sent message.
    pub external_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

impl MgMessage {
    pub fn text(external_id: &str, text: &str) -> Self {
        Self {
            external_id: external_id.to_owned(),
            kind: "text".to_owned(),
            text: text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_api_prefix_once() {
        for endpoint in [
            "https://mg-s1.retailcrm.pro",
            "https://mg-s1.retailcrm.pro/",
            "https://mg-s1.retailcrm.pro/api/transport/v1",
            "https://mg-s1.retailcrm.pro/api/transport/v1/",
        ] {
            assert_eq!(
                MgTransport::new(endpoint, "t")
                    .expect("public https endpoint")
                    .base_url(),
                "https://mg-s1.retailcrm.pro/api/transport/v1"
            );
        }
        for internal in [
            "http://mg-s1.retailcrm.pro",
            "https://169.254.169.254",
            "https://10.0.0.1/api/transport/v1",
            "https://user:pw@mg-s1.retailcrm.pro",
            "https://mg-s1.retailcrm.pro/#",
        ] {
            assert!(
                matches!(MgTransport::new(internal, "t"), Err(MgError::Refused(_))),
                "{internal}"
            );
        }
    }

    #[test]
    fn errors_keep_mg_words() {
        let e = MgError::from_answer(400, r#"{"errors":["Channel not found"]}"#);
        assert!(matches!(&e, MgError::Rejected { errors, .. } if errors == &["Channel not found"]));
        assert_eq!(e.retry(), Retry::Permanent);
        let e = MgError::from_answer(502, "<html/>");
        assert_eq!(e.retry(), Retry::Transient { after: None });
        assert!(matches!(
            MgError::from_answer(401, "{}"),
            MgError::Unauthorized { .. }
        ));
    }

    #[test]
    fn message_wire_shape() {
        let message = InboundMessage {
            channel: 305,
            external_chat_id: "wa_79001234567".into(),
            customer: MgCustomer {
                external_id: "79001234567".into(),
                nickname: "Ivan".into(),
                first_name: None,
                phone: Some("+79001234567".into()),
            },
            message: MgMessage::text("wamid.1", "Hello"),
        };
        assert_eq!(
            serde_json::to_value(&message).expect("json"),
            serde_json::json!({
                "channel": 305, "external_chat_id": "wa_79001234567",
                "customer": {"external_id": "79001234567", "nickname": "Ivan", "phone": "+79001234567"},
                "message": {"external_id": "wamid.1", "type": "text", "text": "Hello"}
            })
        );
    }
}
