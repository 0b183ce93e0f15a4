//! An operator's image or file on its way to the customer: MG names it by an id
//! (`items[].id`), `GET /files/{id}` gives its download URL, and the messenger gets it as
//! media — a Telegram photo by that URL (Telegram downloads it), a Telegram document as bytes
//! (Telegram takes only GIF, PDF and ZIP by URL), a WhatsApp file by URL (ChatAPI `sendFile`,
//! Green-API `sendFileByUrl`; the gateway downloads it), a Cloud API file uploaded to Meta and
//! sent by its media id. The channel declares one file a message, so only the first item is
//! sent.

use serde_json::Value;

use super::Reply;
use super::deliver::{self, Failure, GreenStart, Outgoing, general};
use super::errors;
use super::routes::Route;
use crate::Core;
use crate::db::DbError;
use crate::engine::{StepError, clients};
use crate::messengers::greenapi::{self, HistoryMessage};
use crate::messengers::phone::WaRecipient;
use crate::messengers::wacloud::media::{self as cloud_media, MediaSource, OutgoingMedia};
use crate::providers::Provider;
use crate::upstream::{self, UpstreamFailure};

/// A file of MG's, ready to send.
pub(super) struct OutgoingFile {
    /// MG's type: image or file.
    pub kind: String,
    pub url: String,
    /// The name the customer sees (MG's item caption, else the file id).
    pub name: String,
    /// The operator's text with it.
    pub caption: String,
    /// MG's word for the file's type, when it gave one.
    pub mime_type: Option<String>,
}

/// What the reply is: text, a file (looked up in MG), or `None` for a kind not delivered.
pub(super) async fn outgoing(core: &Core, reply: &Reply) -> Result<Option<Outgoing>, Failure> {
    let text = reply.content.trim();
    match reply.kind.as_str() {
        "text" if !text.is_empty() => return Ok(Some(Outgoing::Text)),
        "image" | "file" => {}
        _ => return Ok(None),
    }
    let payload: Value = serde_json::from_str(&reply.payload).unwrap_or_default();
    let Some(item) = payload
        .get("items")
        .and_then(Value::as_array)
        .and_then(|items| items.first())
    else {
        return Ok(None);
    };
    let Some(id) = item.get("id").and_then(Value::as_str) else {
        return Ok(None);
    };
    let mg = deliver::crm_transport(core, reply.provider_id)
        .await
        .map_err(general)?;
    let file = mg
        .get_file(id)
        .await
        .map_err(|e| general(StepError::upstream(&e)))?;
    let Some(url) = file.url.filter(|u| !u.is_empty()) else {
        return Err(general(StepError::permanent(
            crate::reason::Reason::ReplyUnsupported {
                kind: reply.kind.clone(),
            },
        )));
    };
    let name = item
        .get("caption")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(id)
        .to_owned();
    Ok(Some(Outgoing::File(OutgoingFile {
        kind: reply.kind.clone(),
        url,
        name,
        caption: text.to_owned(),
        mime_type: file.mime_type.filter(|m| !m.trim().is_empty()),
    })))
}

pub(super) async fn send_whatsapp(
    core: &Core,
    reply: &Reply,
    provider: &Provider,
    route: &Route,
    file: &OutgoingFile,
) -> Result<Result<String, Failure>, DbError> {
    if let Some(closed) = deliver::window_closed(provider, route) {
        return Ok(Err(closed));
    }
    let to = match WaRecipient::parse(&route.chat_id) {
        Ok(to) => to,
        Err(e) => return Ok(Err(general(StepError::permanent((&e).into())))),
    };
    let api = match clients::chatapi(core, provider) {
        Ok(api) => api,
        Err(e) => return Ok(Err(general(e))),
    };
    deliver::mark_started(core, reply, route).await?;
    Ok(
        match api
            .send_file(&to, &file.url, &file.name, &file.caption)
            .await
        {
            Ok(sent) => Ok(deliver::external_id(&sent.id, reply)),
            Err(e) => Err(deliver::chatapi_file_failure(&e)),
        },
    )
}

