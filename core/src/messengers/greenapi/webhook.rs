//! What Green-API POSTs to our webhook: one notification per request,
//! `{"typeWebhook": …, "instanceData": {…}, "timestamp": …, …}`.
//!
//! Customer text (`incomingMessageReceived` with `textMessage`, `extendedTextMessage` or
//! `quotedMessage`) is imported; our own messages (`outgoing*MessageReceived`) and other
//! notifications are acknowledged and ignored. Statuses of our messages
//! (`outgoingMessageStatus`) are read by [`statuses`]. Green-API redelivers a notification
//! until it gets a 200 and is known to send some twice, so the inbox deduplicates by
//! `idMessage`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::secure_eq;
use crate::messengers::incoming::{BadPayload, IncomingMessage, Parsed};
use crate::messengers::phone::chat_id_phone;

/// Whether the `Authorization` header carries our `webhookUrlToken`. Green-API sends it with a
/// scheme word (its own framework compares the part after the space); a bare token is accepted
/// too.
pub fn authorization_matches(expected: &str, header: Option<&str>) -> bool {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    let given = header.rsplit(' ').next().unwrap_or(header);
    !expected.is_empty() && secure_eq(expected, given)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderData {
    chat_id: String,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    chat_name: Option<String>,
    #[serde(default)]
    sender_name: Option<String>,
    #[serde(default)]
    sender_contact_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    id_message: String,
    timestamp: i64,
    sender_data: SenderData,
    message_data: Map<String, Value>,
}

/// A status of one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub id_message: String,
    /// `sent`, `delivered`, `read`, `failed`, `noAccount`, `notInGroup`, `yellowCard`, …
    pub status: String,
    pub description: Option<String>,
}

impl StatusUpdate {
    /// The recipient has no WhatsApp account, or the send failed for good.
    pub fn is_failure(&self) -> bool {
        matches!(
            self.status.as_str(),
            "failed" | "noAccount" | "notInGroup" | "yellowCard"
        )
    }
}

/// The status an `outgoingMessageStatus` notification carries, if the body is one.
pub fn statuses(body: &[u8]) -> Vec<StatusUpdate> {
    let Ok(v) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Vec::new();
    };
    if v.get("typeWebhook").and_then(Value::as_str) != Some("outgoingMessageStatus") {
        return Vec::new();
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match (text("idMessage"), text("status")) {
        (Some(id_message), Some(status)) => vec![StatusUpdate {
            id_message,
            status,
            description: text("description"),
        }],
        _ => Vec::new(),
    }
}

/// Ids of our messages the customer has read.
pub fn read_receipts(body: &[u8]) -> Vec<String> {
    statuses(body)
        .into_iter()
        .filter(|s| s.status == "read")
        .map(|s| s.id_message)
        .collect()
}

pub fn parse(body: &[u8]) -> Result<Parsed, BadPayload> {
    let object: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| BadPayload(format!("body is not a JSON object: {e}")))?;
    let Some(kind) = object.get("typeWebhook") else {
        return Err(BadPayload("missing field `typeWebhook`".into()));
    };
    let Some(kind) = kind.as_str() else {
        return Err(BadPayload("typeWebhook: expected a string".into()));
    };
    Ok(match kind {
        "incomingMessageReceived" => {
            let m = Incoming::deserialize(Value::Object(object))
                .map_err(|e| BadPayload(format!("incomingMessageReceived: {e}")))?;
            match text_of(&m.message_data)? {
                Some(text) => Parsed::Messages(vec![incoming(m, text)]),
                None => Parsed::Ignored("not a text message"),
            }
        }
        "outgoingMessageStatus" => Parsed::Ignored("status"),
        "outgoingMessageReceived" | "outgoingAPIMessageReceived" => Parsed::Ignored("own messages"),
        "stateInstanceChanged" => Parsed::Ignored("state"),
        _ => Parsed::Ignored("other notification"),
    })
}

/// The words of a text message; `None` for other types (media, locations, polls, …).
fn text_of(data: &Map<String, Value>) -> Result<Option<String>, BadPayload> {
    let kind = data
        .get("typeMessage")
        .and_then(Value::as_str)
        .ok_or_else(|| BadPayload("messageData: missing field `typeMessage`".into()))?;
    let (object, field) = match kind {
        "textMessage" => ("textMessageData", "textMessage"),
        // A link, a forwarded text, or a reply quoting another message.
        "extendedTextMessage" | "quotedMessage" => ("extendedTextMessageData", "text"),
        _ => return Ok(None),
    };
    data.get(object)
        .and_then(|o| o.get(field))
        .and_then(Value::as_str)
        .map(|t| Some(t.to_owned()))
        .ok_or_else(|| BadPayload(format!("messageData: missing {object}.{field}")))
}

