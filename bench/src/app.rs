//! The app under test as separate processes (`svyazka`, `svyazka-worker`), its throwaway
//! database and queue, and how the harness sets it up: admin and providers through the HTTP
//! forms, the bundle directly in its database through svyazka-core.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::prelude::*;
use svyazka_core::bundles::{self, BundleState, NewBundle, Step, Value};
use svyazka_core::db::schema::{inbox, runs};
use svyazka_core::db::{AnyConnection, DbError, Pool};

use crate::procs::{Proc, Sample};

pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
pub const ADMIN: &str = "bench";
pub const PASSWORD: &str = "bench password 12345";
pub const CRM_KEY: &str = "bench-crm-key-0123456789";
pub const CRM_SITE: &str = "shop";
pub const WA_INSTANCE: &str = "1101";
pub const WA_TOKEN: &str = "bench-wa-token-0123456789";
pub const TEMPLATE: &str = "Здравствуйте, {{ first_name }}!";

/// Release binaries of the app.
#[derive(Debug, Clone)]
pub struct Bins {
    pub web: PathBuf,
    pub worker: PathBuf,
}

/// PostgreSQL (admin URL, a database we may create databases from) and Redis.
#[derive(Debug, Clone)]
pub struct Services {
    pub pg_admin_url: String,
    pub redis_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// SQLite, worker inside the web process.
    Embedded,
    /// PostgreSQL + Redis, web only enqueues, `workers` worker processes.
    Queue { workers: usize },
}

/// A PostgreSQL database that lives for one scenario.
pub struct PgDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

pub fn unique_name(prefix: &str) -> String {
    let token: String = svyazka_core::crypto::random_token(8)
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { 'x' })
        .collect();
    format!("{prefix}_{token}")
}

