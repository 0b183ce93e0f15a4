//! Test harness: start the real app on a free port against a fresh database, talk to it over
//! HTTP with a cookie-keeping client.
//!
//! Backends: SQLite always; PostgreSQL + Redis when TEST_DATABASE_URL and TEST_REDIS_URL are
//! set (each test gets its own database and queue name). With SVYAZKA_REQUIRE_SERVICES=1 a
//! missing or unreachable service fails the test instead of skipping it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use diesel::Connection;
use diesel::RunQueryDsl;
use svyazka_app::Running;
use svyazka_core::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `SVYAZKA_LONG_FAULTS=1`: the fault tests run their long variants (10x the load; minutes,
/// not seconds). Off in CI.
pub fn long_faults() -> bool {
    std::env::var("SVYAZKA_LONG_FAULTS").is_ok_and(|v| v == "1")
}

fn required() -> bool {
    std::env::var("SVYAZKA_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The PostgreSQL/Redis URLs, or `None` to skip (panics when CI requires the services).
pub fn services() -> Option<(String, String)> {
    let db = std::env::var("TEST_DATABASE_URL").ok();
    let redis = std::env::var("TEST_REDIS_URL").ok();
    match (db, redis) {
        (Some(d), Some(r)) => Some((d, r)),
        _ if required() => {
            panic!("SVYAZKA_REQUIRE_SERVICES=1 but TEST_DATABASE_URL / TEST_REDIS_URL are not set")
        }
        _ => {
            eprintln!(
                "skipping PostgreSQL/Redis variant: TEST_DATABASE_URL / TEST_REDIS_URL not set"
            );
            None
        }
    }
}

/// A database that exists for one test and is dropped after it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        redis_url: String,
        _dir: tempfile::TempDir,
    },
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::Sqlite(tempfile::tempdir().expect("tempdir"))),
            Backend::Postgres => {
                let (admin_url, redis_url) = services()?;
                let name = format!(
                    "svz_test_{}",
                    svyazka_core::crypto::random_token(8)
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL unreachable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create database");
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL");
                url.set_path(&name);
                Some(TestDb::Postgres {
                    admin_url,
                    name,
                    url: url.to_string(),
                    redis_url,
                    _dir: tempfile::tempdir().expect("tempdir"),
                })
            }
        }
    }

    pub fn vars(&self) -> HashMap<String, String> {
        let mut v = HashMap::new();
        match self {
            TestDb::Sqlite(dir) => {
                v.insert("SVYAZKA_DATA_DIR".into(), dir.path().display().to_string());
            }
            TestDb::Postgres {
                url,
                redis_url,
                name,
                _dir,
                ..
            } => {
                v.insert("DATABASE_URL".into(), url.clone());
                v.insert("REDIS_URL".into(), redis_url.clone());
                v.insert("SVYAZKA_QUEUE".into(), name.clone());
                v.insert(
                    "SVYAZKA_SECRET_KEY".into(),
                    "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".into(),
                );
                v.insert("SVYAZKA_DATA_DIR".into(), _dir.path().display().to_string());
            }
        }
        // The fakes listen on loopback over http, which only the development setting allows.
        v.insert("SVYAZKA_DEV_ALLOW_LOOPBACK".into(), "true".into());
        v.insert("SVYAZKA_POLL_MS".into(), "20".into());
        v.insert("SVYAZKA_SWEEP_MS".into(), "200".into());
        v.insert("SVYAZKA_REQUEUE_GRACE_MS".into(), "2000".into());
        v.insert("SVYAZKA_BACKOFF_MS".into(), "100".into());
        v.insert("SVYAZKA_DB_POOL".into(), "8".into());
        v
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite(_) => Backend::Sqlite,
            TestDb::Postgres { .. } => Backend::Postgres,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = diesel::PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub running: Option<Running>,
    pub db: TestDb,
}

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    /// `None` when the backend's services are not configured (the test then returns early).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
        let db = TestDb::new(backend)?;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut vars = db.vars();
        vars.insert("SVYAZKA_BIND".into(), addr.to_string());
        vars.insert("SVYAZKA_PUBLIC_URL".into(), format!("http://{addr}"));
        if backend == Backend::Postgres {
            // One worker in the test process, so the queue-mode suite runs jobs without a second binary.
            vars.insert("SVYAZKA_EMBEDDED_WORKER".into(), "true".into());
        }
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let config = Config::from_vars(&vars).expect("config");
        let running = svyazka_app::start_on(config, listener)
            .await
            .expect("start app");
        Some(TestApp {
            base: format!("http://{addr}"),
            client: client(),
            running: Some(running),
            db,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn core(&self) -> &svyazka_core::Core {
        &self.running.as_ref().expect("running").state.core
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Reads the CSRF token the layout puts in `<meta name="csrf-token">` of `path`.
    pub async fn csrf(&self, path: &str) -> String {
        let (_, html) = self.get_html(path).await;
        extract_meta_csrf(&html).unwrap_or_else(|| panic!("no csrf token on {path}"))
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// POST with the CSRF token taken from the page at `form_page`.
    pub async fn submit(
        &self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let token = self.csrf(form_page).await;
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// The set-up code this app printed at start, from `setup-code` in its data directory.
    pub fn setup_code(&self) -> String {
        let dir = &self
            .running
            .as_ref()
            .expect("running")
            .state
            .core
            .config
            .data_dir;
        read_setup_code(dir)
    }

    pub async fn setup_admin(&self) {
        self.setup_admin_with_code(&self.setup_code()).await;
    }

    pub async fn setup_admin_with_code(&self, code: &str) {
        let r = self
            .submit(
                "/setup",
                "/setup",
                &[
                    ("setup_code", code),
                    ("username", ADMIN),
                    ("password", PASSWORD),
                    ("password_repeat", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303, "setup should redirect");
    }

    pub async fn logout(&self) {
        let r = self.submit("/providers", "/logout", &[]).await;
        assert_eq!(r.status().as_u16(), 303);
    }

    pub async fn login(&self) -> reqwest::Response {
        self.submit(
            "/login",
            "/login",
            &[("username", ADMIN), ("password", PASSWORD)],
        )
        .await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

pub fn read_setup_code(data_dir: &std::path::Path) -> String {
    let path = svyazka_core::auth::setup_code::file_path(data_dir);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("set-up code at {}: {e}", path.display()))
        .trim()
        .to_string()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        // Below the server's 5 s keep-alive: a request on a connection the server is closing
        // at that moment fails with "incomplete message" (a client race, not an app fault).
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .expect("client")
}

pub fn extract_meta_csrf(html: &str) -> Option<String> {
    let start = html.find(r#"<meta name="csrf-token" content=""#)?
        + r#"<meta name="csrf-token" content=""#.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Declares a test once and runs it on SQLite and on PostgreSQL + Redis.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::support::Backend::Postgres).await;
            }
        }
    };
}

/// The three fake upstreams, seeded with one working account each.
pub struct Fakes {
    pub crm: svyazka_testkit::retailcrm::FakeRetailCrm,
    pub wa: svyazka_testkit::chatapi::FakeChatApi,
    pub tg: svyazka_testkit::telegram::FakeTelegram,
    pub crm_base: String,
    pub wa_base: String,
    pub tg_base: String,
    _running: Vec<svyazka_testkit::server::Running>,
}

pub const CRM_KEY: &str = "crm-key-0123456789";
pub const WA_INSTANCE: &str = "1101";
pub const WA_TOKEN: &str = "wa-token-0123456789";
pub const TG_TOKEN: &str = "123456:tg-token-0123456789";

impl Fakes {
    pub fn start() -> Fakes {
        use svyazka_testkit::retailcrm::{ApiKey, FakeRetailCrm};
        let (crm, r1) = FakeRetailCrm::start().expect("crm fake");
        crm.add_site("shop", "Мой магазин");
        crm.add_key(ApiKey::selective(CRM_KEY, &["shop"]));
        // Tests fire bursts; the client's own limiter is what the rate-limit suite checks.
        crm.set_rate_limit(None);
        let (wa, r2) = svyazka_testkit::chatapi::FakeChatApi::start().expect("chatapi fake");
        wa.add_instance(WA_INSTANCE, WA_TOKEN);
        let (tg, r3) = svyazka_testkit::telegram::FakeTelegram::start().expect("telegram fake");
        tg.add_bot(TG_TOKEN, "svyazka_test_bot");
        Fakes {
            crm_base: r1.base_url(),
            wa_base: format!("{}/instance{WA_INSTANCE}", r2.base_url()),
            tg_base: r3.base_url(),
            crm,
            wa,
            tg,
            _running: vec![r1, r2, r3],
        }
    }
}

impl TestApp {
    /// Signs in a fresh admin (setup) for tests that are not about sign-in.
    pub async fn signed_in(backend: Backend) -> Option<TestApp> {
        let app = TestApp::spawn(backend).await?;
        app.setup_admin().await;
        Some(app)
    }

    /// Adds a provider through the form; returns its id (panics with the page on refusal).
    pub async fn add_provider(&self, kind: &str, fields: &[(&str, &str)]) -> i64 {
        let path = format!("/providers/new/{kind}");
        let r = self.submit(&path, &path, fields).await;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        match location {
            Some(loc) if status == 303 => loc.rsplit('/').next().unwrap().parse().unwrap(),
            _ => panic!(
                "adding {kind} failed ({status}): {}",
                r.text().await.unwrap()
            ),
        }
    }

    pub async fn add_retailcrm(&self, fakes: &Fakes) -> i64 {
        self.add_provider(
            "retailcrm",
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &fakes.crm_base),
                ("api_key", CRM_KEY),
            ],
        )
        .await
    }

    pub async fn add_chatapi(&self, fakes: &Fakes) -> i64 {
        self.add_provider(
            "chatapi",
            &[
                ("name", "WhatsApp магазина"),
                ("api_url", &fakes.wa_base),
                ("token", WA_TOKEN),
            ],
        )
        .await
    }

    pub async fn add_telegram(&self, fakes: &Fakes) -> i64 {
        self.add_provider(
            "telegram",
            &[
                ("name", "Telegram бот"),
                ("api_url", &fakes.tg_base),
                ("token", TG_TOKEN),
            ],
        )
        .await
    }

    /// A RetailCRM provider with WhatsApp and Telegram bundles that post customers' words into
    /// RetailCRM's chats (the guide's «Новое сообщение»): (RetailCRM, WhatsApp, Telegram).
    pub async fn chat_bundles(&self, fakes: &Fakes) -> (i64, i64, i64) {
        let crm = self.add_retailcrm(fakes).await;
        let wa = self.add_chatapi(fakes).await;
        let tg = self.add_telegram(fakes).await;
        self.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        self.bundle(tg, "incoming_message", &[], crm, tg_chat_steps())
            .await;
        (crm, wa, tg)
    }

    pub async fn provider(&self, id: i64) -> svyazka_core::providers::Provider {
        self.core()
            .db(move |c| svyazka_core::providers::get(c, id))
            .await
            .unwrap()
    }

    /// Full webhook URL of a provider.
    pub async fn hook_url(&self, id: i64) -> String {
        format!("{}{}", self.base, self.provider(id).await.webhook_path())
    }

    /// Creates and starts a bundle directly in the core (the editor's own tests go through the browser).
    pub async fn bundle(
        &self,
        source: i64,
        event: &str,
        statuses: &[&str],
        target: i64,
        steps: Vec<svyazka_core::bundles::Step>,
    ) -> i64 {
        use svyazka_core::bundles::{self, BundleState, NewBundle};
        let statuses: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
        let new = NewBundle {
            name: "Test bundle".into(),
            source_provider_id: source,
            event_type: event.into(),
            target_provider_id: target,
            steps,
        };
        self.core()
            .db(move |c| {
                let id = bundles::create(c, &new)?;
                bundles::set_status_filter(c, id, &statuses)?;
                bundles::set_state(c, id, BundleState::Running)?;
                Ok::<_, svyazka_core::db::DbError>(id)
            })
            .await
            .unwrap()
    }

    pub async fn runs(&self) -> Vec<svyazka_core::runs::Run> {
        let filter = svyazka_core::runs::RunFilter::default();
        let (items, _) = self
            .core()
            .db(move |c| svyazka_core::runs::list(c, &filter, 1, 100_000))
            .await
            .unwrap();
        items.into_iter().map(|i| i.run).collect()
    }

    /// Waits until `n` runs exist and none is queued or running; returns them.
    pub async fn settled_runs(&self, n: usize, timeout: Duration) -> Vec<svyazka_core::runs::Run> {
        eventually(timeout, || async {
            let runs = self.runs().await;
            (runs.len() >= n
                && runs
                    .iter()
                    .all(|r| r.status == "succeeded" || r.status == "failed"))
            .then_some(runs)
        })
        .await
        .unwrap_or_else(|| {
            let runs = futures::executor::block_on(self.runs());
            let mut by_status = std::collections::BTreeMap::<String, usize>::new();
            for r in &runs {
                *by_status.entry(r.status.to_string()).or_default() += 1;
            }
            panic!(
                "runs did not settle in time: {} runs by status {by_status:?}",
                runs.len()
            )
        })
    }

    pub async fn inbox_count(&self) -> i64 {
        use diesel::prelude::*;
        use svyazka_core::db::schema::inbox;
        self.core()
            .db(|c| {
                inbox::table
                    .count()
                    .get_result::<i64>(c)
                    .map_err(svyazka_core::db::DbError::from)
            })
            .await
            .unwrap()
    }
}

/// A step with `(param, value)` mappings.
pub fn step(
    action: &str,
    params: Vec<(&str, svyazka_core::bundles::Value)>,
) -> svyazka_core::bundles::Step {
    svyazka_core::bundles::Step {
        action: action.into(),
        params: params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

pub fn event_field(f: &str) -> svyazka_core::bundles::Value {
    svyazka_core::bundles::Value::EventField { field: f.into() }
}

pub fn output(step: usize, f: &str) -> svyazka_core::bundles::Value {
    svyazka_core::bundles::Value::StepOutput {
        step,
        field: f.into(),
    }
}

pub fn template(t: &str) -> svyazka_core::bundles::Value {
    svyazka_core::bundles::Value::Template { text: t.into() }
}

/// Flow 1 of the guide: incoming message → New contact → New deal → New message (MG).
pub fn flow1_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![
        step(
            "new_contact",
            vec![
                ("phone", event_field("sender_id")),
                ("name", event_field("sender_name")),
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
                ("text", event_field("text")),
            ],
        ),
    ]
}

/// A Telegram customer's words into RetailCRM's chats: a contact (Telegram gives no phone, so
/// a fixed one) and «Новое сообщение».
pub fn tg_chat_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![
        step(
            "new_contact",
            vec![
                ("phone", template("+79990001122")),
                ("name", event_field("sender_name")),
            ],
        ),
        step(
            "new_message",
            vec![
                ("contact_id", output(0, "contact_id")),
                ("text", event_field("text")),
            ],
        ),
    ]
}

/// Flow 2 of the guide: a new order → WhatsApp `Здравствуйте, {{ first_name }}!` to its phone.
pub fn flow2_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![step(
        "send_message",
        vec![
            ("recipient", event_field("phone")),
            ("text", template("Здравствуйте, {{ first_name }}!")),
        ],
    )]
}

/// The mailing recipe: an order's status → WhatsApp `Заказ №{{ number }}: {{ status }}`.
pub fn mailing_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![step(
        "send_message",
        vec![
            ("recipient", event_field("phone")),
            ("text", template("Заказ №{{ number }}: {{ status }}")),
        ],
    )]
}

/// The page text with HTML entities decoded, for assertions on what a user reads.
pub fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// A `svyazka` process (web, or `svyazka worker`) with the given environment; killed when
/// dropped.
pub struct AppProcess(pub std::process::Child);

impl AppProcess {
    pub fn worker(vars: &HashMap<String, String>) -> AppProcess {
        Self::spawn(&["worker"], vars)
    }

    /// The web process; give it SVYAZKA_BIND.
    pub fn web(vars: &HashMap<String, String>) -> AppProcess {
        Self::spawn(&[], vars)
    }

    fn spawn(args: &[&str], vars: &HashMap<String, String>) -> AppProcess {
        // SVYAZKA_TEST_PROCESS_LOG=info shows what the processes do, when debugging a test.
        let log = std::env::var("SVYAZKA_TEST_PROCESS_LOG").ok();
        let stdout = if log.is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_svyazka"))
            .args(args)
            .envs(vars)
            .env("RUST_LOG", log.as_deref().unwrap_or("warn"))
            .stdout(stdout)
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn svyazka");
        AppProcess(child)
    }

    pub fn kill9(&mut self) {
        self.signal("-9");
        let _ = self.0.wait();
    }

    /// SIGTERM, as `docker stop` sends it; does not wait.
    pub fn terminate(&mut self) {
        self.signal("-TERM");
    }

    fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the process to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
