//! The bundle engine: dispatch (inbox item → event → one run per matching bundle) and
//! execution (a run's steps in order, each checkpointed before the next).

mod actions;
pub mod clients;
pub mod dispatch;
pub mod events;
pub mod execute;

use crate::reason::{Explain, Reason};
use crate::upstream::{Retry, UpstreamFailure};

/// Why a step (or a dispatch) did not succeed, as data with the upstream's own words, and
/// whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct StepError {
    pub retry: Retry,
    pub reason: Reason,
}

/// A database failure during a step is retried: the step did not happen, or was recorded.
impl From<crate::db::DbError> for StepError {
    fn from(e: crate::db::DbError) -> Self {
        StepError::transient(Reason::Database {
            detail: e.to_string(),
        })
    }
}

impl StepError {
    pub fn permanent(reason: Reason) -> Self {
        StepError {
            retry: Retry::Permanent,
            reason,
        }
    }

    pub fn transient(reason: Reason) -> Self {
        StepError {
            retry: Retry::Transient { after: None },
            reason,
        }
    }

    pub fn upstream<E: UpstreamFailure + Explain>(e: &E) -> Self {
        StepError {
            retry: e.retry(),
            reason: Reason::Upstream(e.explain()),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self.retry, Retry::Transient { .. })
    }

    /// What the `error` columns keep (JSON of the reason).
    pub fn stored(&self) -> String {
        self.reason.to_stored()
    }
}
