//! Webhook endpoints: /hooks/{kind}/{provider id}/{secret}. A wrong kind, id or secret is a
//! bare 404 (nothing tells a prober which part was wrong). A body we cannot read is a 400 with
//! the reason and nothing stored. A 200 means the delivery is in the inbox.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use svyazka_core::inbox::Stored;
use svyazka_core::inbox::writer::WriteError;
use svyazka_core::messengers::greenapi::webhook as greenapi_webhook;
use svyazka_core::messengers::incoming::{BadPayload, Parsed};
use svyazka_core::messengers::telegram::secret_token_matches;
use svyazka_core::messengers::wacloud::webhook as wacloud_webhook;
use svyazka_core::providers::{self, Provider, ProviderError, ProviderKind, Secrets};
use svyazka_core::{delivery, hook_log, ingest};

use crate::error::WebError;
use crate::state::AppState;

/// Upstream webhook bodies are small; anything larger is refused with 413 before parsing.
pub const MAX_BODY: usize = 256 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/hooks")
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/retailcrm/{id}/{secret}", web::post().to(retailcrm))
            .route("/retailcrm/{id}/{secret}", web::get().to(retailcrm))
            .route("/chatapi/{id}/{secret}", web::post().to(chatapi))
            .route("/telegram/{id}/{secret}", web::post().to(telegram))
            .route("/greenapi/{id}/{secret}", web::post().to(greenapi))
            .route("/wacloud/{id}/{secret}", web::get().to(wacloud_verify))
            .route("/wacloud/{id}/{secret}", web::post().to(wacloud))
            .route(
                "/mg/{client_id}/{secret}",
                web::post().to(super::mg_hook::mg),
            ),
    );
}

fn bad(e: BadPayload) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"ok": false, "error": e.0}))
}

/// A delivery we cannot read: noted for the provider page, then refused.
async fn refuse(state: &AppState, provider_id: i64, e: BadPayload) -> HttpResponse {
    hook_log::note(&state.core, provider_id, Err(e.0.clone())).await;
    bad(e)
}

