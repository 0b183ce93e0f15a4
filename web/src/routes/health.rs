//! /healthz: the process answers. /readyz: the database and the queue answer too, and it
//! says how many workers are alive and how much work waits (a stall is reported, but does not
//! make the web process unready: restarting it would not help).

use actix_web::{HttpResponse, get, web};

use crate::state::AppState;

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.core.pool.clone();
    let db = tokio::task::spawn_blocking(move || svyazka_core::db::ping(&pool)).await;
    let db = match db {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let queue = tokio::time::timeout(std::time::Duration::from_secs(3), state.jobs.ping())
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let stall_after = state.core.config.stall_after;
    let execution = match state
        .core
        .db(move |c| svyazka_core::workers::health(c, stall_after))
        .await
    {
        Ok(h) => serde_json::json!({
            "workers_alive": h.workers.len(),
            "waiting": h.backlog.waiting,
            "oldest_waiting_secs": h.backlog.age(svyazka_core::db::now()).as_secs(),
            "stalled": h.stalled,
        }),
        Err(e) => serde_json::json!({"error": e.to_string()}),
    };
    let body = serde_json::json!({
        "database": db.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()),
        "queue": queue.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()),
        "mode": if state.core.config.is_embedded() { "embedded" } else { "queue" },
        "execution": execution,
    });
    if db.is_ok() && queue.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
