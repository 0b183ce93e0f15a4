//! Bundles (связки): an event of a source provider wired to a chain of actions of a target
//! provider.

pub mod cache;
pub mod definition;
pub mod editor;
pub mod resolve;
pub mod template;
pub mod template_limits;
pub mod validate;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::cached::CacheStatement;

use crate::db::schema::{bundles, runs};
use crate::db::{AnyConnection, DbError, now};
pub use definition::{Step, Value};

crate::db::text_enum! {
    /// Whether a bundle's event starts runs.
    pub enum BundleState {
        Running = "running",
        Stopped = "stopped",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bundles)]
struct BundleRow {
    id: i64,
    name: String,
    source_provider_id: i64,
    event_type: String,
    status_filter: String,
    target_provider_id: i64,
    steps: String,
    state: BundleState,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    paused_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub id: i64,
    pub name: String,
    pub source_provider_id: i64,
    pub event_type: String,
    pub status_filter: Vec<String>,
    pub target_provider_id: i64,
    pub steps: Vec<Step>,
    pub state: BundleState,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Set when the bundle stopped itself after consecutive permanent failures (see
    /// `alerts`); cleared when it is started again. Not part of a run's definition snapshot.
    #[serde(default, skip_serializing)]
    pub paused: Option<AutoPause>,
}

/// Why a bundle stopped itself: this many permanent failures in a row, the last one's stored
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoPause {
    pub failures: i32,
    pub last_error: Option<String>,
}

impl Bundle {
    fn from_row(r: BundleRow) -> Result<Self, DbError> {
        let corrupt = |what: &str, e: serde_json::Error| {
            DbError::Migrate(format!("bundle {} has an unreadable {what}: {e}", r.id))
        };
        Ok(Bundle {
            id: r.id,
            status_filter: serde_json::from_str(&r.status_filter)
                .map_err(|e| corrupt("status filter", e))?,
            steps: serde_json::from_str(&r.steps).map_err(|e| corrupt("step list", e))?,
            state: r.state,
            paused: r
                .paused_reason
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            name: r.name,
            source_provider_id: r.source_provider_id,
            event_type: r.event_type,
            target_provider_id: r.target_provider_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }

    pub fn is_running(&self) -> bool {
        self.state == BundleState::Running
    }

    /// The admin ticked «любой статус»: every status, said explicitly.
    pub fn any_status(&self) -> bool {
        self.status_filter.iter().any(|f| f == ANY_STATUS)
    }

    /// Statuses ticked one by one (not «любой статус», not nothing).
    fn chosen_statuses(&self) -> bool {
        !self.status_filter.is_empty() && !self.any_status()
    }

    /// Whether an event of this type may concern the bundle, before the order is read.
    /// «Новая сделка» limited to statuses also hears status changes: the guide's mailing recipe
    /// means "the order was created in, or moved into, one of these statuses".
    pub fn listens_to(&self, event_type: &str) -> bool {
        self.event_type == event_type
            || (self.event_type == NEW_DEAL
                && event_type == DEAL_STATUS_CHANGED
                && self.chosen_statuses())
    }

    /// Whether an event of this type and order status should start a run.
    pub fn matches(&self, event_type: &str, status: Option<&str>) -> bool {
        // An empty filter is what bundles started before «любой статус» existed have; they keep
        // hearing every status (Start now refuses it, see `validate`).
        let status_ok = self.status_filter.is_empty()
            || self.any_status()
            || status.is_some_and(|s| self.status_filter.iter().any(|f| f == s));
        self.is_running() && self.listens_to(event_type) && status_ok
    }
}

/// Stored in the status filter when the admin chose «любой статус».
pub const ANY_STATUS: &str = "*";
const NEW_DEAL: &str = "new_deal";
const DEAL_STATUS_CHANGED: &str = "deal_status_changed";

pub struct NewBundle {
    pub name: String,
    pub source_provider_id: i64,
    pub event_type: String,
    pub target_provider_id: i64,
    pub steps: Vec<Step>,
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn create(conn: &mut AnyConnection, b: &NewBundle) -> Result<i64, DbError> {
    let t = now();
    Ok(diesel::insert_into(bundles::table)
        .values((
            bundles::name.eq(&b.name),
            bundles::source_provider_id.eq(b.source_provider_id),
            bundles::event_type.eq(&b.event_type),
            bundles::status_filter.eq("[]"),
            bundles::target_provider_id.eq(b.target_provider_id),
            bundles::steps.eq(json(&b.steps)),
            bundles::state.eq(BundleState::Stopped),
            bundles::created_at.eq(t),
            bundles::updated_at.eq(t),
        ))
        .returning(bundles::id)
        .get_result(conn)?)
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<Bundle>, DbError> {
    let row: Option<BundleRow> = bundles::table
        .find(id)
        .select(BundleRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Bundle::from_row).transpose()
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<Bundle>, DbError> {
    let rows: Vec<BundleRow> = bundles::table
        .order(bundles::id.desc())
        .select(BundleRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Bundle::from_row).collect()
}

/// Running bundles listening to this provider, in id order; the dispatcher filters by event and
/// status (through [`cache::BundleCache`]).
pub fn running_for_source(
    conn: &mut AnyConnection,
    provider_id: i64,
) -> Result<Vec<Bundle>, DbError> {
    let rows: Vec<BundleRow> = cache::running(provider_id)
        .select(BundleRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Bundle::from_row).collect()
}

fn touch(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    diesel::update(bundles::table.find(id))
        .set(bundles::updated_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

pub fn rename(conn: &mut AnyConnection, id: i64, name: &str) -> Result<(), DbError> {
    diesel::update(bundles::table.find(id))
        .set(bundles::name.eq(name))
        .execute(conn)?;
    touch(conn, id)
}

pub fn set_steps(conn: &mut AnyConnection, id: i64, steps: &[Step]) -> Result<(), DbError> {
    diesel::update(bundles::table.find(id))
        .set(bundles::steps.eq(json(&steps)))
        .execute(conn)?;
    touch(conn, id)
}

pub fn set_status_filter(
    conn: &mut AnyConnection,
    id: i64,
    statuses: &[String],
) -> Result<(), DbError> {
    diesel::update(bundles::table.find(id))
        .set(bundles::status_filter.eq(json(&statuses)))
        .execute(conn)?;
    touch(conn, id)
}

/// Starting or stopping by hand clears the failure count and any self-pause: the admin has
/// seen it (resuming means "try again from zero").
pub fn set_state(conn: &mut AnyConnection, id: i64, state: BundleState) -> Result<(), DbError> {
    diesel::update(bundles::table.find(id))
        .set((
            bundles::state.eq(state),
            bundles::consecutive_failures.eq(0),
            bundles::paused_reason.eq(None::<String>),
        ))
        .execute(conn)?;
    touch(conn, id)
}

/// A run of the bundle failed for good: one more in the row. Answers the new count.
pub fn count_failure(conn: &mut AnyConnection, id: i64) -> Result<i32, DbError> {
    let n: Option<i32> = diesel::update(bundles::table.find(id))
        .set(bundles::consecutive_failures.eq(bundles::consecutive_failures + 1))
        .returning(bundles::consecutive_failures)
        .get_result(conn)
        .optional()?;
    Ok(n.unwrap_or(0))
}

/// A run of the bundle succeeded: the row of failures is broken. Writes only when there was
/// one, so the common case costs a read of an indexed row, no write.
pub fn clear_failures_of_run(conn: &mut AnyConnection, run_id: i64) -> Result<(), DbError> {
    diesel::update(bundles::table)
        .filter(bundles::id.eq_any(runs::table.find(run_id).select(runs::bundle_id)))
        .filter(bundles::consecutive_failures.gt(0))
        .set(bundles::consecutive_failures.eq(0))
        // Every successful run passes here: loaded, so it stays prepared (see `db::cached`).
        .returning(bundles::id)
        .cached()
        .load::<i64>(conn)?;
    Ok(())
}

/// Stops a running bundle on its own, remembering why. Answers whether it was running (so
/// the pause is announced once, by whoever stopped it).
pub fn pause_itself(conn: &mut AnyConnection, id: i64, why: &AutoPause) -> Result<bool, DbError> {
    let n = diesel::update(bundles::table.find(id))
        .filter(bundles::state.eq(BundleState::Running))
        .set((
            bundles::state.eq(BundleState::Stopped),
            bundles::paused_reason.eq(Some(json(why))),
            bundles::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    diesel::delete(bundles::table.find(id)).execute(conn)?;
    Ok(())
}

/// The latest run of each bundle (status, time), for the list page; one grouped query.
pub fn last_runs(conn: &mut AnyConnection) -> Result<Vec<(i64, String, NaiveDateTime)>, DbError> {
    let latest: Vec<Option<i64>> = runs::table
        .group_by(runs::bundle_id)
        .select(diesel::dsl::max(runs::id))
        .load(conn)?;
    let ids: Vec<i64> = latest.into_iter().flatten().collect();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, String, NaiveDateTime)> = runs::table
            .filter(runs::id.eq_any(chunk))
            .select((runs::bundle_id, runs::status, runs::created_at))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}
