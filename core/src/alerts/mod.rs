//! Failure alerts: a bundle's permanent run failures (coalesced per bundle), a provider whose
//! check starts failing, and a bundle that paused itself. Each alert is a row stored in the
//! transaction that records the failure, then delivered by a worker under the lease protocol
//! of the work tables (`db::lease`): retried with back-off, found again after a restart by the
//! sweeper, and claimed by one worker at a time, so it is neither lost nor sent twice.

pub mod active;
pub mod deliver;
pub mod settings;
pub mod smtp;
pub mod wording;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::bundles::{self, AutoPause};
use crate::db::schema::{alerts, bundles as bundles_t};
use crate::db::{AnyConnection, DbError, now};
pub use settings::{AlertSettings, Channel, Language};

crate::db::text_enum! {
    /// What an alert is about.
    pub enum AlertKind {
        /// Runs of a bundle failed for good (`count` of them since the last alert).
        BundleFailed = "bundle_failed",
        /// A provider's check started failing (it was fine before).
        ProviderFailing = "provider_failing",
        /// A bundle stopped itself after `count` permanent failures in a row.
        BundlePaused = "bundle_paused",
        /// The admin pressed «Send test alert» (never stored).
        Test = "test",
    }
}

crate::db::text_enum! {
    /// Where an alert's delivery is.
    pub enum AlertStatus {
        /// Waiting for its (next) attempt at `next_attempt_at`.
        Pending = "pending",
        /// A worker holds it and is sending.
        Sending = "sending",
        Sent = "sent",
        /// Given up: attempts used up or refused for good; `error` says why.
        Failed = "failed",
        /// Alerts were switched off before it went out.
        Dropped = "dropped",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = alerts)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    /// The bundle's or provider's id.
    pub subject_id: i64,
    /// Its name when the alert was raised (it may be renamed or deleted since).
    pub subject_name: String,
    /// The stored reason (as in runs' `error`) of the latest failure.
    pub reason: Option<String>,
    pub count: i32,
    pub status: AlertStatus,
    pub attempts: i32,
    pub error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

// `claim`, `retry_later`, `fail`, `take_due`: the lease protocol of the work tables.
crate::db::lease::lease_queries! {
    table: alerts,
    row: Alert,
    status: AlertStatus { waiting: Pending, leased: Sending, failed: Failed },
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<Alert>, DbError> {
    Ok(alerts::table
        .find(id)
        .select(Alert::as_select())
        .first(conn)
        .optional()?)
}

/// All alerts, newest first (tests, and the settings page's recent deliveries).
pub fn recent(conn: &mut AnyConnection, limit: i64) -> Result<Vec<Alert>, DbError> {
    Ok(alerts::table
        .order(alerts::id.desc())
        .limit(limit)
        .select(Alert::as_select())
        .load(conn)?)
}

/// Delivered, or no longer to be delivered (`Dropped`).
pub fn settle(conn: &mut AnyConnection, id: i64, status: AlertStatus) -> Result<(), DbError> {
    let t = now();
    diesel::update(alerts::table.find(id))
        .set((
            alerts::status.eq(status),
            alerts::lease_until.eq(None::<NaiveDateTime>),
            alerts::sent_at.eq((status == AlertStatus::Sent).then_some(t)),
            alerts::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(())
}

fn insert(
    conn: &mut AnyConnection,
    kind: AlertKind,
    subject_id: i64,
    subject_name: &str,
    reason: Option<&str>,
    count: i32,
    due: NaiveDateTime,
) -> Result<i64, DbError> {
    let t = now();
    Ok(diesel::insert_into(alerts::table)
        .values((
            alerts::kind.eq(kind),
            alerts::subject_id.eq(subject_id),
            alerts::subject_name.eq(subject_name),
            alerts::reason.eq(reason),
            alerts::count.eq(count),
            alerts::status.eq(AlertStatus::Pending),
            alerts::attempts.eq(0),
            alerts::next_attempt_at.eq(due),
            alerts::created_at.eq(t),
            alerts::updated_at.eq(t),
        ))
        .returning(alerts::id)
        .get_result(conn)?)
}

/// What a permanent failure of a bundle's run led to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The bundle stopped itself with this failure.
    pub paused: bool,
}

/// A run of `bundle_id` failed for good with `error` (its stored reason): counts the failure,
/// pauses the bundle at the configured count, and stores the alerts. Call it in the
/// transaction that marks the run failed: the bundle row's update serialises concurrent
/// failures of one bundle, so coalescing never makes two rows.
pub fn on_run_failed(
    conn: &mut AnyConnection,
    bundle_id: i64,
    error: &str,
) -> Result<FailureOutcome, DbError> {
    let failures = bundles::count_failure(conn, bundle_id)?;
    let Some(name) = bundles_t::table
        .find(bundle_id)
        .select(bundles_t::name)
        .first::<String>(conn)
        .optional()?
    else {
        // Deleted meanwhile: nobody to tell about it.
        return Ok(FailureOutcome::default());
    };
    let s = settings::load(conn)?;
    let mut outcome = FailureOutcome::default();
    let limit = i32::try_from(s.pause_after).unwrap_or(i32::MAX);
    if limit > 0 && failures >= limit {
        let why = AutoPause {
            failures,
            last_error: Some(error.to_string()),
        };
        outcome.paused = bundles::pause_itself(conn, bundle_id, &why)?;
        if outcome.paused {
            tracing::warn!(bundle = bundle_id, failures, "bundle paused itself");
            if s.sends() {
                insert(
                    conn,
                    AlertKind::BundlePaused,
                    bundle_id,
                    &name,
                    Some(error),
                    failures,
                    now(),
                )?;
            }
        }
    }
    if s.sends() {
        coalesce_failure(conn, &s, bundle_id, &name, error)?;
    }
    Ok(outcome)
}

/// At most one failure alert per bundle per window: a failure joins the bundle's alert that
/// is still waiting (its count grows); otherwise it starts a new one, due at once or when the
/// window since the previous alert ends.
fn coalesce_failure(
    conn: &mut AnyConnection,
    s: &AlertSettings,
    bundle_id: i64,
    name: &str,
    error: &str,
) -> Result<(), DbError> {
    let waiting = alerts::table
        .filter(alerts::kind.eq(AlertKind::BundleFailed))
        .filter(alerts::subject_id.eq(bundle_id))
        .filter(alerts::status.eq(AlertStatus::Pending));
    // Conditional on still waiting: a worker may claim it meanwhile, and then it is out.
    let joined = diesel::update(waiting)
        .set((
            alerts::count.eq(alerts::count + 1),
            alerts::reason.eq(Some(error)),
            alerts::subject_name.eq(name),
            alerts::updated_at.eq(now()),
        ))
        .execute(conn)?;
    if joined > 0 {
        return Ok(());
    }
    let previous: Option<NaiveDateTime> = alerts::table
        .filter(alerts::kind.eq(AlertKind::BundleFailed))
        .filter(alerts::subject_id.eq(bundle_id))
        .order(alerts::id.desc())
        .select(alerts::next_attempt_at)
        .first(conn)
        .optional()?;
    let window = chrono::Duration::minutes(i64::from(s.coalesce_minutes));
    let t = now();
    let due = previous.map_or(t, |p| (p + window).max(t));
    insert(
        conn,
        AlertKind::BundleFailed,
        bundle_id,
        name,
        Some(error),
        1,
        due,
    )?;
    Ok(())
}

/// A provider's check failed after it was fine: one alert for the transition.
pub fn on_provider_failing(
    conn: &mut AnyConnection,
    provider_id: i64,
    name: &str,
    message: Option<&str>,
) -> Result<(), DbError> {
    if settings::load(conn)?.sends() {
        insert(
            conn,
            AlertKind::ProviderFailing,
            provider_id,
            name,
            message,
            1,
            now(),
        )?;
    }
    Ok(())
}
