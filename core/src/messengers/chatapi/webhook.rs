//! What a ChatAPI-family gateway POSTs to our webhook URL.
//!
//! Bodies are `{"messages":[…],"instanceId":"…"}` for messages (ours included, `fromMe:true`)
//! and `{"ack":[…]}` for delivery receipts. There is no signature: the webhook URL itself must
//! carry the secret.
//!
//! Customer text (`type: "chat"`) and media are imported. For media (`image`, `ptt`,
//! `audio`, `video`, `document`, `sticker`) `body` is a download URL the gateway keeps for
//! 30 days and `caption` the customer's words; a `location` body is "latitude;longitude".
//! Such a message whose body is not what its type says (no http(s) URL, no coordinates) is
//! skipped rather than shown to the operator as a bare string; so are vcards and calls.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::messengers::incoming::{
    BadPayload, FileSource, IncomingMedia, IncomingMessage, Location, MediaFile, MediaKind, Parsed,
};
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
    #[serde(default)]
    caption: Option<String>,
}

/// Just enough of any message to decide whether it is ours to import.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
    from_me: Option<bool>,
}

/// Ids of our messages an `{"ack":[…]}` body says the customer has read: `viewed` (chat-api)
/// or `read` (1msg.io). `sent` and `delivered` have no MG status to go to: MG knows the
/// message sent from our answer, and has no "delivered" state.
pub fn read_receipts(body: &[u8]) -> Vec<String> {
    let Ok(object) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Vec::new();
    };
    object
        .get("ack")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| {
            matches!(
                a.get("status").and_then(Value::as_str),
                Some("viewed" | "read")
            )
        })
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
        let media_kind = match head.kind.as_deref() {
            Some("chat") => None,
            Some(kind) => match media_kind(kind) {
                Some(k) => Some(k),
                None => continue,
            },
            None => continue,
        };
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
        match media_kind {
            None => out.push(incoming(message, None)),
            Some(kind) => {
                if let Some(media) = media(kind, &message) {
                    out.push(incoming(message, Some(media)));
                }
            }
        }
    }
    if !out.is_empty() {
        return Ok(Parsed::Messages(out));
    }
    Ok(Parsed::Ignored(if items.is_empty() {
        "no messages"
    } else if echoes == items.len() {
        "own messages (fromMe)"
    } else {
        "no customer messages to import"
    }))
}

fn media_kind(kind: &str) -> Option<MediaKind> {
    Some(match kind {
        "image" => MediaKind::Photo,
        "ptt" => MediaKind::Voice,
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        "document" => MediaKind::Document,
        "sticker" => MediaKind::Sticker,
        "location" => MediaKind::Location,
        _ => return None,
    })
}

/// The media of a message whose body matches its type.
fn media(kind: MediaKind, m: &ChatMessage) -> Option<IncomingMedia> {
    let caption = m.caption.clone().filter(|c| !c.trim().is_empty());
    if kind == MediaKind::Location {
        let (lat, lon) = m.body.trim().split_once([';', ','])?;
        let location = Location {
            latitude: lat.trim().parse().ok()?,
            longitude: lon.trim().parse().ok()?,
            title: None,
            address: None,
        };
        if !location.valid() {
            return None;
        }
        return Some(IncomingMedia {
            kind,
            caption,
            file: None,
            location: Some(location),
        });
    }
    let url = url::Url::parse(m.body.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    // The gateway names stored files after the original (`…/file_name.pdf`); for a document
    // that is the name the customer knows it by.
    let name = (kind == MediaKind::Document)
        .then(|| url.path_segments()?.next_back().map(str::to_owned))
        .flatten()
        .filter(|n| !n.is_empty());
    Some(IncomingMedia {
        kind,
        caption,
        file: Some(MediaFile {
            source: FileSource::Url {
                url: url.to_string(),
            },
            name,
            mime_type: None,
            size: None,
        }),
        location: None,
    })
}

fn incoming(m: ChatMessage, media: Option<IncomingMedia>) -> IncomingMessage {
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
        text: media.as_ref().map(IncomingMedia::text).unwrap_or(m.body),
        time: m.time,
        media,
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
                media: None,
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
        let media = r#"{"messages":[{"id":"m","body":"not a url","type":"image","fromMe":false,"time":1,"chatId":"79991234567@c.us"}]}"#;
        assert_eq!(
            parse(media.as_bytes()),
            Ok(Parsed::Ignored("no customer messages to import"))
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
    fn mixed_batches_keep_customer_messages() {
        let body = r#"{"messages":[
            {"id":"1","body":"mine","type":"chat","fromMe":true,"time":1,"chatId":"79991234567@c.us"},
            {"id":"2","body":"https://x/a.ogg","type":"ptt","fromMe":false,"time":2,"chatId":"79991234567@c.us"},
            {"id":"4","body":"BEGIN:VCARD","type":"vcard","fromMe":false,"time":2,"chatId":"79991234567@c.us"},
            {"id":"3","body":"customer","type":"chat","fromMe":false,"time":3,"chatId":"79991234567@c.us"}]}"#;
        let m = messages(body);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].message_id, "2");
        assert_eq!(m[0].text, "[voice]");
        assert_eq!(m[1].message_id, "3");
        assert!(m[1].media.is_none());
    }

    #[test]
    fn read_receipts_of_both_gateways() {
        let body = br#"{"ack":[{"id":"a","chatId":"7@c.us","status":"delivered"},{"id":"b","chatId":"7@c.us","status":"viewed"},
            {"id":"c","chatId":"7@c.us","status":"read"},{"id":"d","chatId":"7@c.us","status":"sent"}],"channelId":457431}"#;
        assert_eq!(read_receipts(body), vec!["b".to_owned(), "c".to_owned()]);
    }

    #[test]
    fn media_messages_carry_their_file_or_place() {
        let m = messages(
            r#"{"messages":[{"id":"i","body":"https://s3.example/x/Schet.pdf","type":"document","fromMe":false,"time":1,"chatId":"79991234567@c.us","caption":null},
            {"id":"l","body":"55.7558;37.6173","type":"location","fromMe":false,"time":2,"chatId":"79991234567@c.us"},
            {"id":"p","body":"https://s3.example/x/a.jpeg","type":"image","caption":"чек","fromMe":false,"time":3,"chatId":"79991234567@c.us"},
            {"id":"bad","body":"north","type":"location","fromMe":false,"time":4,"chatId":"79991234567@c.us"}]}"#,
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].text, "[document: Schet.pdf]");
        assert_eq!(
            m[0].media
                .as_ref()
                .and_then(|x| x.file.as_ref())
                .map(|f| &f.source),
            Some(&FileSource::Url {
                url: "https://s3.example/x/Schet.pdf".into()
            })
        );
        assert!(
            m[1].text
                .starts_with("https://www.openstreetmap.org/?mlat=55.755800&mlon=37.617300")
        );
        assert_eq!(m[2].text, "чек");
        assert_eq!(m[2].media.as_ref().map(|x| x.kind), Some(MediaKind::Photo));
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
