//! What MG posts to our transport webhook when an operator acts in a RetailCRM chat, and what
//! it expects back (official transport client `v1/webhook.go`, `v1/types.go`; see
//! shared/reference/messaging-next.md §1).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"type": …, "meta": {…}, "data": {…}}`. `meta.id` is optional (recent MG sends only the
/// timestamp), so nothing relies on it.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

/// `data` of `message_sent`: the operator's (or a RetailCRM bot's) message to the customer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MessageSent {
    /// MG's message id; the key a repeated webhook is recognised by. Older MG omits it.
    #[serde(default)]
    pub id: Option<i64>,
    pub channel_id: i64,
    /// Our id of the customer in the channel, as we gave it to MG.
    pub external_user_id: String,
    /// May be empty: routing goes by channel and customer.
    #[serde(default)]
    pub external_chat_id: Option<String>,
    /// text, file, image, audio, order, product, system, command.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub quote_external_id: Option<String>,
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(default)]
    pub in_app_id: Option<i64>,
}

/// `data` of `message_read`, `message_updated` and `message_deleted`: which message of ours.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageRef {
    pub channel_id: i64,
    #[serde(default)]
    pub external_user_id: String,
    #[serde(default)]
    pub external_message_id: Option<String>,
    /// The new text, in `message_updated`.
    #[serde(default)]
    pub content: Option<String>,
}

/// Why a message could not be delivered, in MG's words (`SendingError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    General,
    CustomerNotExists,
    ReplyTimedOut,
    SpamSuspicion,
    AccessRestricted,
}

/// `{"code", "message", "external_code"}`: shown to the operator next to the failed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendingError {
    pub code: ErrorCode,
    pub message: String,
    /// The messenger's own code (≤ 100 characters), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_code: Option<String>,
}

impl SendingError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: crate::upstream::short_text(&message.into()),
            external_code: None,
        }
    }

    pub fn with_code(mut self, external: Option<String>) -> Self {
        self.external_code = external.map(|c| c.chars().take(100).collect());
        self
    }
}

/// Our answer to `message_sent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentAnswer {
    /// Delivered: the messenger's id of the message.
    Sent { external_message_id: String },
    /// Not delivered, for good.
    Failed(SendingError),
    /// Still being delivered: the outcome follows through `POST /messages/ack`.
    Async,
}

impl SentAnswer {
    /// The HTTP status and body MG reads. A failure is 422 with the error, as in the official
    /// transport example.
    pub fn to_http(&self) -> (u16, Value) {
        match self {
            SentAnswer::Sent {
                external_message_id,
            } => (
                200,
                serde_json::json!({"external_message_id": external_message_id, "async": false}),
            ),
            SentAnswer::Failed(e) => (422, serde_json::json!({ "error": e })),
            SentAnswer::Async => (200, serde_json::json!({"async": true})),
        }
    }
}

/// `POST /messages/ack`: the outcome of a message we answered `async` for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub channel: i64,
    pub message: AckMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<SendingError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckMessage {
    pub id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture of the official client (`types_test.go`): an empty chat id, null quotes,
    /// no MG message id.
    #[test]
    fn reads_the_official_fixture() {
        let body = r#"{"type":"message_sent","meta":{"timestamp":1703523308},
 "data":{"external_user_id":"79998887766","external_chat_id":"","channel_id":83,"type":"text",
  "content":"Thank you for your order","quote_external_id":null,"quote_content":null,"in_app_id":638,
  "bot":{"id":760,"name":"Bot system","avatar":""},"customer":{"first_name":"","last_name":"","avatar":""},
  "template":{"code":"a#thanks_for_order#ru","variables":{"body":{"args":["8061C","17400"]},"buttons":[{"args":["8061"]}]}},
  "attachments":{"suggestions":[{"type":"text","title":"OK"}]}}}"#;
        let env: Envelope = serde_json::from_str(body).expect("envelope");
        assert_eq!(env.kind, "message_sent");
        let data: MessageSent = serde_json::from_value(env.data).expect("data");
        assert_eq!(data.channel_id, 83);
        assert_eq!(data.external_user_id, "79998887766");
        assert_eq!(data.id, None);
        assert_eq!(data.in_app_id, Some(638));
        assert_eq!(data.content.as_deref(), Some("Thank you for your order"));
    }

    #[test]
    fn answers_have_mg_shape() {
        let failed = SentAnswer::Failed(
            SendingError::new(ErrorCode::ReplyTimedOut, "24 hours passed")
                .with_code(Some("131047".into())),
        );
        assert_eq!(
            failed.to_http(),
            (
                422,
                serde_json::json!({"error": {"code": "reply_timed_out", "message": "24 hours passed", "external_code": "131047"}})
            )
        );
        let ack = Ack {
            channel: 5,
            message: AckMessage { id: 9 },
            transport_message_id: Some("m1".into()),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&ack).expect("json"),
            serde_json::json!({"channel": 5, "message": {"id": 9}, "transport_message_id": "m1"})
        );
    }
}
