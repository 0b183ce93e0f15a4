//! The normalised "Incoming message" event every messenger webhook is turned into.

use serde::{Deserialize, Serialize};

/// One message a customer sent to the shop, whatever the messenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// Upstream message id; together with the provider it is the dedup key of the inbox.
    pub message_id: String,
    /// Who wrote: the phone in international digits for WhatsApp ("79991234567"), the user id for Telegram.
    pub sender_id: String,
    /// Phone in international digits when the messenger gives one (WhatsApp always; Telegram only for a shared contact).
    pub sender_phone: Option<String>,
    pub sender_name: String,
    /// Where to answer: "79991234567@c.us" for ChatAPI, the chat id for Telegram.
    pub chat_id: String,
    /// The customer's words. For media: the caption, else [`IncomingMedia::text`] (a neutral
    /// marker, or the map link of a location), so a bundle's text fields are never empty.
    pub text: String,
    /// Unix seconds as sent by the upstream.
    pub time: i64,
    /// A photo, file, voice message, … the customer sent; `None` for plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<IncomingMedia>,
}

/// What kind of media a customer sent. The codes (`photo`, `document`, …) are data, not
/// words: they reach bundles as the `media` field, and a template turns them into the shop's
/// own words (`{% if media == "photo" %}Фото{% endif %}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Document,
    /// A recorded voice message (Telegram `voice`, WhatsApp `ptt`).
    Voice,
    /// A music/audio file.
    Audio,
    Video,
    Sticker,
    Location,
}

impl MediaKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Document => "document",
            Self::Voice => "voice",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Sticker => "sticker",
            Self::Location => "location",
        }
    }

    /// MG's message type for it: pictures are images (a sticker too), a voice message is
    /// audio, the rest are files — as RetailCRM's own Telegram transport sends them.
    pub fn mg_type(self) -> &'static str {
        match self {
            Self::Photo | Self::Sticker => "image",
            Self::Voice => "audio",
            Self::Document | Self::Audio | Self::Video => "file",
            Self::Location => "text",
        }
    }
}

/// Media attached to a customer's message. Generic over messengers: each webhook parser
/// says where the file is ([`FileSource`]); the step that passes it on fetches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingMedia {
    pub kind: MediaKind,
    /// The customer's caption, when they wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Every kind but a location has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<MediaFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaFile {
    pub source: FileSource,
    /// The file name the customer's app gave (documents, audio), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Where the file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum FileSource {
    /// A download URL the messenger handed out that needs no credentials (ChatAPI `body`).
    Url { url: String },
    /// An id only the source provider's own API turns into bytes (a Telegram `file_id`):
    /// fetched with that provider's credentials, which never leave Svyazka.
    Upstream { id: String },
    /// A file the source provider hands out by the message that carried it, when the
    /// notification had no link (Green-API's `downloadFile` by `chatId` and `idMessage`).
    InMessage { chat_id: String, message_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    /// A venue's name and address, when the customer shared a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Location {
    /// A link any operator can open: OpenStreetMap, which needs no account or key.
    pub fn map_link(&self) -> String {
        format!(
            "https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=17/{lat:.6}/{lon:.6}",
            lat = self.latitude,
            lon = self.longitude
        )
    }

    /// Whether both coordinates are on the globe; anything else is not a location.
    pub fn valid(&self) -> bool {
        (-90.0..=90.0).contains(&self.latitude) && (-180.0..=180.0).contains(&self.longitude)
    }
}

impl IncomingMedia {
    /// The message's text: the caption when there is one; for a location the place (if named)
    /// and its map link; else a bracketed marker of the kind, e.g. `[photo]` or
    /// `[document: invoice.pdf]` — a code and a file name, not a sentence in some language.
    pub fn text(&self) -> String {
        if let Some(caption) = self.caption.as_deref().map(str::trim)
            && !caption.is_empty()
        {
            return caption.to_owned();
        }
        if let Some(location) = &self.location {
            let place = [location.title.as_deref(), location.address.as_deref()]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            return if place.is_empty() {
                location.map_link()
            } else {
                format!("{place}\n{}", location.map_link())
            };
        }
        self.marker()
    }

    /// `[photo]`, `[document: name.pdf]`: what stands for the media when it has no caption.
    pub fn marker(&self) -> String {
        match self.file_name() {
            Some(name) => format!("[{}: {name}]", self.kind.code()),
            None => format!("[{}]", self.kind.code()),
        }
    }

    pub fn file_name(&self) -> Option<&str> {
        self.file
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }
}

/// What a webhook body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Customer messages to store (a ChatAPI body may carry several).
    Messages(Vec<IncomingMessage>),
    /// A well-formed body that carries nothing for us (acks, our own echoes, non-message updates).
    Ignored(&'static str),
}

/// A webhook body we cannot read: answered with 400 and this reason, nothing stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadPayload(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn media(kind: MediaKind, caption: Option<&str>, name: Option<&str>) -> IncomingMedia {
        IncomingMedia {
            kind,
            caption: caption.map(str::to_owned),
            file: Some(MediaFile {
                source: FileSource::Upstream { id: "f".into() },
                name: name.map(str::to_owned),
                mime_type: None,
                size: None,
            }),
            location: None,
        }
    }

    #[test]
    fn text_is_the_caption_else_a_marker() {
        assert_eq!(
            media(MediaKind::Photo, Some(" Вот чек "), None).text(),
            "Вот чек"
        );
        assert_eq!(media(MediaKind::Photo, Some(" "), None).text(), "[photo]");
        assert_eq!(
            media(MediaKind::Document, None, Some("invoice.pdf")).text(),
            "[document: invoice.pdf]"
        );
        assert_eq!(media(MediaKind::Voice, None, None).text(), "[voice]");
    }

    #[test]
    fn a_location_is_its_place_and_map_link() {
        let mut m = IncomingMedia {
            kind: MediaKind::Location,
            caption: None,
            file: None,
            location: Some(Location {
                latitude: 55.751244,
                longitude: 37.618423,
                title: None,
                address: None,
            }),
        };
        let link = "https://www.openstreetmap.org/?mlat=55.751244&mlon=37.618423#map=17/55.751244/37.618423";
        assert_eq!(m.text(), link);
        if let Some(l) = m.location.as_mut() {
            l.title = Some("ГУМ".into());
            l.address = Some("Красная пл., 3".into());
        }
        assert_eq!(m.text(), format!("ГУМ, Красная пл., 3\n{link}"));
    }
}
