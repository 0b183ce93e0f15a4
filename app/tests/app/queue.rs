//! Queue mode across processes: the web process only enqueues, `svyazka worker` processes
//! execute; Redis outages and killed workers lose and double nothing. PostgreSQL + Redis only.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// A private redis-server on a free port (never the machine's shared one).
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = PrivateRedis { port, child: None };
        r.resume();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
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
    app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
    app.hook_url(crm).await
}

/// Order `i` of a burst (its own customer and phone), its trigger fired and taken; its id.
async fn fire_customer_order(fakes: &Fakes, url: &str, i: usize) -> i64 {
    let phone = format!("+7999{i:07}");
    let (id, reply) = fakes
        .crm
        .create_order_and_fire(
            url,
            "shop",
            json!({"status": "new", "firstName": format!("Клиент{i}"), "phone": phone}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_enqueues_and_a_worker_process_executes_with_retries() {
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_BACKOFF_MS", "300"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else {
        return;
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;
    // RetailCRM answers 503 longer than the client's own retries: the dispatch job must fail
    // and come back with backoff.
    fakes.crm.fail_after(0, 6, 503);
    let (order, reply) = fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "Анна", "phone": "+79991112233"}),
        )
        .await
        .unwrap();
    let _ = order;
    assert_eq!(reply.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fakes.wa.sent_count(),
        0,
        "the web process itself runs no jobs in queue mode"
    );

    // The worker serves its own metrics: its steps happen there, not in the web process.
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let mut vars = app_vars(&app, &extra);
    vars.insert(
        "SVYAZKA_METRICS_TOKEN".into(),
        "worker-metrics-token-0001".into(),
    );
    vars.insert(
        "SVYAZKA_WORKER_METRICS_BIND".into(),
        metrics_addr.to_string(),
    );
    let _worker = AppProcess::worker(&vars);
    let sent = eventually(Duration::from_secs(30), || async {
        (fakes.wa.sent_count() == 1).then_some(())
    })
    .await;
    assert!(sent.is_some(), "the worker process executed the job");
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let anonymous = app.client.get(&metrics_url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let text = app
        .client
        .get(&metrics_url)
        .bearer_auth("worker-metrics-token-0001")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"svyazka_step_duration_seconds_count{action="send_message",provider_kind="chatapi",outcome="succeeded"} 1"#),
        "{text}"
    );
    use diesel::prelude::*;
    use svyazka_core::db::schema::inbox;
    let attempts: i32 = app
        .core()
        .db(|c| {
            inbox::table
                .select(inbox::attempts)
                .first(c)
                .map_err(svyazka_core::db::DbError::from)
        })
        .await
        .unwrap();
    assert!(
        attempts >= 2,
        "the failing dispatch was retried (attempts = {attempts})"
    );
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
    let app = TestApp::spawn_with(Backend::Postgres, &extra)
        .await
        .unwrap();
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;

    redis.stop();
    let during = if long_faults() { 500 } else { 20 };
    for i in 0..during {
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": format!("Борис{i}"), "phone": format!("+7999000{i:04}")}),
            )
            .await
            .unwrap();
        assert_eq!(
            reply.status, 200,
            "the webhook is stored even with the queue down"
        );
    }
    assert_eq!(app.inbox_count().await, i64::try_from(during).unwrap());
    let r = app.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    assert_ne!(r.json::<serde_json::Value>().await.unwrap()["queue"], "ok");

    redis.resume();
    let sent = eventually(Duration::from_secs(60), || async {
        (fakes.wa.sent_count() == during).then_some(())
    })
    .await;
    assert!(
        sent.is_some(),
        "every webhook stored during the outage was processed after Redis came back: {} of {during}",
        fakes.wa.sent_count()
    );
    let mut bodies: Vec<String> = fakes
        .wa
        .sent_messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), during, "none twice");
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_mid_burst_loses_and_doubles_nothing() {
    let n = if long_faults() { 2000 } else { 200 };
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_LEASE_MS", "3000"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
        ("SVYAZKA_RETAILCRM_RPS", "1000"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else {
        return;
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    // Slow the messenger a little so the kill lands while runs are in flight.
    fakes.wa.set_latency(Duration::from_millis(20));
    let url = flow2_bundle(&app, &fakes).await;
    let vars = app_vars(&app, &extra);
    let mut doomed = AppProcess::worker(&vars);
    let _survivor = AppProcess::worker(&vars);

    let mut order_ids = Vec::new();
    for i in 0..n {
        order_ids.push(fire_customer_order(&fakes, &url, i).await);
        if i == n / 2 {
            doomed.kill9();
        }
    }
    let settle = if long_faults() { 900 } else { 180 };
    let runs = app.settled_runs(n, Duration::from_secs(settle)).await;
    assert_eq!(runs.len(), n, "one run per trigger");
    let sent = fakes.wa.sent_messages();
    let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    let before = bodies.len();
    bodies.dedup();
    assert_eq!(
        before,
        bodies.len(),
        "no customer got the same message twice"
    );
    // A send interrupted by the kill is checked against the gateway's history before it is
    // retried: it is either found (delivered) or sent now. So every order has exactly one.
    let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
    assert!(failed.is_empty(), "every run succeeded: {failed:?}");
    assert_eq!(sent.len(), n, "every order got its message");
    eprintln!(
        "kill test: {n} triggers, {} messages, 0 duplicates",
        sent.len()
    );
    app.stop().await;
}

/// A throwaway PostgreSQL cluster (initdb + pg_ctl as the postgres user) on a free port, so a
/// test can stop and start it without touching the machine's shared server.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn pg_bin(name: &str) -> String {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql");
    let mut dirs: Vec<_> = versions.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.last()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(name)
        .display()
        .to_string()
}

fn as_postgres(args: &[&str]) -> std::process::ExitStatus {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c.args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run PostgreSQL tool")
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres", &dir.path().display().to_string()])
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data").display().to_string();
        assert!(
            as_postgres(&[
                &pg_bin("initdb"),
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust"
            ])
            .success(),
            "initdb"
        );
        let pg = PrivatePostgres { dir, port };
        pg.resume();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn resume(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        assert!(
            as_postgres(&[
                &pg_bin("pg_ctl"),
                "-D",
                &self.data(),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "start"
            ])
            .success(),
            "pg_ctl start"
        );
    }

    fn stop(&self) {
        as_postgres(&[
            &pg_bin("pg_ctl"),
            "-D",
            &self.data(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_recovers_from_a_postgres_restart_and_readyz_reports_it() {
    let Some((_, redis_url)) = services() else {
        return;
    };
    let pg = PrivatePostgres::start();
    let queue = format!("svz_pgrestart_{}", std::process::id());
    let data_dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", pg.url()),
        ("REDIS_URL", redis_url),
        ("SVYAZKA_QUEUE", queue),
        (
            "SVYAZKA_SECRET_KEY",
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".to_string(),
        ),
        ("SVYAZKA_DATA_DIR", data_dir.path().display().to_string()),
        ("SVYAZKA_EMBEDDED_WORKER", "true".to_string()),
        ("SVYAZKA_BIND", addr.to_string()),
        ("SVYAZKA_PUBLIC_URL", format!("http://{addr}")),
        ("SVYAZKA_POLL_MS", "20".to_string()),
        ("SVYAZKA_SWEEP_MS", "200".to_string()),
        ("SVYAZKA_REQUEUE_GRACE_MS", "2000".to_string()),
        ("SVYAZKA_BACKOFF_MS", "100".to_string()),
        ("SVYAZKA_DEV_ALLOW_LOOPBACK", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = svyazka_core::Config::from_vars(&vars).unwrap();
    let running = svyazka_app::start_on(config, listener).await.unwrap();
    let app = TestApp {
        base: format!("http://{addr}"),
        client: client(),
        running: Some(running),
        db: TestDb::new(Backend::Sqlite).unwrap(),
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;
    fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "До", "phone": "+79990000101"}),
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            (fakes.wa.sent_count() == 1).then_some(())
        })
        .await
        .is_some()
    );

    pg.stop();
    let r = app.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503, "readyz reports the outage");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(body["database"], "ok");
    assert_eq!(body["queue"], "ok");
    // While the database is down a webhook cannot be stored, so it must not get a 200.
    let (_, reply) = fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "Во время", "phone": "+79990000102"}),
        )
        .await
        .unwrap();
    assert!(
        reply.status >= 500,
        "no 200 without a stored row, got {}",
        reply.status
    );

    pg.resume();
    let ready = eventually(Duration::from_secs(30), || async {
        (app.get("/readyz").await.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "the app recovered without a restart of its own"
    );
    fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "После", "phone": "+79990000103"}),
        )
        .await
        .unwrap();
    let sent = eventually(Duration::from_secs(30), || async {
        (fakes.wa.sent_count() == 2).then_some(())
    })
    .await;
    assert!(sent.is_some(), "webhooks after the restart are processed");
    let bodies: Vec<String> = fakes
        .wa
        .sent_messages()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        bodies,
        vec![
            "Здравствуйте, До!".to_string(),
            "Здравствуйте, После!".to_string()
        ]
    );
    app.stop().await;
}

