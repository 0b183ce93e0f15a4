//! The messages that travel through the queue. They only name a row: the row is the truth
//! (status, attempts, lease), so a lost or doubled message costs nothing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Turn an inbox item into an event and create one run per matching bundle.
    DispatchInbox { id: i64 },
    /// Execute (or resume) a run's steps.
    ExecuteRun { id: i64 },
}
