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
