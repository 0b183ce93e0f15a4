//! What a ChatAPI-family gateway POSTs to our webhook URL.
//!
//! Bodies are `{"messages":[…],"instanceId":"…"}` for messages (ours included, `fromMe:true`)
//! and `{"ack":[…]}` for delivery receipts. There is no signature: the webhook URL itself must
//! carry the secret.
//!
//! Only customer text (`type: "chat"`) is imported. Media bodies are download URLs the gateway
//! deletes after 30 days, locations and vcards have undocumented encodings; shown in the CRM as
//! bare strings they would mislead the operator, so they are skipped rather than half-imported.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::messengers::incoming::{BadPayload, IncomingMessage, Parsed};
use crate::messengers::phone::chat_id_phone;

/// A customer text message; every field the engine needs is required, so a malformed one is
/// rejected instead of stored half-empty.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatMessage {
    id: String,
    body: String,
    #[serde(default)]
    sender_name: Option<String>,
    #[serde(default)]
    chat_name: Option<String>,
    #[serde(default)]
    author: Option<String>,
    time: i64,
    chat_id: String,
}

/// Just enough of any message to decide whether it is ours to import.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
    from_me: Option<bool>,
}

/// Ids of our messages an `{"ack":[…]}` body says the customer has read (`viewed`).
pub fn read_receipts(body: &[u8]) -> Vec<String> {
    let Ok(object) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Vec::new();
    };
    object
        .get("ack")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a.get("status").and_then(Value::as_str) == Some("viewed"))
        .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

pub fn parse(body: &[u8]) -> Result<Parsed, BadPayload> {
    let text =
        std::str::from_utf8(body).map_err(|e| BadPayload(format!("body is not UTF-8: {e}")))?;
    let object: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| BadPayload(format!("body is not a JSON object: {e}")))?;

    if let Some(messages) = object.get("messages") {
        return parse_messages(messages);
    }
    if let Some(ack) = object.get("ack") {
        if !ack.is_array() {
            return Err(BadPayload("ack: expected an array".into()));
        }
        return Ok(Parsed::Ignored("ack"));
    }
    // Sent when `chatUpdateOn` is enabled in the instance settings; nothing to import.
    if object.contains_key("chatUpdate") {
        return Ok(Parsed::Ignored("chatUpdate"));
    }
    Err(BadPayload("unknown shape: expected messages or ack".into()))
}

fn parse_messages(messages: &Value) -> Result<Parsed, BadPayload> {
    let Value::Array(items) = messages else {
        return Err(BadPayload("messages: expected an array".into()));
    };
    let mut out = Vec::new();
    let mut echoes = 0usize;
    for (i, item) in items.iter().enumerate() {
        let head =
            Head::deserialize(item).map_err(|e| BadPayload(format!("messages[{i}]: {e}")))?;
        if head.kind.as_deref() != Some("chat") {
            continue;
        }
        match head.from_me {
            Some(true) => {
                echoes += 1;
                continue;
            }
            Some(false) => {}
            // Without it an echo of our own reply could be imported as the customer's words.
            None => return Err(BadPayload(format!("messages[{i}]: missing field `fromMe`"))),
        }
        let message = ChatMessage::deserialize(item)
            .map_err(|e| BadPayload(format!("messages[{i}]: {e}")))?;
        out.push(incoming(message));
    }
    if !out.is_empty() {
        return Ok(Parsed::Messages(out));
    }
    Ok(Parsed::Ignored(if items.is_empty() {
        "no messages"
    } else if echoes == items.len() {
        "own messages (fromMe)"
    } else {
        "no customer text messages"
    }))
}