fn incoming(m: Incoming, text: String) -> IncomingMessage {
    let s = m.sender_data;
    // In groups `chatId` is the group and `sender` the person; in private chats both are.
    let sender = s
        .sender
        .as_deref()
        .filter(|x| !x.trim().is_empty())
        .unwrap_or(&s.chat_id)
        .to_owned();
    let sender_phone = chat_id_phone(&sender);
    let sender_id = sender_phone
        .clone()
        .unwrap_or_else(|| sender.split('@').next().unwrap_or(&sender).to_owned());
    let sender_name = [&s.sender_contact_name, &s.sender_name, &s.chat_name]
        .into_iter()
        .flatten()
        .map(|n| n.trim())
        .find(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| sender_id.clone());
    IncomingMessage {
        message_id: m.id_message,
        sender_id,
        sender_phone,
        sender_name,
        chat_id: s.chat_id,
        text,
        time: m.timestamp,
        media: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented text notification.
    const TEXT: &str = r#"{"typeWebhook":"incomingMessageReceived",
        "instanceData":{"idInstance":1234,"wid":"79001234567@c.us","typeInstance":"whatsapp"},
        "timestamp":1588091580,"idMessage":"F7AEC1B7086ECDC7E6E45923F5EDB825",
        "senderData":{"chatId":"79001234568@c.us","sender":"79001234568@c.us","chatName":"Sergey","senderName":"Sergey","senderContactName":""},
        "messageData":{"typeMessage":"textMessage","textMessageData":{"textMessage":"I use Green-API to get this message from you!"}}}"#;

    #[test]
    fn text_notification_becomes_a_message() {
        let Ok(Parsed::Messages(m)) = parse(TEXT.as_bytes()) else {
            panic!("not a message");
        };
        assert_eq!(
            m,
            vec![IncomingMessage {
                message_id: "F7AEC1B7086ECDC7E6E45923F5EDB825".into(),
                sender_id: "79001234568".into(),
                sender_phone: Some("79001234568".into()),
                sender_name: "Sergey".into(),
                chat_id: "79001234568@c.us".into(),
                text: "I use Green-API to get this message from you!".into(),
                time: 1588091580,
                media: None,
            }]
        );
    }

    #[test]
    fn extended_and_quoted_text_are_read() {
        for kind in ["extendedTextMessage", "quotedMessage"] {
            let body = TEXT.replace(
                r#""typeMessage":"textMessage","textMessageData":{"textMessage":"I use Green-API to get this message from you!"}"#,
                &format!(r#""typeMessage":"{kind}","extendedTextMessageData":{{"text":"https://shop.ru/x","description":"","title":"","previewType":"None","jpegThumbnail":"","forwardingScore":0,"isForwarded":false}}"#),
            );
            let Ok(Parsed::Messages(m)) = parse(body.as_bytes()) else {
                panic!("{kind}");
            };
            assert_eq!(m[0].text, "https://shop.ru/x");
        }
    }

    #[test]
    fn statuses_and_own_messages_are_ignored_but_read() {
        let status = br#"{"typeWebhook":"outgoingMessageStatus","chatId":"79001234568@c.us","instanceData":{"idInstance":1234,"wid":"79001234567@c.us","typeInstance":"whatsapp"},"timestamp":1586700802,"idMessage":"3EB0608D6A2901063D63","status":"read","sendByApi":true}"#;
        assert_eq!(parse(status), Ok(Parsed::Ignored("status")));
        assert_eq!(
            read_receipts(status),
            vec!["3EB0608D6A2901063D63".to_string()]
        );
        let no_account = String::from_utf8_lossy(status).replace("\"read\"", "\"noAccount\"");
        let s = statuses(no_account.as_bytes());
        assert!(s[0].is_failure());
        assert!(read_receipts(no_account.as_bytes()).is_empty());
        let own = br#"{"typeWebhook":"outgoingAPIMessageReceived","idMessage":"X","timestamp":1}"#;
        assert_eq!(parse(own), Ok(Parsed::Ignored("own messages")));
        let image = TEXT.replace(
            r#""typeMessage":"textMessage""#,
            r#""typeMessage":"imageMessage""#,
        );
        assert_eq!(
            parse(image.as_bytes()),
            Ok(Parsed::Ignored("not a text message"))
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        for (body, why) in [
            ("", "not a JSON object"),
            ("{}", "typeWebhook"),
            (r#"{"typeWebhook":1}"#, "expected a string"),
            (
                r#"{"typeWebhook":"incomingMessageReceived"}"#,
                "incomingMessageReceived",
            ),
        ] {
            match parse(body.as_bytes()) {
                Err(BadPayload(m)) => assert!(m.contains(why), "{body}: {m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let no_text = TEXT.replace(
            r#""textMessageData":{"textMessage":"I use Green-API to get this message from you!"}"#,
            r#""x":1"#,
        );
        assert!(parse(no_text.as_bytes()).is_err());
    }

    #[test]
    fn authorization_takes_the_token_after_the_scheme() {
        assert!(authorization_matches("s3cret", Some("Bearer s3cret")));
        assert!(authorization_matches("s3cret", Some("s3cret")));
        assert!(!authorization_matches("s3cret", Some("Bearer wrong")));
        assert!(!authorization_matches("s3cret", None));
        assert!(!authorization_matches("", Some("Bearer ")));
    }

    /// Webhook bodies come from the internet: no input may panic the parsers.
    #[test]
    fn never_panics_on_random_or_truncated_bodies() {
        crate::messengers::assert_never_panics(TEXT.as_bytes(), |b| {
            let _ = parse(b);
            let _ = statuses(b);
        });
    }
}
