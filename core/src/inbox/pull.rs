//! The embedded worker pulls new webhooks from the inbox table itself instead of getting a
//! queue message per group commit. Under a flood those messages were the problem: one per
//! commit went into the job queue's own SQLite file, whose writer the announcer then held so
//! busily that the worker's fetches starved, and every one of them was work in memory or on
//! disk twice. Pulled, the backlog is just the inbox rows: the worker takes the next few
//! (no more than it has free slots for) in id order, and the writer only wakes it.
//!
//! A cursor (the last id taken) keeps the puller from taking a row it already handed out but
//! that is not claimed yet. A row that goes back to pending later (a retry, a stopping
//! worker's hand-back) lies behind the cursor and is found by the sweeper as before; rows
//! ahead of it are the puller's, however long they wait, so the sweeper leaves them alone
//! (see [`InboxPull::reached`]) rather than pushing a long backlog into the queue as well.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use tokio::sync::Notify;

use super::InboxStatus;
use crate::db::schema::inbox;
use crate::db::{AnyConnection, DbError, now};

#[derive(Debug, Default)]
pub struct InboxPull {
    active: AtomicBool,
    wake: Notify,
    /// The last id the puller took.
    cursor: AtomicI64,
}

impl InboxPull {
    /// A worker pulling from the inbox runs in this process: the writer wakes it instead of
    /// pushing queue messages.
    pub fn start(&self) {
        self.active.store(true, Ordering::Relaxed);
    }

    pub fn stop(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The puller took the rows up to `id`.
    pub fn advance(&self, id: i64) {
        self.cursor.fetch_max(id, Ordering::Relaxed);
    }

    /// Whether row `id` is the sweeper's to enqueue: always without a puller, and with one only
    /// behind its cursor (the rows ahead it takes itself, in order).
    pub fn reached(&self, id: i64) -> bool {
        !self.is_active() || id <= self.cursor.load(Ordering::Relaxed)
    }

    /// New rows are stored.
    pub fn wake(&self) {
        // A wake while the puller is busy is kept, so it looks again right after.
        self.wake.notify_one();
    }

    /// Until woken, or `at_most` (rows stored by another path, a missed wake).
    pub async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.wake.notified()).await;
    }
}

/// Up to `limit` ids of rows after `after` that wait for their first dispatch, oldest first.
pub fn pending_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<i64>, DbError> {
    Ok(inbox::table
        .filter(inbox::id.gt(after))
        .filter(inbox::status.eq(InboxStatus::Pending))
        .filter(inbox::next_attempt_at.le(now()))
        .order(inbox::id)
        .limit(limit)
        .select(inbox::id)
        .load(conn)?)
}
