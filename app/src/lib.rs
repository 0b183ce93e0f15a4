//! The one place that assembles a Svyazka process: config → core → job queue → webhook writer
//! → (embedded) worker → HTTP server. `svyazka` (web, and in embedded mode the worker too) and
//! `svyazka worker` (queue mode) both start here, and so do the integration tests.

pub mod admin_cli;
pub mod health_check;
pub mod malloc;
pub mod worker_process;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Jobs;
use svyazka_core::{Config, Core};
use svyazka_web::AppState;
use svyazka_worker::{JobQueue, WorkerHandle, spawn_worker};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Core(#[from] svyazka_core::StartError),
    #[error(transparent)]
    Queue(#[from] svyazka_worker::QueueError),
    #[error(transparent)]
    SetupCode(#[from] svyazka_core::auth::setup_code::IssueError),
    #[error("SVYAZKA_BIND {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
}

/// A running app: its address, the server handle, and the in-process worker if any.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The concrete queue behind `state.jobs`, for tests that look inside it.
    pub queue: JobQueue,
    server: ServerHandle,
    worker: Option<WorkerHandle>,
    stall_watch: tokio::task::JoinHandle<()>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops taking requests, then stops the worker gracefully.
    pub async fn stop(self) {
        self.stall_watch.abort();
        self.server.stop(true).await;
        let _ = self.join.await;
        if let Some(w) = self.worker {
            w.shutdown().await;
        }
    }

    /// Waits until the server stops (actix stops it on Ctrl-C / SIGTERM), then stops the
    /// embedded worker gracefully: its steps in flight finish or are released.
    pub async fn wait(self) -> std::io::Result<()> {
        let res = self
            .join
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.stall_watch.abort();
        if let Some(w) = self.worker {
            w.shutdown().await;
        }
        res
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let listener = TcpListener::bind(&config.bind).map_err(|source| StartError::Bind {
        bind: config.bind.clone(),
        source,
    })?;
    start_on(config, listener).await
}

pub async fn start_on(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    let bind = config.bind.clone();
    let bind_error = |source| StartError::Bind {
        bind: bind.clone(),
        source,
    };
    let core = Core::start(config)?;
    // Alerts are worded by the web crate's i18n, in the admin's chosen language.
    svyazka_core::alerts::wording::install(svyazka_web::i18n::alerts::word);
    if let Some(code) = svyazka_core::auth::setup_code::issue(&core).await? {
        let file = svyazka_core::auth::setup_code::file_path(&core.config.data_dir);
        println!(
            "svyazka: no administrator yet. Set-up code: {code} (also in {}); enter it at {}/setup",
            file.display(),
            core.config.public_url
        );
    }
    let queue = JobQueue::connect(&core.config).await?;
    let jobs = Jobs::new(queue.clone());
    let inbox = InboxWriter::spawn(core.clone(), jobs.clone());
    let worker = core
        .config
        .embedded_worker
        .then(|| spawn_worker(core.clone(), queue.clone(), inbox.clone(), true));
    let stall_watch = tokio::spawn(svyazka_core::workers::watch(core.clone()));
    // Providers registered by an older version get the operators' replies webhook.
    tokio::spawn({
        let core = core.clone();
        async move { svyazka_core::providers::transport::upgrade_registrations(&core).await }
    });
    let state = AppState::new(core, jobs, inbox);
    let addr = listener.local_addr().map_err(bind_error)?;
    let server = svyazka_web::serve(state.clone(), listener).map_err(bind_error)?;
    let handle = server.handle();
    let join = tokio::spawn(server);
    Ok(Running {
        addr,
        state,
        queue,
        server: handle,
        worker,
        stall_watch,
        join,
    })
}

/// Log lines as the binaries print them; `RUST_LOG` overrides.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,apalis=warn".into()),
        )
        .init();
}
