//! Runs and their step records: the history the admin sees and the checkpoints the engine
//! resumes from.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bundles::Bundle;
use crate::db::schema::{bundles, run_steps, runs};
use crate::db::{AnyConnection, DbError, is_unique_violation, now};

pub mod status {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const ALL: [&str; 4] = [QUEUED, RUNNING, SUCCEEDED, FAILED];
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = runs)]
pub struct Run {
    pub id: i64,
    pub bundle_id: i64,
    pub inbox_id: i64,
    pub status: String,
    pub attempts: i32,
    /// The bundle as it was when the run was created (JSON of `Bundle`).
    pub definition: String,
    /// The event the run reacts to (JSON object of fields).
    pub event: String,
    pub error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub enqueued_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl Run {
    pub fn snapshot(&self) -> Result<Bundle, serde_json::Error> {
        serde_json::from_str(&self.definition)
    }

    pub fn event_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.event).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = run_steps)]
pub struct StepRecord {
    pub id: i64,
    pub run_id: i64,
    pub position: i32,
    pub action: String,
    pub status: String,
    pub inputs: String,
    pub outputs: Option<String>,
    pub error: Option<String>,
    pub attempt: i32,
    pub duration_ms: i64,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

/// Creates the run for (bundle, inbox item) unless it exists: the unique key makes a doubled
/// delivery or a re-dispatch a no-op. Returns whether it was created.
pub fn create(
    conn: &mut AnyConnection,
    bundle: &Bundle,
    inbox_id: i64,
    event: &serde_json::Value,
) -> Result<bool, DbError> {
    let t = now();
    let res = diesel::insert_into(runs::table)
        .values((
            runs::bundle_id.eq(bundle.id),
            runs::inbox_id.eq(inbox_id),
            runs::status.eq(status::QUEUED),
            runs::attempts.eq(0),
            runs::definition.eq(serde_json::to_string(bundle).unwrap_or_default()),
            runs::event.eq(event.to_string()),
            runs::next_attempt_at.eq(t),
            runs::enqueued_at.eq(Some(t)),
            runs::created_at.eq(t),
            runs::updated_at.eq(t),
        ))
        .execute(conn);
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates the run already claimed by the caller (running, attempt 1, leased), for a
/// dispatcher that executes it right away; `None` when it exists from an earlier dispatch
/// (that one is found by [`queued_for_inbox`] or by the sweeper). Usable inside a
/// transaction: a conflict is not an error that would abort it.
pub fn create_claimed(
    conn: &mut AnyConnection,
    bundle: &Bundle,
    inbox_id: i64,
    event: &serde_json::Value,
    lease: chrono::Duration,
) -> Result<Option<Run>, DbError> {
    let t = now();
    let values = (
        runs::bundle_id.eq(bundle.id),
        runs::inbox_id.eq(inbox_id),
        runs::status.eq(status::RUNNING),
        runs::attempts.eq(1),
        runs::definition.eq(serde_json::to_string(bundle).unwrap_or_default()),
        runs::event.eq(event.to_string()),
        runs::next_attempt_at.eq(t),
        runs::lease_until.eq(Some(t + lease)),
        runs::enqueued_at.eq(Some(t)),
        runs::started_at.eq(Some(t)),
        runs::created_at.eq(t),
        runs::updated_at.eq(t),
    );
    let key = (runs::bundle_id, runs::inbox_id);
    let run = match conn {
        AnyConnection::Postgresql(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(<Run as Selectable<diesel::pg::Pg>>::construct_selection())
            .get_result::<Run>(c)
            .optional()?,
        AnyConnection::Sqlite(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(<Run as Selectable<diesel::sqlite::Sqlite>>::construct_selection())
            .get_result::<Run>(c)
            .optional()?,
    };
    Ok(run)
}

/// Queued runs of an inbox item (to enqueue after dispatch, also after a re-dispatch).
pub fn queued_for_inbox(conn: &mut AnyConnection, inbox_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(runs::table
        .filter(
            runs::inbox_id
                .eq(inbox_id)
                .and(runs::status.eq(status::QUEUED)),
        )
        .select(runs::id)
        .load(conn)?)
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<Run>, DbError> {
    Ok(runs::table
        .find(id)
        .select(Run::as_select())
        .first(conn)
        .optional()?)
}

diesel::define_sql_function! {
    fn coalesce(
        x: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        y: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamp>;
}

/// Takes the run for this worker (queued and due, or running with an expired lease).
pub fn claim(
    conn: &mut AnyConnection,
    id: i64,
    lease: chrono::Duration,
) -> Result<Option<Run>, DbError> {
    let t = now();
    let claimed = diesel::update(runs::table)
        .filter(runs::id.eq(id))
        .filter(
            (runs::status
                .eq(status::QUEUED)
                .and(runs::next_attempt_at.le(t)))
            .or(runs::status
                .eq(status::RUNNING)
                .and(runs::lease_until.lt(t))),
        )
        .set((
            runs::status.eq(status::RUNNING),
            runs::lease_until.eq(Some(t + lease)),
            runs::attempts.eq(runs::attempts + 1),
            // The first attempt's start is kept across retries.
            runs::started_at.eq(coalesce(runs::started_at, Some(t))),
            runs::updated_at.eq(t),
        ))
        .returning(<Run as Selectable<crate::db::Backend>>::construct_selection())
        .get_result(conn)
        .optional()?;
    Ok(claimed)
}

pub fn steps(conn: &mut AnyConnection, run_id: i64) -> Result<Vec<StepRecord>, DbError> {
    Ok(run_steps::table
        .filter(run_steps::run_id.eq(run_id))
        .order(run_steps::position)
        .select(StepRecord::as_select())
        .load(conn)?)
}

/// The outcome of one step attempt, written before the next step starts.
pub struct StepOutcome<'a> {
    pub run_id: i64,
    pub position: i32,
    pub action: &'a str,
    pub inputs: &'a serde_json::Value,
    pub result: Result<&'a serde_json::Value, &'a str>,
    pub attempt: i32,
    pub duration_ms: i64,
    pub started_at: NaiveDateTime,
}

/// Insert-or-update by (run, position); upserts do not compile through diesel's
/// MultiConnection, so update first and insert when nothing was there.
pub fn record_step(conn: &mut AnyConnection, s: &StepOutcome<'_>) -> Result<(), DbError> {
    let (st, outputs, error) = match s.result {
        Ok(out) => (status::SUCCEEDED, Some(out.to_string()), None),
        Err(e) => (status::FAILED, None, Some(e.to_string())),
    };
    let t = now();
    conn.transaction(|conn| {
        let n = diesel::update(
            run_steps::table.filter(
                run_steps::run_id
                    .eq(s.run_id)
                    .and(run_steps::position.eq(s.position)),
            ),
        )
        .set((
            run_steps::status.eq(st),
            run_steps::inputs.eq(s.inputs.to_string()),
            run_steps::outputs.eq(&outputs),
            run_steps::error.eq(&error),
            run_steps::attempt.eq(s.attempt),
            run_steps::duration_ms.eq(s.duration_ms),
            run_steps::started_at.eq(s.started_at),
            run_steps::finished_at.eq(Some(t)),
        ))
        .execute(conn)?;
        if n == 0 {
            diesel::insert_into(run_steps::table)
                .values((
                    run_steps::run_id.eq(s.run_id),
                    run_steps::position.eq(s.position),
                    run_steps::action.eq(s.action),
                    run_steps::status.eq(st),
                    run_steps::inputs.eq(s.inputs.to_string()),
                    run_steps::outputs.eq(&outputs),
                    run_steps::error.eq(&error),
                    run_steps::attempt.eq(s.attempt),
                    run_steps::duration_ms.eq(s.duration_ms),
                    run_steps::started_at.eq(s.started_at),
                    run_steps::finished_at.eq(Some(t)),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Marks a step as in flight before a call that cannot be safely repeated (a messenger send):
/// if the worker dies during the call, the resumed run finds this mark and does not send twice.
pub fn mark_step_started(
    conn: &mut AnyConnection,
    run_id: i64,
    position: i32,
    action: &str,
    inputs: &serde_json::Value,
    attempt: i32,
) -> Result<(), DbError> {
    let t = now();
    conn.transaction(|conn| {
        let n = diesel::update(
            run_steps::table.filter(
                run_steps::run_id
                    .eq(run_id)
                    .and(run_steps::position.eq(position)),
            ),
        )
        .set((
            run_steps::status.eq(status::RUNNING),
            run_steps::inputs.eq(inputs.to_string()),
            run_steps::attempt.eq(attempt),
            run_steps::started_at.eq(t),
        ))
        .execute(conn)?;
        if n == 0 {
            diesel::insert_into(run_steps::table)
                .values((
                    run_steps::run_id.eq(run_id),
                    run_steps::position.eq(position),
                    run_steps::action.eq(action),
                    run_steps::status.eq(status::RUNNING),
                    run_steps::inputs.eq(inputs.to_string()),
                    run_steps::attempt.eq(attempt),
                    run_steps::duration_ms.eq(0i64),
                    run_steps::started_at.eq(t),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn succeed(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    finish(conn, id, status::SUCCEEDED, None)
}

pub fn fail(conn: &mut AnyConnection, id: i64, error: &str) -> Result<(), DbError> {
    finish(conn, id, status::FAILED, Some(error))
}

fn finish(conn: &mut AnyConnection, id: i64, st: &str, error: Option<&str>) -> Result<(), DbError> {
    let t = now();
    diesel::update(runs::table.find(id))
        .set((
            runs::status.eq(st),
            runs::error.eq(error),
            runs::lease_until.eq(None::<NaiveDateTime>),
            runs::finished_at.eq(Some(t)),
            runs::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(())
}

/// Transient failure: back to the queue after `retry_at` (the sweeper enqueues it then).
pub fn retry_later(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    retry_at: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(runs::table.find(id))
        .set((
            runs::status.eq(status::QUEUED),
            runs::error.eq(Some(error)),
            runs::next_attempt_at.eq(retry_at),
            runs::lease_until.eq(None::<NaiveDateTime>),
            runs::enqueued_at.eq(None::<NaiveDateTime>),
            runs::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// "Replay" of a failed run: back to queued with a fresh attempt budget; succeeded steps stay
/// done, so it resumes at the failed step. A send interrupted by a dead worker is the admin's
/// call to repeat, so its in-flight mark is cleared here.
pub fn replay(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    let t = now();
    diesel::update(
        run_steps::table.filter(
            run_steps::run_id
                .eq(id)
                .and(run_steps::status.eq(status::RUNNING)),
        ),
    )
    .set(run_steps::status.eq(status::FAILED))
    .execute(conn)?;
    let n = diesel::update(runs::table.find(id).filter(runs::status.eq(status::FAILED)))
        .set((
            runs::status.eq(status::QUEUED),
            runs::attempts.eq(0),
            runs::next_attempt_at.eq(t),
            runs::enqueued_at.eq(Some(t)),
            runs::finished_at.eq(None::<NaiveDateTime>),
            runs::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunFilter {
    pub bundle_id: Option<i64>,
    pub status: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

pub struct RunListItem {
    pub run: Run,
    pub bundle_name: String,
}

/// One page of runs, newest first, plus the total count for the pager.
pub fn list(
    conn: &mut AnyConnection,
    filter: &RunFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<RunListItem>, i64), DbError> {
    let build = || {
        let mut q = runs::table
            .inner_join(bundles::table)
            .into_boxed::<crate::db::MultiBackend>();
        if let Some(b) = filter.bundle_id {
            q = q.filter(runs::bundle_id.eq(b));
        }
        if let Some(s) = &filter.status {
            q = q.filter(runs::status.eq(s.clone()));
        }
        if let Some(f) = filter.from {
            q = q.filter(runs::created_at.ge(f));
        }
        if let Some(t) = filter.to {
            q = q.filter(runs::created_at.le(t));
        }
        q
    };
    let total: i64 = build().count().get_result(conn)?;
    let rows: Vec<(Run, String)> = build()
        .order(runs::id.desc())
        .limit(per_page)
        .offset((page.max(1) - 1) * per_page)
        .select((Run::as_select(), bundles::name))
        .load(conn)?;
    Ok((
        rows.into_iter()
            .map(|(run, bundle_name)| RunListItem { run, bundle_name })
            .collect(),
        total,
    ))
}

pub fn count_by_status(conn: &mut AnyConnection, st: &str) -> Result<i64, DbError> {
    Ok(runs::table
        .filter(runs::status.eq(st))
        .count()
        .get_result(conn)?)
}
