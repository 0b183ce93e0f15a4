//! Runs and their step records: the history the admin sees and the checkpoints the engine
//! resumes from.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bundles::Bundle;
use crate::bundles::cache::Snapshot;
use crate::db::cached::CacheStatement;
use crate::db::schema::{bundles, run_steps, runs};
use crate::db::{AnyConnection, DbError, now};

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
        /// An admin gave up on it (failed, retrying or waiting): its conversation goes on
        /// without it.
        Skipped = "skipped",
    }
}

impl RunStatus {
    /// Succeeded, failed or skipped: nothing changes it unless an admin replays it, and the
    /// runs behind it in its conversation may go.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Skipped
        )
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

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
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
    /// Runs of one conversation execute one at a time in `inbox_id` order (see
    /// `conversations`); `None` for runs older than conversations.
    pub conversation: Option<String>,
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

/// Creates the run for (bundle, inbox item) unless it exists, queued and announced (the
/// caller enqueues it): the unique key makes a doubled delivery or a re-dispatch a no-op.
/// Returns whether it was created.
pub fn create(
    conn: &mut AnyConnection,
    bundle: &Snapshot,
    inbox_id: i64,
    event: &serde_json::Value,
) -> Result<bool, DbError> {
    Ok(insert_queued(conn, bundle, inbox_id, event, None)?.is_some())
}

/// Creates the run for (bundle, inbox item) unless it exists, queued behind an unfinished run
/// of its conversation; answers its id when created. Marked enqueued like any new run: the
/// run it waits for hands it on when it settles (see [`hand_on`]), and only should that
/// hand-over be lost (its worker died at that moment) does the sweeper take it, after the
/// re-enqueue grace.
pub fn create_waiting(
    conn: &mut AnyConnection,
    bundle: &Snapshot,
    inbox_id: i64,
    event: &serde_json::Value,
    conversation: Option<&str>,
) -> Result<Option<i64>, DbError> {
    insert_queued(conn, bundle, inbox_id, event, conversation)
}

