//! What Meta POSTs to our webhook, and the GET handshake that subscribes it.
//!
//! Every POST is signed: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>`.
//! Bodies are `{"object":"whatsapp_business_account","entry":[{"id":<WABA id>,"changes":[{
//! "field":"messages","value":{metadata, contacts[], messages[] | statuses[] | errors[]}}]}]}`
//! with string timestamps. Customer text (`text`, and the words of `button` and `interactive`
//! replies) and media are imported: `image`, `document`, `audio` (`voice: true` for a voice
//! note), `video` and `sticker` objects name the file by a media `id` that only the number's
//! access token turns into bytes (`GET /{media-id}` → a short-lived `url`, fetched with the
//! same token); a `location` is a place. Reactions, contacts and `unsupported` are
//! acknowledged and left out. Delivery is at-least-once, so the inbox deduplicates by message
//! id (`wamid`).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::crypto::secure_eq;
use crate::messengers::incoming::{
    BadPayload, FileSource, IncomingMedia, IncomingMessage, Location, MediaFile, MediaKind, Parsed,
};

/// Whether `header` is the body's signature with `app_secret`; compared in constant time.
pub fn signature_matches(app_secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    !app_secret.is_empty() && secure_eq(&expected, &given.to_ascii_lowercase())
}

/// The GET handshake: the challenge to echo when the mode is `subscribe` and the token ours.
pub fn challenge<'a>(
    verify_token: &str,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
) -> Option<&'a str> {
    let token_ok = token.is_some_and(|t| !verify_token.is_empty() && secure_eq(verify_token, t));
    (mode == Some("subscribe") && token_ok)
        .then_some(challenge)
        .flatten()
}

#[derive(Deserialize)]
struct Body {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct Message {
    from: String,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct Contact {
    #[serde(default)]
    wa_id: String,
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    name: String,
}

/// A status of one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub id: String,
    /// `sent`, `delivered`, `read`, `failed` (and `played` for voice).
    pub status: String,
    pub recipient_id: String,
    /// `(code, title, details)` of each error of a failed message.
    pub errors: Vec<(i64, String, String)>,
}

fn changes(body: &[u8]) -> Result<Vec<Value>, BadPayload> {
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| BadPayload(format!("body is not a Cloud API notification: {e}")))?;
    if parsed.object != "whatsapp_business_account" {
        return Err(BadPayload(format!(
            "object must be whatsapp_business_account, got {:?}",
            parsed.object
        )));
    }
    Ok(parsed
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .filter(|c| c.field == "messages")
        .map(|c| c.value)
        .collect())
}

/// Statuses of our messages carried by the body (none when it is unreadable).
pub fn statuses(body: &[u8]) -> Vec<StatusUpdate> {
    let Ok(values) = changes(body) else {
        return Vec::new();
    };
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    values
        .iter()
        .filter_map(|v| v.get("statuses").and_then(Value::as_array))
        .flatten()
        .map(|s| StatusUpdate {
            id: text(s, "id"),
            status: text(s, "status"),
            recipient_id: text(s, "recipient_id"),
            errors: s
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| {
                    let details = e
                        .get("error_data")
                        .map(|d| text(d, "details"))
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| text(e, "message"));
                    (
                        e.get("code").and_then(Value::as_i64).unwrap_or_default(),
                        text(e, "title"),
                        details,
                    )
                })
                .collect(),
        })
        .collect()
}

pub fn read_receipts(body: &[u8]) -> Vec<String> {
    statuses(body)
        .into_iter()
        .filter(|s| s.status == "read")
        .map(|s| s.id)
        .collect()
}

pub fn parse(body: &[u8]) -> Result<Parsed, BadPayload> {
    let mut out = Vec::new();
    let mut statuses = 0usize;
    let mut others = 0usize;
    for (i, value) in changes(body)?.into_iter().enumerate() {
        let contacts: Vec<Contact> = match value.get("contacts") {
            Some(c) => serde_json::from_value(c.clone())
                .map_err(|e| BadPayload(format!("changes[{i}].contacts: {e}")))?,
            None => Vec::new(),
        };
        statuses += value
            .get("statuses")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let Some(messages) = value.get("messages") else {
            continue;
        };
        let messages: Vec<Message> = serde_json::from_value(messages.clone())
            .map_err(|e| BadPayload(format!("changes[{i}].messages: {e}")))?;
        for m in messages {
            if let Some(text) = words(&m) {
                out.push(incoming(m, text, None, &contacts)?);
            } else if let Some(media) = media(&m) {
                out.push(incoming(m, media.text(), Some(media), &contacts)?);
            } else {
                others += 1;
            }
        }
    }
    if !out.is_empty() {
        return Ok(Parsed::Messages(out));
    }
    Ok(Parsed::Ignored(if statuses > 0 {
        "statuses"
    } else if others > 0 {
        "no customer text or media messages"
    } else {
        "nothing for us"
    }))
}