/// The provider the URL names, if kind, id and secret all match. Cached per process (see
/// `ProviderCache`), so a webhook costs no database read for its provider.
async fn provider(
    state: &AppState,
    kind: ProviderKind,
    path: &(String, String),
) -> Result<Option<Arc<Provider>>, WebError> {
    let Ok(id) = path.0.parse::<i64>() else {
        return Ok(None);
    };
    match state.core.provider(id).await {
        Ok(p) => Ok(providers::matches_hook(&p, kind, &path.1).then_some(p)),
        Err(ProviderError::NotFound) => Ok(None),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

fn stored(e: WriteError) -> WebError {
    WebError::Internal(format!("inbox: {e}"))
}

fn accepted(stored: &[Stored]) -> HttpResponse {
    let ids: Vec<i64> = stored.iter().map(|s| s.id()).collect();
    let duplicates = stored
        .iter()
        .filter(|s| matches!(s, Stored::Duplicate(_)))
        .count();
    HttpResponse::Ok().json(json!({"ok": true, "stored": ids, "duplicates": duplicates}))
}

async fn retailcrm(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Retailcrm, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // RetailCRM's trigger may send the parameters in the query string, the body, or both.
    let mut pairs: Vec<(String, String)> = match serde_html_form::from_str(req.query_string()) {
        Ok(p) => p,
        Err(e) => {
            let e = BadPayload(format!("invalid query string: {e}"));
            return Ok(refuse(&state, p.id, e).await);
        }
    };
    match ingest::trigger_pairs(content_type, &body) {
        Ok(more) => pairs.extend(more),
        Err(e) => return Ok(refuse(&state, p.id, e).await),
    }
    let trigger = match ingest::parse_trigger(&pairs) {
        Ok(t) => t,
        Err(e) => return Ok(refuse(&state, p.id, e).await),
    };
    let item = ingest::trigger_item(p.id, &trigger, state.core.config.trigger_repeat_window);
    let done = state.inbox.store(item).await.map_err(stored)?;
    hook_log::note(&state.core, p.id, Ok(())).await;
    Ok(accepted(&[done]))
}

async fn store_parsed(
    state: &AppState,
    p: &Provider,
    parsed: Result<Parsed, BadPayload>,
) -> Result<HttpResponse, WebError> {
    match parsed {
        Err(e) => Ok(refuse(state, p.id, e).await),
        Ok(Parsed::Ignored(why)) => {
            hook_log::note(&state.core, p.id, Ok(())).await;
            Ok(HttpResponse::Ok().json(json!({"ok": true, "ignored": why})))
        }
        Ok(Parsed::Messages(messages)) => {
            let items = ingest::message_items(p.id, &messages);
            let done = state.inbox.store_all(items).await.map_err(stored)?;
            hook_log::note(&state.core, p.id, Ok(())).await;
            Ok(accepted(&done))
        }
    }
}

async fn chatapi(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Chatapi, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    // Operators' replies the customer read: noted and passed on to RetailCRM's chat.
    let read = ingest::chatapi_read_receipts(&body);
    if !read.is_empty() {
        svyazka_core::replies::receipts::read(&state.core, p.id, read)
            .await
            .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    }
    store_parsed(&state, &p, ingest::parse_chatapi(&body)).await
}

async fn telegram(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Telegram, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    // setWebhook registered the path secret as secret_token too; Telegram echoes it in a header.
    let header = req
        .headers()
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok());
    if !secret_token_matches(&p.webhook_secret, header) {
        return Ok(HttpResponse::NotFound().finish());
    }
    store_parsed(&state, &p, ingest::parse_telegram(&body)).await
}

async fn greenapi(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Greenapi, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    // setSettings gave Green-API our token; it comes back in the Authorization header.
    let expected = match p.secrets(&state.core.crypto) {
        Ok(Secrets::Greenapi { webhook_token, .. }) => webhook_token,
        _ => return Err(WebError::Internal("Green-API secrets unreadable".into())),
    };
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if !greenapi_webhook::authorization_matches(&expected, header) {
        return Ok(HttpResponse::Unauthorized().finish());
    }
    let read = greenapi_webhook::read_receipts(&body);
    if !read.is_empty() {
        svyazka_core::replies::receipts::read(&state.core, p.id, read)
            .await
            .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    }
    let statuses = greenapi_webhook::statuses(&body);
    // A yellow card suspends sending; the message waits in Green-API's queue for 24 hours and
    // a later status decides whether it arrived, so the run is left as it is.
    for s in statuses.iter().filter(|s| s.is_suspended()) {
        tracing::warn!(
            provider = p.id,
            message = %s.id_message,
            "Green-API suspended sending (yellowCard); the message stays queued"
        );
    }
    let failed: Vec<_> = statuses
        .iter()
        .filter(|s| s.is_failure())
        .map(|s| (s.id_message.clone(), delivery::greenapi_reason(s)))
        .collect();
    delivery::report(&state.core, p.id, failed).await;
    // The account was unlinked, blocked, … or authorized again: shown on the provider page.
    if let Some((account, at)) = greenapi_webhook::state_change(&body) {
        svyazka_core::providers::account_state::note(&state.core, p.id, account, at).await;
    }
    store_parsed(&state, &p, ingest::parse_greenapi(&body)).await
}

#[derive(serde::Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription handshake: the challenge echoed as plain text when the verify token is
/// ours, 403 otherwise.
async fn wacloud_verify(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<Handshake>,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Wacloud, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let Ok(Secrets::Wacloud { verify_token, .. }) = p.secrets(&state.core.crypto) else {
        return Err(WebError::Internal("Cloud API secrets unreadable".into()));
    };
    match wacloud_webhook::challenge(
        &verify_token,
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
    ) {
        Some(c) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(c.to_owned())),
        None => Ok(HttpResponse::Forbidden().finish()),
    }
}

async fn wacloud(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let Some(p) = provider(&state, ProviderKind::Wacloud, &path).await? else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let Ok(Secrets::Wacloud { app_secret, .. }) = p.secrets(&state.core.crypto) else {
        return Err(WebError::Internal("Cloud API secrets unreadable".into()));
    };
    // Signed with the app secret over the raw body: anything else did not come from Meta.
    let signature = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !wacloud_webhook::signature_matches(&app_secret, signature, &body) {
        return Ok(HttpResponse::Unauthorized().finish());
    }
    let read = wacloud_webhook::read_receipts(&body);
    if !read.is_empty() {
        svyazka_core::replies::receipts::read(&state.core, p.id, read)
            .await
            .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    }
    let failed: Vec<_> = wacloud_webhook::statuses(&body)
        .iter()
        .filter(|s| s.status == "failed")
        .map(|s| (s.id.clone(), delivery::wacloud_reason(s)))
        .collect();
    delivery::report(&state.core, p.id, failed).await;
    store_parsed(&state, &p, ingest::parse_wacloud(&body)).await
}
