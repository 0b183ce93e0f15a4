//! Svyazka's domain: providers, bundles, runs, the engine that executes them, storage and the
//! upstream clients. Knows nothing of actix or apalis; the web and worker crates wrap it.

pub mod auth;
pub mod bundles;
pub mod catalog;
pub mod config;
pub mod crypto;
pub mod db;
pub mod engine;
pub mod inbox;
pub mod ingest;
pub mod jobs;
pub mod messengers;
pub mod providers;
pub mod references;
pub mod retailcrm;
pub mod runs;
pub mod sweep;
pub mod telegram_poll;
pub mod upstream;
pub mod work;

use std::sync::Arc;

pub use config::{Config, Mode};
pub use crypto::Crypto;
pub use db::Pool;

/// Everything a request handler or a job handler needs, cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub pool: Pool,
    pub crypto: Crypto,
    pub config: Arc<Config>,
    pub http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
}

impl Core {
    /// Opens (and migrates) the database and loads the secret key.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let crypto = match &config.secret_key {
            Some(k) => Crypto::from_base64(k)?,
            None => Crypto::load_or_create(&config.data_dir)?,
        };
        let pool = db::connect(&config.mode, config.db_pool_size)?;
        Ok(Core {
            pool,
            crypto,
            http: upstream::http_client(std::time::Duration::from_secs(15)),
            config: Arc::new(config),
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
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(db::DbError::from)?;
            f(&mut conn)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(60))
    }
}