/// The customer's words: a text, or the label of a button or list reply they tapped.
fn words(m: &Message) -> Option<String> {
    let pick = |path: &[&str]| {
        let mut v = m.rest.get(path[0])?;
        for p in &path[1..] {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_owned)
    };
    match m.kind.as_str() {
        "text" => pick(&["text", "body"]),
        "button" => pick(&["button", "text"]),
        "interactive" => pick(&["interactive", "button_reply", "title"])
            .or_else(|| pick(&["interactive", "list_reply", "title"])),
        _ => None,
    }
}

/// The media of a message: a file by its media id, or a place. `None` for other types and
/// for a location without coordinates.
fn media(m: &Message) -> Option<IncomingMedia> {
    let object = m.rest.get(m.kind.as_str())?;
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let kind = match m.kind.as_str() {
        "image" => MediaKind::Photo,
        "document" => MediaKind::Document,
        "audio" if object.get("voice").and_then(Value::as_bool) == Some(true) => MediaKind::Voice,
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        "sticker" => MediaKind::Sticker,
        "location" => {
            let location = Location {
                latitude: object.get("latitude").and_then(Value::as_f64)?,
                longitude: object.get("longitude").and_then(Value::as_f64)?,
                title: text("name"),
                address: text("address"),
            };
            return location.valid().then_some(IncomingMedia {
                kind: MediaKind::Location,
                caption: None,
                file: None,
                location: Some(location),
            });
        }
        _ => return None,
    };
    // Without a media id the customer's caption and the kind still reach the chat.
    let id = text("id").filter(|id| id.len() <= 128);
    Some(IncomingMedia {
        kind,
        caption: text("caption"),
        file: id.map(|id| MediaFile {
            source: FileSource::Upstream { id },
            name: text("filename"),
            mime_type: text("mime_type"),
            size: None,
        }),
        location: None,
    })
}

