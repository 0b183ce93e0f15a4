//! Turning Telegram updates (webhook bodies or `getUpdates` items) into incoming messages.
//!
//! Imported: new messages with text, shared contacts (the usual answer to a "send your
//! phone" button), and media — photos, files, voice, video, stickers, places — as
//! [`IncomingMedia`] whose file is fetched later by its `file_id`. Edits, button presses,
//! membership changes (a blocked bot), polls and every other kind are `Ignored` with the kind
//! as the reason.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Contact, FileRef, Message, Update, User};
use crate::messengers::incoming::{
    BadPayload, FileSource, IncomingMedia, IncomingMessage, Location, MediaFile, MediaKind, Parsed,
};
use crate::messengers::phone::international_digits;

/// Parse one webhook POST body (a single Update).
pub fn parse(body: &[u8]) -> Result<Parsed, BadPayload> {
    let text =
        std::str::from_utf8(body).map_err(|e| BadPayload(format!("body is not UTF-8: {e}")))?;
    let object: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| BadPayload(format!("body is not a JSON object: {e}")))?;
    let update = Update::deserialize(&Value::Object(object))
        .map_err(|e| BadPayload(format!("not an Update: {e}")))?;
    Ok(parse_update(&update))
}

pub fn parse_update(update: &Update) -> Parsed {
    let Some(message) = &update.message else {
        return Parsed::Ignored(update.kind());
    };
    if message.from.as_ref().is_some_and(|f| f.is_bot) {
        return Parsed::Ignored("message from a bot");
    }
    let text = match (&message.text, &message.contact) {
        (Some(text), _) if !text.trim().is_empty() => text.clone(),
        (_, Some(contact)) => return Parsed::Messages(vec![from_contact(message, contact)]),
        _ => match media(message) {
            Some(media) => {
                let mut incoming = base(message, media.text());
                incoming.media = Some(media);
                return Parsed::Messages(vec![incoming]);
            }
            None => return Parsed::Ignored("message without text"),
        },
    };
    Parsed::Messages(vec![base(message, text)])
}

/// The photo, file, voice, sticker or place of a message; `None` for kinds an operator could
/// do nothing with (polls, dice, games, …).
fn media(message: &Message) -> Option<IncomingMedia> {
    let file = |kind: MediaKind, f: &FileRef| (kind, media_file(f));
    // The largest size Telegram made of a photo: the last, as sizes come smallest first.
    // Some clients send `"photo": []` beside a document.
    let found = if let Some(largest) = message.photo.as_ref().and_then(|p| p.last()) {
        Some(file(MediaKind::Photo, largest))
    } else if let Some(sticker) = &message.sticker {
        let picture = if sticker.is_animated || sticker.is_video {
            sticker.thumbnail.clone()
        } else {
            Some(FileRef {
                file_id: sticker.file_id.clone(),
                file_size: sticker.file_size,
                file_name: None,
                mime_type: Some("image/webp".to_owned()),
            })
        };
        let caption = sticker.emoji.clone();
        return Some(IncomingMedia {
            kind: MediaKind::Sticker,
            caption,
            file: picture.as_ref().map(media_file),
            location: None,
        });
    } else if let Some(f) = &message.animation {
        Some(file(MediaKind::Video, f))
    } else if let Some(f) = &message.document {
        Some(file(MediaKind::Document, f))
    } else if let Some(f) = message.video.as_ref().or(message.video_note.as_ref()) {
        Some(file(MediaKind::Video, f))
    } else if let Some(f) = &message.voice {
        Some(file(MediaKind::Voice, f))
    } else {
        message.audio.as_ref().map(|f| file(MediaKind::Audio, f))
    };
    if let Some((kind, file)) = found {
        return Some(IncomingMedia {
            kind,
            caption: message.caption.clone().filter(|c| !c.trim().is_empty()),
            file: Some(file),
            location: None,
        });
    }
    let (point, title, address) = match (&message.venue, &message.location) {
        (Some(v), _) => (&v.location, Some(v.title.clone()), Some(v.address.clone())),
        (None, Some(l)) => (l, None, None),
        (None, None) => return None,
    };
    let location = Location {
        latitude: point.latitude,
        longitude: point.longitude,
        title,
        address,
    };
    if !location.valid() {
        return None;
    }
    Some(IncomingMedia {
        kind: MediaKind::Location,
        caption: None,
        file: None,
        location: Some(location),
    })
}

fn media_file(f: &FileRef) -> MediaFile {
    MediaFile {
        source: FileSource::Upstream {
            id: f.file_id.clone(),
        },
        name: f.file_name.clone(),
        mime_type: f.mime_type.clone(),
        size: f.file_size,
    }
}

