//! A customer's media on its way into RetailCRM's chat: the file is uploaded to MG and the
//! message goes as an image, file or audio with it (a location stays a text message with its
//! map link, which MG has no type for).

use super::Attempt;
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::incoming::{FileSource, IncomingMedia, MediaKind};
use crate::providers::ProviderKind;
use crate::reason::Reason;
use crate::retailcrm::{MgItem, MgMessage, MgTransport};

/// The MG message for the step's `text` and the event's media, uploading its file first.
pub async fn message(
    core: &Core,
    mg: &MgTransport,
    attempt: &Attempt<'_>,
    text: &str,
) -> Result<MgMessage, StepError> {
    let idem = attempt.idem;
    let Some(media) = attempt.media.as_ref() else {
        return Ok(MgMessage::text(idem, text));
    };
    let Some(file) = media.file.as_ref() else {
        // A location, or an animated sticker without a picture: the text says it all.
        return Ok(MgMessage::text(idem, text));
    };
    let uploaded = match &file.source {
        FileSource::Url { url } => mg
            .upload_file_by_url(url)
            .await
            .map_err(|e| StepError::upstream(&e)),
        FileSource::Upstream { id } => match download(core, attempt, media, id).await {
            Ok(bytes) => mg
                .upload_file(bytes)
                .await
                .map_err(|e| StepError::upstream(&e)),
            Err(e) => Err(e),
        },
        FileSource::InMessage {
            chat_id,
            message_id,
        } => match link_of(core, attempt, media, chat_id, message_id).await {
            Ok(url) => mg
                .upload_file_by_url(&url)
                .await
                .map_err(|e| StepError::upstream(&e)),
            Err(e) => Err(e),
        },
    };
    let uploaded = match uploaded {
        Ok(file) => file,
        // A file that can never be had (a link expired, a file too big for a bot) must not
        // lose the message: the operator gets its text, which says what it was.
        Err(e) if !e.is_transient() => {
            tracing::warn!(error = %e, kind = media.kind.code(), "customer's file not passed on; its text is");
            return Ok(MgMessage::text(idem, text));
        }
        Err(e) => return Err(e),
    };
    // A document keeps its name in the chat; a sticker's emoji is no caption.
    let item = MgItem {
        id: uploaded.id,
        caption: media
            .file_name()
            .map(|n| n.chars().take(1024).collect::<String>()),
    };
    Ok(MgMessage::media(
        idem,
        media.kind.mg_type(),
        item,
        caption(media, text),
    ))
}

/// The step's text as the file's caption, unless it is only the marker standing in for a
/// missing caption (`[photo]`): the file shows that itself.
fn caption<'a>(media: &IncomingMedia, text: &'a str) -> &'a str {
    let text = text.trim();
    if text == media.marker()
        || (media.kind == MediaKind::Sticker && media.caption.as_deref() == Some(text))
    {
        ""
    } else {
        text
    }
}

/// The file's bytes from the messenger it came through, with that provider's credentials (a
/// Telegram `file_id`, a Cloud API media id).
async fn download(
    core: &Core,
    attempt: &Attempt<'_>,
    media: &IncomingMedia,
    id: &str,
) -> Result<Vec<u8>, StepError> {
    let unavailable = || {
        StepError::permanent(Reason::MediaUnavailable {
            kind: media.kind.code().to_owned(),
        })
    };
    let source = attempt.source_provider_id.ok_or_else(unavailable)?;
    let provider = core.provider(source).await.map_err(|_| unavailable())?;
    match provider.kind {
        ProviderKind::Telegram => {
            let api = clients::telegram(core, &provider)?;
            let (bytes, _) = api
                .download(id)
                .await
                .map_err(|e| StepError::upstream(&e))?;
            Ok(bytes)
        }
        ProviderKind::Wacloud => {
            let api = clients::wacloud(core, &provider)?;
            let file = api
                .download_media(id)
                .await
                .map_err(|e| StepError::upstream(&e))?;
            Ok(file.bytes)
        }
        _ => Err(unavailable()),
    }
}

/// The storage link of a file the messenger hands out by its message (Green-API's
/// `downloadFile`, asked with the source provider's credentials); MG fetches it from there as
/// from a link the notification carried.
async fn link_of(
    core: &Core,
    attempt: &Attempt<'_>,
    media: &IncomingMedia,
    chat_id: &str,
    message_id: &str,
) -> Result<String, StepError> {
    let unavailable = || {
        StepError::permanent(Reason::MediaUnavailable {
            kind: media.kind.code().to_owned(),
        })
    };
    let source = attempt.source_provider_id.ok_or_else(unavailable)?;
    let provider = core.provider(source).await.map_err(|_| unavailable())?;
    if provider.kind != ProviderKind::Greenapi {
        return Err(unavailable());
    }
    let api = clients::greenapi(core, &provider)?;
    api.download_link(chat_id, message_id)
        .await
        .map_err(|e| StepError::upstream(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messengers::incoming::MediaFile;

    fn photo(caption: Option<&str>) -> IncomingMedia {
        IncomingMedia {
            kind: MediaKind::Photo,
            caption: caption.map(str::to_owned),
            file: Some(MediaFile {
                source: FileSource::Upstream { id: "x".into() },
                name: None,
                mime_type: None,
                size: None,
            }),
            location: None,
        }
    }

    #[test]
    fn the_marker_is_no_caption() {
        assert_eq!(caption(&photo(None), "[photo]"), "");
        assert_eq!(caption(&photo(None), "Клиент: [photo]"), "Клиент: [photo]");
        assert_eq!(caption(&photo(Some("чек")), "чек"), "чек");
    }
}
