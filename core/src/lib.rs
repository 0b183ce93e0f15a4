//! Svyazka's domain: providers, bundles, runs, the engine that executes them, storage and the
//! upstream clients. Knows nothing of actix or apalis; the web and worker crates wrap it.

pub mod alerts;
pub mod auth;
pub mod bundles;
pub mod catalog;
pub mod config;
pub mod conversations;
pub mod crypto;
pub mod dashboard;
pub mod data_dir;
pub mod db;
pub mod delivery;
pub mod engine;
pub mod hook_log;
pub mod inbox;
pub mod ingest;
pub mod jobs;
pub mod locks;
pub mod messengers;
pub mod metrics;
pub mod pressure;
pub mod providers;
pub mod reachability;
pub mod reason;
pub mod references;
pub mod replies;
pub mod retailcrm;
pub mod runs;
pub mod sample_event;
pub mod shutdown;
pub mod sweep;
pub mod telegram_poll;
pub mod upstream;
pub mod work;
pub mod workers;

use std::sync::Arc;

use diesel::Connection;

pub use config::{Config, Mode};
pub use crypto::Crypto;
pub use db::Pool;

/// Everything a request handler or a job handler needs, cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub pool: Pool,
    pub crypto: Crypto,
    pub config: Arc<Config>,
    /// The one HTTP client for upstream calls; it enforces the outbound policy.
    pub http: upstream::HttpClient,
    pub providers: Arc<providers::cache::ProviderCache>,
    /// Running bundles, parsed once per edit (see `bundles::cache`).
    pub bundles: Arc<bundles::cache::BundleCache>,
    /// Set when the process is stopping: no new step starts (see `shutdown`).
    pub closing: shutdown::Closing,
    /// Queue mode: RetailCRM budgets shared by every process through Redis.
    pub rate_budget: Option<retailcrm::shared_budget::SharedBudget>,
    /// How busy this process' execution is; intake gives way when it is saturated.
    pub pressure: Arc<pressure::Pressure>,
    /// Embedded: the worker pulls new webhooks from the inbox (see `inbox::pull`).
    pub inbox_pull: Arc<inbox::pull::InboxPull>,
    /// One permit per pooled connection: database work waits here, on the async side, rather
    /// than in a blocking thread parked on the pool (which would grow the blocking pool, and
    /// with it the process' memory, to hundreds of threads under a burst).
    db_slots: Arc<tokio::sync::Semaphore>,
    /// Run state written by many runs at once shares commits (see `db::group`).
    group: db::group::GroupCommit,
    /// Embedded: database calls take turns in arrival order (see `db::gate`).
    gate: Option<db::gate::WriteGate>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Provider(#[from] providers::ProviderError),
    #[error("redis address: {0}")]
    Redis(String),
}

impl Core {
    /// Opens (and migrates) the database and loads the secret key. Provider secrets stored
    /// in the old format are re-encrypted here, before anything reads them.
    pub fn start(config: Config) -> Result<Self, StartError> {
        data_dir::prepare(&config).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let crypto = match &config.secret_key {
            Some(k) => Crypto::from_base64(k)?,
            None => Crypto::load_or_create(&config.data_dir)?,
        };
        let pool = db::connect(&config.mode, config.db_pool_size)?;
        {
            let mut conn = db::checkout(&pool)?;
            let upgraded = providers::upgrade_legacy_secrets(&mut conn, &crypto)?;
            if upgraded > 0 {
                tracing::info!(upgraded, "provider secrets re-encrypted with a derived key");
            }
        }
        let slots = usize::try_from(config.db_pool_size).unwrap_or(16);
        let rate_budget = match &config.mode {
            Mode::Queue { redis_url, .. } => Some(
                retailcrm::shared_budget::SharedBudget::new(redis_url, &config.queue_name)
                    .map_err(|e| StartError::Redis(e.to_string()))?,
            ),
            Mode::Embedded { .. } => None,
        };
        let db_slots = Arc::new(tokio::sync::Semaphore::new(slots));
        let lanes = if config.is_embedded() { 1 } else { 2 };
        let gate = config.is_embedded().then(db::gate::WriteGate::default);
        let group =
            db::group::GroupCommit::start(pool.clone(), db_slots.clone(), gate.clone(), lanes);
        Ok(Core {
            pool,
            crypto,
            http: upstream::HttpClient::new(
                config.upstream_timeout,
                upstream::OutboundPolicy {
                    allow_loopback: config.dev_allow_loopback,
                },
            ),
            config: Arc::new(config),
            providers: Arc::default(),
            bundles: Arc::default(),
            closing: shutdown::Closing::default(),
            rate_budget,
            pressure: Arc::default(),
            inbox_pull: Arc::default(),
            db_slots,
            group,
            gate,
        })
    }

    /// Runs blocking diesel work off the async runtime.
    pub async fn db<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut db::AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<db::DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        // The semaphore is never closed, so acquiring only waits.
        let slot = self.db_slots.clone().acquire_owned().await;
        let turn = match &self.gate {
            Some(g) => Some(g.enter().await),
            None => None,
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _turn = turn;
            let mut conn = db::checkout(&pool)?;
            let res = f(&mut conn);
            if res.is_err() {
                conn.check_after_error();
            }
            conn.touch();
            res
        })
        .await
        .unwrap_or_else(|e| {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic())
            }
            // Cancelled: a task still running while the runtime shuts down (a reply's
            // delivery that outlived its request, say) gets an error rather than a panic.
            Err(db::DbError::Cancelled.into())
        })
    }

    /// Like [`Core::db`], in a transaction, for a write of run state that may share that
    /// transaction with other runs' (see `db::group`); `f` may be called twice, should its
    /// group fail.
    pub async fn grouped<T, F>(&self, f: F) -> Result<T, db::DbError>
    where
        F: Fn(&mut db::AnyConnection) -> Result<T, db::DbError> + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let shared = f.clone();
        match self.group.write(move |c| shared(c)).await {
            Some(res) => res,
            None => {
                self.db(move |c| c.transaction::<_, db::DbError, _>(|c| f(c)))
                    .await
            }
        }
    }

    /// A provider by id, from this process' short-lived cache or the database.
    pub async fn provider(
        &self,
        id: i64,
    ) -> Result<Arc<providers::Provider>, providers::ProviderError> {
        if let Some(p) = self.providers.get(id) {
            return Ok(p);
        }
        let p = self.db(move |c| providers::get(c, id)).await?;
        Ok(self.providers.put(p))
    }

    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(60))
    }
}