fn incoming(m: ChatMessage) -> IncomingMessage {
    // In groups `chatId` is the group and `author` the person; in private chats both are the
    // customer (some gateway versions omit `author` there).
    let sender = m
        .author
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or(&m.chat_id);
    let sender_phone = chat_id_phone(sender);
    let sender_id = sender_phone
        .clone()
        .unwrap_or_else(|| sender.split('@').next().unwrap_or(sender).to_owned());
    let sender_name = [m.sender_name.as_deref(), m.chat_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| sender_id.clone());
    IncomingMessage {
        message_id: m.id,
        sender_id,
        sender_phone,
        sender_name,
        chat_id: m.chat_id,
        text: m.body,
        time: m.time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"messages":[{"id":"false_79991234567@c.us_3A5911DB19C785450372","body":"Здравствуйте","type":"chat",
        "senderName":"Иван","fromMe":false,"self":0,"isForwarded":0,"author":"79991234567@c.us",
        "time":1615273008,"chatId":"79991234567@c.us","messageNumber":3000,"chatName":"Иван",
        "caption":null,"quotedMsgId":null,"quotedMsgBody":null,"quotedMsgType":null}],
       "instanceId":"229607"}"#;

    fn messages(body: &str) -> Vec<IncomingMessage> {
        match parse(body.as_bytes()) {
            Ok(Parsed::Messages(m)) => m,
            other => panic!("expected messages, got {other:?}"),
        }
    }

    #[test]
    fn documented_sample_becomes_one_message() {
        let m = messages(SAMPLE);
        assert_eq!(
            m,
            vec![IncomingMessage {
                message_id: "false_79991234567@c.us_3A5911DB19C785450372".into(),
                sender_id: "79991234567".into(),
                sender_phone: Some("79991234567".into()),
                sender_name: "Иван".into(),
                chat_id: "79991234567@c.us".into(),
                text: "Здравствуйте".into(),
                time: 1615273008,
            }]
        );
    }

    #[test]
    fn group_messages_name_the_author_and_answer_the_group() {
        let m = messages(
            r#"{"messages":[{"id":"g1","body":"hi","type":"chat","fromMe":false,"author":"79990001122@c.us",
            "time":1,"chatId":"79991234567-1479621234@g.us","chatName":"Shop group"}],"instanceId":1}"#,
        );
        assert_eq!(m[0].sender_id, "79990001122");
        assert_eq!(m[0].sender_phone.as_deref(), Some("79990001122"));
        assert_eq!(m[0].chat_id, "79991234567-1479621234@g.us");
        assert_eq!(m[0].sender_name, "Shop group");
    }

    #[test]
    fn missing_author_and_name_fall_back_to_the_chat() {
        let m = messages(
            r#"{"messages":[{"id":"a","body":"x","type":"chat","fromMe":false,"time":5,"chatId":"79991234567@c.us"}]}"#,
        );
        assert_eq!(m[0].sender_id, "79991234567");
        assert_eq!(m[0].sender_name, "79991234567");
    }

    #[test]
    fn echoes_media_and_acks_are_ignored() {
        let echo = r#"{"messages":[{"id":"true_1@c.us_A","body":"our reply","type":"chat","fromMe":true,"time":1,"chatId":"79991234567@c.us"}],"instanceId":"1"}"#;
        assert_eq!(
            parse(echo.as_bytes()),
            Ok(Parsed::Ignored("own messages (fromMe)"))
        );
        let media = r#"{"messages":[{"id":"m","body":"https://s3/file.jpg","type":"image","fromMe":false,"time":1,"chatId":"79991234567@c.us"}]}"#;
        assert_eq!(
            parse(media.as_bytes()),
            Ok(Parsed::Ignored("no customer text messages"))
        );
        let ack = r#"{"ack":[{"id":"true_1@c.us_A","queueNumber":1,"chatId":"79991234567@c.us","status":"viewed"}],"instanceId":"1"}"#;
        assert_eq!(parse(ack.as_bytes()), Ok(Parsed::Ignored("ack")));
        assert_eq!(
            parse(br#"{"messages":[]}"#),
            Ok(Parsed::Ignored("no messages"))
        );
        assert_eq!(
            parse(br#"{"chatUpdate":{"old":{},"new":{}}}"#),
            Ok(Parsed::Ignored("chatUpdate"))
        );
    }

    #[test]
    fn mixed_batches_keep_only_customer_text() {
        let body = r#"{"messages":[
            {"id":"1","body":"mine","type":"chat","fromMe":true,"time":1,"chatId":"79991234567@c.us"},
            {"id":"2","body":"https://x/a.ogg","type":"ptt","fromMe":false,"time":2,"chatId":"79991234567@c.us"},
            {"id":"3","body":"customer","type":"chat","fromMe":false,"time":3,"chatId":"79991234567@c.us"}]}"#;
        let m = messages(body);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].message_id, "3");
    }

    #[test]
    fn bad_bodies_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe", "not UTF-8"),
            (b"", "not a JSON object"),
            (b"[1,2]", "not a JSON object"),
            (b"null", "not a JSON object"),
            (b"{\"messages\":", "not a JSON object"),
            (b"{}", "unknown shape: expected messages or ack"),
            (b"{\"instanceId\":\"1\"}", "unknown shape"),
            (b"{\"messages\":{}}", "messages: expected an array"),
            (b"{\"messages\":[1]}", "messages[0]"),
            (b"{\"ack\":\"x\"}", "ack: expected an array"),
            (br#"{"messages":[{"id":"1","body":"x","type":"chat","fromMe":"no","time":1,"chatId":"7@c.us"}]}"#, "invalid type"),
            (br#"{"messages":[{"id":"1","body":"x","type":"chat","time":1,"chatId":"7@c.us"}]}"#, "missing field `fromMe`"),
            (br#"{"messages":[{"id":"1","body":"x","type":"chat","fromMe":false,"time":"soon","chatId":"7@c.us"}]}"#, "messages[0]: invalid type"),
            (br#"{"messages":[{"id":"1","type":"chat","fromMe":false,"time":1,"chatId":"7@c.us"}]}"#, "missing field `body`"),
        ];
        for (body, reason) in cases {
            match parse(body) {
                Err(BadPayload(why)) => assert!(
                    why.contains(reason),
                    "{:?}: {why}",
                    String::from_utf8_lossy(body)
                ),
                other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    /// Webhook bodies come from the internet: no input may panic the parser.
    #[test]
    fn never_panics_on_random_or_truncated_bodies() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..5_000 {
            let len = rng.random_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = parse(&bytes);
        }
        let bytes = SAMPLE.as_bytes();
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut]);
        }
        // Flipping single bytes explores near-valid JSON, where type errors live.
        for _ in 0..2_000 {
            let mut mutated = bytes.to_vec();
            let at = rng.random_range(0..mutated.len());
            mutated[at] = rng.random();
            let _ = parse(&mutated);
        }
    }
}
