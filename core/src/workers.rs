//! Which worker processes are alive, and whether work is waiting with nobody to do it.
//!
//! Every worker (a `svyazka worker` process, or the one inside the web process in embedded
//! mode) writes its row in `workers` every [`BEAT`] and deletes it when it stops gracefully. A
//! row not renewed for [`ALIVE_WITHIN`] belongs to a process that died. The web process reads
//! these rows for /readyz and the home page, and warns — on the page and in its log — when work
//! has been due for longer than the stall threshold while no worker is alive: the one failure a
//! queue-mode operator would otherwise only notice when customers complain.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{inbox, runs, workers};
use crate::db::{AnyConnection, DbError, now};
use crate::inbox::InboxStatus;
use crate::runs::RunStatus;

/// How often a worker renews its row.
pub const BEAT: Duration = Duration::from_secs(5);
/// A row older than this is a dead worker: three missed beats.
pub const ALIVE_WITHIN: Duration = Duration::from_secs(20);
/// Rows of workers dead this long are deleted by the next worker that starts.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

fn ago(d: Duration) -> NaiveDateTime {
    now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::seconds(20))
}

/// One worker process, as it names itself in `workers`.
#[derive(Debug, Clone)]
pub struct WorkerId {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub embedded: bool,
}

impl WorkerId {
    /// Unique per process start: a restarted process never renews a dead one's row.
    pub fn new(embedded: bool) -> Self {
        let hostname = hostname();
        let pid = i64::from(std::process::id());
        WorkerId {
            id: format!("{hostname}-{pid}-{}", crate::crypto::random_token(4)),
            hostname,
            pid,
            embedded,
        }
    }
}

/// The host name as the container or machine knows it (`HOSTNAME`, `/etc/hostname`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[derive(Debug, Clone, Queryable)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub embedded: bool,
    pub started_at: NaiveDateTime,
    pub last_seen: NaiveDateTime,
}

