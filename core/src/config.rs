//! Settings from the environment (and an optional env-style file), read once at start.
//!
//! Every setting is one `SVYAZKA_*` variable (plus the conventional `DATABASE_URL` and
//! `REDIS_URL`); a value that cannot be read stops the process with a message naming it.

use std::path::PathBuf;
use std::time::Duration;

/// Where the data lives and how work travels from the web process to workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// SQLite file + apalis SQLite queue, worker inside the web process.
    Embedded { db_path: PathBuf },
    /// PostgreSQL + Redis, any number of `svyazka-worker` processes.
    Queue {
        database_url: String,
        redis_url: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub bind: String,
    /// Public base URL without a trailing slash; webhook addresses are built from it.
    pub public_url: String,
    pub data_dir: PathBuf,
    /// Base64 of 32 bytes; `None` in embedded mode means "generate under data_dir".
    pub secret_key: Option<String>,
    pub worker_concurrency: usize,
    /// Redis key prefix / apalis queue name, so several installs (or tests) can share one Redis.
    pub queue_name: String,
    pub poll_interval: Duration,
    pub sweep_interval: Duration,
    /// A row marked enqueued this long ago but still waiting is assumed to have lost its queue
    /// message and is enqueued again. Long enough that a backlog is not enqueued twice, short
    /// enough that a push lost in a queue outage is retried soon after.
    pub requeue_grace: Duration,
    /// How long a claimed run or inbox item belongs to one worker before others may take it.
    pub lease: Duration,
    pub max_attempts: i32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Run the worker inside the web process (default in embedded mode only).
    pub embedded_worker: bool,
    /// Requests per second per RetailCRM key this process may spend.
    pub retailcrm_rps: u32,
    pub db_pool_size: u32,
    /// Per-request timeout of calls to RetailCRM, MG and the messengers. A send that times out
    /// is checked with the gateway before it is retried.
    pub upstream_timeout: Duration,
    /// Work due this long with no live worker is reported as a stall (home page, log).
    pub stall_after: Duration,
    /// On SIGTERM a worker finishes the steps in flight for at most this long; runs not done by
    /// then are released for another worker.
    pub shutdown_grace: Duration,
    /// Development only: let upstream clients call loopback addresses over plain http (the
    /// bundled fakes). Off in production, where every call is https to a public address.
    pub dev_allow_loopback: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the real client (sign-in throttling).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A session unused this long is over.
    pub session_idle: Duration,
    /// A session is over this long after sign-in, however active.
    pub session_absolute: Duration,
    /// The same RetailCRM trigger (order, event, status) again within this long, with no other
    /// trigger of the order in between, is RetailCRM repeating itself and runs nothing; later
    /// it runs again.
    pub trigger_repeat_window: Duration,
    /// The bearer token Prometheus presents at `/metrics`; without it, `/metrics` does not exist.
    pub metrics_token: Option<String>,
    /// Where a `svyazka worker` process serves its own `/metrics` (it serves nothing else).
    pub worker_metrics_bind: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// A source of variables: the process environment in production, a map in tests.
pub trait Vars {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Vars for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_string())
    }
}

impl Vars for std::collections::HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        std::collections::HashMap::get(self, key).cloned()
    }
}

fn parse_num<T: std::str::FromStr>(
    vars: &dyn Vars,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match vars.get(var) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| err(var, format!("expected a number, got {v:?}"))),
    }
}

fn parse_bool(vars: &dyn Vars, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match vars.get(var).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "yes") => Ok(true),
        Some("0" | "false" | "no") => Ok(false),
        Some(v) => Err(err(var, format!("expected true or false, got {v:?}"))),
    }
}

/// Comma-separated addresses or networks: `10.0.0.1, 172.16.0.0/12, ::1`.
fn parse_networks(vars: &dyn Vars, var: &'static str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(list) = vars.get(var) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| err(var, format!("expected addresses or networks such as 10.0.0.1 or 172.16.0.0/12, got {s:?}")))
        })
        .collect()
}

