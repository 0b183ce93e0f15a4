//! Inbox item → event → runs. The runs and the item's "done" are one commit, so an item is
//! dispatched once; the unique key on bundle + inbox item makes a doubled create a no-op.
//!
//! Items of one conversation are dispatched in arrival order (the claim waits for the earlier
//! ones, see `conversations`), so a run is created after the earlier runs of its
//! conversation: behind an unfinished one it is created queued, to wait for its turn (the
//! unfinished one is marked, so it hands the new one on when it settles), and otherwise
//! already claimed, to execute at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::Connection;
use serde_json::Value as Json;

use super::{StepError, clients, events};
use crate::Core;
use crate::bundles;
use crate::bundles::cache::{Listening, Snapshot};
use crate::conversations;
use crate::db::{DbError, now};
use crate::inbox::{self, InboxItem, InboxKind, InboxOutcome};
use crate::messengers::incoming::IncomingMessage;
use crate::providers::ProviderError;
use crate::reason::Reason;
use crate::retailcrm::RetailCrmError;
use crate::runs::{self, Run};

/// The runs of a dispatched item, for the caller to execute.
#[derive(Debug, Default)]
pub struct Dispatched {
    /// Created by this dispatch already claimed (running, leased to this worker). The runs
    /// created queued, behind an unfinished run of their conversation, are that run's to hand
    /// on when it settles.
    pub claimed: Vec<Run>,
    /// The next item of the item's conversation, which waited for this one to be dispatched.
    pub next: Option<i64>,
}

/// An inbox item this worker holds, with the running bundles of its provider.
pub struct Claimed {
    item: InboxItem,
    bundles: Arc<[Listening]>,
}

impl Claimed {
    pub fn id(&self) -> i64 {
        self.item.id
    }
}

/// Claims the items of one queue message together: one statement for all of them, and one
/// read of each provider's running bundles. An item whose conversation is held by an earlier
/// one is marked as waiting (it is handed on later, see `conversations`); an item finished or
/// held elsewhere (a doubled message) is left alone.
pub async fn claim_batch(core: &Core, ids: Vec<i64>) -> Result<Vec<Claimed>, DbError> {
    let lease = core.lease();
    let cache = core.bundles.clone();
    core.db(move |c| {
        let mut items = inbox::claim_many(c, &ids, lease)?;
        let taken: HashSet<i64> = items.iter().map(|i| i.id).collect();
        for id in ids.into_iter().filter(|id| !taken.contains(id)) {
            items.extend(inbox::wait_or_claim(c, id, lease)?);
        }
        let mut by_source: HashMap<i64, Arc<[Listening]>> = HashMap::new();
        let mut claimed = Vec::with_capacity(items.len());
        for item in items {
            let bundles = match by_source.get(&item.provider_id) {
                Some(b) => b.clone(),
                None => {
                    let b = cache.running_for_source(c, item.provider_id)?;
                    by_source.insert(item.provider_id, b.clone());
                    b
                }
            };
            claimed.push(Claimed { item, bundles });
        }
        Ok(claimed)
    })
    .await
}

/// Claims one item (or marks it waiting for its turn) and dispatches it.
pub async fn dispatch(core: &Core, id: i64) -> Result<Dispatched, DbError> {
    let lease = core.lease();
    let cache = core.bundles.clone();
    let claimed = core
        .db(move |c| {
            let Some(item) = inbox::claim_or_wait(c, id, lease)? else {
                return Ok::<_, DbError>(None);
            };
            let bundles = cache.running_for_source(c, item.provider_id)?;
            Ok(Some(Claimed { item, bundles }))
        })
        .await?;
    match claimed {
        Some(claimed) => dispatch_claimed(core, claimed).await,
        None => Ok(Dispatched::default()),
    }
}