/// Usable inside a transaction: a conflict is not an error that would abort it.
fn insert_queued(
    conn: &mut AnyConnection,
    bundle: &Snapshot,
    inbox_id: i64,
    event: &serde_json::Value,
    conversation: Option<&str>,
) -> Result<Option<i64>, DbError> {
    let t = now();
    let values = (
        runs::bundle_id.eq(bundle.bundle_id),
        runs::inbox_id.eq(inbox_id),
        runs::status.eq(RunStatus::Queued),
        runs::attempts.eq(0),
        runs::definition.eq(&bundle.json),
        runs::event.eq(event.to_string()),
        runs::next_attempt_at.eq(t),
        runs::enqueued_at.eq(Some(t)),
        runs::created_at.eq(t),
        runs::updated_at.eq(t),
        runs::conversation.eq(conversation),
    );
    let key = (runs::bundle_id, runs::inbox_id);
    let id = match conn {
        AnyConnection::Postgresql(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(runs::id)
            .get_result(c)
            .optional()?,
        AnyConnection::Sqlite(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(runs::id)
            .get_result(c)
            .optional()?,
    };
    Ok(id)
}

/// Creates the run already claimed by the caller (running, attempt 1, leased), for a
/// dispatcher that executes it right away; `None` when it exists already (the sweeper finds
/// that one). Usable inside a transaction: a conflict is not an error that would abort it.
pub fn create_claimed(
    conn: &mut AnyConnection,
    bundle: &Snapshot,
    inbox_id: i64,
    event: &serde_json::Value,
    conversation: Option<&str>,
    lease: chrono::Duration,
) -> Result<Option<Run>, DbError> {
    let t = now();
    let values = (
        runs::bundle_id.eq(bundle.bundle_id),
        runs::inbox_id.eq(inbox_id),
        runs::status.eq(RunStatus::Running),
        runs::attempts.eq(1),
        runs::definition.eq(&bundle.json),
        runs::event.eq(event.to_string()),
        runs::next_attempt_at.eq(t),
        runs::lease_until.eq(Some(t + lease)),
        runs::enqueued_at.eq(Some(t)),
        runs::started_at.eq(Some(t)),
        runs::created_at.eq(t),
        runs::updated_at.eq(t),
        runs::conversation.eq(conversation),
    );
    let key = (runs::bundle_id, runs::inbox_id);
    let run = match conn {
        AnyConnection::Postgresql(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(<Run as Selectable<diesel::pg::Pg>>::construct_selection())
            .cached()
            .get_result::<Run>(c)
            .optional()?,
        AnyConnection::Sqlite(c) => diesel::insert_into(runs::table)
            .values(values)
            .on_conflict(key)
            .do_nothing()
            .returning(<Run as Selectable<diesel::sqlite::Sqlite>>::construct_selection())
            .cached()
            .get_result::<Run>(c)
            .optional()?,
    };
    Ok(run)
}

/// Queued runs of an inbox item.
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
// A run is claimed only in its conversation's turn.
crate::db::lease::lease_queries! {
    table: runs,
    row: Run,
    status: RunStatus { waiting: Queued, leased: Running, failed: Failed },
    in_turn: crate::conversations::run_in_turn(),
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
    // Loaded rather than executed, so that it stays prepared (see `db::cached`).
    let upsert = upsert.returning(run_steps::id).cached();
    match conn {
        AnyConnection::Postgresql(c) => upsert.get_result::<i64>(c)?,
        AnyConnection::Sqlite(c) => upsert.get_result::<i64>(c)?,
    };
    Ok(())
}

/// How long before a window's start another run's send step may have started and still have
/// delivered inside it (its call waited up to the upstream timeout).
const SEND_CALL_SLACK_SECS: i64 = 300;

/// Message ids that other runs' sends recorded as theirs since `since`. A retry that looks for
/// its lost send in the gateway's history must not take another run's identical text to the
/// same chat (an order back in a status a minute later) for its own.
pub fn messages_sent_by_others(
    conn: &mut AnyConnection,
    run_id: i64,
    since: NaiveDateTime,
) -> Result<std::collections::HashSet<String>, DbError> {
    let outputs: Vec<Option<String>> = run_steps::table
        .filter(run_steps::action.eq("send_message"))
        .filter(run_steps::status.eq(StepStatus::Succeeded))
        .filter(run_steps::run_id.ne(run_id))
        .filter(run_steps::started_at.ge(since - chrono::Duration::seconds(SEND_CALL_SLACK_SECS)))
        .select(run_steps::outputs)
        .load(conn)?;
    Ok(outputs
        .iter()
        .flatten()
        .filter_map(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        .filter_map(|o| o.get("message_id")?.as_str().map(str::to_owned))
        .collect())
}

/// Succeeded. Answers whether a later run of its conversation waits for it: then the caller
/// calls [`hand_on`] after the commit.
pub fn succeed(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    crate::bundles::clear_failures_of_run(conn, id)?;
    let t = now();
    let waited_on = diesel::update(runs::table.find(id))
        .set((
            runs::status.eq(RunStatus::Succeeded),
            runs::error.eq(None::<String>),
            runs::lease_until.eq(None::<NaiveDateTime>),
            runs::finished_at.eq(Some(t)),
            runs::updated_at.eq(t),
        ))
        .returning(runs::waited_on)
        .cached()
        .get_result::<bool>(conn)
        .optional()?;
    Ok(waited_on.unwrap_or(false))
}

/// Whether Replay applies: failed for good, or waiting out a retry's back-off (then it means
/// "try again now").
pub fn can_replay(run: &Run) -> bool {
    run.status == RunStatus::Failed || (run.status == RunStatus::Queued && run.error.is_some())
}

/// Whether Skip applies: anything not settled and not in a worker's hands right now.
pub fn can_skip(run: &Run) -> bool {
    matches!(run.status, RunStatus::Failed | RunStatus::Queued)
}

/// "Replay" of a failed run, or of one waiting for its next retry: back to queued, due now,
/// with a fresh attempt budget; succeeded steps stay done, so it resumes at the failed step. A
/// send interrupted by a dead worker is the admin's call to repeat, so its in-flight mark is
/// cleared here. In its conversation it takes its place by arrival again: runs after it that
/// have not started wait for it.
pub fn replay(conn: &mut AnyConnection, id: i64) -> Result<bool, DbError> {
    let t = now();
    conn.transaction(|conn| {
        let n = diesel::update(
            runs::table.find(id).filter(
                runs::status.eq(RunStatus::Failed).or(runs::status
                    .eq(RunStatus::Queued)
                    .and(runs::error.is_not_null())),
            ),
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
        if n == 1 {
            diesel::update(
                run_steps::table.filter(
                    run_steps::run_id
                        .eq(id)
                        .and(run_steps::status.eq(StepStatus::Running)),
                ),
            )
            .set(run_steps::status.eq(StepStatus::Failed))
            .execute(conn)?;
        }
        Ok(n == 1)
    })
}

/// "Skip": the admin gives up on a failed, retrying or waiting run; it will not execute (unless
/// replayed) and the runs behind it in its conversation go on. Returns the next run of the
/// conversation to execute now (see [`hand_on`]), `None` inside when there is none; `None`
/// outside when the run cannot be skipped (a worker holds it, or it is settled).
pub fn skip(conn: &mut AnyConnection, id: i64) -> Result<Option<Option<i64>>, DbError> {
    let t = now();
    let skipped: Option<(Option<String>, i64)> = diesel::update(
        runs::table
            .find(id)
            .filter(runs::status.eq_any([RunStatus::Failed, RunStatus::Queued])),
    )
    .set((
        runs::status.eq(RunStatus::Skipped),
        runs::lease_until.eq(None::<NaiveDateTime>),
        runs::finished_at.eq(Some(t)),
        runs::updated_at.eq(t),
    ))
    .returning((runs::conversation, runs::inbox_id))
    .get_result(conn)
    .optional()?;
    match skipped {
        Some((conversation, inbox_id)) => {
            Ok(Some(hand_on(conn, conversation.as_deref(), inbox_id)?))
        }
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// Conversations (see `conversations`)

/// The run a newer one of `conversation` (arrived as `inbox_id`) waits for: the earliest
/// unfinished run before it. `None` when it is its turn.
pub fn waits_for(
    conn: &mut AnyConnection,
    conversation: Option<&str>,
    inbox_id: i64,
) -> Result<Option<i64>, DbError> {
    let Some(conversation) = conversation else {
        return Ok(None);
    };
    Ok(runs::table
        .filter(runs::conversation.eq(conversation))
        .filter(runs::inbox_id.lt(inbox_id))
        .filter(crate::conversations::run_open())
        .order(runs::inbox_id)
        .select(runs::id)
        .first(conn)
        .optional()?)
}

/// Creates the run for (bundle, inbox item) unless it exists, in its conversation's turn:
/// claimed by the caller when no earlier run of its conversation is unfinished (answered, to
/// execute now), else queued behind it, for that run to hand on (`None`, as for a run that
/// existed already; see [`wait_behind`], [`create_claimed`], [`create_waiting`]). Inside the
/// dispatch's transaction. On PostgreSQL the mark and the insert are one statement, so a
/// dispatch costs no extra round trip for the order it keeps.
pub fn create_in_turn(
    conn: &mut AnyConnection,
    bundle: &Snapshot,
    inbox_id: i64,
    event: &serde_json::Value,
    conversation: Option<&str>,
    lease: chrono::Duration,
) -> Result<Option<Run>, DbError> {
    if let (AnyConnection::Postgresql(c), Some(conversation)) = (&mut *conn, conversation) {
        let t = now();
        let event = event.to_string();
        let run: Option<Run> = CreateInTurn {
            conversation,
            inbox_id,
            bundle_id: bundle.bundle_id,
            definition: &bundle.json,
            event: &event,
            now: t,
            lease_until: t + lease,
        }
        .get_result(c)
        .optional()?;
        return Ok(run.filter(|r| r.status == RunStatus::Running));
    }
    if wait_behind(conn, conversation, inbox_id)? {
        create_waiting(conn, bundle, inbox_id, event, conversation)?;
        Ok(None)
    } else {
        create_claimed(conn, bundle, inbox_id, event, conversation, lease)
    }
}

/// [`wait_behind`] and the insert of [`create_claimed`] or [`create_waiting`] in one statement
/// for PostgreSQL. The mark runs in the statement's snapshot like the separate update would,
/// waiting for a settle in progress and then re-reading the row, so the hand-over argument of
/// `wait_behind` holds unchanged. A query of its own rather than `sql_query`, whose statements
/// diesel never caches: parsed and planned at every dispatch, it cost PostgreSQL more than the
/// round trip it saves.
struct CreateInTurn<'a> {
    conversation: &'a str,
    inbox_id: i64,
    bundle_id: i64,
    definition: &'a str,
    event: &'a str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
}

impl diesel::query_builder::QueryId for CreateInTurn<'_> {
    type QueryId = CreateInTurn<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for CreateInTurn<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for CreateInTurn<'_> {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for CreateInTurn<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        out.push_sql("WITH earlier AS (UPDATE runs SET waited_on = TRUE WHERE conversation = ");
        out.push_bind_param::<Text, _>(&self.conversation)?;
        out.push_sql(" AND inbox_id < ");
        out.push_bind_param::<BigInt, _>(&self.inbox_id)?;
        out.push_sql(&format!(
            " AND {} RETURNING 1), \
             turn AS (SELECT NOT EXISTS (SELECT 1 FROM earlier) AS mine) \
             INSERT INTO runs (bundle_id, inbox_id, status, attempts, definition, event, \
             next_attempt_at, lease_until, enqueued_at, started_at, created_at, updated_at, \
             conversation) SELECT ",
            *crate::conversations::RUN_OPEN
        ));
        out.push_bind_param::<BigInt, _>(&self.bundle_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.inbox_id)?;
        out.push_sql(&format!(
            ", CASE WHEN mine THEN '{}' ELSE '{}' END, CASE WHEN mine THEN 1 ELSE 0 END, ",
            RunStatus::Running,
            RunStatus::Queued
        ));
        out.push_bind_param::<Text, _>(&self.definition)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.event)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", CASE WHEN mine THEN ");
        out.push_bind_param::<Timestamp, _>(&self.lease_until)?;
        out.push_sql(" END, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", CASE WHEN mine THEN ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" END, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.conversation)?;
        out.push_sql(" FROM turn ON CONFLICT (bundle_id, inbox_id) DO NOTHING RETURNING *");
        Ok(())
    }
}

/// For a run of `conversation` about to be created (arrived as `inbox_id`): marks the
/// unfinished runs before it as waited on, so that whichever settles hands the new one on;
/// whether there were any (then the new run is created waiting). Inside the creating
/// transaction: on PostgreSQL the update waits for a settle in progress and then sees the run
/// settled, and a settle that comes after it reads the mark, so of the two, one always sees
/// the other; SQLite runs the two transactions one after the other.
pub fn wait_behind(
    conn: &mut AnyConnection,
    conversation: Option<&str>,
    inbox_id: i64,
) -> Result<bool, DbError> {
    let Some(conversation) = conversation else {
        return Ok(false);
    };
    let marked = diesel::update(
        runs::table
            .filter(runs::conversation.eq(conversation))
            .filter(runs::inbox_id.lt(inbox_id))
            .filter(crate::conversations::run_open()),
    )
    .set(runs::waited_on.eq(true))
    .returning(runs::id)
    .cached()
    .load::<i64>(conn)?
    .len();
    Ok(marked > 0)
}

/// [`claim`], and when that is refused because an earlier run of the conversation still holds
/// it (a replayed run, say), marks that run waited on, as [`wait_behind`] does; should there be
/// none any more (it settled between the two statements), the claim is tried once more.
pub fn claim_or_wait(
    conn: &mut AnyConnection,
    id: i64,
    lease: chrono::Duration,
) -> Result<Option<Run>, DbError> {
    if let Some(run) = claim(conn, id, lease)? {
        return Ok(Some(run));
    }
    let row: Option<(Option<String>, i64)> = runs::table
        .find(id)
        .select((runs::conversation, runs::inbox_id))
        .first(conn)
        .optional()?;
    let Some((conversation, inbox_id)) = row else {
        return Ok(None);
    };
    if conversation.is_none() || wait_behind(conn, conversation.as_deref(), inbox_id)? {
        return Ok(None);
    }
    claim(conn, id, lease)
}

/// How many unfinished runs of `conversation` arrived after `inbox_id` (they wait, directly or
/// not, for the run that arrived as `inbox_id`).
pub fn waiting_behind(
    conn: &mut AnyConnection,
    conversation: Option<&str>,
    inbox_id: i64,
) -> Result<i64, DbError> {
    let Some(conversation) = conversation else {
        return Ok(0);
    };
    Ok(runs::table
        .filter(runs::conversation.eq(conversation))
        .filter(runs::inbox_id.gt(inbox_id))
        .filter(crate::conversations::run_open())
        .count()
        .get_result(conn)?)
}

/// After the run of `conversation` that arrived as `inbox_id` settled (succeeded, failed for
/// good, skipped): the next run waiting in the conversation, for the caller to execute or
/// enqueue now. A caller that cannot (a stopping worker) hands it back with
/// `shutdown::hand_back`, so that any sweeper takes it at once.
///
/// Call it after the settling commit, never inside it: a run created behind this one by a
/// dispatch that commits meanwhile is then either seen here, or its dispatcher's own claim
/// after that commit already sees this run settled. Inside the transaction both could miss it.
pub fn hand_on(
    conn: &mut AnyConnection,
    conversation: Option<&str>,
    inbox_id: i64,
) -> Result<Option<i64>, DbError> {
    let Some(conversation) = conversation else {
        return Ok(None);
    };
    let next: Option<(i64, RunStatus)> = runs::table
        .filter(runs::conversation.eq(conversation))
        .filter(runs::inbox_id.gt(inbox_id))
        .filter(crate::conversations::run_open())
        .order(runs::inbox_id)
        .select((runs::id, runs::status))
        .first(conn)
        .optional()?;
    // Already running (a replayed run behind it was not waiting), or nothing waits.
    Ok(next.and_then(|(id, status)| (status == RunStatus::Queued).then_some(id)))
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