/// Three worker processes, each allowed the key's full 10 requests per second: the budget is
/// shared through Redis, so together they keep within it and the fake (at its 10 rps limit,
/// as the real API) answers no request with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_retailcrm_budget_and_get_no_503() {
    let n = 60;
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
        ("SVYAZKA_RETAILCRM_RPS", "10"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else {
        return;
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    let url = flow2_bundle(&app, &fakes).await;
    fakes.crm.set_rate_limit(Some(10.0));
    let before = fakes.crm.stats().rate_limited;
    let vars = app_vars(&app, &extra);
    let _workers: Vec<AppProcess> = (0..3).map(|_| AppProcess::worker(&vars)).collect();
    let started = std::time::Instant::now();
    for i in 0..n {
        fire_customer_order(&fakes, &url, i).await;
    }
    let runs = app.settled_runs(n, Duration::from_secs(120)).await;
    let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
    assert!(failed.is_empty(), "every run succeeded: {failed:?}");
    assert_eq!(fakes.wa.sent_count(), n, "every order got its message");
    let stats = fakes.crm.stats();
    assert_eq!(
        stats.rate_limited - before,
        0,
        "no request over the key's budget ({stats:?})"
    );
    let key = &stats.per_key[CRM_KEY];
    eprintln!(
        "shared budget: {n} runs by 3 workers in {:?}, {} CRM requests, busiest second {}, 0 × 503",
        started.elapsed(),
        key.requests,
        key.max_per_second
    );
    app.stop().await;
}
