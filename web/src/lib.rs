//! The web app: admin pages, webhook endpoints, sign-in. In embedded mode it also hosts the
//! worker. `start` is what `main` and the integration tests both call.

pub mod error;
pub mod i18n;
pub mod login_limit;
pub mod page;
pub mod routes;
pub mod security_headers;
pub mod session;
pub mod state;

use std::net::{SocketAddr, TcpListener};

use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use svyazka_core::{Config, Core};
use svyazka_worker::{JobQueue, WorkerHandle, spawn_worker};

pub use state::AppState;

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
    server: ServerHandle,
    worker: Option<WorkerHandle>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        if let Some(w) = self.worker {
            w.stop();
        }
        self.server.stop(true).await;
        let _ = self.join.await;
    }

    /// Waits until the server stops (Ctrl-C / SIGTERM in the binary).
    pub async fn wait(self) -> std::io::Result<()> {
        let res = self
            .join
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(w) = self.worker {
            w.stop();
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
    let core = Core::start(config)?;
    if let Some(code) = svyazka_core::auth::setup_code::issue(&core).await? {
        let file = svyazka_core::auth::setup_code::file_path(&core.config.data_dir);
        println!(
            "svyazka: no administrator yet. Set-up code: {code} (also in {}); enter it at {}/setup",
            file.display(),
            core.config.public_url
        );
    }
    let queue = JobQueue::connect(&core.config).await?;
    let worker = core
        .config
        .embedded_worker
        .then(|| spawn_worker(core.clone(), queue.clone()));
    let state = AppState::new(core, queue);
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        bind: bind.clone(),
        source,
    })?;
    let key = Key::from(state.core.crypto.cookie_key());
    let secure = state.core.config.public_url.starts_with("https://");
    let data = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_name("svyazka_session".into())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .build(),
            )
            .configure(routes::configure)
    })
    .listen(listener)
    .map_err(|source| StartError::Bind { bind, source })?
    .run();
    let handle = server.handle();
    let join = tokio::spawn(server);
    Ok(Running {
        addr,
        state,
        server: handle,
        worker,
        join,
    })
}
