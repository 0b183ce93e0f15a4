//! Where jobs go: the queue transport seen from core. The worker crate implements it over
//! apalis (SQLite embedded, Redis in queue mode); core only ever pushes and pings. A push that
//! fails is never fatal: the rows it names are pending in our tables, and the sweeper enqueues
//! them again, so callers that have already committed use [`Jobs::push_or_leave`].

use std::sync::Arc;

use futures::future::BoxFuture;

use super::Job;

#[derive(Debug, Clone, thiserror::Error)]
#[error("job queue ({backend}): {reason}")]
pub struct SinkError {
    pub backend: &'static str,
    pub reason: String,
}

/// A queue transport. Object-safe so that core holds it without knowing apalis.
pub trait JobSink: Send + Sync + 'static {
    fn push(&self, job: Job) -> BoxFuture<'_, Result<(), SinkError>>;
    /// Can the transport be reached right now (for /readyz)?
    fn ping(&self) -> BoxFuture<'_, Result<(), SinkError>>;
    /// "SQLite (embedded)", "Redis": for start-up lines and logs.
    fn backend_name(&self) -> &'static str;
}

/// A shared handle to the process' job sink.
#[derive(Clone)]
pub struct Jobs(Arc<dyn JobSink>);

impl Jobs {
    pub fn new(sink: impl JobSink) -> Self {
        Jobs(Arc::new(sink))
    }

    pub async fn push(&self, job: Job) -> Result<(), SinkError> {
        self.0.push(job).await
    }

    pub async fn ping(&self) -> Result<(), SinkError> {
        self.0.ping().await
    }

    pub fn backend_name(&self) -> &'static str {
        self.0.backend_name()
    }

    /// Pushes each job; one that cannot be pushed is logged and left to the sweeper, which
    /// finds its rows still pending. For callers whose rows are already committed.
    pub async fn push_or_leave(&self, jobs: impl IntoIterator<Item = Job>) {
        for job in jobs {
            let items = job.len();
            if let Err(e) = self.push(job).await {
                tracing::warn!(items, error = %e, "queue unavailable; the sweeper will enqueue the items");
            }
        }
    }
}