impl PgDb {
    pub fn create(admin_url: &str, prefix: &str) -> anyhow::Result<PgDb> {
        let name = unique_name(prefix);
        let mut admin = diesel::PgConnection::establish(admin_url)
            .with_context(|| format!("connecting to {admin_url}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&name);
        Ok(PgDb {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Deletes the queue's Redis keys when dropped.
struct RedisQueue {
    url: String,
    name: String,
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(3)) else {
            return;
        };
        let keys: Vec<String> = match redis::cmd("KEYS")
            .arg(format!("{}*", self.name))
            .query(&mut conn)
        {
            Ok(k) => k,
            Err(_) => return,
        };
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
        }
    }
}

/// Removes terminal colour sequences (`ESC [ … letter`) that the app's log lines may carry.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The app's processes and what the harness needs to talk to it. Field order is drop order:
/// processes stop before their database and queue are removed.
pub struct App {
    pub addr: SocketAddr,
    pub base: String,
    pub web: Proc,
    pub workers: Vec<Proc>,
    http: reqwest::Client,
    core_mode: svyazka_core::Mode,
    pool: Option<Pool>,
    _redis: Option<RedisQueue>,
    _pg: Option<PgDb>,
    _dir: tempfile::TempDir,
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    web: &mut Proc,
    timeout: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        web.check_alive()?;
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > until {
            bail!(
                "the app did not become ready in {timeout:?}; log tail:\n{}",
                web.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn extract<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(&html[from..to])
}

fn unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

impl App {
    pub async fn start(
        bins: &Bins,
        layout: Layout,
        services: Option<&Services>,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<App> {
        let dir = tempfile::Builder::new()
            .prefix("svyazka-bench-")
            .tempdir()?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let base = format!("http://{addr}");
        let mut env: Vec<(String, String)> = vec![
            (
                "SVYAZKA_DATA_DIR".into(),
                dir.path().join("data").display().to_string(),
            ),
            ("SVYAZKA_BIND".into(), addr.to_string()),
            ("SVYAZKA_PUBLIC_URL".into(), base.clone()),
            // The fakes listen on loopback over http, which only the development setting allows.
            ("SVYAZKA_DEV_ALLOW_LOOPBACK".into(), "true".into()),
            // Plain log lines in the saved logs.
            ("NO_COLOR".into(), "1".into()),
        ];
        let (pg, redis, core_mode) = match layout {
            Layout::Embedded => (
                None,
                None,
                svyazka_core::Mode::Embedded {
                    db_path: dir.path().join("data").join("svyazka.db"),
                },
            ),
            Layout::Queue { .. } => {
                let s = services.ok_or_else(|| anyhow!("queue mode needs PostgreSQL and Redis"))?;
                let pg = PgDb::create(&s.pg_admin_url, "svz_bench")?;
                let queue = pg.name.clone();
                env.extend([
                    ("DATABASE_URL".to_string(), pg.url.clone()),
                    ("REDIS_URL".to_string(), s.redis_url.clone()),
                    ("SVYAZKA_QUEUE".to_string(), queue.clone()),
                    ("SVYAZKA_SECRET_KEY".to_string(), SECRET_KEY.to_string()),
                    ("SVYAZKA_EMBEDDED_WORKER".to_string(), "false".to_string()),
                ]);
                let mode = svyazka_core::Mode::Queue {
                    database_url: pg.url.clone(),
                    redis_url: s.redis_url.clone(),
                };
                (
                    Some(pg),
                    Some(RedisQueue {
                        url: s.redis_url.clone(),
                        name: queue,
                    }),
                    mode,
                )
            }
        };
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_string(), (*v).to_string()));
        }
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut web = Proc::spawn("web", &bins.web, &[], &env, dir.path())?;
        wait_ready(&http, &base, &mut web, Duration::from_secs(60)).await?;
        let mut workers = Vec::new();
        if let Layout::Queue { workers: n } = layout {
            for i in 1..=n {
                let mut w =
                    Proc::spawn(&format!("worker-{i}"), &bins.worker, &[], &env, dir.path())?;
                let until = Instant::now() + Duration::from_secs(60);
                while !std::fs::read_to_string(&w.log)
                    .unwrap_or_default()
                    .contains("consuming")
                {
                    w.check_alive()?;
                    if Instant::now() > until {
                        bail!("worker-{i} did not start; log tail:\n{}", w.log_tail(30));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                workers.push(w);
            }
        }
        Ok(App {
            addr,
            base,
            web,
            workers,
            http,
            core_mode,
            pool: None,
            _redis: redis,
            _pg: pg,
            _dir: dir,
        })
    }

    pub fn procs(&self) -> Vec<&Proc> {
        std::iter::once(&self.web)
            .chain(self.workers.iter())
            .collect()
    }

    pub fn samples(&self) -> anyhow::Result<Vec<Sample>> {
        self.procs().iter().map(|p| p.sample()).collect()
    }

    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.web.check_alive()?;
        for w in &mut self.workers {
            w.check_alive()?;
        }
        Ok(())
    }

    async fn csrf(&self, page: &str) -> anyhow::Result<String> {
        let html = self
            .http
            .get(format!("{}{page}", self.base))
            .send()
            .await?
            .text()
            .await?;
        extract(&html, r#"<meta name="csrf-token" content=""#, "\"")
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no csrf token on {page}"))
    }

    async fn submit(
        &self,
        page: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let token = self.csrf(page).await?;
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        Ok(self
            .http
            .post(format!("{}{page}", self.base))
            .form(&all)
            .send()
            .await?)
    }

    pub async fn setup_admin(&self) -> anyhow::Result<()> {
        // The web process printed the set-up code and wrote it to its data directory.
        let code_file = svyazka_core::auth::setup_code::file_path(&self._dir.path().join("data"));
        let code = std::fs::read_to_string(&code_file)
            .map_err(|e| anyhow!("set-up code {}: {e}", code_file.display()))?;
        let r = self
            .submit(
                "/setup",
                &[
                    ("setup_code", code.trim()),
                    ("username", ADMIN),
                    ("password", PASSWORD),
                    ("password_repeat", PASSWORD),
                ],
            )
            .await?;
        if r.status().as_u16() != 303 {
            bail!(
                "setup answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Adds a provider through its form; returns its id from the redirect.
    pub async fn add_provider(&self, kind: &str, fields: &[(&str, &str)]) -> anyhow::Result<i64> {
        let r = self
            .submit(&format!("/providers/new/{kind}"), fields)
            .await?;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match location {
            Some(loc) if status == 303 => loc
                .rsplit('/')
                .next()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| anyhow!("unexpected redirect {loc} after adding {kind}")),
            _ => bail!(
                "adding {kind} failed ({status}): {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }

    /// The webhook path shown on the provider's page (`<pre id="hook-url">`), without the base.
    pub async fn hook_path(&self, provider: i64) -> anyhow::Result<String> {
        let html = self
            .http
            .get(format!("{}/providers/{provider}", self.base))
            .send()
            .await?
            .text()
            .await?;
        let url = extract(&html, r#"<pre id="hook-url">"#, "</pre>")
            .map(unescape)
            .ok_or_else(|| anyhow!("no hook-url on /providers/{provider}"))?;
        let path = url
            .strip_prefix(&self.base)
            .map(str::to_string)
            .unwrap_or(url);
        if !path.starts_with("/hooks/") {
            bail!("unexpected webhook URL {path}");
        }
        Ok(path)
    }

    /// The machine, database and queue counters now (see `profile`); database counters only in
    /// queue mode.
    pub async fn host_sample(&mut self) -> anyhow::Result<crate::profile::HostSample> {
        let db = match self.core_mode {
            svyazka_core::Mode::Queue { .. } => {
                self.db(|c| match c {
                    AnyConnection::Postgresql(pg) => Ok(crate::profile::db_counters(pg)?),
                    AnyConnection::Sqlite(_) => Ok(Default::default()),
                })
                .await?
            }
            svyazka_core::Mode::Embedded { .. } => Default::default(),
        };
        let redis = self._redis.as_ref().map(|r| r.url.clone());
        Ok(crate::profile::sample(db, redis.as_deref()).await)
    }

    fn pool(&mut self) -> anyhow::Result<Pool> {
        if let Some(p) = &self.pool {
            return Ok(p.clone());
        }
        let p = svyazka_core::db::connect(&self.core_mode, 2)?;
        self.pool = Some(p.clone());
        Ok(p)
    }

    pub async fn db<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = self.pool()?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
            let mut c = pool.get().map_err(DbError::from)?;
            Ok(f(&mut c)?)
        })
        .await?
    }

    /// flow2: RetailCRM "new_deal" with status `new` → ChatAPI send_message with a template.
    pub async fn create_flow2_bundle(&mut self, crm: i64, wa: i64) -> anyhow::Result<i64> {
        let step = Step {
            action: "send_message".into(),
            params: [
                (
                    "recipient".to_string(),
                    Value::EventField {
                        field: "phone".into(),
                    },
                ),
                (
                    "text".to_string(),
                    Value::Template {
                        text: TEMPLATE.into(),
                    },
                ),
            ]
            .into_iter()
            .collect(),
        };
        let new = NewBundle {
            name: "Benchmark: new order → WhatsApp".into(),
            source_provider_id: crm,
            event_type: "new_deal".into(),
            target_provider_id: wa,
            steps: vec![step],
        };
        self.db(move |c| {
            let id = bundles::create(c, &new)?;
            bundles::set_status_filter(c, id, &["new".to_string()])?;
            bundles::set_state(c, id, BundleState::Running)?;
            Ok(id)
        })
        .await
    }

    /// flow1 (the guide's first bundle): ChatAPI incoming message → New contact → New deal →
    /// New message (MG chat).
    pub async fn create_flow1_bundle(&mut self, wa: i64, crm: i64) -> anyhow::Result<i64> {
        let event = |f: &str| Value::EventField { field: f.into() };
        let output = |step: usize, f: &str| Value::StepOutput {
            step,
            field: f.into(),
        };
        let step = |action: &str, params: Vec<(&str, Value)>| Step {
            action: action.into(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        let steps = vec![
            step(
                "new_contact",
                vec![
                    ("phone", event("sender_id")),
                    ("name", event("sender_name")),
                ],
            ),
            step(
                "new_deal",
                vec![
                    ("phone", output(0, "contact_phone")),
                    ("contact_id", output(0, "contact_id")),
                ],
            ),
            step(
                "new_message",
                vec![
                    ("contact_id", output(0, "contact_id")),
                    ("text", event("text")),
                ],
            ),
        ];
        let new = NewBundle {
            name: "Benchmark: WhatsApp message → contact, deal, chat".into(),
            source_provider_id: wa,
            event_type: "incoming_message".into(),
            target_provider_id: crm,
            steps,
        };
        self.db(move |c| {
            let id = bundles::create(c, &new)?;
            bundles::set_state(c, id, BundleState::Running)?;
            Ok(id)
        })
        .await
    }

    /// Runs and inbox rows by status.
    pub async fn status_counts(
        &mut self,
    ) -> anyhow::Result<(BTreeMap<String, i64>, BTreeMap<String, i64>)> {
        self.db(|c| {
            let r: Vec<(String, i64)> = runs::table
                .group_by(runs::status)
                .select((runs::status, diesel::dsl::count_star()))
                .load(c)?;
            let i: Vec<(String, i64)> = inbox::table
                .group_by(inbox::status)
                .select((inbox::status, diesel::dsl::count_star()))
                .load(c)?;
            Ok((r.into_iter().collect(), i.into_iter().collect()))
        })
        .await
    }

    /// Distinct error texts of failed runs (at most 5), for the report.
    pub async fn run_errors(&mut self) -> anyhow::Result<Vec<String>> {
        self.db(|c| {
            let e: Vec<Option<String>> = runs::table
                .filter(runs::status.eq("failed"))
                .select(runs::error)
                .distinct()
                .limit(5)
                .load(c)?;
            Ok(e.into_iter().flatten().collect())
        })
        .await
    }

    /// Jobs the sweeper pushed again (sum of `count=` of its "sweeper re-enqueues work" lines)
    /// and the number of WARN/ERROR lines, over every process log.
    pub fn log_summary(&self) -> (u64, u64) {
        let mut reenqueued = 0;
        let mut warnings = 0;
        for p in self.procs() {
            let text = strip_ansi(&std::fs::read_to_string(&p.log).unwrap_or_default());
            for line in text.lines() {
                if line.contains("sweeper re-enqueues work") {
                    reenqueued += line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("count="))
                        .and_then(|n| {
                            n.trim_matches(|c: char| !c.is_ascii_digit())
                                .parse::<u64>()
                                .ok()
                        })
                        .unwrap_or(0);
                }
                if line.contains(" WARN ") || line.contains(" ERROR ") {
                    warnings += 1;
                }
            }
        }
        (reenqueued, warnings)
    }

    /// Copies the process logs to `dir/<slug>-<process>.log` (the temp directory goes away).
    pub fn save_logs(&self, dir: &std::path::Path, slug: &str) {
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        for p in self.procs() {
            let _ = std::fs::copy(&p.log, dir.join(format!("{slug}-{}.log", p.name)));
        }
    }

    /// Stops every process (web last, so workers do not lose their database mid-job).
    pub fn stop(mut self) {
        self.pool = None;
        for w in &mut self.workers {
            w.stop(Duration::from_secs(5));
        }
        self.web.stop(Duration::from_secs(5));
    }
}
