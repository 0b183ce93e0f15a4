//! «Отправить тестовое событие»: a sample RetailCRM trigger stored through the same inbox
//! ingest the webhook endpoint uses, then followed until it is dispatched, so the admin sees
//! what a real trigger would do: stored, which bundles it matched, which runs it started.
//!
//! The sample does not travel over HTTP to our own public address: outbound calls may only go
//! to public https addresses, and a server behind NAT often cannot call its own public name.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::Core;
use crate::bundles;
use crate::db::DbError;
use crate::db::schema::{bundles as b, runs};
use crate::engine::events::TriggerPayload;
use crate::engine::{StepError, clients};
use crate::inbox::{self, InboxOutcome, InboxStatus};
use crate::providers::Provider;
use crate::retailcrm::RetailCrmError;

/// Where the sample got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleState {
    /// Dispatched: the runs it started (run id, bundle name); empty when no bundle matched.
    Dispatched {
        runs: Vec<(i64, String)>,
        /// Running bundles of this provider that listen to the sample's event at all.
        listening: Vec<String>,
        /// The order's status the event carried.
        status: Option<String>,
    },
    /// Could not become an event; the stored reason (JSON) says why.
    Failed { error: Option<String> },
    /// Skipped without a failure (an order of another store); the stored reason says why.
    Skipped { error: Option<String> },
    /// Not dispatched yet when we stopped waiting (no worker, or it is busy).
    Waiting,
}

/// The trigger RetailCRM would post for order `order_id` now: with the order's current status,
/// so it is recognised as a repeat of a real trigger exactly when it would be one.
pub async fn payload(
    core: &Core,
    provider: &Provider,
    order_id: i64,
    created: bool,
) -> Result<TriggerPayload, StepError> {
    let crm = clients::retailcrm(core, provider)?;
    let status = match crm.api.order_get(order_id, Some(&crm.site)).await {
        Ok(order) => order.status,
        // Not in this key's store: RetailCRM would fire the trigger all the same, and the
        // dispatch skips it as another store's order; the sample shows exactly that.
        Err(RetailCrmError::NotFound { .. }) => String::new(),
        Err(e) => return Err(StepError::upstream(&e)),
    };
    Ok(TriggerPayload {
        id: order_id,
        status,
        event: if created { "new" } else { "status" }.to_string(),
        ..Default::default()
    })
}

/// Polls the stored item until it is dispatched or `wait` passes.
pub async fn follow(
    core: &Core,
    provider_id: i64,
    inbox_id: i64,
    event_type: &'static str,
    wait: Duration,
) -> Result<SampleState, DbError> {
    let started = Instant::now();
    loop {
        let item = core.db(move |c| inbox::get(c, inbox_id)).await?;
        match item {
            Some(item) if item.outcome == Some(InboxOutcome::OtherStore) => {
                return Ok(SampleState::Skipped { error: item.error });
            }
            Some(item) if item.status == InboxStatus::Done => {
                let status = item
                    .event
                    .as_deref()
                    .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                    .and_then(|e| e.get("status").and_then(|s| s.as_str()).map(str::to_string));
                return core
                    .db(move |c| {
                        let started: Vec<(i64, String)> = runs::table
                            .inner_join(b::table)
                            .filter(runs::inbox_id.eq(inbox_id))
                            .select((runs::id, b::name))
                            .order(runs::id.asc())
                            .load(c)?;
                        let listening = bundles::running_for_source(c, provider_id)?
                            .into_iter()
                            .filter(|b| b.listens_to(event_type))
                            .map(|b| b.name)
                            .collect();
                        Ok::<_, DbError>(SampleState::Dispatched {
                            runs: started,
                            listening,
                            status,
                        })
                    })
                    .await;
            }
            Some(item) if item.status == InboxStatus::Failed => {
                return Ok(SampleState::Failed { error: item.error });
            }
            _ if started.elapsed() >= wait => return Ok(SampleState::Waiting),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
