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
use svyazka_core::Config;
use svyazka_web::Running;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
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
        _ if required() => panic!("SVYAZKA_REQUIRE_SERVICES=1 but TEST_DATABASE_URL / TEST_REDIS_URL are not set"),
        _ => {
            eprintln!("skipping PostgreSQL/Redis variant: TEST_DATABASE_URL / TEST_REDIS_URL not set");
            None
        }
    }
}

/// A database that exists for one test and is dropped after it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String, url: String, redis_url: String, _dir: tempfile::TempDir },
}

impl TestDb {
    pub fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::Sqlite(tempfile::tempdir().expect("tempdir"))),
            Backend::Postgres => {
                let (admin_url, redis_url) = services()?;
                let name = format!("svz_test_{}", svyazka_core::crypto::random_token(8).to_lowercase().replace(['-', '_'], "x"));
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL unreachable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create database");
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
            TestDb::Postgres { url, redis_url, name, _dir, .. } => {
                v.insert("DATABASE_URL".into(), url.clone());
                v.insert("REDIS_URL".into(), redis_url.clone());
                v.insert("SVYAZKA_QUEUE".into(), name.clone());
                v.insert("SVYAZKA_SECRET_KEY".into(), "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".into());
                v.insert("SVYAZKA_DATA_DIR".into(), _dir.path().display().to_string());
            }
        }
        v.insert("SVYAZKA_POLL_MS".into(), "20".into());
        v.insert("SVYAZKA_SWEEP_MS".into(), "200".into());
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
        if let TestDb::Postgres { admin_url, name, .. } = self
            && let Ok(mut admin) = diesel::PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
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
        let running = svyazka_web::start_on(config, listener).await.expect("start app");
        Some(TestApp { base: format!("http://{addr}"), client: client(), running: Some(running), db })
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
        self.client.post(self.url(path)).form(fields).send().await.expect("POST")
    }

    /// POST with the CSRF token taken from the page at `form_page`.
    pub async fn submit(&self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf(form_page).await;
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    pub async fn setup_admin(&self) {
        let r = self
            .submit("/setup", "/setup", &[("username", ADMIN), ("password", PASSWORD), ("password_repeat", PASSWORD)])
            .await;
        assert_eq!(r.status().as_u16(), 303, "setup should redirect");
    }

    pub async fn logout(&self) {
        let r = self.submit("/providers", "/logout", &[]).await;
        assert_eq!(r.status().as_u16(), 303);
    }

    pub async fn login(&self) -> reqwest::Response {
        self.submit("/login", "/login", &[("username", ADMIN), ("password", PASSWORD)]).await
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn extract_meta_csrf(html: &str) -> Option<String> {
    let start = html.find(r#"<meta name="csrf-token" content=""#)? + r#"<meta name="csrf-token" content=""#.len();
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
