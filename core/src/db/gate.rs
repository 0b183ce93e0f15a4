//! The embedded process' write gate: SQLite has one writer at a time, and left to itself it
//! does not take turns. A connection that finds the database locked sleeps in SQLite's busy
//! handler (1 ms, 2 ms, … up to 100 ms a try) while whoever holds the lock commits again and
//! again; under a webhook flood the inbox writer's group commits follow each other so closely
//! that the runs' writes wait out most of their busy sleeps, and execution starves while
//! intake races ahead.
//!
//! So every database call of the embedded process (`Core::db`, the run-state committer, and
//! through `Core::db` the inbox writer) passes this gate first, in the order it arrived: the
//! inbox writer gets one turn (one group commit) and then waits behind the runs' calls that
//! queued meanwhile. Reads pass it too: in-process SQLite reads take microseconds, and telling
//! them apart from writes at every call site would cost more than it saves. PostgreSQL takes
//! turns on its own and has no gate.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// A first-come, first-served turn at the database (tokio's mutex queues its waiters fairly).
#[derive(Clone, Default)]
pub struct WriteGate(Arc<Mutex<()>>);

/// A turn; the next caller's begins when it is dropped.
pub type Turn = OwnedMutexGuard<()>;

impl WriteGate {
    /// Waits for this caller's turn.
    pub async fn enter(&self) -> Turn {
        self.0.clone().lock_owned().await
    }

    /// The same from a thread outside the runtime (the group committer).
    pub fn enter_blocking(&self) -> Turn {
        futures::executor::block_on(self.enter())
    }
}
