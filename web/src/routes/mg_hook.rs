//! MG's transport webhook, /hooks/mg/{client id}/{secret}: operators' actions in RetailCRM's
//! chats. A wrong client id or secret is a bare 404. `message_sent` is stored before it is
//! answered (see `svyazka_core::replies`); every other type is answered 200 `{}`, since MG
//! adds types over time and a refusal would only show the operator an error.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde_json::json;
use svyazka_core::providers::transport;
use svyazka_core::replies::changes::{self, Change};
use svyazka_core::replies::{self, Stored, deliver};
use svyazka_core::retailcrm::mg_webhook::{
    Envelope, ErrorCode, MessageRef, MessageSent, SendingError, SentAnswer,
};

use crate::error::WebError;
use crate::state::AppState;

pub async fn mg(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (client_id, secret) = path.into_inner();
    let provider = transport::provider_for_hook(&state.core, &client_id, &secret)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let Some(provider) = provider else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return Ok(refuse(provider.id, format!("invalid webhook body: {e}")));
        }
    };
    match envelope.kind.as_str() {
        "message_sent" => {}
        "message_updated" | "message_deleted" => {
            return change(&state, provider.id, &envelope).await;
        }
        "message_read" => {
            // Best effort and answered {} whatever happens: MG cannot do anything about it.
            if let Ok(data) = serde_json::from_value::<MessageRef>(envelope.data.clone()) {
                svyazka_core::replies::reads::apply(&state.core, provider.id, &data).await;
            }
            return Ok(HttpResponse::Ok().json(json!({})));
        }
        _ => {
            // Reactions, templates, types MG adds later: nothing the channels declare, so
            // nothing to do; MG only needs to hear that we got it.
            return Ok(HttpResponse::Ok().json(json!({})));
        }
    }
    let data: MessageSent = match serde_json::from_value(envelope.data.clone()) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("invalid message_sent data: {e}");
            return Ok(refuse(provider.id, why));
        }
    };
    let key = replies::dedup_key(&data, &body);
    let payload = envelope.data.to_string();
    let (provider_id, lease) = (provider.id, state.core.lease());
    let stored = state
        .core
        .db(move |c| replies::store(c, provider_id, &data, &payload, &key, lease))
        .await
        .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    let answer = match stored {
        Stored::New(row) => deliver::in_request(&state.core, row).await,
        Stored::Existing(row) => deliver::answer(&state.core, row.id).await,
    }
    .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    Ok(respond(&answer))
}

/// An operator edited or deleted a reply: applied to the customer's copy where the messenger
/// allows; a refusal is answered in MG's error shape.
async fn change(
    state: &AppState,
    provider_id: i64,
    envelope: &Envelope,
) -> Result<HttpResponse, WebError> {
    let data: MessageRef = match serde_json::from_value(envelope.data.clone()) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("invalid {} data: {e}", envelope.kind);
            return Ok(refuse(provider_id, why));
        }
    };
    let what = if envelope.kind == "message_deleted" {
        Change::Delete
    } else {
        match data.content.clone().filter(|c| !c.trim().is_empty()) {
            Some(text) => Change::Edit(text),
            // Only text is edited; anything else changes nothing at the customer's.
            None => return Ok(HttpResponse::Ok().json(json!({}))),
        }
    };
    let refused = changes::apply(&state.core, provider_id, &data, what)
        .await
        .map_err(|e| WebError::Internal(format!("replies: {e}")))?;
    Ok(match refused {
        None => HttpResponse::Ok().json(json!({})),
        Some(e) => respond(&SentAnswer::Failed(e)),
    })
}

fn respond(answer: &SentAnswer) -> HttpResponse {
    let (status, body) = answer.to_http();
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK)).json(body)
}

/// A body we cannot read: logged, answered in MG's error shape. Not noted on the provider
/// page, whose last delivery is the trigger webhook's.
fn refuse(provider_id: i64, why: String) -> HttpResponse {
    tracing::warn!(provider = provider_id, error = %why, "MG webhook refused");
    HttpResponse::BadRequest().json(json!({ "error": SendingError::new(ErrorCode::General, why) }))
}
