//! The periodic sweeper: finds work whose row says "to do" but whose queue message is missing
//! (a failed push, a due retry, a worker that died holding a lease) and enqueues it again.
//! Every worker process runs it; the conditional update on `enqueued_at` keeps two sweepers
//! from pushing the same row twice, and a doubled push would be harmless anyway (claims are atomic).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{inbox, runs};
use crate::db::{AnyConnection, DbError, now};
use crate::jobs::Job;

/// At most this many rows per table and sweep, so one sweep stays short under a backlog.
const BATCH: i64 = 500;

pub fn due_jobs(conn: &mut AnyConnection, grace: std::time::Duration) -> Result<Vec<Job>, DbError> {
    let t = now();
    let stale = t - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(10));
    let mut inbox_ids = Vec::new();
    let mut run_ids = Vec::new();

    let due_inbox: Vec<i64> = inbox::table
        .filter(
            (inbox::status
                .eq("pending")
                .and(inbox::next_attempt_at.le(t)))
            .or(inbox::status.eq("processing").and(inbox::lease_until.lt(t))),
        )
        .filter(
            inbox::enqueued_at
                .is_null()
                .or(inbox::enqueued_at.lt(stale)),
        )
        .order(inbox::id)
        .limit(BATCH)
        .select(inbox::id)
        .load(conn)?;
    for id in due_inbox {
        let took = diesel::update(inbox::table.find(id))
            .filter(
                inbox::enqueued_at
                    .is_null()
                    .or(inbox::enqueued_at.lt(stale)),
            )
            .set(inbox::enqueued_at.eq(Some(t)))
            .execute(conn)?;
        if took == 1 {
            inbox_ids.push(id);
        }
    }

    let due_runs: Vec<i64> = runs::table
        .filter(
            (runs::status.eq("queued").and(runs::next_attempt_at.le(t)))
                .or(runs::status.eq("running").and(runs::lease_until.lt(t))),
        )
        .filter(runs::enqueued_at.is_null().or(runs::enqueued_at.lt(stale)))
        .order(runs::id)
        .limit(BATCH)
        .select(runs::id)
        .load(conn)?;
    for id in due_runs {
        let took = diesel::update(runs::table.find(id))
            .filter(runs::enqueued_at.is_null().or(runs::enqueued_at.lt(stale)))
            .set(runs::enqueued_at.eq(Some::<NaiveDateTime>(t)))
            .execute(conn)?;
        if took == 1 {
            run_ids.push(id);
        }
    }
    Ok(Job::dispatch(&inbox_ids)
        .chain(Job::execute(&run_ids))
        .collect())
}
