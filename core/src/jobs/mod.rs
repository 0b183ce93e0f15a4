//! The messages that travel through the queue. They only name rows: the row is the truth
//! (status, attempts, lease), so a lost or doubled message costs nothing. A message names a
//! batch of rows, so that a burst of webhooks costs one queue write per group commit rather
//! than one per webhook.

mod sink;

use serde::{Deserialize, Serialize};

pub use sink::{JobSink, Jobs, SinkError};

/// Ids per message when a caller splits a long list (the sweeper, the ingest announcer): small
/// enough that several worker processes share a burst, large enough to amortise the queue.
pub const MAX_IDS_PER_JOB: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Turn inbox items into events, create one run per matching bundle, and execute them.
    DispatchInbox { ids: Vec<i64> },
    /// Execute (or resume) runs' steps.
    ExecuteRun { ids: Vec<i64> },
    /// Deliver (or acknowledge to MG) operators' replies.
    SendReply { ids: Vec<i64> },
    /// Send failure alerts to the admin.
    SendAlert { ids: Vec<i64> },
}

impl Job {
    /// `ids` split into messages of at most [`MAX_IDS_PER_JOB`].
    pub fn dispatch(ids: &[i64]) -> impl Iterator<Item = Job> + '_ {
        ids.chunks(MAX_IDS_PER_JOB)
            .map(|c| Job::DispatchInbox { ids: c.to_vec() })
    }

    pub fn execute(ids: &[i64]) -> impl Iterator<Item = Job> + '_ {
        ids.chunks(MAX_IDS_PER_JOB)
            .map(|c| Job::ExecuteRun { ids: c.to_vec() })
    }

    pub fn reply(ids: &[i64]) -> impl Iterator<Item = Job> + '_ {
        ids.chunks(MAX_IDS_PER_JOB)
            .map(|c| Job::SendReply { ids: c.to_vec() })
    }

    pub fn alert(ids: &[i64]) -> impl Iterator<Item = Job> + '_ {
        ids.chunks(MAX_IDS_PER_JOB)
            .map(|c| Job::SendAlert { ids: c.to_vec() })
    }

    pub fn len(&self) -> usize {
        match self {
            Job::DispatchInbox { ids }
            | Job::ExecuteRun { ids }
            | Job::SendReply { ids }
            | Job::SendAlert { ids } => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_split_into_bounded_messages() {
        let ids: Vec<i64> = (1..=34).collect();
        let jobs: Vec<Job> = Job::dispatch(&ids).collect();
        assert_eq!(jobs.iter().map(Job::len).collect::<Vec<_>>(), [16, 16, 2]);
        assert_eq!(Job::execute(&[]).count(), 0);
    }

    #[test]
    fn wire_format_names_the_job() {
        let j = serde_json::to_string(&Job::ExecuteRun { ids: vec![7] }).expect("json");
        assert_eq!(j, r#"{"job":"execute_run","ids":[7]}"#);
    }
}
