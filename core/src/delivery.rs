//! Messages that were accepted, then not delivered: WhatsApp says so later, in a status
//! webhook (Green-API `noAccount` / `failed`, Cloud API `failed` with its `errors`). The run
//! that sent such a message succeeded when the gateway took it; it is turned to failed with
//! the messenger's reason, so the admin sees on the run page that the customer never got it.

use diesel::prelude::*;

use crate::db::schema::{bundles, run_steps, runs};
use crate::db::{AnyConnection, DbError, now};
use crate::reason::Reason;
use crate::runs::{RunStatus, StepStatus};

/// Marks failed each succeeded run whose send through `provider_id` produced `message_id`;
/// answers their ids (none when the message was not a run's: an operator's reply, a phone).
pub fn record_failure(
    conn: &mut AnyConnection,
    provider_id: i64,
    message_id: &str,
    reason: &Reason,
) -> Result<Vec<i64>, DbError> {
    if message_id.trim().is_empty() {
        return Ok(Vec::new());
    }
    // Outputs are JSON text: a LIKE narrows the rows, the parse below decides.
    let pattern = format!("%{}%", message_id.replace(['%', '_', '\\'], ""));
    let candidates: Vec<(i64, Option<String>)> = run_steps::table
        .inner_join(runs::table.inner_join(bundles::table))
        .filter(bundles::target_provider_id.eq(provider_id))
        .filter(run_steps::status.eq(StepStatus::Succeeded))
        .filter(run_steps::outputs.like(pattern))
        .select((run_steps::run_id, run_steps::outputs))
        .load(conn)?;
    let ids: Vec<i64> = candidates
        .into_iter()
        .filter(|(_, out)| {
            out.as_deref()
                .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                .and_then(|o| o.get("message_id")?.as_str().map(|id| id == message_id))
                .unwrap_or(false)
        })
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(ids);
    }
    let t = now();
    diesel::update(
        runs::table
            .filter(runs::id.eq_any(&ids))
            .filter(runs::status.eq(RunStatus::Succeeded)),
    )
    .set((
        runs::status.eq(RunStatus::Failed),
        runs::error.eq(Some(reason.to_stored())),
        runs::updated_at.eq(t),
    ))
    .execute(conn)?;
    Ok(ids)
}

/// Why a Green-API status says the message did not arrive.
pub fn greenapi_reason(s: &crate::messengers::greenapi::webhook::StatusUpdate) -> Reason {
    use crate::reason::{Service, ServiceFailure, Upstream};
    let words = match &s.description {
        Some(d) if !d.trim().is_empty() => format!("{}: {d}", s.status),
        _ => s.status.clone(),
    };
    let failure = if s.status == "noAccount" {
        Upstream::NoWhatsapp { message: words }
    } else {
        Upstream::Refused {
            status: None,
            message: words,
            details: Vec::new(),
        }
    };
    Reason::Upstream(ServiceFailure {
        service: Service::Greenapi,
        failure,
    })
}

/// Why a Cloud API `failed` status says the message did not arrive (its first error).
pub fn wacloud_reason(s: &crate::messengers::wacloud::webhook::StatusUpdate) -> Reason {
    use crate::messengers::wacloud::client::{CODE_NO_WHATSAPP, CODE_WINDOW_CLOSED};
    use crate::reason::{Service, ServiceFailure, Upstream};
    let (code, title, details) =
        s.errors
            .first()
            .cloned()
            .unwrap_or((0, s.status.clone(), String::new()));
    let failure = match code {
        CODE_WINDOW_CLOSED => {
            return Reason::ReplyWindowClosed {
                last_customer_message: String::new(),
            };
        }
        CODE_NO_WHATSAPP => Upstream::NoWhatsapp {
            message: if details.is_empty() { title } else { details },
        },
        _ => Upstream::Refused {
            status: None,
            message: title,
            details: [format!("code {code}"), details]
                .into_iter()
                .filter(|d| !d.is_empty())
                .collect(),
        },
    };
    Reason::Upstream(ServiceFailure {
        service: Service::Wacloud,
        failure,
    })
}

/// Records each `(message id, reason)`; a failure to write is logged (the webhook is still
/// answered 200, as Green-API and Meta would otherwise redeliver the same status forever).
pub async fn report(core: &crate::Core, provider_id: i64, failures: Vec<(String, Reason)>) {
    for (message_id, reason) in failures {
        let id = message_id.clone();
        match core
            .db(move |c| record_failure(c, provider_id, &id, &reason))
            .await
        {
            Ok(runs) if !runs.is_empty() => {
                tracing::info!(provider = provider_id, message = %message_id, ?runs, "message not delivered; runs marked failed")
            }
            Ok(_) => {
                tracing::warn!(provider = provider_id, message = %message_id, "a message not sent by a run was not delivered")
            }
            Err(e) => {
                tracing::warn!(provider = provider_id, message = %message_id, error = %e, "delivery failure not recorded")
            }
        }
    }
}
