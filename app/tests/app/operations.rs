//! Queue mode as operators run it: processes started together on an empty database, workers
//! visible through heartbeats, a stall reported instead of silent, and rolling restarts that
//! lose and double nothing. PostgreSQL + Redis only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .expect("free port")
}

async fn readyz(base: &str) -> Option<serde_json::Value> {
    let r = client().get(format!("{base}/readyz")).send().await.ok()?;
    (r.status().as_u16() == 200).then_some(())?;
    r.json().await.ok()
}

fn workers_alive(ready: &serde_json::Value) -> u64 {
    ready["execution"]["workers_alive"].as_u64().unwrap_or(0)
}

/// What `docker compose up` does: the web process and three workers at the same moment on a
/// database nobody has migrated yet. Several times, each on a fresh database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_and_workers_started_together_on_an_empty_database_all_come_up() {
    for round in 0..3 {
        let Some(db) = TestDb::new(Backend::Postgres) else {
            return;
        };
        let addr = free_addr();
        let base = format!("http://{addr}");
        let mut vars = db.vars();
        vars.insert("SVYAZKA_BIND".into(), addr.clone());
        vars.insert("SVYAZKA_EMBEDDED_WORKER".into(), "false".into());
        let mut procs = vec![AppProcess::web(&vars)];
        procs.extend((0..3).map(|_| AppProcess::worker(&vars)));
        let up = eventually(Duration::from_secs(60), || async {
            readyz(&base)
                .await
                .filter(|r| workers_alive(r) == 3)
                .map(|_| ())
        })
        .await;
        for (i, p) in procs.iter_mut().enumerate() {
            assert!(
                p.is_running(),
                "round {round}: process {i} exited ({:?})",
                p.0.try_wait()
            );
        }
        assert!(
            up.is_some(),
            "round {round}: web ready with 3 live workers (last readyz: {:?})",
            readyz(&base).await
        );
        if round == 0 {
            // The container health checks compose runs, as compose runs them.
            assert!(health_check(&vars, &[]).success(), "svyazka health");
            assert!(
                health_check(&vars, &["worker"]).success(),
                "svyazka health worker"
            );
            for p in procs.iter_mut().skip(1) {
                p.terminate();
                assert!(p.wait_exit(Duration::from_secs(20)).is_some());
            }
            assert!(
                !health_check(&vars, &["worker"]).success(),
                "no worker on this host any more"
            );
        }
    }
}

fn health_check(vars: &HashMap<String, String>, args: &[&str]) -> std::process::ExitStatus {
    std::process::Command::new(env!("CARGO_BIN_EXE_svyazka"))
        .arg("health")
        .args(args)
        .envs(vars)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run svyazka health")
}

/// Work waits and no worker is alive: /readyz, the home page and the log say so; a worker
/// coming up shows in the count and clears the warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_counted_and_a_stall_is_reported_not_silent() {
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_STALL_WARN_MS", "1000"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else {
        return;
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    let bundle = app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
    let url = app.hook_url(crm).await;

    let (_, home) = app.get_html("/").await;
    assert!(!home.contains("id=\"stall\""), "nothing waits yet");
    let (_, reply) = fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "Вера", "phone": "+79990001122"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let stalled = eventually(Duration::from_secs(10), || async {
        let r = readyz(&app.base).await?;
        (r["execution"]["stalled"] == true).then_some(r)
    })
    .await
    .expect("readyz reports the stall");
    assert_eq!(workers_alive(&stalled), 0);
    assert!(stalled["execution"]["waiting"].as_u64().unwrap_or(0) >= 1);
    let (_, home) = app.get_html("/").await;
    assert!(home.contains("id=\"stall\""), "the home page warns: {home}");
    assert!(home.contains("svyazka worker"), "and says what to start");
    let (_, page) = app.get_html(&format!("/bundles/{bundle}")).await;
    assert!(page.contains("id=\"stall\""), "the bundle page warns too");

    let mut vars = app.db.vars();
    for (k, v) in extra {
        vars.insert(k.into(), v.into());
    }
    let _worker = AppProcess::worker(&vars);
    let sent = eventually(Duration::from_secs(30), || async {
        (fakes.wa.sent_count() == 1).then_some(())
    })
    .await;
    assert!(sent.is_some(), "the worker ran the waiting trigger");
    let ready = eventually(Duration::from_secs(15), || async {
        readyz(&app.base)
            .await
            .filter(|r| workers_alive(r) == 1 && r["execution"]["stalled"] == false)
    })
    .await;
    assert!(ready.is_some(), "one live worker, no stall");
    let (_, home) = app.get_html("/").await;
    assert!(!home.contains("id=\"stall\""));
    assert!(home.contains("id=\"workers-alive\">1<"), "{home}");
    let (_, page) = app.get_html(&format!("/bundles/{bundle}")).await;
    assert!(!page.contains("id=\"stall\""));
    app.stop().await;
}

/// Two workers, both replaced one after the other by SIGTERM during a burst (what a rolling
/// upgrade does). Each stopping worker finishes or releases its runs, so the burst completes
/// without waiting for any lease (60 s here) and every order gets exactly one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_workers_during_a_burst_loses_and_doubles_nothing() {
    let n = if long_faults() { 1000 } else { 150 };
    let extra = [
        ("SVYAZKA_EMBEDDED_WORKER", "false"),
        ("SVYAZKA_LEASE_MS", "60000"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
        ("SVYAZKA_RETAILCRM_RPS", "1000"),
        ("SVYAZKA_SWEEP_MS", "200"),
    ];
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &extra).await else {
        return;
    };
    app.setup_admin().await;
    let fakes = Fakes::start();
    // Slow sends, so each SIGTERM lands while runs are in flight.
    fakes.wa.set_latency(Duration::from_millis(30));
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
    let url = app.hook_url(crm).await;
    let mut vars: HashMap<String, String> = app.db.vars();
    for (k, v) in extra {
        vars.insert(k.into(), v.into());
    }
    let mut workers = vec![AppProcess::worker(&vars), AppProcess::worker(&vars)];
    let mut stopped = Vec::new();
    for i in 0..n {
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": format!("Клиент{i}"), "phone": format!("+7998{i:07}")}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        if i == n / 3 || i == 2 * n / 3 {
            let mut old = workers.remove(0);
            old.terminate();
            workers.push(AppProcess::worker(&vars));
            stopped.push(old);
        }
    }
    let burst_done = Instant::now();
    for w in &mut stopped {
        let status = w.wait_exit(Duration::from_secs(40));
        assert!(
            status.is_some_and(|s| s.success()),
            "a worker stops cleanly on SIGTERM within the grace period: {status:?}"
        );
    }
    let runs = app.settled_runs(n, Duration::from_secs(50)).await;
    assert!(
        burst_done.elapsed() < Duration::from_secs(55),
        "released runs were taken over at once, not after the 60 s lease"
    );
    assert_eq!(runs.len(), n, "one run per trigger");
    let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
    assert!(failed.is_empty(), "every run succeeded: {failed:?}");
    let sent = fakes.wa.sent_messages();
    let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), sent.len(), "no customer got a message twice");
    assert_eq!(sent.len(), n, "every order got its message");
    // The stopped workers took their heartbeat rows with them.
    let ready = eventually(Duration::from_secs(10), || async {
        readyz(&app.base).await.filter(|r| workers_alive(r) == 2)
    })
    .await;
    assert!(ready.is_some(), "two live workers after the restart");
    app.stop().await;
}