fn incoming(
    m: Message,
    text: String,
    media: Option<IncomingMedia>,
    contacts: &[Contact],
) -> Result<IncomingMessage, BadPayload> {
    let time = m.timestamp.trim().parse::<i64>().map_err(|_| {
        BadPayload(format!(
            "timestamp must be unix seconds, got {:?}",
            m.timestamp
        ))
    })?;
    let digits: String = m.from.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(BadPayload(format!(
            "from is not a WhatsApp id: {:?}",
            m.from
        )));
    }
    let name = contacts
        .iter()
        .find(|c| c.wa_id == m.from)
        .or(contacts.first())
        .and_then(|c| c.profile.as_ref())
        .map(|p| p.name.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| digits.clone());
    Ok(IncomingMessage {
        message_id: m.id,
        sender_id: digits.clone(),
        sender_phone: Some(digits.clone()),
        sender_name: name,
        // The gateways' chat id form, so a reply is addressed the same way for every
        // WhatsApp kind (and never re-read as a typed number).
        chat_id: format!("{digits}@c.us"),
        text,
        time,
        media,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pywa's `tests/data/updates/message.json` "text" fixture.
    const TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"1234567890987654321","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"972123456789","phone_number_id":"1122334455667"},"contacts":[{"profile":{"name":"Test Name"},"wa_id":"972987654321"}],"messages":[{"from":"972987654321","id":"wamid.xyzxyz","timestamp":"1697043223","text":{"body":"Body Text"},"type":"text"}]},"field":"messages"}]}]}"#;

    #[test]
    fn text_fixture_becomes_a_message() {
        let Ok(Parsed::Messages(m)) = parse(TEXT.as_bytes()) else {
            panic!("no message");
        };
        assert_eq!(
            m,
            vec![IncomingMessage {
                message_id: "wamid.xyzxyz".into(),
                sender_id: "972987654321".into(),
                sender_phone: Some("972987654321".into()),
                sender_name: "Test Name".into(),
                chat_id: "972987654321@c.us".into(),
                text: "Body Text".into(),
                time: 1697043223,
                media: None,
            }]
        );
    }

    fn with_message(message: &str) -> String {
        TEXT.replace(r#""text":{"body":"Body Text"},"type":"text""#, message)
    }

    fn one(body: &str) -> IncomingMessage {
        match parse(body.as_bytes()) {
            Ok(Parsed::Messages(mut m)) if m.len() == 1 => m.remove(0),
            other => panic!("{other:?}"),
        }
    }

    /// pywa's `image`, `document`, `voice`, `video` and `chosen_location` fixtures.
    #[test]
    fn media_fixtures_become_media() {
        let image = one(&with_message(
            r#""type":"image","image":{"mime_type":"image/jpeg","sha256":"4654+8g=","id":"65463453"}"#,
        ));
        assert_eq!(image.text, "[photo]");
        let media = image.media.expect("media");
        assert_eq!(media.kind, MediaKind::Photo);
        let file = media.file.expect("file");
        assert_eq!(
            file.source,
            FileSource::Upstream {
                id: "65463453".into()
            }
        );
        assert_eq!(file.mime_type.as_deref(), Some("image/jpeg"));

        let doc = one(&with_message(
            r#""type":"document","document":{"caption":"caption","filename":"filename.pdf","mime_type":"application/pdf","sha256":"grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=","id":"1234567890987654321"}"#,
        ));
        assert_eq!(doc.text, "caption");
        assert_eq!(
            doc.media.as_ref().and_then(|m| m.file_name()),
            Some("filename.pdf")
        );
        let voice = one(&with_message(
            r#""type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI=","id":"1234567890987654321","voice":true}"#,
        ));
        assert_eq!(voice.media.map(|m| m.kind), Some(MediaKind::Voice));
        let audio = one(&with_message(
            r#""type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"E3dxS","id":"1","voice":false}"#,
        ));
        assert_eq!(audio.media.map(|m| m.kind), Some(MediaKind::Audio));
        let video = one(&with_message(
            r#""context":{"forwarded":true},"type":"video","video":{"caption":"caption","mime_type":"video/mp4","sha256":"Jh+2ij6PzUv","id":"765756756"}"#,
        ));
        assert_eq!(video.media.map(|m| m.kind), Some(MediaKind::Video));
        let place = one(&with_message(
            r#""location":{"latitude":37.4611978,"longitude":-122.2164385,"name":"Facebook HQ","address":"1 Hacker Way, Menlo Park, CA 94025","url":"https://maps.google.com/?cid=2000000000000000000"},"type":"location""#,
        ));
        assert!(place.text.starts_with("Facebook HQ, 1 Hacker Way"));
        // A media object without an id cannot be fetched: its caption arrives, no file.
        let no_id = one(&with_message(
            r#""type":"image","image":{"mime_type":"image/jpeg","caption":"Вот"}"#,
        ));
        assert_eq!(no_id.text, "Вот");
        assert_eq!(no_id.media.and_then(|m| m.file), None);
    }

    #[test]
    fn reactions_and_statuses_are_not_imported() {
        let reaction = TEXT.replace(
            r#""text":{"body":"Body Text"},"type":"text""#,
            r#""type":"reaction","reaction":{"message_id":"wamid.yzxyzx=","emoji":""}"#,
        );
        assert_eq!(
            parse(reaction.as_bytes()),
            Ok(Parsed::Ignored("no customer text or media messages"))
        );
        let failed = r#"{"object":"whatsapp_business_account","entry":[{"id":"5467539754836534","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"972123456789","phone_number_id":"1122334455667"},"statuses":[{"id":"wamid.xyzxyz","status":"failed","timestamp":"1689380458","recipient_id":"972987654321","errors":[{"code":130472,"title":"User's number is part of an experiment","message":"User's number is part of an experiment","error_data":{"details":"Failed to send message because this user's phone number is part of an experiment"},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]}]},"field":"messages"}]}]}"#;
        assert_eq!(parse(failed.as_bytes()), Ok(Parsed::Ignored("statuses")));
        let s = statuses(failed.as_bytes());
        assert_eq!(s[0].status, "failed");
        assert_eq!(s[0].errors[0].0, 130472);
        assert!(s[0].errors[0].2.contains("experiment"));
        assert!(read_receipts(failed.as_bytes()).is_empty());
    }

    #[test]
    fn signatures_and_handshake() {
        let body = TEXT.as_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"app-secret").unwrap_or_else(|_| panic!());
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(signature_matches("app-secret", Some(&sig), body));
        assert!(!signature_matches("other", Some(&sig), body));
        assert!(!signature_matches("app-secret", None, body));
        assert!(!signature_matches("app-secret", Some(&sig), b"{}"));
        assert_eq!(
            challenge("vt", Some("subscribe"), Some("vt"), Some("123")),
            Some("123")
        );
        assert_eq!(
            challenge("vt", Some("subscribe"), Some("no"), Some("123")),
            None
        );
        assert_eq!(
            challenge("", Some("subscribe"), Some(""), Some("123")),
            None
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        for (body, why) in [
            ("{}", "not a Cloud API notification"),
            (
                r#"{"object":"page","entry":[]}"#,
                "whatsapp_business_account",
            ),
        ] {
            match parse(body.as_bytes()) {
                Err(BadPayload(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let bad_time = TEXT.replace("\"1697043223\"", "\"soon\"");
        assert!(parse(bad_time.as_bytes()).is_err());
    }

    /// Webhook bodies come from the internet: no input may panic the parsers.
    #[test]
    fn never_panics_on_random_or_truncated_bodies() {
        let image = with_message(
            r#""type":"image","image":{"caption":"c","mime_type":"image/jpeg","sha256":"4654+8g=","id":"65463453"}"#,
        );
        for sample in [TEXT, image.as_str()] {
            crate::messengers::assert_never_panics(sample.as_bytes(), |b| {
                let _ = parse(b);
                let _ = statuses(b);
            });
        }
    }
}
