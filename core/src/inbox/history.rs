//! The Events page's queries: every stored delivery, newest first, with what came of it and
//! the runs it started. A page reads its items by index (provider or outcome, then id) and
//! the runs of just those items, so it costs the same however long the history is.

use diesel::prelude::*;

use super::{InboxItem, InboxKind, InboxOutcome, InboxStatus};
use crate::db::schema::{bundles, inbox, providers, runs};
use crate::db::{AnyConnection, DbError, MultiBackend};
use crate::engine::events::TriggerPayload;
use crate::messengers::incoming::IncomingMessage;
use crate::providers::ProviderKind;
use crate::runs::RunStatus;

/// Which outcomes to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    Is(InboxOutcome),
    /// Not dispatched yet (including one waiting to retry a failed fetch).
    Waiting,
}

impl OutcomeFilter {
    /// The words the page's filter uses: the outcome's, or `waiting`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFilter::Is(o) => o.as_str(),
            OutcomeFilter::Waiting => "waiting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "waiting" {
            return Some(OutcomeFilter::Waiting);
        }
        s.parse().ok().map(OutcomeFilter::Is)
    }
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub provider_id: Option<i64>,
    pub outcome: Option<OutcomeFilter>,
}

/// A run an event started.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct StartedRun {
    pub id: i64,
    pub inbox_id: i64,
    pub bundle_id: i64,
    pub bundle_name: String,
    pub status: RunStatus,
}

#[derive(Debug, Clone)]
pub struct EventItem {
    pub item: InboxItem,
    pub provider_name: String,
    /// `None` when the provider was deleted meanwhile.
    pub provider_kind: Option<ProviderKind>,
    pub runs: Vec<StartedRun>,
}

/// What a delivery is about, read from its payload, for a one-line description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A RetailCRM trigger: the order, the event type it becomes, the status it carried.
    Order {
        order_id: i64,
        event_type: &'static str,
        status: String,
    },
    /// A customer's message.
    Message {
        event_type: &'static str,
        sender: String,
        text: String,
    },
    /// A payload that cannot be read, or of a kind this version does not know.
    Unreadable { kind: String },
}

impl EventItem {
    pub fn subject(&self) -> Subject {
        let unreadable = || Subject::Unreadable {
            kind: self.item.kind.clone(),
        };
        match InboxKind::parse(&self.item.kind) {
            Some(InboxKind::RetailcrmTrigger) => {
                match serde_json::from_str::<TriggerPayload>(&self.item.payload) {
                    Ok(t) => Subject::Order {
                        order_id: t.id,
                        event_type: t.event_type(),
                        status: t.status,
                    },
                    Err(_) => unreadable(),
                }
            }
            Some(InboxKind::IncomingMessage) => {
                match serde_json::from_str::<IncomingMessage>(&self.item.payload) {
                    Ok(m) => Subject::Message {
                        event_type: "incoming_message",
                        sender: if m.sender_name.trim().is_empty() {
                            m.sender_id
                        } else {
                            format!("{} ({})", m.sender_name, m.sender_id)
                        },
                        text: m.text,
                    },
                    Err(_) => unreadable(),
                }
            }
            None => unreadable(),
        }
    }

    /// The order status the dispatched event carried (what bundles' status filters compared).
    pub fn event_status(&self) -> Option<String> {
        let event: serde_json::Value = serde_json::from_str(self.item.event.as_deref()?).ok()?;
        event.get("status")?.as_str().map(str::to_string)
    }

    /// Waiting for its (next) dispatch: no outcome yet.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self.item.status,
            InboxStatus::Pending | InboxStatus::Processing
        )
    }
}

fn filtered<'a>(filter: &EventFilter) -> inbox::BoxedQuery<'a, MultiBackend> {
    let mut q = inbox::table.into_boxed::<MultiBackend>();
    if let Some(p) = filter.provider_id {
        q = q.filter(inbox::provider_id.eq(p));
    }
    match filter.outcome {
        Some(OutcomeFilter::Is(o)) => q = q.filter(inbox::outcome.eq(Some(o))),
        Some(OutcomeFilter::Waiting) => q = q.filter(inbox::outcome.is_null()),
        None => {}
    }
    q
}

/// One page of events, newest first, with the total for the pager.
pub fn list(
    conn: &mut AnyConnection,
    filter: &EventFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<EventItem>, i64), DbError> {
    let total: i64 = filtered(filter).count().get_result(conn)?;
    let items: Vec<InboxItem> = filtered(filter)
        .order(inbox::id.desc())
        .limit(per_page)
        .offset((page.max(1) - 1) * per_page)
        .select(InboxItem::as_select())
        .load(conn)?;
    Ok((with_details(conn, items)?, total))
}

/// One event with its provider's name and runs.
pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<EventItem>, DbError> {
    let Some(item) = super::get(conn, id)? else {
        return Ok(None);
    };
    Ok(with_details(conn, vec![item])?.pop())
}

fn with_details(
    conn: &mut AnyConnection,
    items: Vec<InboxItem>,
) -> Result<Vec<EventItem>, DbError> {
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let mut provider_ids: Vec<i64> = items.iter().map(|i| i.provider_id).collect();
    provider_ids.sort_unstable();
    provider_ids.dedup();
    let names: Vec<(i64, String, String)> = providers::table
        .filter(providers::id.eq_any(&provider_ids))
        .select((providers::id, providers::name, providers::kind))
        .load(conn)?;
    let started: Vec<StartedRun> = runs::table
        .inner_join(bundles::table)
        .filter(runs::inbox_id.eq_any(&ids))
        .order(runs::id.asc())
        .select((
            runs::id,
            runs::inbox_id,
            runs::bundle_id,
            bundles::name,
            runs::status,
        ))
        .load(conn)?;
    Ok(items
        .into_iter()
        .map(|item| {
            let provider = names.iter().find(|(id, _, _)| *id == item.provider_id);
            EventItem {
                provider_name: provider.map(|(_, n, _)| n.clone()).unwrap_or_default(),
                provider_kind: provider.and_then(|(_, _, k)| ProviderKind::parse(k)),
                runs: started
                    .iter()
                    .filter(|r| r.inbox_id == item.id)
                    .cloned()
                    .collect(),
                item,
            }
        })
        .collect())
}
