//! Files through Green-API. A customer's file arrives with a `downloadUrl` on Green-API's
//! storage that needs no credentials (see [`super::webhook`]), or, when the notification's
//! link is empty, is asked for by its message (`downloadFile`); an operator's file goes out
//! with `sendFileByUrl`: Green-API downloads it from the link and sends it as a picture,
//! video, voice or document, which it tells by the file name's extension.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{GreenApi, GreenApiError, SendReply, decode};
use crate::messengers::phone::WaRecipient;

/// Extensions of the types an operator's file is likely to have, for a name that has none.
const EXTENSIONS: [(&str, &str); 14] = [
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("text/plain", "txt"),
    ("video/mp4", "mp4"),
    ("audio/ogg", "ogg"),
    ("audio/mpeg", "mp3"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
];

/// `name` with an extension Green-API can tell the file's type by: its own, else one for
/// `mime_type` when known.
pub fn file_name(name: &str, mime_type: Option<&str>) -> String {
    let name = name.trim();
    let has_extension = name
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && (1..=5).contains(&ext.len()));
    if has_extension {
        return name.to_owned();
    }
    let essence = mime_type
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match EXTENSIONS
        .iter()
        .find(|(mime, _)| Some(*mime) == essence.as_deref())
    {
        Some((_, ext)) => format!("{name}.{ext}"),
        None => name.to_owned(),
    }
}

/// The `typeMessage` Green-API gives a file sent under `file_name` (it goes by the
/// extension) *(inference from its docs: `fileName` must carry the extension)*.
pub fn type_message(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "webp" | "gif" => "imageMessage",
        "mp4" | "3gp" | "mov" => "videoMessage",
        "ogg" | "oga" | "opus" | "mp3" | "m4a" | "aac" => "audioMessage",
        _ => "documentMessage",
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownloadReply {
    #[serde(default)]
    download_url: String,
}

impl GreenApi {
    /// `POST downloadFile` `{chatId, idMessage}` → `{downloadUrl}`: the storage link of the
    /// file message `id_message` in `chat_id` (received or sent). A message without a file is
    /// HTTP 400 "File message encrypted url not found by chatId … and idMessage …".
    pub async fn download_link(
        &self,
        chat_id: &str,
        id_message: &str,
    ) -> Result<String, GreenApiError> {
        let body = json!({ "chatId": chat_id, "idMessage": id_message });
        let reply = self
            .call(Method::POST, "downloadFile", &[], Some(&body))
            .await?;
        let parsed: DownloadReply = decode(reply, "downloadFile")?;
        match url::Url::parse(parsed.download_url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u.to_string()),
            _ => Err(GreenApiError::BadResponse {
                what: "downloadFile",
                detail: "no usable downloadUrl".into(),
            }),
        }
    }

    /// `POST sendFileByUrl`: Green-API fetches `url` and sends it as `file_name` with the
    /// caption; answers the message id.
    pub async fn send_file_by_url(
        &self,
        to: &WaRecipient,
        url: &str,
        file_name: &str,
        caption: &str,
    ) -> Result<String, GreenApiError> {
        let mut body = json!({ "chatId": to.chat_id(), "urlFile": url, "fileName": file_name });
        if !caption.trim().is_empty() {
            body["caption"] = Value::from(caption.trim());
        }
        let reply = self
            .call(Method::POST, "sendFileByUrl", &[], Some(&body))
            .await?;
        let parsed: SendReply = decode(reply, "sendFileByUrl")?;
        Ok(parsed.id_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_an_extension_green_api_can_read() {
        assert_eq!(file_name("Счёт.pdf", Some("image/png")), "Счёт.pdf");
        assert_eq!(file_name("photo", Some("image/png")), "photo.png");
        assert_eq!(
            file_name("a1b2", Some("audio/ogg; codecs=opus")),
            "a1b2.ogg"
        );
        assert_eq!(file_name("blob", None), "blob");
        assert_eq!(file_name(".env", Some("text/plain")), ".env.txt");
        assert_eq!(type_message("a.JPG"), "imageMessage");
        assert_eq!(type_message("Счёт.pdf"), "documentMessage");
        assert_eq!(type_message("noext"), "documentMessage");
    }
}
