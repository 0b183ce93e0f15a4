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
    #[error("SVYAZKA_WORKER_METRICS_BIND: cannot listen on {addr}: {source}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "SVYAZKA_WORKER_METRICS_BIND needs SVYAZKA_METRICS_TOKEN: metrics are never served without it"
    )]
    MetricsWithoutToken,
}

pub async fn run() -> Result<(), WorkerProcessError> {
    let config = Config::from_env()?;
    if config.is_embedded() {
        return Err(WorkerProcessError::Embedded);
    }
    let core = Core::start(config)?;
    // Alerts are worded by the web crate's i18n, in the admin's chosen language.
    svyazka_core::alerts::wording::install(svyazka_web::i18n::alerts::word);
    let queue = JobQueue::connect(&core.config).await?;
    // Telegram updates this worker polls go through its own writer, like webhooks do in web.
    let inbox = InboxWriter::spawn(core.clone(), Jobs::new(queue.clone()));
    println!(
        "svyazka worker: queue mode, consuming {:?} from {} (concurrency {})",
        core.config.queue_name,
        queue.backend_name(),
        core.config.worker_concurrency
    );
    let metrics = match core.config.worker_metrics_bind {
        Some(addr) => Some(serve_metrics(addr, &core, &queue, &inbox)?),
        None => None,
    };
    let res = run_worker(core, queue, inbox, false, stop_signal())
        .await
        .map_err(|e| WorkerProcessError::Stopped(e.to_string()));
    if let Some(server) = metrics {
        server.stop(true).await;
    }
    res
}

/// The worker's own `/metrics` (its steps, upstream errors and rate-limit waits happen here,
/// not in the web process), behind the same token.
fn serve_metrics(
    addr: std::net::SocketAddr,
    core: &Core,
    queue: &JobQueue,
    inbox: &InboxWriter,
) -> Result<actix_web::dev::ServerHandle, WorkerProcessError> {
    use actix_web::{App, HttpServer, web};
    if core.config.metrics_token.is_none() {
        return Err(WorkerProcessError::MetricsWithoutToken);
    }
    let state = web::Data::new(svyazka_web::AppState::new(
        core.clone(),
        Jobs::new(queue.clone()),
        inbox.clone(),
    ));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(svyazka_web::routes::metrics::metrics)
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .map_err(|source| WorkerProcessError::MetricsBind { addr, source })?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    println!("svyazka worker: metrics on http://{addr}/metrics");
    Ok(handle)
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