/// Dispatches an item this worker claimed. One that waited long for a free slot has its lease
/// renewed first, so that it never runs on a lease that could expire meanwhile; should it have
/// expired and gone to another worker already, it is left to that one.
pub async fn dispatch_claimed(core: &Core, claimed: Claimed) -> Result<Dispatched, DbError> {
    let Claimed { item, bundles } = claimed;
    let id = item.id;
    let lease = core.lease();
    if let Some(held_until) = item.lease_until
        && held_until - now() < lease / 2
    {
        let renewed = core
            .db(move |c| inbox::renew(c, id, held_until, lease))
            .await?;
        if !renewed {
            return Ok(Dispatched::default());
        }
    }
    if let Some(kind) = event_type_of(&item)
        && !bundles.iter().any(|b| b.bundle.listens_to(kind))
    {
        // No running bundle listens for this event: done, without spending the account's
        // RetailCRM rate limit on an order nobody will use.
        return settle(core, item, InboxOutcome::NotListened, None).await;
    }
    let attempts = item.attempts;
    match build_event(core, &item, &bundles).await {
        Ok(Built::Skipped(reason)) => {
            tracing::info!(inbox = id, reason = %reason, "event skipped");
            settle(
                core,
                item,
                InboxOutcome::OtherStore,
                Some(reason.to_stored()),
            )
            .await
        }
        Ok(Built::Event(event_type, status, event)) => {
            let event = Json::Object(event);
            let matched: Vec<Snapshot> = bundles
                .iter()
                .filter(|b| b.bundle.matches(event_type, status.as_deref()))
                .map(|b| b.snapshot.clone())
                .collect();
            let outcome = if matched.is_empty() {
                InboxOutcome::NoMatch
            } else {
                InboxOutcome::Started
            };
            // One commit: the runs exist exactly when the item is done.
            core.db(move |c| {
                let (claimed, waited_on) = c.transaction::<_, DbError, _>(|c| {
                    // A write first: SQLite then takes its write lock now (waiting its turn)
                    // rather than failing to upgrade a read snapshot another writer outdated.
                    let waited_on = inbox::finish(c, item.id, Some(&event), outcome, None)?;
                    let mut claimed = Vec::new();
                    for b in &matched {
                        let conversation = item
                            .conversation
                            .as_deref()
                            .map(|k| conversations::of_run(b.bundle_id, k));
                        let conversation = conversation.as_deref();
                        if let Some(run) =
                            runs::create_in_turn(c, b, item.id, &event, conversation, lease)?
                        {
                            claimed.push(run);
                        }
                    }
                    Ok((claimed, waited_on))
                })?;
                // After the commit: see `hand_on`.
                let next = if waited_on {
                    inbox::hand_on(c, &item)?
                } else {
                    None
                };
                Ok(Dispatched { claimed, next })
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
                    let next = core
                        .db(move |c| {
                            inbox::fail(c, id, &error)?;
                            inbox::hand_on(c, &item)
                        })
                        .await?;
                    return Ok(Dispatched {
                        next,
                        ..Default::default()
                    });
                }
            }
            Ok(Dispatched::default())
        }
    }
}