/// Green-API downloads the file from MG's link. A retry whose earlier attempt's answer was
/// lost first looks for the file in the chat's history, as text replies do: a file of the
/// same type with the same caption (and name, when the history gives one).
pub(super) async fn send_greenapi(
    core: &Core,
    reply: &Reply,
    provider: &Provider,
    route: &Route,
    file: &OutgoingFile,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<Result<String, Failure>, DbError> {
    let name = greenapi::media::file_name(&file.name, file.mime_type.as_deref());
    let caption = file.caption.trim();
    let kind = greenapi::media::type_message(&name);
    let sent = |m: &HistoryMessage| {
        m.type_message == kind
            && m.caption.as_deref().unwrap_or_default().trim() == caption
            && m.file_name.as_deref().is_none_or(|n| n.trim() == name)
    };
    let (api, to) = match deliver::greenapi_start(core, reply, provider, route, earlier, sent).await
    {
        Ok(GreenStart::Send(api, to)) => (api, to),
        Ok(GreenStart::Delivered(id)) => return Ok(Ok(id)),
        Err(failure) => return Ok(Err(failure)),
    };
    deliver::mark_started(core, reply, route).await?;
    Ok(
        match api.send_file_by_url(&to, &file.url, &name, caption).await {
            Ok(id) => Ok(deliver::external_id(&id, reply)),
            Err(e) => Err((StepError::upstream(&e), errors::from_greenapi(&e))),
        },
    )
}

/// A picture as an `image`, anything else as a `document` with its name. Within the 24-hour
/// window only, and at most once (the Cloud API has no history).
///
/// The file is fetched from MG (through the outbound policy, at most 20 MiB) and uploaded to
/// Meta before anything is sent, and the message names the upload's media id. Uploading first
/// rather than as a fallback: Meta accepts a link send at once and downloads the file later, so
/// a link it cannot fetch fails only afterwards, in a status (131053) — too late to send again
/// without risking a second message, which the at-most-once rule forbids. MG's links may also
/// be short-lived or unreachable from Meta. A file over the cap, or one Meta
/// refuses to take as an upload (a type it does not list), still goes by link: nothing was sent
/// yet, and Meta may manage it.
pub(super) async fn send_wacloud(
    core: &Core,
    reply: &Reply,
    provider: &Provider,
    route: &Route,
    file: &OutgoingFile,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<Result<String, Failure>, DbError> {
    let (api, digits) = match deliver::wacloud_start(core, provider, route, earlier) {
        Ok(start) => start,
        Err(failure) => return Ok(Err(*failure)),
    };
    let image = file.kind == "image";
    // Unconfirmed: how long MG's file links live and whether Meta can reach them (the
    // reference says to fetch them at once); uploading does not depend on either.
    let uploaded = match fetch(core, &file.url).await {
        Ok(Fetched::Bytes(bytes)) => {
            let kind = cloud_media::media_type(file.mime_type.as_deref(), &file.name, image);
            match api.upload_media(bytes, &kind, &file.name).await {
                Ok(id) => Some(id),
                Err(e) if matches!(e.retry(), upstream::Retry::Transient { .. }) => {
                    return Ok(Err((StepError::upstream(&e), errors::from_wacloud(&e))));
                }
                Err(e) => {
                    tracing::warn!(reply = reply.id, error = %e, "Meta refused the upload; the file goes by link");
                    None
                }
            }
        }
        Ok(Fetched::TooLarge) => None,
        Err(step) => return Ok(Err(general(step))),
    };
    let media = OutgoingMedia {
        image,
        source: match &uploaded {
            Some(id) => MediaSource::Id(id),
            None => MediaSource::Link(&file.url),
        },
        filename: &file.name,
        caption: &file.caption,
    };
    deliver::mark_started(core, reply, route).await?;
    Ok(match api.send_media(&digits, &media).await {
        Ok(id) => Ok(deliver::external_id(&id, reply)),
        Err(e) => Err(deliver::wacloud_failure(&e)),
    })
}

pub(super) async fn send_telegram(
    core: &Core,
    reply: &Reply,
    provider: &Provider,
    route: &Route,
    file: &OutgoingFile,
) -> Result<Result<String, Failure>, DbError> {
    let api = match clients::telegram(core, provider) {
        Ok(api) => api,
        Err(step) => return Ok(Err(general(step))),
    };
    let chat = route.chat_id.as_str();
    if file.kind == "image" {
        deliver::mark_started(core, reply, route).await?;
        return Ok(
            match api.send_photo_url(chat, &file.url, &file.caption).await {
                Ok(m) => Ok(m.message_id.to_string()),
                Err(e) => Err((StepError::upstream(&e), errors::from_telegram(&e))),
            },
        );
    }
    let bytes = match download(core, &file.url).await {
        Ok(bytes) => bytes,
        Err(step) => return Ok(Err(general(step))),
    };
    deliver::mark_started(core, reply, route).await?;
    Ok(
        match api
            .send_document(chat, &file.name, bytes, &file.caption)
            .await
        {
            Ok(m) => Ok(m.message_id.to_string()),
            Err(e) => Err((StepError::upstream(&e), errors::from_telegram(&e))),
        },
    )
}

/// MG's file, whole or found to be over the cap.
enum Fetched {
    Bytes(Vec<u8>),
    TooLarge,
}

/// MG's file, through the shared client's outbound policy (the URL comes from MG).
async fn download(core: &Core, url: &str) -> Result<Vec<u8>, StepError> {
    match fetch(core, url).await? {
        Fetched::Bytes(bytes) => Ok(bytes),
        Fetched::TooLarge => Err(StepError::transient(crate::reason::Reason::Upstream(
            crate::reason::ServiceFailure {
                service: crate::reason::Service::RetailcrmChats,
                failure: crate::reason::Upstream::Unexpected {
                    status: Some(200),
                    detail: upstream::BodyError::TooLarge.to_string(),
                },
            },
        ))),
    }
}

/// MG's file (at most [`upstream::MAX_MEDIA`]), through the shared client's outbound policy.
async fn fetch(core: &Core, url: &str) -> Result<Fetched, StepError> {
    use crate::reason::{Reason, Service, ServiceFailure, Upstream};
    let failed = |failure: Upstream| {
        StepError::transient(Reason::Upstream(ServiceFailure {
            service: Service::RetailcrmChats,
            failure,
        }))
    };
    let unreachable = |detail: String| failed(Upstream::Unreachable { detail });
    let url = url::Url::parse(url).map_err(|e| unreachable(e.to_string()))?;
    let response = core
        .http
        .request(reqwest::Method::GET, url)
        .map_err(|refused| {
            StepError::permanent(Reason::Upstream(ServiceFailure {
                service: Service::RetailcrmChats,
                failure: Upstream::Blocked { refused },
            }))
        })?
        .send()
        .await
        .map_err(|e| unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(failed(Upstream::Unexpected {
            status: Some(status),
            detail: "the file download failed".to_owned(),
        }));
    }
    match upstream::read_body_max(response, upstream::MAX_MEDIA).await {
        Ok(bytes) => Ok(Fetched::Bytes(bytes)),
        Err(upstream::BodyError::TooLarge) => Ok(Fetched::TooLarge),
        Err(e) => Err(failed(Upstream::Unexpected {
            status: Some(status),
            detail: e.to_string(),
        })),
    }
}
