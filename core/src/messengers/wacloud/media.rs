//! Files through the Cloud API. A customer's file is named in the webhook by a media id:
//! `GET /{media-id}` answers a short-lived `url` (on `lookaside.fbsbx.com`), which is fetched
//! with the same access token. An operator's file is uploaded (`POST /{phone-number-id}/media`,
//! multipart `file`, `type`, `messaging_product`) and sent by the media id Meta answers; a
//! file that cannot be uploaded goes by link, and Meta downloads it.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{CloudApi, CloudApiError, decode, network};
use crate::upstream::{self, BodyError};

/// Domains Meta serves media downloads from.
const META_MEDIA_DOMAINS: [&str; 4] = ["fbsbx.com", "fbcdn.net", "facebook.com", "whatsapp.net"];

/// What `GET /{media-id}` answers. `file_size` is a number in Meta's answers; a string is
/// taken too.
#[derive(Deserialize)]
struct MediaUrl {
    url: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    file_size: Option<Value>,
}

/// A customer's file, fetched.
#[derive(Debug)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    pub mime_type: Option<String>,
}

/// Where Meta takes an outgoing file from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSource<'a> {
    /// A media id of an upload of ours.
    Id(&'a str),
    /// A link Meta downloads.
    Link(&'a str),
}

/// An operator's file on its way out.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMedia<'a> {
    /// Shown as a picture (`image`) or as a file with its name (`document`).
    pub image: bool,
    pub source: MediaSource<'a>,
    /// The document's name as the customer sees it.
    pub filename: &'a str,
    pub caption: &'a str,
}

#[derive(Deserialize)]
struct Uploaded {
    id: String,
}

