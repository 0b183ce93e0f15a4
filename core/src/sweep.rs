//! The periodic sweeper: finds work whose row says "to do" but whose queue message is missing
//! (a failed push, a due retry, a worker that died holding a lease) and enqueues it again.
//! Every worker process runs it; the conditional update on `enqueued_at` (see `db::lease`)
//! keeps two sweepers from pushing the same row twice, and a doubled push would be harmless
//! anyway (claims are atomic).

use crate::db::{AnyConnection, DbError};
use crate::jobs::Job;
use crate::{alerts, inbox, replies, runs};

/// At most this many rows per table and sweep, so one sweep stays short under a backlog.
const BATCH: i64 = 500;

/// The jobs to push: rows due for a claim whose last push is older than `grace` (or never was).
pub fn due_jobs(conn: &mut AnyConnection, grace: std::time::Duration) -> Result<Vec<Job>, DbError> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(10));
    let inbox_ids = inbox::take_due(conn, grace, BATCH)?;
    let run_ids = runs::take_due(conn, grace, BATCH)?;
    let reply_ids = replies::take_due(conn, grace, BATCH)?;
    let alert_ids = alerts::take_due(conn, grace, BATCH)?;
    Ok(Job::dispatch(&inbox_ids)
        .chain(Job::execute(&run_ids))
        .chain(Job::reply(&reply_ids))
        .chain(Job::alert(&alert_ids))
        .collect())
}
