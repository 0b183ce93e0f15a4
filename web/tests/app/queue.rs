//! Queue mode across processes: the web process only enqueues, `svyazka worker` processes
//! execute; Redis outages and killed workers lose and double nothing. PostgreSQL + Redis only.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// A worker process with the app's environment.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(vars: &HashMap<String, String>) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_svyazka"))
            .arg("worker")
            .envs(vars)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn worker");
        WorkerProcess(child)
    }

    fn kill9(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private redis-server on a free port (never the machine's shared one).
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = PrivateRedis { port, child: None };
        r.resume();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the queue-mode suite");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn app_vars(app: &TestApp, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v = app.db.vars();
    for (k, val) in extra {
        v.insert((*k).into(), (*val).into());
    }
    v
}

async fn flow2_bundle(app: &TestApp, fakes: &Fakes) -> String {
    let crm = app.add_retailcrm(fakes).await;
    let wa = app.add_chatapi(fakes).await;
    app.bundle(
        crm,
        "new_deal",
        &[],
        wa,
        vec![step("send_message", vec![("recipient", event_field("phone")), ("text", template("Здравствуйте, {{ first_name }}!"))])],
    )
    .await;
    app.hook_url(crm).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_enqueues_and_a_worker_process_executes_with_retries() {
    let extra = [("SVYAZKA_EMBEDDED_WORKER", "false"), ("SVYAZKA_BACKOFF_MS", "300")];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else { return };
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;
    // RetailCRM answers 503 longer than the client's own retries: the dispatch job must fail
    // and come back with backoff.
    fakes.crm.fail_after(0, 6, 503);
    let (order, reply) = fakes
        .crm
        .create_order_and_fire(&url, "shop", json!({"status": "new", "firstName": "Анна", "phone": "+79991112233"}))
        .await
        .unwrap();
    let _ = order;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fakes.wa.sent_count(), 0, "the web process itself runs no jobs in queue mode");

    let _worker = WorkerProcess::start(&app_vars(&app, &extra));
    let sent = eventually(Duration::from_secs(30), || async { (fakes.wa.sent_count() == 1).then_some(()) }).await;
    assert!(sent.is_some(), "the worker process executed the job");
    use diesel::prelude::*;
    use svyazka_core::db::schema::inbox;
    let attempts: i32 = app
        .core()
        .db(|c| inbox::table.select(inbox::attempts).first(c).map_err(svyazka_core::db::DbError::from))
        .await
        .unwrap();
    assert!(attempts >= 2, "the failing dispatch was retried (attempts = {attempts})");
    assert_eq!(fakes.wa.sent_messages()[0].body, "Здравствуйте, Анна!");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_survives_a_redis_outage() {
    if services().is_none() {
        return;
    }
    let mut redis = PrivateRedis::start();
    let redis_url = redis.url();
    let extra = [("REDIS_URL", redis_url.as_str())];
    let app = TestApp::spawn_with(Backend::Postgres, &extra).await.unwrap();
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;

    redis.stop();
    let (_, reply) = fakes
        .crm
        .create_order_and_fire(&url, "shop", json!({"status": "new", "firstName": "Борис", "phone": "+79990000001"}))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "the webhook is stored even with the queue down");
    assert_eq!(app.inbox_count().await, 1);
    let r = app.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    assert_ne!(r.json::<serde_json::Value>().await.unwrap()["queue"], "ok");

    redis.resume();
    let sent = eventually(Duration::from_secs(40), || async { (fakes.wa.sent_count() == 1).then_some(()) }).await;
    assert!(sent.is_some(), "the stored webhook was processed after Redis came back");
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_burst_loses_and_doubles_nothing() {
    const N: usize = 200;
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_LEASE_MS", "3000"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
        ("SVYAZKA_RETAILCRM_RPS", "1000"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else { return };
    app.setup_admin().await;
    let fakes = Fakes::start();
    // Slow the messenger a little so the kill lands while runs are in flight.
    fakes.wa.set_latency(Duration::from_millis(20));
    let url = flow2_bundle(&app, &fakes).await;
    let vars = app_vars(&app, &extra);
    let mut doomed = WorkerProcess::start(&vars);
    let _survivor = WorkerProcess::start(&vars);

    let mut order_ids = Vec::new();
    for i in 0..N {
        let phone = format!("+7999{:07}", i);
        let (id, reply) = fakes
            .crm
            .create_order_and_fire(&url, "shop", json!({"status": "new", "firstName": format!("Клиент{i}"), "phone": phone}))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        order_ids.push(id);
        if i == N / 2 {
            doomed.kill9();
        }
    }
    let runs = app.settled_runs(N, Duration::from_secs(180)).await;
    assert_eq!(runs.len(), N, "one run per trigger");
    let sent = fakes.wa.sent_messages();
    let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    let before = bodies.len();
    bodies.dedup();
    assert_eq!(before, bodies.len(), "no customer got the same message twice");
    let failed: Vec<_> = runs.iter().filter(|r| r.status == "failed").collect();
    for r in &failed {
        assert!(r.error.as_deref().unwrap_or("").contains("may have been delivered"), "only interrupted sends fail: {:?}", r.error);
    }
    assert_eq!(sent.len() + failed.len(), N, "every run finished exactly once: sent or flagged for the admin");
    eprintln!("kill test: {N} triggers, {} messages, {} interrupted sends flagged, 0 duplicates", sent.len(), failed.len());
    app.stop().await;
}
