//! The durable inbox: every accepted webhook is a row before we answer 200.

mod batch;
pub mod history;
pub mod pull;
pub mod writer;

pub use batch::{Dedup, NewItem, store_batch};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::cached::CacheStatement;
use crate::db::schema::inbox;
use crate::db::{AnyConnection, DbError, now};

/// What kind of delivery an inbox row holds; decides how the dispatcher reads its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxKind {
    /// A messenger's customer message, payload = `IncomingMessage`.
    IncomingMessage,
    /// RetailCRM's trigger, payload = `TriggerPayload`; the order is fetched when dispatched.
    RetailcrmTrigger,
}

impl InboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxKind::IncomingMessage => "incoming_message",
            InboxKind::RetailcrmTrigger => "retailcrm_trigger",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "incoming_message" => Some(InboxKind::IncomingMessage),
            "retailcrm_trigger" => Some(InboxKind::RetailcrmTrigger),
            _ => None,
        }
    }
}

crate::db::text_enum! {
    /// Where a delivery is on its way to runs.
    pub enum InboxStatus {
        /// Waiting for its (next) dispatch at `next_attempt_at`.
        Pending = "pending",
        /// Being dispatched by the worker holding its lease.
        Processing = "processing",
        /// Its runs exist (or no bundle wanted it).
        Done = "done",
        /// Could not be turned into an event; `error` says why.
        Failed = "failed",
    }
}

crate::db::text_enum! {
    /// What became of a dispatched delivery (the Events page's "outcome"); `None` while it
    /// waits to be dispatched.
    pub enum InboxOutcome {
        /// Runs were created: one per bundle that matched.
        Started = "started",
        /// No running bundle of its provider listens to this event.
        NotListened = "not_listened",
        /// Bundles listen to the event, but none for the order's status.
        NoMatch = "no_match",
        /// An order the provider's store key does not see (another store's order): skipped,
        /// not failed, never retried. `error` holds the reason.
        OtherStore = "other_store",
        /// Could not become an event; `error` says why.
        Failed = "failed",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbox)]
