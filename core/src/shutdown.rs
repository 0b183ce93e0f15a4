//! Graceful stop of a worker: once the process is told to stop, no new step starts; work it
//! held goes back to the table marked "not enqueued", so the sweeper of any other worker picks
//! it up within one sweep instead of after the lease or the re-enqueue grace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{inbox, runs};
use crate::db::{AnyConnection, DbError};
use crate::inbox::InboxStatus;
use crate::runs::RunStatus;

/// Shared by everything in the process that starts work.
#[derive(Debug, Clone, Default)]
pub struct Closing(Arc<AtomicBool>);

impl Closing {
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Items whose queue message this worker took but never started: unmark them, so a sweeper
/// enqueues them again at once (they are still pending or queued, nobody holds them).
pub fn hand_back(
    conn: &mut AnyConnection,
    inbox_ids: &[i64],
    run_ids: &[i64],
) -> Result<(), DbError> {
    if !inbox_ids.is_empty() {
        diesel::update(
            inbox::table
                .filter(inbox::id.eq_any(inbox_ids))
                .filter(inbox::status.eq(InboxStatus::Pending)),
        )
        .set(inbox::enqueued_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    }
    if !run_ids.is_empty() {
        diesel::update(
            runs::table
                .filter(runs::id.eq_any(run_ids))
                .filter(runs::status.eq(RunStatus::Queued)),
        )
        .set(runs::enqueued_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    }
    Ok(())
}
