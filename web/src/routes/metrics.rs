//! `/metrics` for Prometheus, behind the bearer token of `SVYAZKA_METRICS_TOKEN` (without the
//! setting the route does not exist), and the count of webhook answers it reports.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, get, web};
use subtle::ConstantTimeEq;

use crate::state::AppState;

#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(token) = state.core.config.metrics_token.as_deref() else {
        return HttpResponse::NotFound().finish();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .finish();
    }
    match svyazka_core::metrics::get().render(&state.core).await {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database did not answer");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

/// Counts every answer under /hooks/ by the webhook's kind (the next path segment) and status.
pub async fn count_webhooks(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let kind = req
        .path()
        .strip_prefix("/hooks/")
        .map(|rest| rest.split('/').next().unwrap_or("").to_string());
    let res = next.call(req).await?;
    if let Some(kind) = kind {
        // Only known kinds become label values: a stranger's path must not grow the series.
        let kind = match kind.as_str() {
            "retailcrm" | "chatapi" | "telegram" | "mg" | "whatsapp" | "greenapi" => kind,
            _ => "other".into(),
        };
        svyazka_core::metrics::get().webhook(&kind, res.status().as_u16());
    }
    Ok(res)
}
