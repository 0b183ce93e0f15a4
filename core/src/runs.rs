//! Runs and their step records: the history the admin sees and the checkpoints the engine
//! resumes from.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bundles::Bundle;
use crate::db::schema::{bundles, run_steps, runs};
use crate::db::{AnyConnection, DbError, is_unique_violation, now};

crate::db::text_enum! {
    /// Where a run is: the history page's badge and the lease state.
    pub enum RunStatus {
        /// Waiting for its (next) attempt at `next_attempt_at`.
        Queued = "queued",
        /// Being executed by the worker holding its lease.
        Running = "running",
        Succeeded = "succeeded",
        /// Failed for good; `error` says why, Replay queues it again.
        Failed = "failed",
    }
}

impl RunStatus {
    /// Succeeded or failed: nothing changes it unless an admin replays it.
    pub fn is_settled(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

crate::db::text_enum! {
    /// The outcome of a step's latest attempt.
    pub enum StepStatus {
        /// In flight: marked before a call that must not be repeated (a messenger send).
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = runs)]
pub struct Run {
    pub id: i64,
    pub bundle_id: i64,
    pub inbox_id: i64,
    pub status: RunStatus,
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
    pub status: StepStatus,
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
            runs::status.eq(RunStatus::Queued),
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
        runs::status.eq(RunStatus::Running),
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
                .and(runs::status.eq(RunStatus::Queued)),
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

// `claim`, `retry_later`, `fail`, `take_due`: the lease protocol the inbox shares (see
// `db::lease`). A claim keeps the first attempt's start across retries; a failure is final.
crate::db::lease::lease_queries! {
    table: runs,
    row: Run,
    status: RunStatus { waiting: Queued, leased: Running, failed: Failed },
    claim_also: |t| runs::started_at.eq(coalesce(runs::started_at, Some(t))),
    fail_also: |t| runs::finished_at.eq(Some(t)),
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

/// Records a step attempt's outcome.
pub fn record_step(conn: &mut AnyConnection, s: &StepOutcome<'_>) -> Result<(), DbError> {
    let (status, outputs, error) = match s.result {
        Ok(out) => (StepStatus::Succeeded, Some(out.to_string()), None),
        Err(e) => (StepStatus::Failed, None, Some(e.to_string())),
    };
    write_step(
        conn,
        StepWrite {
            run_id: s.run_id,
            position: s.position,
            action: s.action,
            status,
            inputs: s.inputs.to_string(),
            attempt: s.attempt,
            started_at: s.started_at,
            finished: Some(Finished {
                outputs,
                error,
                duration_ms: s.duration_ms,
                at: now(),
            }),
        },
    )
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
    write_step(
        conn,
        StepWrite {
            run_id,
            position,
            action,
            status: StepStatus::Running,
            inputs: inputs.to_string(),
            attempt,
            started_at: now(),
            finished: None,
        },
    )
}

/// One write of a step record.
struct StepWrite<'a> {
    run_id: i64,
    position: i32,
    action: &'a str,
    status: StepStatus,
    inputs: String,
    attempt: i32,
    started_at: NaiveDateTime,
    /// `None` for the in-flight mark, which keeps what an earlier attempt finished with.
    finished: Option<Finished>,
}

struct Finished {
    outputs: Option<String>,
    error: Option<String>,
    duration_ms: i64,
    at: NaiveDateTime,
}

/// Inserts the record of (run, position), or updates the one an earlier attempt wrote, in one
/// statement.
fn write_step(conn: &mut AnyConnection, w: StepWrite<'_>) -> Result<(), DbError> {
    use diesel::upsert::excluded;
    let finished = w.finished.is_some();
    let (outputs, error, duration_ms, finished_at) = match w.finished {
        Some(f) => (f.outputs, f.error, f.duration_ms, Some(f.at)),
        None => (None, None, 0, None),
    };
    let upsert = diesel::insert_into(run_steps::table)
        .values((
            run_steps::run_id.eq(w.run_id),
            run_steps::position.eq(w.position),
            run_steps::action.eq(w.action),
            run_steps::status.eq(w.status),
            run_steps::inputs.eq(w.inputs),
            run_steps::outputs.eq(outputs),
            run_steps::error.eq(error),
            run_steps::attempt.eq(w.attempt),
            run_steps::duration_ms.eq(duration_ms),
            run_steps::started_at.eq(w.started_at),
            run_steps::finished_at.eq(finished_at),
        ))
        .on_conflict((run_steps::run_id, run_steps::position))
        .do_update()
        .set((
            run_steps::status.eq(excluded(run_steps::status)),
            run_steps::inputs.eq(excluded(run_steps::inputs)),
            run_steps::attempt.eq(excluded(run_steps::attempt)),
            run_steps::started_at.eq(excluded(run_steps::started_at)),
            finished.then_some((
                run_steps::outputs.eq(excluded(run_steps::outputs)),
                run_steps::error.eq(excluded(run_steps::error)),
                run_steps::duration_ms.eq(excluded(run_steps::duration_ms)),
                run_steps::finished_at.eq(excluded(run_steps::finished_at)),
            )),
        ));
    // diesel builds an upsert for one backend at a time, not through the multi-connection.
    match conn {
        AnyConnection::Postgresql(c) => upsert.execute(c)?,
        AnyConnection::Sqlite(c) => upsert.execute(c)?,
    };
    Ok(())
}

pub fn succeed(conn: &mut AnyConnection, id: i64) -> Result<(), DbError> {
    let t = now();
    diesel::update(runs::table.find(id))
        .set((
            runs::status.eq(RunStatus::Succeeded),
            runs::error.eq(None::<String>),
            runs::lease_until.eq(None::<NaiveDateTime>),
            runs::finished_at.eq(Some(t)),
            runs::updated_at.eq(t),
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
                .and(run_steps::status.eq(StepStatus::Running)),
        ),
    )
    .set(run_steps::status.eq(StepStatus::Failed))
    .execute(conn)?;
    let n = diesel::update(
        runs::table
            .find(id)
            .filter(runs::status.eq(RunStatus::Failed)),
    )
    .set((
        runs::status.eq(RunStatus::Queued),
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
    pub status: Option<RunStatus>,
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
            q = q.filter(runs::status.eq(*s));
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

pub fn count_by_status(conn: &mut AnyConnection, st: RunStatus) -> Result<i64, DbError> {
    Ok(runs::table
        .filter(runs::status.eq(st))
        .count()
        .get_result(conn)?)
}
