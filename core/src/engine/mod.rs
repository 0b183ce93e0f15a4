//! The bundle engine: dispatch (inbox item → event → one run per matching bundle) and
//! execution (a run's steps in order, each checkpointed before the next).

mod actions;
pub mod clients;
pub mod dispatch;
pub mod events;
pub mod execute;

use crate::upstream::{Retry, UpstreamFailure};

/// Why a step (or a dispatch) did not succeed, with the upstream's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub retry: Retry,
    pub message: String,
}

impl StepError {
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            retry: Retry::Permanent,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        StepError {
            retry: Retry::Transient { after: None },
            message: message.into(),
        }
    }

    pub fn upstream<E: UpstreamFailure>(e: &E) -> Self {
        StepError {
            retry: e.retry(),
            message: e.user_message(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self.retry, Retry::Transient { .. })
    }
}