/// Done without runs: marks the item with `outcome` (and the reason of a skip) and hands its
/// conversation on.
async fn settle(
    core: &Core,
    item: InboxItem,
    outcome: InboxOutcome,
    note: Option<String>,
) -> Result<Dispatched, DbError> {
    let next = core
        .db(move |c| {
            if inbox::finish(c, item.id, None, outcome, note.as_deref())? {
                inbox::hand_on(c, &item)
            } else {
                Ok(None)
            }
        })
        .await?;
    Ok(Dispatched {
        next,
        ..Default::default()
    })
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

/// What an item becomes: an event (its type, the order's status, its fields), or nothing,
/// for a reason that is not a failure.
enum Built {
    Event(&'static str, Option<String>, serde_json::Map<String, Json>),
    Skipped(Reason),
}

async fn build_event(
    core: &Core,
    item: &InboxItem,
    bundles: &[Listening],
) -> Result<Built, StepError> {
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
    let mut built = event_of(core, item, &provider, bundles).await?;
    if let Built::Event(_, _, fields) = &mut built {
        // «Источник» of a new contact is often the provider a conversation came through.
        fields.insert("provider_type".into(), Json::from(provider.kind.title()));
        fields.insert("provider_name".into(), Json::from(provider.name.clone()));
    }
    Ok(built)
}

async fn event_of(
    core: &Core,
    item: &InboxItem,
    provider: &crate::providers::Provider,
    bundles: &[Listening],
) -> Result<Built, StepError> {
    match InboxKind::parse(&item.kind) {
        Some(InboxKind::IncomingMessage) => {
            let msg: IncomingMessage =
                serde_json::from_str(&item.payload).map_err(|e| unreadable(&e))?;
            let mut fields = events::incoming_message_fields(&msg);
            if let Some(kind) = provider.kind.mg_channel_type() {
                fields.insert("messenger".into(), Json::from(kind));
            }
            Ok(Built::Event("incoming_message", None, fields))
        }
        Some(InboxKind::RetailcrmTrigger) => {
            let trigger: events::TriggerPayload =
                serde_json::from_str(&item.payload).map_err(|e| unreadable(&e))?;
            if let Some(built) = from_body(&trigger, provider, bundles) {
                return Ok(built);
            }
            let crm = clients::retailcrm(core, provider)?;
            // The trigger body is a hint; the order as RetailCRM has it is the truth.
            let order = match crm.api.order_get(trigger.id, Some(&crm.site)).await {
                Ok(order) => order,
                // The key reaches its one store only (see `providers::connect`): an order it
                // cannot find is another store's (RetailCRM fires triggers for every store
                // unless the trigger's condition names one). Retrying cannot change that.
                Err(RetailCrmError::NotFound { message }) => {
                    return Ok(Built::Skipped(Reason::OtherStore {
                        site: crm.site,
                        message,
                    }));
                }
                Err(e) => return Err(StepError::upstream(&e)),
            };
            let fields = events::order_fields(&order, &trigger.status);
            let status = fields
                .get("status")
                .and_then(Json::as_str)
                .map(str::to_string);
            Ok(Built::Event(trigger.event_type(), status, fields))
        }
        None => Err(StepError::permanent(Reason::UnknownInboxKind {
            kind: item.kind.clone(),
        })),
    }
}

/// Fields `build_event` adds to every event, whatever the source.
const PROVIDER_FIELDS: [&str; 2] = ["provider_type", "provider_name"];

/// The event from the trigger's own body, when it can stand in for the order (no RetailCRM
/// call): the extended body names the order's store and status, and every event field the
/// steps of the bundles it will start read came in it. `None`: fetch the order, as for the
/// guide's short body. Another store's order is recognised by the store the body names and
/// skipped as the fetch's «Not found» would have it.
fn from_body(
    trigger: &events::TriggerPayload,
    provider: &crate::providers::Provider,
    bundles: &[Listening],
) -> Option<Built> {
    let fields = trigger.carried_fields()?;
    let crate::providers::Settings::Retailcrm(settings) = &provider.settings else {
        return None;
    };
    let site = trigger.site.as_deref()?;
    if settings.site_code.is_empty() {
        return None;
    }
    if site != settings.site_code {
        return Some(Built::Skipped(Reason::OtherStoreInTrigger {
            site: settings.site_code.clone(),
            order_site: site.to_string(),
        }));
    }
    let event_type = trigger.event_type();
    for b in bundles
        .iter()
        .map(|b| &b.bundle)
        .filter(|b| b.matches(event_type, Some(&trigger.status)))
    {
        let needed = bundles::definition::event_fields(&b.steps)?;
        let carried = |f: &String| fields.contains_key(f) || PROVIDER_FIELDS.contains(&f.as_str());
        if !needed.iter().all(carried) {
            return None;
        }
    }
    Some(Built::Event(
        event_type,
        Some(trigger.status.clone()),
        fields,
    ))
}

fn unreadable(e: &serde_json::Error) -> StepError {
    StepError::permanent(Reason::PayloadUnreadable {
        detail: e.to_string(),
    })
}
