//! A queue-mode worker process (`svyazka worker`, or the `svyazka-worker` alias): consumes jobs
//! from Redis. Start as many as you need.

use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Jobs;
use svyazka_core::{Config, Core};
use svyazka_worker::{JobQueue, run_worker};

#[derive(Debug, thiserror::Error)]
pub enum WorkerProcessError {
    #[error(transparent)]
    Config(#[from] svyazka_core::config::ConfigError),
    #[error(
        "DATABASE_URL and REDIS_URL: the worker process is for queue mode; in embedded mode the web process runs the worker"
    )]
    Embedded,
    #[error(transparent)]
    Core(#[from] svyazka_core::StartError),
    #[error(transparent)]
    Queue(#[from] svyazka_worker::QueueError),
    #[error("worker stopped: {0}")]
    Stopped(String),
}

pub async fn run() -> Result<(), WorkerProcessError> {
    let config = Config::from_env()?;
    if config.is_embedded() {
        return Err(WorkerProcessError::Embedded);
    }
    let core = Core::start(config)?;
    let queue = JobQueue::connect(&core.config).await?;
    // Telegram updates this worker polls go through its own writer, like webhooks do in web.
    let inbox = InboxWriter::spawn(core.clone(), Jobs::new(queue.clone()));
    println!(
        "svyazka worker: queue mode, consuming {:?} from {} (concurrency {})",
        core.config.queue_name,
        queue.backend_name(),
        core.config.worker_concurrency
    );
    run_worker(core, queue, inbox, false, stop_signal())
        .await
        .map_err(|e| WorkerProcessError::Stopped(e.to_string()))
}

/// SIGTERM (docker stop, systemd, Kubernetes) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop requested; finishing the work in flight");
}