pub struct InboxItem {
    pub id: i64,
    pub provider_id: i64,
    pub dedup_key: String,
    pub kind: String,
    pub payload: String,
    pub event: Option<String>,
    pub status: InboxStatus,
    pub attempts: i32,
    pub error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub enqueued_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Rows of one provider and conversation are dispatched one at a time in id order (see
    /// `conversations`); `None` for rows older than conversations.
    pub conversation: Option<String>,
    pub outcome: Option<InboxOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New(i64),
    /// The same delivery was stored before (a redelivery); acknowledge it, do nothing else.
    Duplicate(i64),
}

impl Stored {
    pub fn id(self) -> i64 {
        match self {
            Stored::New(id) | Stored::Duplicate(id) => id,
        }
    }
}

/// Stores one delivery (deduplicated forever by its key, in no conversation); see
/// [`store_batch`].
pub fn store(
    conn: &mut AnyConnection,
    provider_id: i64,
    dedup_key: &str,
    kind: InboxKind,
    payload: &serde_json::Value,
) -> Result<Stored, DbError> {
    let item = NewItem {
        provider_id,
        dedup_key: dedup_key.to_string(),
        kind,
        payload: payload.to_string(),
        conversation: None,
        dedup: Dedup::Forever,
    };
    let mut stored = store_batch(conn, std::slice::from_ref(&item))?;
    stored
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<InboxItem>, DbError> {
    Ok(inbox::table
        .find(id)
        .select(InboxItem::as_select())
        .first(conn)
        .optional()?)
}

// `claim`, `retry_later`, `fail`, `take_due`: the lease protocol runs share (see `db::lease`).
// A row is claimed only in its conversation's turn.
crate::db::lease::lease_queries! {
    table: inbox,
    row: InboxItem,
    status: InboxStatus { waiting: Pending, leased: Processing, failed: Failed },
    in_turn: crate::conversations::inbox_in_turn(),
    fail_also: |_t| inbox::outcome.eq(Some(InboxOutcome::Failed)),
}

/// [`claim`], and when that is refused because an earlier row of the conversation still holds
/// it, marks that row `waited_on` so that whoever settles it hands this one on (see
/// `conversations`). Should the mark find no such row, the earlier one settled between the two
/// statements without looking for followers; then the claim is tried once more.
pub fn claim_or_wait(
    conn: &mut AnyConnection,
    id: i64,
    lease: chrono::Duration,
) -> Result<Option<InboxItem>, DbError> {
    if let Some(item) = claim(conn, id, lease)? {
        return Ok(Some(item));
    }
    wait_or_claim(conn, id, lease)
}

/// For a row whose claim was just refused: marks the earlier rows of its conversation waited
/// on, or, when none holds it any more, tries the claim once more (see [`claim_or_wait`]).
pub fn wait_or_claim(
    conn: &mut AnyConnection,
    id: i64,
    lease: chrono::Duration,
) -> Result<Option<InboxItem>, DbError> {
    if wait_behind_earlier(conn, id)? {
        return Ok(None);
    }
    claim(conn, id, lease)
}

/// Marks the unfinished rows before `id` in its conversation as waited on; whether there were
/// any. (On PostgreSQL the update waits for a settle in progress and then sees it settled, so
/// of the two, the mark or the settle's look for followers, one always sees the other.)
fn wait_behind_earlier(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    let row: Option<(Option<String>, i64)> = inbox::table
        .find(id)
        .select((inbox::conversation, inbox::provider_id))
        .first(conn)
        .optional()?;
    let Some((Some(conversation), provider_id)) = row else {
        return Ok(false);
    };
    let marked = diesel::update(
        inbox::table
            .filter(inbox::conversation.eq(conversation))
            .filter(inbox::id.lt(id))
            .filter(inbox::provider_id.eq(provider_id))
            .filter(crate::conversations::inbox_open()),
    )
    .set(inbox::waited_on.eq(true))
    .execute(conn)?;
    Ok(marked > 0)
}

/// After `item` was dispatched or failed for good: the next row of its conversation still to
/// dispatch, for the caller to dispatch now. A caller that cannot (a stopping worker) hands it
/// back with `shutdown::hand_back`, so that any sweeper takes it at once. Call it after the
/// settling commit (see `runs::hand_on`): a row whose claim was refused before that commit is
/// then seen here. A row that [`finish`] found not waited on need not look.
pub fn hand_on(conn: &mut AnyConnection, item: &InboxItem) -> Result<Option<i64>, DbError> {
    let Some(conversation) = item.conversation.as_deref() else {
        return Ok(None);
    };
    let next: Option<(i64, InboxStatus)> = inbox::table
        .filter(inbox::conversation.eq(conversation))
        .filter(inbox::id.gt(item.id))
        .filter(inbox::provider_id.eq(item.provider_id))
        .filter(crate::conversations::inbox_open())
        .order(inbox::id)
        .select((inbox::id, inbox::status))
        .first(conn)
        .optional()?;
    Ok(next.and_then(|(id, status)| (status == InboxStatus::Pending).then_some(id)))
}

/// Dispatched: `event` is what it became (`None` when no bundle listens for it, or it was
/// skipped), `outcome` what came of it, `note` the reason of a skip (JSON of a `Reason`).
/// Answers whether a later row of its conversation waits for it: then the caller calls
/// [`hand_on`] after the commit.
pub fn finish(
    conn: &mut AnyConnection,
    id: i64,
    event: Option<&serde_json::Value>,
    outcome: InboxOutcome,
    note: Option<&str>,
) -> Result<bool, DbError> {
    let waited_on = diesel::update(inbox::table.find(id))
        .set((
            inbox::status.eq(InboxStatus::Done),
            inbox::event.eq(event.map(|e| e.to_string())),
            inbox::outcome.eq(Some(outcome)),
            inbox::error.eq(note),
            inbox::lease_until.eq(None::<NaiveDateTime>),
            inbox::updated_at.eq(now()),
        ))
        .returning(inbox::waited_on)
        .cached()
        .get_result::<bool>(conn)
        .optional()?;
    Ok(waited_on.unwrap_or(false))
}
