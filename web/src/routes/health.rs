//! /healthz: the process answers. /readyz: the database and the queue answer too.

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
    let body = serde_json::json!({
        "database": db.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()),
        "queue": queue.as_ref().map(|_| "ok").unwrap_or_else(|e| e.as_str()),
    });
    if db.is_ok() && queue.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
