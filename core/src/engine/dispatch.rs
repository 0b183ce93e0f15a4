//! Inbox item → event → runs. Idempotent: a re-dispatch after a crash finds the runs it
//! created already there (unique on bundle + inbox item) and hands back those still queued.

use diesel::Connection;
use serde_json::Value as Json;

use super::{StepError, clients, events};
use crate::Core;
use crate::bundles;
use crate::db::DbError;
use crate::inbox::{self, InboxItem, InboxKind};
use crate::messengers::incoming::IncomingMessage;
use crate::providers::ProviderError;
use crate::reason::Reason;
use crate::runs::{self, Run};

/// The runs of a dispatched item, for the caller to execute.
#[derive(Debug, Default)]
pub struct Dispatched {
    /// Created by this dispatch already claimed (running, leased to this worker).
    pub claimed: Vec<Run>,
    /// Queued runs of the item (left by an earlier dispatch); they still need a claim.
    pub queued: Vec<i64>,
}

pub async fn dispatch(core: &Core, id: i64) -> Result<Dispatched, DbError> {
    let lease = core.lease();
    let claimed = core
        .db(move |c| {
            let Some(item) = inbox::claim(c, id, lease)? else {
                return Ok::<_, DbError>(None);
            };
            let bundles = bundles::running_for_source(c, item.provider_id)?;
            Ok(Some((item, bundles)))
        })
        .await?;
    let Some((item, bundles)) = claimed else {
        return Ok(Dispatched::default());
    };
    if let Some(kind) = event_type_of(&item)
        && !bundles.iter().any(|b| b.listens_to(kind))
    {
        // No running bundle listens for this event: done, without spending the account's
        // RetailCRM rate limit on an order nobody will use.
        core.db(move |c| inbox::finish(c, id, None)).await?;
        return Ok(Dispatched::default());
    }
    let attempts = item.attempts;
    match build_event(core, &item).await {
        Ok((event_type, status, event)) => {
            let event = Json::Object(event);
            // One commit: the runs exist exactly when the item is done.
            core.db(move |c| {
                c.transaction::<_, DbError, _>(|c| {
                    let mut claimed = Vec::new();
                    for b in bundles
                        .iter()
                        .filter(|b| b.matches(event_type, status.as_deref()))
                    {
                        claimed.extend(runs::create_claimed(c, b, item.id, &event, lease)?);
                    }
                    inbox::finish(c, item.id, Some(&event))?;
                    // Runs an earlier, interrupted dispatch of this item created.
                    let queued = runs::queued_for_inbox(c, item.id)?;
                    Ok(Dispatched { claimed, queued })
                })
            })
            .await
        }
        Err(e) => {
            match crate::db::lease::retry_at(&core.config, attempts, &e.retry) {
                Some(retry_at) => {
                    tracing::info!(inbox = id, attempts, error = %e, "dispatch will be retried");
                    let error = e.stored();
                    core.db(move |c| inbox::retry_later(c, id, &error, retry_at))
                        .await?;
                }
                None => {
                    tracing::warn!(inbox = id, error = %e, "dispatch failed");
                    let error = e.stored();
                    core.db(move |c| inbox::fail(c, id, &error)).await?;
                }
            }
            Ok(Dispatched::default())
        }
    }
}

/// The event type an item will become, when it can be told without calling the upstream.
fn event_type_of(item: &InboxItem) -> Option<&'static str> {
    match InboxKind::parse(&item.kind)? {
        InboxKind::IncomingMessage => Some("incoming_message"),
        InboxKind::RetailcrmTrigger => {
            serde_json::from_str::<events::TriggerPayload>(&item.payload)
                .ok()
                .map(|t| t.event_type())
        }
    }
}

type Event = (&'static str, Option<String>, serde_json::Map<String, Json>);

async fn build_event(core: &Core, item: &InboxItem) -> Result<Event, StepError> {
    let provider_id = item.provider_id;
    let provider = core.provider(provider_id).await.map_err(|e| match e {
        ProviderError::Db(d) => StepError::transient(Reason::Database {
            detail: d.to_string(),
        }),
        ProviderError::NotFound => StepError::permanent(Reason::ProviderGone),
        other => {
            tracing::warn!(provider = provider_id, error = %other, "provider unreadable");
            StepError::permanent(Reason::ProviderUnreadable)
        }
    })?;
    match InboxKind::parse(&item.kind) {
        Some(InboxKind::IncomingMessage) => {
            let msg: IncomingMessage =
                serde_json::from_str(&item.payload).map_err(|e| unreadable(&e))?;
            let mut fields = events::incoming_message_fields(&msg);
            if let Some(kind) = provider.kind.mg_channel_type() {
                fields.insert("messenger".into(), Json::from(kind));
            }
            Ok(("incoming_message", None, fields))
        }
        Some(InboxKind::RetailcrmTrigger) => {
            let trigger: events::TriggerPayload =
                serde_json::from_str(&item.payload).map_err(|e| unreadable(&e))?;
            let crm = clients::retailcrm(core, &provider)?;
            // The trigger body is a hint; the order as RetailCRM has it is the truth.
            let order = crm
                .api
                .order_get(trigger.id, Some(&crm.site))
                .await
                .map_err(|e| StepError::upstream(&e))?;
            let fields = events::order_fields(&order, &trigger.status);
            let status = fields
                .get("status")
                .and_then(Json::as_str)
                .map(str::to_string);
            Ok((trigger.event_type(), status, fields))
        }
        None => Err(StepError::permanent(Reason::UnknownInboxKind {
            kind: item.kind.clone(),
        })),
    }
}

fn unreadable(e: &serde_json::Error) -> StepError {
    StepError::permanent(Reason::PayloadUnreadable {
        detail: e.to_string(),
    })
}