fn base(message: &Message, text: String) -> IncomingMessage {
    let (sender_id, sender_name) = match (&message.from, &message.sender_chat) {
        (Some(user), _) => (user.id.to_string(), user.display_name()),
        // Anonymous group admins and channels speak as a chat.
        (None, Some(chat)) => (chat.id.to_string(), chat_name(chat)),
        (None, None) => (message.chat.id.to_string(), chat_name(&message.chat)),
    };
    IncomingMessage {
        // message_id is only unique within a chat.
        message_id: format!("{}:{}", message.chat.id, message.message_id),
        sender_id,
        sender_phone: None,
        sender_name,
        chat_id: message.chat.id.to_string(),
        text,
        time: message.date,
        media: None,
    }
}

fn from_contact(message: &Message, contact: &Contact) -> IncomingMessage {
    let digits = international_digits(&contact.phone_number).ok();
    let phone = digits
        .as_ref()
        .map(|d| format!("+{d}"))
        .unwrap_or_else(|| contact.phone_number.trim().to_owned());
    let own = match (&message.from, contact.user_id) {
        (Some(from), Some(user_id)) => from.id == user_id,
        _ => false,
    };
    // Only a contact of the sender themself identifies the customer; a forwarded card of
    // someone else is passed on as text and must not be linked to this customer's phone.
    if own {
        let mut incoming = base(message, phone);
        incoming.sender_phone = digits;
        incoming
    } else {
        let name = User {
            id: contact.user_id.unwrap_or_default(),
            is_bot: false,
            first_name: contact.first_name.clone(),
            last_name: contact.last_name.clone(),
            username: None,
            language_code: None,
        }
        .display_name();
        base(message, format!("{name} {phone}"))
    }
}

