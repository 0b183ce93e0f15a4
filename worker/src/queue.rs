//! One type over both apalis storages so callers never branch on the mode; it is the job sink
//! core pushes through.

use std::time::Duration;

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use futures::future::BoxFuture;
use svyazka_core::jobs::{Job, JobSink, SinkError};
use svyazka_core::{Config, Mode};

/// Attempts apalis itself makes on an infrastructure failure (our handler only fails when the
/// database is unreachable); the sweeper takes over after that.
const APALIS_ATTEMPTS: usize = 3;

/// Queue messages a worker takes at a time: enough to keep its `worker_concurrency` slots
/// busy, plus one waiting. More would only hoard a burst that another worker process could be
/// working on.
pub fn messages_in_flight(config: &Config) -> usize {
    config
        .worker_concurrency
        .div_ceil(svyazka_core::jobs::MAX_IDS_PER_JOB)
        + 1
}

#[derive(Clone)]
pub enum JobQueue {
    Sqlite(SqliteStorage<Job>),
    Redis(RedisStorage<Job>),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue (SQLite {path}): {reason}")]
    Sqlite { path: String, reason: String },
    #[error("job queue (Redis): {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job queue push: {0}")]
    Push(String),
}

impl JobQueue {
    /// Embedded: `jobs.db` next to the main database (apalis' own tables, kept apart so its
    /// `Jobs`/`Workers` tables never collide with ours). Queue mode: Redis, namespaced by
    /// `config.queue_name`.
    pub async fn connect(config: &Config) -> Result<Self, QueueError> {
        match &config.mode {
            Mode::Embedded { db_path } => {
                let path = db_path.with_file_name("jobs.db");
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let err = |e: &dyn std::fmt::Display| QueueError::Sqlite {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                };
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect(&url)
                    .await
                    .map_err(|e| err(&e))?;
                SqliteStorage::setup(&pool).await.map_err(|e| err(&e))?;
                // apalis' setup turns synchronous off for speed; the queue is only a wake-up
                // signal (our tables hold the truth and the sweeper re-creates lost messages).
                let cfg = apalis_sqlite::Config::default()
                    .queue(&config.queue_name)
                    .batch_size(messages_in_flight(config))
                    .heartbeat_interval(Duration::from_secs(5));
                Ok(JobQueue::Sqlite(SqliteStorage::new(&pool).with_config(cfg)))
            }
            Mode::Queue { redis_url, .. } => {
                let conn = apalis_redis::connect(redis_url.as_str()).await?;
                let cfg = apalis_redis::Config::default()
                    .queue(&config.queue_name)
                    .batch_size(messages_in_flight(config))
                    .heartbeat_interval(Duration::from_secs(5));
                Ok(JobQueue::Redis(RedisStorage::new(conn).with_config(cfg)))
            }
        }
    }

    pub async fn push(&self, job: Job) -> Result<(), QueueError> {
        let task = TaskBuilder::new(job).max_attempts(APALIS_ATTEMPTS).build();
        match self {
            JobQueue::Sqlite(s) => s
                .clone()
                .push_task(task)
                .await
                .map_err(|e| QueueError::Push(e.to_string())),
            JobQueue::Redis(s) => s
                .clone()
                .push_task(task)
                .await
                .map_err(|e| QueueError::Push(e.to_string())),
        }
    }

    /// For /readyz: can the queue be reached right now?
    pub async fn ping(&self) -> Result<(), QueueError> {
        match self {
            JobQueue::Sqlite(s) => {
                let path = "jobs.db".to_string();
                sqlx::query("SELECT 1")
                    .execute(s.pool())
                    .await
                    .map(|_| ())
                    .map_err(|e| QueueError::Sqlite {
                        path,
                        reason: e.to_string(),
                    })
            }
            JobQueue::Redis(s) => {
                let mut conn = s.clone().get_connection().clone();
                let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
                if pong == "PONG" {
                    Ok(())
                } else {
                    Err(QueueError::Push(format!("unexpected PING answer {pong}")))
                }
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            JobQueue::Sqlite(_) => "SQLite (embedded)",
            JobQueue::Redis(_) => "Redis",
        }
    }
}

impl JobSink for JobQueue {
    fn push(&self, job: Job) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            JobQueue::push(self, job).await.map_err(|e| SinkError {
                backend: self.backend_name(),
                reason: e.to_string(),
            })
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            JobQueue::ping(self).await.map_err(|e| SinkError {
                backend: self.backend_name(),
                reason: e.to_string(),
            })
        })
    }

    fn backend_name(&self) -> &'static str {
        JobQueue::backend_name(self)
    }
}
