//! `svyazka health` and `svyazka health worker`: container health checks that need nothing in
//! the image but this binary. The web check asks the local /readyz; the worker check looks for
//! a live heartbeat of a worker on this host (its container).

use std::time::Duration;

use svyazka_core::Config;
use svyazka_core::workers;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    #[error(transparent)]
    Config(#[from] svyazka_core::config::ConfigError),
    #[error("{0}")]
    Db(#[from] svyazka_core::db::DbError),
    #[error("GET /readyz on {addr}: {reason}")]
    Web { addr: String, reason: String },
    #[error("no live worker on host {0}")]
    NoWorker(String),
}

pub async fn run(role: Option<&str>) -> Result<(), HealthCheckError> {
    let config = Config::from_env()?;
    match role {
        Some("worker") => worker(config).await,
        _ => web(&config).await,
    }
}

async fn web(config: &Config) -> Result<(), HealthCheckError> {
    // A server bound to every interface answers on loopback.
    let addr = config
        .bind
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let fail = |reason: String| HealthCheckError::Web {
        addr: addr.clone(),
        reason,
    };
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .map_err(|_| fail("timed out".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(fail(status))
    }
}

async fn worker(config: Config) -> Result<(), HealthCheckError> {
    let host = workers::hostname();
    let h = host.clone();
    let alive = tokio::task::spawn_blocking(move || {
        let mut conn = svyazka_core::db::open(&config.mode)?;
        workers::alive_on(&mut conn, &h)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    if alive {
        Ok(())
    } else {
        Err(HealthCheckError::NoWorker(host))
    }
}
