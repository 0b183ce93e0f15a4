//! What Green-API POSTs to our webhook: one notification per request,
//! `{"typeWebhook": …, "instanceData": {…}, "timestamp": …, …}`.
//!
//! Customer text (`incomingMessageReceived` with `textMessage`, `extendedTextMessage` or
//! `quotedMessage`) and media are imported: `imageMessage`, `videoMessage`,
//! `documentMessage`, `audioMessage` and `stickerMessage` carry `fileMessageData` with a
//! `downloadUrl` on Green-API's storage that needs no credentials (plus `caption`,
//! `fileName`, `mimeType`); `locationMessage` carries `locationMessageData`. A file message
//! whose link is empty or unusable is fetched later by the message (`downloadFile`); a
//! location without coordinates is skipped. Our
//! own messages (`outgoing*MessageReceived`) and other notifications are acknowledged and
//! ignored. Statuses of our messages (`outgoingMessageStatus`) are read by [`statuses`], the
//! account's state (`stateInstanceChanged`) by [`state_change`]. Green-API redelivers a
//! notification until it gets a 200 and is known to send some twice, so the inbox
//! deduplicates by `idMessage`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::crypto::secure_eq;
use crate::messengers::incoming::{
    BadPayload, FileSource, IncomingMedia, IncomingMessage, Location, MediaFile, MediaKind, Parsed,
};
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
        matches!(self.status.as_str(), "failed" | "noAccount" | "notInGroup")
    }

    /// Sending is suspended for suspected spam: Green-API keeps the message queued for 24 hours
    /// (reference/messaging-next.md §3.2), so this is not a verdict — a later `sent`,
    /// `delivered` or `failed` decides.
    pub fn is_suspended(&self) -> bool {
        self.status == "yellowCard"
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

/// The account's new state (`notAuthorized`, `authorized`, `blocked`, `sleepMode`, `starting`,
/// `yellowCard`) and when Green-API saw it (unix seconds), if the body is a
/// `stateInstanceChanged` notification.
pub fn state_change(body: &[u8]) -> Option<(String, i64)> {
    let v = serde_json::from_slice::<Map<String, Value>>(body).ok()?;
    if v.get("typeWebhook").and_then(Value::as_str) != Some("stateInstanceChanged") {
        return None;
    }
    let state = v
        .get("stateInstance")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 64)?;
    // Always sent; without it the notification counts as seen now.
    let at = v
        .get("timestamp")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    Some((state.to_owned(), at))
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
            let in_message = FileSource::InMessage {
                chat_id: m.sender_data.chat_id.clone(),
                message_id: m.id_message.clone(),
            };
            match content_of(&m.message_data, in_message)? {
                Content::Text(text) => Parsed::Messages(vec![incoming(m, text, None)]),
                Content::Media(media) => {
                    Parsed::Messages(vec![incoming(m, media.text(), Some(media))])
                }
                Content::Unusable => Parsed::Ignored("media without its data"),
                Content::Other => Parsed::Ignored("not a text or media message"),
            }
        }
        "outgoingMessageStatus" => Parsed::Ignored("status"),
        "outgoingMessageReceived" | "outgoingAPIMessageReceived" => Parsed::Ignored("own messages"),
        "stateInstanceChanged" => Parsed::Ignored("state"),
        _ => Parsed::Ignored("other notification"),
    })
}

/// What a customer's message carries.
enum Content {
    Text(String),
    Media(IncomingMedia),
    /// A media type whose data (`fileMessageData`, coordinates) is missing or unusable.
    Unusable,
    /// Polls, contacts, reactions, buttons, …
    Other,
}

/// `in_message`: where a file is had when its notification carries no usable link.
fn content_of(data: &Map<String, Value>, in_message: FileSource) -> Result<Content, BadPayload> {
    let kind = data
        .get("typeMessage")
        .and_then(Value::as_str)
        .ok_or_else(|| BadPayload("messageData: missing field `typeMessage`".into()))?;
    let (object, field) = match kind {
        "textMessage" => ("textMessageData", "textMessage"),
        // A link, a forwarded text, or a reply quoting another message.
        "extendedTextMessage" | "quotedMessage" => ("extendedTextMessageData", "text"),
        "locationMessage" => return Ok(location(data)),
        other => {
            return Ok(match media_kind(other) {
                Some(kind) => file(kind, data, in_message),
                None => Content::Other,
            });
        }
    };
    data.get(object)
        .and_then(|o| o.get(field))
        .and_then(Value::as_str)
        .map(|t| Content::Text(t.to_owned()))
        .ok_or_else(|| BadPayload(format!("messageData: missing {object}.{field}")))
}

