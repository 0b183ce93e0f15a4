use crate::both_backends;
use crate::support::*;

both_backends!(health_and_readiness, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = app.get("/healthz").await;
    assert_eq!(r.status().as_u16(), 200);
    let r = app.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["queue"], "ok");
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_the_failing_part() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    // Take the queue's database away underneath the running app.
    if let svyazka_worker::JobQueue::Sqlite(s) = &app.running.as_ref().unwrap().queue {
        s.pool().close().await;
    }
    let r = app.get("/readyz").await;
    assert_eq!(r.status().as_u16(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_ne!(body["queue"], "ok");
    app.stop().await;
}

const METRICS_TOKEN: &str = "prometheus-scrape-token-0123";

/// The value of the first series line starting with `prefix` (labels included), if any.
fn series(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

both_backends!(
    metrics_need_the_token_and_tell_webhooks_runs_and_steps,
    |backend| async move {
        let Some(app) =
            TestApp::spawn_with(backend, &[("SVYAZKA_METRICS_TOKEN", METRICS_TOKEN)]).await
        else {
            return;
        };
        app.setup_admin().await;
        let scrape = |token: Option<&'static str>| {
            let mut r = app.client.get(app.url("/metrics"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        assert_eq!(scrape(None).await.unwrap().status().as_u16(), 401);
        assert_eq!(
            scrape(Some("prometheus-scrape-token-0124"))
                .await
                .unwrap()
                .status()
                .as_u16(),
            401,
            "a wrong token"
        );

        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        let url = app.hook_url(crm).await;
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                serde_json::json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            )
            .await
            .unwrap();
        let bad = app.client.post(format!("{url}x")).send().await.unwrap();
        assert_eq!(bad.status().as_u16(), 404, "a wrong webhook secret");
        app.settled_runs(1, std::time::Duration::from_secs(30))
            .await;

        let r = scrape(Some(METRICS_TOKEN)).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = r.text().await.unwrap();
        // The registry is per process and tests share one: at least ours are there.
        assert!(
            series(
                &text,
                r#"svyazka_webhooks_total{kind="retailcrm",status="200"}"#
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert!(
            series(
                &text,
                r#"svyazka_webhooks_total{kind="retailcrm",status="404"}"#
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert!(
            text.contains(r#"svyazka_runs{bundle_id=""#)
                && text.contains(r#"status="succeeded"} 1"#),
            "runs by bundle and status: {text}"
        );
        assert!(
            series(
                &text,
                r#"svyazka_step_duration_seconds_count{action="send_message",provider_kind="chatapi",outcome="succeeded"}"#
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert_eq!(series(&text, r#"svyazka_waiting{queue="runs"}"#), Some(0.0));
        assert!(text.contains("svyazka_oldest_waiting_seconds"));
        assert_eq!(
            series(&text, r#"svyazka_waiting_oldest_seconds{queue="inbox"}"#),
            Some(0.0),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
        app.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_do_not_exist_without_a_token() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    assert_eq!(app.get("/metrics").await.status().as_u16(), 404);
    app.stop().await;
}
