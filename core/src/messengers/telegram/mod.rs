//! Telegram Bot API: client, the types we read from it, webhook parsing and the webhook secret.
//!
//! Ids are `i64` everywhere: user and chat ids exceed 2^31 (up to 52 significant bits).

pub mod client;
pub mod webhook;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

pub use client::{Telegram, TelegramError};

/// Header in which Telegram repeats the `secret_token` given to `setWebhook`.
pub const SECRET_TOKEN_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

impl User {
    /// "First Last", else "@username", else the id: what an operator sees as the customer.
    pub fn display_name(&self) -> String {
        let full = match self
            .last_name
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            Some(last) => format!("{} {last}", self.first_name.trim()),
            None => self.first_name.trim().to_owned(),
        };
        let full = full.trim();
        if !full.is_empty() {
            return full.to_owned();
        }
        match self.username.as_deref().filter(|u| !u.is_empty()) {
            Some(username) => format!("@{username}"),
            None => self.id.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// "private", "group", "supergroup" or "channel".
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// A phone number shared with the bot, usually via a `request_contact` keyboard button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub phone_number: String,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Set when the contact is a Telegram user; equal to `from.id` when people share their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcard: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message_id: i64,
    /// Absent in channels; anonymous group admins appear through `sender_chat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<User>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_chat: Option<Chat>,
    pub chat: Chat,
    pub date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// The sizes Telegram made of a photo, smallest first.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub photo: Option<Vec<FileRef>>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub document: Option<FileRef>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub voice: Option<FileRef>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio: Option<FileRef>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub video: Option<FileRef>,
    /// A round video message.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_note: Option<FileRef>,
    /// A GIF or silent video; Telegram also sets `document` for it.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub animation: Option<FileRef>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub sticker: Option<Sticker>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub location: Option<GeoPoint>,
    /// A place: Telegram also sets `location` for it.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub venue: Option<Venue>,
}

/// A media field whose shape we do not recognise is treated as absent: the message is then
/// ignored like any other kind we do not import, rather than its whole update refused (which
/// Telegram would retry for a day).
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// Any file Telegram describes (PhotoSize, Document, Voice, Audio, Video, …): the fields we
/// use of each; `file_id` is what `getFile` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sticker {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Animated (TGS) and video (WebM) stickers are not pictures; their thumbnail is.
    #[serde(default)]
    pub is_animated: bool,
    #[serde(default)]
    pub is_video: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// `thumb` before Bot API 6.6.
    #[serde(default, alias = "thumb", skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<FileRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Venue {
    pub location: GeoPoint,
    pub title: String,
    #[serde(default)]
    pub address: String,
}

/// `getFile`'s answer: where the bytes are, under `{base}/file/bot{token}/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct File {
    pub file_id: String,
    #[serde(default)]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub file_path: Option<String>,
}

/// One incoming update. Only message-bearing fields are typed; the rest are kept raw so that
/// new update kinds never make a body unreadable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_post: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_channel_post: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_query: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub my_chat_member: Option<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
    /// Set by `Telegram::get_updates` for an update whose body did not match these types, so a
    /// poller can still move its offset past it instead of stalling on it forever.
    #[serde(skip)]
    pub unreadable: Option<String>,
}

impl Update {
    fn unreadable(update_id: i64, reason: String) -> Self {
        Self {
            update_id,
            message: None,
            edited_message: None,
            channel_post: None,
            edited_channel_post: None,
            callback_query: None,
            my_chat_member: None,
            other: Map::new(),
            unreadable: Some(reason),
        }
    }