/// Types Meta takes for the media it sends, by file extension (its supported media list):
/// the upload's `type` when the file's own type is not known.
const TYPES: [(&str, &str); 17] = [
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("mp4", "video/mp4"),
    ("3gp", "video/3gpp"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("aac", "audio/aac"),
];

/// The upload's `type`: the file's own (without parameters), else one for its name's
/// extension, else a picture's usual JPEG or a document's generic type (which Meta may refuse;
/// the file then goes by link).
pub fn media_type(mime_type: Option<&str>, file_name: &str, image: bool) -> String {
    if let Some(m) = mime_type
        .and_then(|m| m.split(';').next())
        .map(str::trim)
        .filter(|m| m.contains('/'))
    {
        return m.to_ascii_lowercase();
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match TYPES.iter().find(|(e, _)| *e == ext) {
        Some((_, t)) => (*t).to_owned(),
        None if image => "image/jpeg".to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

impl CloudApi {
    /// `POST /{phone-number-id}/media`: uploads an operator's file for this number (Meta keeps
    /// it 30 days); answers its media id.
    pub async fn upload_media(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
        file_name: &str,
    ) -> Result<String, CloudApiError> {
        let mut form = crate::messengers::multipart::Multipart::new();
        form.text("messaging_product", "whatsapp");
        form.text("type", mime_type);
        form.typed_file("file", file_name, mime_type, bytes);
        let id = self.phone_number_id.clone();
        let reply = self.call_multipart(&[&id, "media"], form).await?;
        let status = reply.status.as_u16();
        let uploaded: Uploaded = decode(reply, "the media upload")?;
        if uploaded.id.trim().is_empty() {
            return Err(CloudApiError::BadResponse {
                what: "the media upload",
                status,
                detail: "no media id".into(),
            });
        }
        Ok(uploaded.id)
    }

    /// The bytes behind a webhook's media id (at most [`upstream::MAX_MEDIA`]).
    pub async fn download_media(&self, media_id: &str) -> Result<Downloaded, CloudApiError> {
        let media_id = media_id.trim();
        if media_id.is_empty() || !media_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CloudApiError::Config(format!(
                "{media_id:?} is not a media id"
            )));
        }
        let phone = self.phone_number_id.clone();
        let reply = self
            .call(
                Method::GET,
                &[media_id],
                // Meta then checks that the media belongs to this number.
                &[("phone_number_id", phone.as_str())],
                None,
            )
            .await?;
        let status = reply.status.as_u16();
        let info: MediaUrl = decode(reply, "the media")?;
        let size = info.file_size.as_ref().and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let too_large = |status: u16| CloudApiError::BadResponse {
            what: "the media",
            status,
            detail: format!(
                "the file is larger than {} MiB",
                upstream::MAX_MEDIA / 1024 / 1024
            ),
        };
        if size.is_some_and(|s| s > upstream::MAX_MEDIA as u64) {
            return Err(too_large(status));
        }
        let url = url::Url::parse(info.url.trim()).map_err(|e| CloudApiError::BadResponse {
            what: "the media",
            status,
            detail: format!("the media url is not a URL: {e}"),
        })?;
        // The URL comes from Meta's answer: it goes through the same outbound policy as any
        // request of ours, and the access token goes only to Meta's own hosts.
        if !self.meta_host(&url) {
            return Err(CloudApiError::BadResponse {
                what: "the media",
                status,
                detail: format!(
                    "the media url is not on a Meta host: {}",
                    url.host_str().unwrap_or_default()
                ),
            });
        }
        let response = self
            .http
            .request(Method::GET, url)
            .map_err(CloudApiError::Refused)?
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            let body = upstream::read_body(response).await.unwrap_or_default();
            let reply = crate::messengers::Reply {
                status,
                retry_after: None,
                body,
            };
            // A Graph error keeps Meta's code and words; anything else says the status.
            return Err(match decode::<Value>(reply, "the media download") {
                Err(e) => e,
                Ok(_) => CloudApiError::BadResponse {
                    what: "the media download",
                    status: status.as_u16(),
                    detail: "the file download failed".to_owned(),
                },
            });
        }
        let bytes = upstream::read_body_max(response, upstream::MAX_MEDIA)
            .await
            .map_err(|e| match e {
                BodyError::Transport(e) => network(e),
                BodyError::TooLarge => too_large(status.as_u16()),
            })?;
        Ok(Downloaded {
            bytes,
            mime_type: info.mime_type,
        })
    }

    /// Whether `url` is where Meta keeps media (`lookaside.fbsbx.com`, its CDN) or the Graph
    /// API host we were configured with (a test fake serves both).
    fn meta_host(&self, url: &url::Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let same_as_graph = self.base.host_str() == Some(host.as_str())
            && self.base.port_or_known_default() == url.port_or_known_default();
        same_as_graph
            || META_MEDIA_DOMAINS
                .iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    }

    /// An image or document by media id or link, with its caption; answers the `wamid`. `to`
    /// is international digits.
    pub async fn send_media(
        &self,
        to: &str,
        media: &OutgoingMedia<'_>,
    ) -> Result<String, CloudApiError> {
        let caption = media.caption.trim();
        let mut object = match media.source {
            MediaSource::Id(id) => json!({ "id": id }),
            MediaSource::Link(link) => json!({ "link": link }),
        };
        let kind = if media.image {
            "image"
        } else {
            object["filename"] = Value::from(media.filename);
            "document"
        };
        if !caption.is_empty() {
            object["caption"] = Value::from(caption);
        }
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": kind,
        });
        body[kind] = object;
        self.send(&body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_meta() {
        let api = CloudApi::new("https://graph.facebook.com/v23.0", "1065", "t")
            .unwrap_or_else(|e| panic!("{e}"));
        let ok = |u: &str| api.meta_host(&url::Url::parse(u).unwrap_or_else(|e| panic!("{e}")));
        assert!(ok(
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2&hash=3"
        ));
        assert!(ok("https://scontent.xx.fbcdn.net/v/t62/file"));
        assert!(ok("https://graph.facebook.com/v23.0/123"));
        assert!(!ok("https://lookaside.fbsbx.com.evil.example/a"));
        assert!(!ok("https://example.com/fbsbx.com"));
    }

    #[test]
    fn the_upload_type_comes_from_the_file_or_its_name() {
        assert_eq!(media_type(Some("image/PNG; q=1"), "x", true), "image/png");
        assert_eq!(media_type(None, "Счёт.PDF", false), "application/pdf");
        assert_eq!(media_type(Some(""), "photo", true), "image/jpeg");
        assert_eq!(media_type(None, "blob", false), "application/octet-stream");
    }
}