fn media_kind(type_message: &str) -> Option<MediaKind> {
    Some(match type_message {
        "imageMessage" => MediaKind::Photo,
        "videoMessage" => MediaKind::Video,
        "documentMessage" => MediaKind::Document,
        // Voice notes and music files are both `audioMessage`; WhatsApp records voice as
        // Ogg/Opus, which music files rarely are.
        "audioMessage" => MediaKind::Audio,
        "stickerMessage" => MediaKind::Sticker,
        _ => return None,
    })
}

fn text_field(o: &Value, key: &str) -> Option<String> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn file(kind: MediaKind, data: &Map<String, Value>, in_message: FileSource) -> Content {
    let Some(f) = data.get("fileMessageData") else {
        return Content::Unusable;
    };
    // Without a web link (Green-API had not stored the file yet) the file is asked for by
    // its message when it is passed on (`downloadFile`).
    let url = text_field(f, "downloadUrl")
        .and_then(|u| url::Url::parse(&u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let mime_type = text_field(f, "mimeType");
    let kind = match kind {
        MediaKind::Audio
            if mime_type
                .as_deref()
                .is_some_and(|m| m.starts_with("audio/ogg") || m.contains("opus")) =>
        {
            MediaKind::Voice
        }
        k => k,
    };
    // Green-API names every file (a photo after its storage id); only a document's name is
    // the one the customer knows it by.
    let name = (kind == MediaKind::Document)
        .then(|| text_field(f, "fileName"))
        .flatten();
    Content::Media(IncomingMedia {
        kind,
        caption: text_field(f, "caption"),
        file: Some(MediaFile {
            source: url.map_or(in_message, |url| FileSource::Url {
                url: url.to_string(),
            }),
            name,
            mime_type,
            size: None,
        }),
        location: None,
    })
}

fn location(data: &Map<String, Value>) -> Content {
    let Some(l) = data.get("locationMessageData") else {
        return Content::Unusable;
    };
    let (Some(latitude), Some(longitude)) = (
        l.get("latitude").and_then(Value::as_f64),
        l.get("longitude").and_then(Value::as_f64),
    ) else {
        return Content::Unusable;
    };
    let location = Location {
        latitude,
        longitude,
        title: text_field(l, "nameLocation"),
        address: text_field(l, "address"),
    };
    if !location.valid() {
        return Content::Unusable;
    }
    Content::Media(IncomingMedia {
        kind: MediaKind::Location,
        caption: None,
        file: None,
        location: Some(location),
    })
}

fn incoming(m: Incoming, text: String, media: Option<IncomingMedia>) -> IncomingMessage {
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
        media,
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
        // A yellow card holds the message in Green-API's queue: not a failure yet.
        let yellow = String::from_utf8_lossy(status).replace("\"read\"", "\"yellowCard\"");
        let s = statuses(yellow.as_bytes());
        assert!(!s[0].is_failure());
        assert!(s[0].is_suspended());
        assert!(read_receipts(no_account.as_bytes()).is_empty());
        let own = br#"{"typeWebhook":"outgoingAPIMessageReceived","idMessage":"X","timestamp":1}"#;
        assert_eq!(parse(own), Ok(Parsed::Ignored("own messages")));
        let image = TEXT.replace(
            r#""typeMessage":"textMessage""#,
            r#""typeMessage":"imageMessage""#,
        );
        assert_eq!(
            parse(image.as_bytes()),
            Ok(Parsed::Ignored("media without its data"))
        );
        let poll = TEXT.replace(
            r#""typeMessage":"textMessage""#,
            r#""typeMessage":"pollMessage""#,
        );
        assert_eq!(
            parse(poll.as_bytes()),
            Ok(Parsed::Ignored("not a text or media message"))
        );
    }

    /// `messageData` of a file notification as Green-API's docs show it.
    fn file_body(type_message: &str, file: &str) -> String {
        TEXT.replace(
            r#""typeMessage":"textMessage","textMessageData":{"textMessage":"I use Green-API to get this message from you!"}"#,
            &format!(r#""typeMessage":"{type_message}","fileMessageData":{file}"#),
        )
    }

    fn media_of(body: &str) -> IncomingMessage {
        match parse(body.as_bytes()) {
            Ok(Parsed::Messages(mut m)) if m.len() == 1 => m.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn files_become_media_with_their_link() {
        let image = media_of(&file_body(
            "imageMessage",
            r#"{"downloadUrl":"https://sw-media-out.storage.yandexcloud.net/1101776123/c1aabd48-c1c2-49b1-8f2d-f575a41777be.jpg","caption":"Вот такой диван","fileName":"c1aabd48-c1c2-49b1-8f2d-f575a41777be.jpg","jpegThumbnail":"/9j/4AAQSkZJRgABAQAAAQABAAD","isAnimated":false,"mimeType":"image/jpeg","forwardingScore":0,"isForwarded":false}"#,
        ));
        assert_eq!(image.text, "Вот такой диван");
        let media = image.media.expect("media");
        assert_eq!(media.kind, MediaKind::Photo);
        assert_eq!(media.file_name(), None, "a photo's storage name is no name");
        let file = media.file.expect("file");
        assert_eq!(
            file.source,
            FileSource::Url {
                url: "https://sw-media-out.storage.yandexcloud.net/1101776123/c1aabd48-c1c2-49b1-8f2d-f575a41777be.jpg".into()
            }
        );
        assert_eq!(file.mime_type.as_deref(), Some("image/jpeg"));

        let doc = media_of(&file_body(
            "documentMessage",
            r#"{"downloadUrl":"https://sw-media-out.storage.yandexcloud.net/1101776123/Schet_1547.pdf","caption":"","fileName":"Schet_1547.pdf","jpegThumbnail":"","mimeType":"application/pdf","forwardingScore":0,"isForwarded":false}"#,
        ));
        assert_eq!(doc.text, "[document: Schet_1547.pdf]");
        let voice = media_of(&file_body(
            "audioMessage",
            r#"{"downloadUrl":"https://sw-media-out.storage.yandexcloud.net/1101776123/a.oga","caption":"","fileName":"a.oga","mimeType":"audio/ogg; codecs=opus"}"#,
        ));
        assert_eq!(voice.media.map(|m| m.kind), Some(MediaKind::Voice));
        let song = media_of(&file_body(
            "audioMessage",
            r#"{"downloadUrl":"https://sw-media-out.storage.yandexcloud.net/1101776123/a.mp3","caption":"","fileName":"a.mp3","mimeType":"audio/mpeg"}"#,
        ));
        assert_eq!(song.media.map(|m| m.kind), Some(MediaKind::Audio));
        // No link (Green-API had not stored the file yet), or not a web link: the file is
        // asked for by its message.
        for url in ["", "ftp://x/y.jpg"] {
            let body = file_body(
                "videoMessage",
                &format!(r#"{{"downloadUrl":"{url}","caption":"Видео","mimeType":"video/mp4"}}"#),
            );
            let m = media_of(&body);
            assert_eq!(m.text, "Видео");
            let media = m.media.expect("media");
            assert_eq!(media.kind, MediaKind::Video);
            let file = media.file.expect("file");
            assert_eq!(
                file.source,
                FileSource::InMessage {
                    chat_id: "79001234568@c.us".into(),
                    message_id: "F7AEC1B7086ECDC7E6E45923F5EDB825".into(),
                }
            );
            assert_eq!(file.mime_type.as_deref(), Some("video/mp4"));
        }
    }

    #[test]
    fn a_location_is_a_place() {
        let body = TEXT.replace(
            r#""typeMessage":"textMessage","textMessageData":{"textMessage":"I use Green-API to get this message from you!"}"#,
            r#""typeMessage":"locationMessage","locationMessageData":{"nameLocation":"ГУМ","address":"Красная пл., 3","jpegThumbnail":"","latitude":55.7558,"longitude":37.6173}"#,
        );
        let m = media_of(&body);
        assert!(
            m.text
                .starts_with("ГУМ, Красная пл., 3\nhttps://www.openstreetmap.org/")
        );
    }

    #[test]
    fn state_changes_are_read_and_not_refused() {
        let body = br#"{"typeWebhook":"stateInstanceChanged","instanceData":{"idInstance":1101000001,"wid":"79001234567@c.us","typeInstance":"whatsapp"},"timestamp":1586700690,"stateInstance":"notAuthorized"}"#;
        assert_eq!(parse(body), Ok(Parsed::Ignored("state")));
        assert_eq!(
            state_change(body),
            Some(("notAuthorized".to_string(), 1586700690))
        );
        assert_eq!(state_change(TEXT.as_bytes()), None);
        assert_eq!(
            state_change(br#"{"typeWebhook":"stateInstanceChanged","stateInstance":""}"#),
            None
        );
        let undated =
            state_change(br#"{"typeWebhook":"stateInstanceChanged","stateInstance":"blocked"}"#);
        assert!(undated.is_some_and(|(s, at)| s == "blocked" && at > 1_700_000_000));
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
        let image = file_body(
            "imageMessage",
            r#"{"downloadUrl":"https://sw-media-out.storage.yandexcloud.net/1/x.jpg","caption":"c","mimeType":"image/jpeg"}"#,
        );
        for sample in [TEXT, image.as_str()] {
            crate::messengers::assert_never_panics(sample.as_bytes(), |b| {
                let _ = parse(b);
                let _ = statuses(b);
                let _ = state_change(b);
            });
        }
    }
}