/// A secret someone must present: long enough not to be guessed.
fn parse_token(vars: &dyn Vars, var: &'static str) -> Result<Option<String>, ConfigError> {
    match vars.get(var).map(|t| t.trim().to_string()) {
        None => Ok(None),
        Some(t) if t.len() < 16 => Err(err(
            var,
            "must be at least 16 characters (for example: openssl rand -hex 16)",
        )),
        Some(t) => Ok(Some(t)),
    }
}

fn parse_minutes(
    vars: &dyn Vars,
    var: &'static str,
    default_minutes: u64,
) -> Result<Duration, ConfigError> {
    let m = parse_num(vars, var, default_minutes)?;
    if m == 0 {
        return Err(err(var, "must be at least 1"));
    }
    Ok(Duration::from_secs(m.saturating_mul(60)))
}

fn parse_ms(vars: &dyn Vars, var: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
    parse_num(vars, var, default_ms).map(Duration::from_millis)
}

impl Config {
    /// Reads `SVYAZKA_CONFIG` (default `./svyazka.env`, if present) into the environment first;
    /// variables already set win over the file.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var("SVYAZKA_CONFIG").ok();
        match &file {
            Some(path) => dotenvy::from_path(path)
                .map_err(|e| err("SVYAZKA_CONFIG", format!("cannot read {path}: {e}")))?,
            None => {
                if let Err(e) = dotenvy::from_filename("svyazka.env")
                    && !e.not_found()
                {
                    return Err(err(
                        "SVYAZKA_CONFIG",
                        format!("cannot read ./svyazka.env: {e}"),
                    ));
                }
            }
        }
        Self::from_vars(&ProcessEnv)
    }

    pub fn from_vars(vars: &dyn Vars) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(
            vars.get("SVYAZKA_DATA_DIR")
                .unwrap_or_else(|| "./data".into()),
        );
        let mode = match (vars.get("DATABASE_URL"), vars.get("REDIS_URL")) {
            (None, None) => Mode::Embedded {
                db_path: data_dir.join("svyazka.db"),
            },
            (None, Some(_)) => {
                return Err(err(
                    "DATABASE_URL",
                    "REDIS_URL is set, so queue mode needs a postgres:// DATABASE_URL too",
                ));
            }
            (Some(db), redis) => {
                if let Some(path) = db
                    .strip_prefix("sqlite://")
                    .or_else(|| db.strip_prefix("sqlite:"))
                {
                    if redis.is_some() {
                        return Err(err(
                            "REDIS_URL",
                            "queue mode needs PostgreSQL; unset REDIS_URL for SQLite",
                        ));
                    }
                    if path.is_empty() {
                        return Err(err("DATABASE_URL", "sqlite: URL without a file path"));
                    }
                    Mode::Embedded {
                        db_path: PathBuf::from(path),
                    }
                } else if db.starts_with("postgres://") || db.starts_with("postgresql://") {
                    url::Url::parse(&db)
                        .map_err(|e| err("DATABASE_URL", format!("not a valid URL: {e}")))?;
                    let redis_url = redis.ok_or_else(|| {
                        err(
                            "REDIS_URL",
                            "queue mode (postgres DATABASE_URL) needs REDIS_URL",
                        )
                    })?;
                    let parsed = url::Url::parse(&redis_url)
                        .map_err(|e| err("REDIS_URL", format!("not a valid URL: {e}")))?;
                    if !matches!(parsed.scheme(), "redis" | "rediss") {
                        return Err(err("REDIS_URL", "expected redis://host:port[/db]"));
                    }
                    Mode::Queue {
                        database_url: db,
                        redis_url,
                    }
                } else {
                    return Err(err(
                        "DATABASE_URL",
                        "expected postgres://… or sqlite://path",
                    ));
                }
            }
        };
        let bind = vars
            .get("SVYAZKA_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        bind.parse::<std::net::SocketAddr>().map_err(|_| {
            err(
                "SVYAZKA_BIND",
                format!("expected host:port such as 127.0.0.1:8080, got {bind:?}"),
            )
        })?;
        let public_url = match vars.get("SVYAZKA_PUBLIC_URL") {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .map_err(|e| err("SVYAZKA_PUBLIC_URL", format!("not a valid URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(err("SVYAZKA_PUBLIC_URL", "expected http:// or https://"));
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!(
                "http://{}",
                bind.replace("0.0.0.0", "localhost")
                    .replace("127.0.0.1", "localhost")
            ),
        };
        let embedded = matches!(mode, Mode::Embedded { .. });
        let secret_key = vars.get("SVYAZKA_SECRET_KEY");
        if !embedded && secret_key.is_none() {
            return Err(err(
                "SVYAZKA_SECRET_KEY",
                "required in queue mode (all processes must share it); generate one with `openssl rand -base64 32`",
            ));
        }
        let embedded_worker = parse_bool(vars, "SVYAZKA_EMBEDDED_WORKER", embedded)?;
        let worker_concurrency = parse_num(vars, "SVYAZKA_WORKER_CONCURRENCY", 16usize)?;
        if worker_concurrency == 0 {
            return Err(err("SVYAZKA_WORKER_CONCURRENCY", "must be at least 1"));
        }
        let max_attempts = parse_num(vars, "SVYAZKA_MAX_ATTEMPTS", 8i32)?;
        if max_attempts < 1 {
            return Err(err("SVYAZKA_MAX_ATTEMPTS", "must be at least 1"));
        }
        Ok(Config {
            mode,
            bind,
            public_url,
            data_dir,
            secret_key,
            worker_concurrency,
            queue_name: vars
                .get("SVYAZKA_QUEUE")
                .unwrap_or_else(|| "svyazka".into()),
            poll_interval: parse_ms(vars, "SVYAZKA_POLL_MS", 100)?,
            sweep_interval: parse_ms(vars, "SVYAZKA_SWEEP_MS", 1000)?,
            requeue_grace: parse_ms(vars, "SVYAZKA_REQUEUE_GRACE_MS", 30_000)?,
            lease: parse_ms(vars, "SVYAZKA_LEASE_MS", 60_000)?,
            max_attempts,
            backoff_base: parse_ms(vars, "SVYAZKA_BACKOFF_MS", 1000)?,
            backoff_max: parse_ms(vars, "SVYAZKA_BACKOFF_MAX_MS", 300_000)?,
            stall_after: parse_ms(vars, "SVYAZKA_STALL_WARN_MS", 60_000)?,
            shutdown_grace: parse_ms(vars, "SVYAZKA_SHUTDOWN_GRACE_MS", 30_000)?,
            trigger_repeat_window: parse_ms(vars, "SVYAZKA_TRIGGER_REPEAT_MS", 600_000)?,
            metrics_token: parse_token(vars, "SVYAZKA_METRICS_TOKEN")?,
            worker_metrics_bind: match vars.get("SVYAZKA_WORKER_METRICS_BIND") {
                None => None,
                Some(b) => Some(b.trim().parse().map_err(|_| {
                    err(
                        "SVYAZKA_WORKER_METRICS_BIND",
                        format!("expected host:port such as 0.0.0.0:9464, got {b:?}"),
                    )
                })?),
            },
            embedded_worker,
            retailcrm_rps: parse_num(vars, "SVYAZKA_RETAILCRM_RPS", 10u32)?,
            db_pool_size: parse_num(vars, "SVYAZKA_DB_POOL", 16u32)?,
            upstream_timeout: parse_ms(vars, "SVYAZKA_UPSTREAM_TIMEOUT_MS", 15_000)?,
            dev_allow_loopback: parse_bool(vars, "SVYAZKA_DEV_ALLOW_LOOPBACK", false)?,
            trusted_proxies: parse_networks(vars, "SVYAZKA_TRUSTED_PROXIES")?,
            session_idle: parse_minutes(vars, "SVYAZKA_SESSION_IDLE_MINUTES", 120)?,
            session_absolute: parse_minutes(vars, "SVYAZKA_SESSION_MAX_MINUTES", 12 * 60)?,
        })
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self.mode, Mode::Embedded { .. })
    }

    /// Backoff before attempt `attempt + 1`: base × 2^(attempt-1), capped.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_by_default() {
        let c = Config::from_vars(&[("SVYAZKA_DATA_DIR", "/tmp/x")]).expect("config");
        assert_eq!(
            c.mode,
            Mode::Embedded {
                db_path: PathBuf::from("/tmp/x/svyazka.db")
            }
        );
        assert!(c.embedded_worker);
        assert_eq!(c.public_url, "http://localhost:8080");
    }

    #[test]
    fn queue_mode_needs_redis_and_secret() {
        let e = Config::from_vars(&[("DATABASE_URL", "postgres://u@h/db")]).expect_err("no redis");
        assert_eq!(e.var, "REDIS_URL");
        let e = Config::from_vars(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("REDIS_URL", "redis://h"),
        ])
        .expect_err("no secret");
        assert_eq!(e.var, "SVYAZKA_SECRET_KEY");
        let c = Config::from_vars(&[
            ("DATABASE_URL", "postgres://u@h/db"),
            ("REDIS_URL", "redis://h"),
            ("SVYAZKA_SECRET_KEY", "k"),
        ])
        .expect("queue");
        assert!(!c.is_embedded());
        assert!(!c.embedded_worker);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        assert_eq!(
            Config::from_vars(&[("DATABASE_URL", "mysql://x")])
                .expect_err("db")
                .var,
            "DATABASE_URL"
        );
        assert_eq!(
            Config::from_vars(&[("SVYAZKA_BIND", "nope")])
                .expect_err("bind")
                .var,
            "SVYAZKA_BIND"
        );
        assert_eq!(
            Config::from_vars(&[("SVYAZKA_POLL_MS", "fast")])
                .expect_err("poll")
                .var,
            "SVYAZKA_POLL_MS"
        );
    }

    #[test]
    fn security_settings_default_to_strict() {
        let c = Config::from_vars(&[("SVYAZKA_DATA_DIR", "/tmp/x")]).expect("config");
        assert!(!c.dev_allow_loopback);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.session_idle, Duration::from_secs(120 * 60));
        assert_eq!(c.session_absolute, Duration::from_secs(12 * 3600));
        let c = Config::from_vars(&[
            ("SVYAZKA_DEV_ALLOW_LOOPBACK", "true"),
            ("SVYAZKA_TRUSTED_PROXIES", "10.0.0.1, 172.16.0.0/12,::1"),
        ])
        .expect("config");
        assert!(c.dev_allow_loopback);
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(
            c.trusted_proxies
                .iter()
                .any(|n| n.contains(&"172.20.1.1".parse::<std::net::IpAddr>().expect("ip")))
        );
        for (var, value) in [
            ("SVYAZKA_DEV_ALLOW_LOOPBACK", "maybe"),
            ("SVYAZKA_TRUSTED_PROXIES", "proxy.local"),
            ("SVYAZKA_SESSION_IDLE_MINUTES", "0"),
        ] {
            assert_eq!(Config::from_vars(&[(var, value)]).expect_err(var).var, var);
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = Config::from_vars(&[
            ("SVYAZKA_BACKOFF_MS", "100"),
            ("SVYAZKA_BACKOFF_MAX_MS", "500"),
        ])
        .expect("c");
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(3), Duration::from_millis(400));
        assert_eq!(c.backoff(4), Duration::from_millis(500));
    }
}