fn chat_name(chat: &super::Chat) -> String {
    let joined = [
        chat.title.as_deref(),
        chat.first_name.as_deref(),
        chat.last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    if !joined.is_empty() {
        return joined;
    }
    match &chat.username {
        Some(u) if !u.is_empty() => format!("@{u}"),
        _ => chat.id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"update_id": 734001122,
       "message": {"message_id": 55, "date": 1700000000, "text": "Где мой заказ?",
         "from": {"id": 5123456789, "is_bot": false, "first_name": "Анна", "last_name": "Петрова", "username": "anna"},
         "chat": {"id": 5123456789, "type": "private", "first_name": "Анна", "username": "anna"}}}"#;

    fn one(body: &str) -> IncomingMessage {
        match parse(body.as_bytes()) {
            Ok(Parsed::Messages(mut m)) if m.len() == 1 => m.remove(0),
            other => panic!("expected one message, got {other:?}"),
        }
    }

    #[test]
    fn text_message_with_64_bit_ids() {
        assert_eq!(
            one(SAMPLE),
            IncomingMessage {
                message_id: "5123456789:55".into(),
                sender_id: "5123456789".into(),
                sender_phone: None,
                sender_name: "Анна Петрова".into(),
                chat_id: "5123456789".into(),
                text: "Где мой заказ?".into(),
                time: 1_700_000_000,
                media: None,
            }
        );
    }

    #[test]
    fn media_become_messages_with_their_file() {
        let head = r#"{"update_id":1,"message":{"message_id":7,"date":5,"from":{"id":5000000001,"is_bot":false,"first_name":"Ivan"},"chat":{"id":5000000001,"type":"private"},"#;
        let parse_one = |rest: &str| one(&format!("{head}{rest}}}}}"));
        let photo = parse_one(
            r#""photo":[{"file_id":"small","file_size":10,"width":90,"height":90},{"file_id":"big","file_size":99,"width":900,"height":900}],"caption":"Вот чек""#,
        );
        assert_eq!(photo.text, "Вот чек");
        let media = photo.media.expect("media");
        assert_eq!(media.kind, MediaKind::Photo);
        assert_eq!(
            media.file.map(|f| f.source),
            Some(FileSource::Upstream { id: "big".into() })
        );
        let doc = parse_one(
            r#""document":{"file_id":"d","file_name":"счёт.pdf","mime_type":"application/pdf"},"photo":[]"#,
        );
        assert_eq!(doc.text, "[document: счёт.pdf]");
        let animated = parse_one(
            r#""sticker":{"file_id":"s","is_animated":true,"is_video":false,"emoji":"😀","thumbnail":{"file_id":"t"}}"#,
        );
        assert_eq!(animated.text, "😀");
        assert_eq!(
            animated.media.and_then(|m| m.file).map(|f| f.source),
            Some(FileSource::Upstream { id: "t".into() })
        );
        let venue = parse_one(
            r#""location":{"latitude":55.7,"longitude":37.6},"venue":{"location":{"latitude":55.7,"longitude":37.6},"title":"ГУМ","address":"Красная пл., 3"}"#,
        );
        assert!(
            venue
                .text
                .starts_with("ГУМ, Красная пл., 3\nhttps://www.openstreetmap.org/")
        );
        // A media field in a shape we do not know leaves the message ignored, not refused.
        assert_eq!(
            parse(format!("{head}\"voice\":\"odd\"}}}}").as_bytes()),
            Ok(Parsed::Ignored("message without text"))
        );
    }

    #[test]
    fn own_contact_gives_the_phone() {
        let m = one(
            r#"{"update_id":1,"message":{"message_id":7,"date":5,"from":{"id":5000000001,"is_bot":false,"first_name":"Ivan"},
            "chat":{"id":5000000001,"type":"private"},"contact":{"phone_number":"79991234567","first_name":"Ivan","user_id":5000000001}}}"#,
        );
        assert_eq!(m.sender_phone.as_deref(), Some("79991234567"));
        assert_eq!(m.text, "+79991234567");
        let m = one(
            r#"{"update_id":1,"message":{"message_id":7,"date":5,"from":{"id":5000000001,"is_bot":false,"first_name":"Ivan"},
            "chat":{"id":5000000001,"type":"private"},"contact":{"phone_number":"+7 999 123-45-67","first_name":"Ivan","user_id":5000000001}}}"#,
        );
        assert_eq!(m.sender_phone.as_deref(), Some("79991234567"));
    }

    #[test]
    fn someone_elses_contact_is_text_only() {
        let m = one(
            r#"{"update_id":1,"message":{"message_id":7,"date":5,"from":{"id":5000000001,"is_bot":false,"first_name":"Ivan"},
            "chat":{"id":5000000001,"type":"private"},"contact":{"phone_number":"+79990000000","first_name":"Oleg","last_name":"K"}}}"#,
        );
        assert_eq!(m.sender_phone, None);
        assert_eq!(m.text, "Oleg K +79990000000");
    }

    #[test]
    fn group_and_anonymous_senders() {
        let m = one(
            r#"{"update_id":2,"message":{"message_id":9,"date":5,"text":"hi","sender_chat":{"id":-1001234567890,"type":"supergroup","title":"Shop"},
            "chat":{"id":-1001234567890,"type":"supergroup","title":"Shop"}}}"#,
        );
        assert_eq!(m.message_id, "-1001234567890:9");
        assert_eq!(m.sender_id, "-1001234567890");
        assert_eq!(m.sender_name, "Shop");
    }

    #[test]
    fn non_message_updates_are_ignored() {
        let cases = [
            (
                r#"{"update_id":3,"callback_query":{"id":"1","from":{"id":1,"is_bot":false,"first_name":"a"},"chat_instance":"x","data":"yes"}}"#,
                "callback_query",
            ),
            (
                r#"{"update_id":3,"my_chat_member":{"chat":{"id":1,"type":"private"},"from":{"id":1,"is_bot":false,"first_name":"a"},"date":1,"old_chat_member":{},"new_chat_member":{}}}"#,
                "my_chat_member",
            ),
            (
                r#"{"update_id":3,"edited_message":{"message_id":1,"date":1,"text":"x","chat":{"id":1,"type":"private"}}}"#,
                "edited_message",
            ),
            (
                r#"{"update_id":3,"channel_post":{"message_id":1,"date":1,"text":"x","chat":{"id":-100,"type":"channel"}}}"#,
                "channel_post",
            ),
            (
                r#"{"update_id":3,"chat_join_request":{}}"#,
                "chat_join_request",
            ),
            (r#"{"update_id":3,"something_new":{}}"#, "unknown update"),
            (r#"{"update_id":3}"#, "unknown update"),
            (
                r#"{"update_id":3,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"photo":[]}}"#,
                "message without text",
            ),
            (
                r#"{"update_id":3,"message":{"message_id":1,"date":1,"text":"  ","chat":{"id":1,"type":"private"}}}"#,
                "message without text",
            ),
            (
                r#"{"update_id":3,"message":{"message_id":1,"date":1,"text":"x","from":{"id":2,"is_bot":true,"first_name":"b"},"chat":{"id":1,"type":"group"}}}"#,
                "message from a bot",
            ),
        ];
        for (body, reason) in cases {
            assert_eq!(
                parse(body.as_bytes()),
                Ok(Parsed::Ignored(reason)),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_bodies_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xc3\x28", "not UTF-8"),
            (b"[]", "not a JSON object"),
            (b"", "not a JSON object"),
            (b"{}", "missing field `update_id`"),
            (br#"{"update_id":"1"}"#, "invalid type"),
            (br#"{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":"x","type":"private"}}}"#, "invalid type"),
            (br#"{"update_id":1,"message":{"message_id":1,"date":1}}"#, "missing field `chat`"),
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

    #[test]
    fn never_panics_on_random_or_truncated_bodies() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(0x7e1e);
        for _ in 0..5_000 {
            let len = rng.random_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let _ = parse(&bytes);
        }
        let bytes = SAMPLE.as_bytes();
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut]);
        }
        for _ in 0..2_000 {
            let mut mutated = bytes.to_vec();
            let at = rng.random_range(0..mutated.len());
            mutated[at] = rng.random();
            let _ = parse(&mutated);
        }
    }
}