    /// The update's kind as Telegram names it ("message", "callback_query", …).
    pub fn kind(&self) -> &'static str {
        const KNOWN: &[&str] = &[
            "inline_query",
            "chosen_inline_result",
            "shipping_query",
            "pre_checkout_query",
            "poll",
            "poll_answer",
            "chat_member",
            "chat_join_request",
            "message_reaction",
            "message_reaction_count",
            "chat_boost",
            "removed_chat_boost",
            "business_connection",
            "business_message",
            "edited_business_message",
            "deleted_business_messages",
            "purchased_paid_media",
        ];
        if self.unreadable.is_some() {
            return "unreadable update";
        }
        let typed = [
            (self.message.is_some(), "message"),
            (self.edited_message.is_some(), "edited_message"),
            (self.channel_post.is_some(), "channel_post"),
            (self.edited_channel_post.is_some(), "edited_channel_post"),
            (self.callback_query.is_some(), "callback_query"),
            (self.my_chat_member.is_some(), "my_chat_member"),
        ];
        if let Some((_, kind)) = typed.iter().find(|(present, _)| *present) {
            return kind;
        }
        self.other
            .keys()
            .find_map(|k| KNOWN.iter().find(|known| **known == k.as_str()).copied())
            .unwrap_or("unknown update")
    }
}

/// `getWebhookInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// Empty when no webhook is set (updates are then read with `getUpdates`).
    pub url: String,
    #[serde(default)]
    pub has_custom_certificate: bool,
    #[serde(default)]
    pub pending_update_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_updates: Option<Vec<String>>,
}

/// `chat_id` of sendMessage: a numeric id or a public "@channelusername".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ChatId {
    Id(i64),
    Username(String),
}

impl From<i64> for ChatId {
    fn from(id: i64) -> Self {
        Self::Id(id)
    }
}

impl From<&str> for ChatId {
    /// Chat ids are stored as text (`IncomingMessage::chat_id`); numeric text is sent as a number.
    fn from(s: &str) -> Self {
        match s.trim().parse::<i64>() {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Username(s.trim().to_owned()),
        }
    }
}

impl From<String> for ChatId {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<&String> for ChatId {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

/// Telegram accepts 1–256 characters of `A-Z a-z 0-9 _ -` as a webhook secret.
pub fn secret_token_valid(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh webhook secret: 64 alphanumerics (~380 bits), valid for `setWebhook`.
pub fn generate_secret_token() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// Compares the received header with the stored secret without leaking how much matched.
pub fn secret_token_matches(expected: &str, received: Option<&str>) -> bool {
    match received {
        Some(received) if !expected.is_empty() => {
            expected.as_bytes().ct_eq(received.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_token_charset_and_length() {
        assert!(secret_token_valid("a"));
        assert!(secret_token_valid("AZaz09_-"));
        assert!(secret_token_valid(&"x".repeat(256)));
        assert!(!secret_token_valid(""));
        assert!(!secret_token_valid(&"x".repeat(257)));
        for bad in ["a b", "a.b", "a/b", "ключ", "a=b", "a+b"] {
            assert!(!secret_token_valid(bad), "{bad}");
        }
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let a = generate_secret_token();
        let b = generate_secret_token();
        assert!(secret_token_valid(&a) && secret_token_valid(&b));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn secret_matching() {
        assert!(secret_token_matches("abc", Some("abc")));
        assert!(!secret_token_matches("abc", Some("abd")));
        assert!(!secret_token_matches("abc", Some("ab")));
        assert!(!secret_token_matches("abc", None));
        assert!(!secret_token_matches("", Some("")));
    }

    #[test]
    fn chat_ids_from_text() {
        assert_eq!(ChatId::from("5000000001"), ChatId::Id(5_000_000_001));
        assert_eq!(
            ChatId::from("-1001234567890"),
            ChatId::Id(-1_001_234_567_890)
        );
        assert_eq!(ChatId::from("@shop"), ChatId::Username("@shop".into()));
        assert_eq!(
            serde_json::to_string(&ChatId::Id(5_000_000_001))
                .ok()
                .as_deref(),
            Some("5000000001")
        );
    }

    #[test]
    fn display_names() {
        let mut u = User {
            id: 5_000_000_001,
            is_bot: false,
            first_name: "Анна".into(),
            last_name: Some("Петрова".into()),
            username: Some("anna".into()),
            language_code: None,
        };
        assert_eq!(u.display_name(), "Анна Петрова");
        u.last_name = None;
        assert_eq!(u.display_name(), "Анна");
        u.first_name = " ".into();
        assert_eq!(u.display_name(), "@anna");
        u.username = None;
        assert_eq!(u.display_name(), "5000000001");
    }
}