/// Writes or renews this worker's row.
pub fn beat(conn: &mut AnyConnection, me: &WorkerId) -> Result<(), DbError> {
    let t = now();
    let renewed = diesel::update(workers::table.find(&me.id))
        .set(workers::last_seen.eq(t))
        .execute(conn)?;
    if renewed == 0 {
        diesel::insert_into(workers::table)
            .values((
                workers::id.eq(&me.id),
                workers::hostname.eq(&me.hostname),
                workers::pid.eq(me.pid),
                workers::embedded.eq(me.embedded),
                workers::started_at.eq(t),
                workers::last_seen.eq(t),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A worker stopping gracefully takes its row away at once instead of fading out.
pub fn leave(conn: &mut AnyConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(workers::table.find(id)).execute(conn)?;
    Ok(())
}

/// Deletes rows of workers that died long ago, so the table stays the size of the fleet.
pub fn forget_dead(conn: &mut AnyConnection) -> Result<usize, DbError> {
    Ok(
        diesel::delete(workers::table.filter(workers::last_seen.lt(ago(FORGET_AFTER))))
            .execute(conn)?,
    )
}

/// Workers seen within [`ALIVE_WITHIN`], oldest first.
pub fn alive(conn: &mut AnyConnection) -> Result<Vec<WorkerRow>, DbError> {
    Ok(workers::table
        .filter(workers::last_seen.ge(ago(ALIVE_WITHIN)))
        .order(workers::started_at)
        .load(conn)?)
}

/// Whether a live worker runs on `hostname` (the container health check of a worker).
pub fn alive_on(conn: &mut AnyConnection, hostname: &str) -> Result<bool, DbError> {
    Ok(alive(conn)?.iter().any(|w| w.hostname == hostname))
}

/// Work that is due now: webhooks not yet dispatched and runs waiting for a worker (a run
/// waiting out its retry back-off is not counted: nobody could work on it yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub waiting: i64,
    /// Of those, webhooks not yet dispatched.
    pub inbox: i64,
    /// Of those, runs.
    pub runs: i64,
    /// Since when the longest-waiting item has been due.
    pub oldest: Option<NaiveDateTime>,
    /// The same for webhooks not yet dispatched.
    pub inbox_oldest: Option<NaiveDateTime>,
    /// The same for runs.
    pub runs_oldest: Option<NaiveDateTime>,
}

/// How long an item due since `since` has waited, at `at`.
pub fn waited(since: Option<NaiveDateTime>, at: NaiveDateTime) -> Duration {
    since
        .and_then(|o| (at - o).to_std().ok())
        .unwrap_or_default()
}

impl Backlog {
    /// How long the oldest item has waited, at `at`.
    pub fn age(&self, at: NaiveDateTime) -> Duration {
        waited(self.oldest, at)
    }
}

pub fn backlog(conn: &mut AnyConnection) -> Result<Backlog, DbError> {
    let t = now();
    // Due and not taken, or taken by a worker whose lease ran out.
    let inbox_due = inbox::status
        .eq(InboxStatus::Pending)
        .and(inbox::next_attempt_at.le(t))
        .or(inbox::status
            .eq(InboxStatus::Processing)
            .and(inbox::lease_until.lt(t)));
    let runs_due = runs::status
        .eq(RunStatus::Queued)
        .and(runs::next_attempt_at.le(t))
        .or(runs::status
            .eq(RunStatus::Running)
            .and(runs::lease_until.lt(t)));
    let inbox_n: i64 = inbox::table.filter(inbox_due).count().get_result(conn)?;
    let runs_n: i64 = runs::table.filter(runs_due).count().get_result(conn)?;
    let inbox_oldest: Option<NaiveDateTime> = inbox::table
        .filter(inbox_due)
        .select(diesel::dsl::min(inbox::next_attempt_at))
        .first(conn)?;
    let runs_oldest: Option<NaiveDateTime> = runs::table
        .filter(runs_due)
        .select(diesel::dsl::min(runs::next_attempt_at))
        .first(conn)?;
    Ok(Backlog {
        waiting: inbox_n + runs_n,
        inbox: inbox_n,
        runs: runs_n,
        oldest: [inbox_oldest, runs_oldest].into_iter().flatten().min(),
        inbox_oldest,
        runs_oldest,
    })
}

/// What the operator needs to know about execution right now.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub workers: Vec<WorkerRow>,
    pub backlog: Backlog,
    /// Work has been due longer than the threshold and no worker is alive.
    pub stalled: bool,
}

pub fn health(conn: &mut AnyConnection, stall_after: Duration) -> Result<Health, DbError> {
    let workers = alive(conn)?;
    let backlog = backlog(conn)?;
    let stalled = workers.is_empty() && backlog.waiting > 0 && backlog.age(now()) >= stall_after;
    Ok(Health {
        workers,
        backlog,
        stalled,
    })
}

/// The web process' watch on execution: [`watch_stalls`] and [`watch_backlog`].
pub async fn watch(core: crate::Core) {
    futures::future::join(watch_stalls(core.clone()), watch_backlog(core)).await;
}

/// A backlog whose oldest item has waited this long is logged (see [`watch_backlog`]); below
/// it, work is just being done.
const BACKLOG_LOG_AFTER: Duration = Duration::from_secs(10);
/// How often a lasting backlog is logged.
const BACKLOG_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs, every [`BACKLOG_LOG_EVERY`] while it lasts, how much work waits and for how long,
/// once it has waited [`BACKLOG_LOG_AFTER`]: after a flood of webhooks an operator reading
/// only the log sees the backlog and whether it shrinks. Runs in every web process.
pub async fn watch_backlog(core: crate::Core) {
    let mut tick = tokio::time::interval(BACKLOG_LOG_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match core.db(backlog).await {
            Ok(b) if b.waiting > 0 && b.age(now()) >= BACKLOG_LOG_AFTER => {
                let t = now();
                tracing::info!(
                    inbox = b.inbox,
                    inbox_oldest_secs = waited(b.inbox_oldest, t).as_secs(),
                    runs = b.runs,
                    runs_oldest_secs = waited(b.runs_oldest, t).as_secs(),
                    "backlog: webhooks and runs are waiting for the worker"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "backlog check failed"),
        }
    }
}

/// Logs, while it lasts, that work waits with no live worker: an operator reading only the
/// log still learns why nothing happens. Runs in every web process.
pub async fn watch_stalls(core: crate::Core) {
    let every = core
        .config
        .stall_after
        .clamp(Duration::from_secs(5), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let stall_after = core.config.stall_after;
        match core.db(move |c| health(c, stall_after)).await {
            Ok(h) if h.stalled => tracing::error!(
                waiting = h.backlog.waiting,
                oldest_secs = h.backlog.age(now()).as_secs(),
                "work is waiting and no worker is alive: bundles are not running; start `svyazka worker` (queue mode) or restart svyazka"
            ),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "stall check failed"),
        }
    }
}
