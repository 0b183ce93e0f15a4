//! Signed-in state and CSRF protection.
//!
//! The session lives in an encrypted, signed cookie (so any web process in queue mode can read
//! it); it holds the admin id and a per-session CSRF token. Every admin POST goes through
//! `CsrfForm`, which refuses the request with 403 before the handler runs.

use actix_session::{Session, SessionExt};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::i18n::Lang;
use crate::state::AppState;

const ADMIN_ID: &str = "admin_id";
const ADMIN_NAME: &str = "admin_name";
const CSRF: &str = "csrf";
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of this session, created on first use.
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF) {
        return t;
    }
    let t = svyazka_core::crypto::random_token(24);
    // Insert only fails when the value cannot be serialised; a String always can.
    let _ = session.insert(CSRF, &t);
    t
}

pub fn admin_name(session: &Session) -> Option<String> {
    session.get::<String>(ADMIN_NAME).ok().flatten()
}

pub fn sign_in(session: &Session, admin_id: i64, name: &str) {
    // A new session id on sign-in, so a token planted before login is worthless after it.
    session.renew();
    let _ = session.insert(ADMIN_ID, admin_id);
    let _ = session.insert(ADMIN_NAME, name);
    let _ = session.insert(CSRF, svyazka_core::crypto::random_token(24));
}

pub fn sign_out(session: &Session) {
    session.purge();
}

fn is_signed_in(session: &Session) -> bool {
    matches!(session.get::<i64>(ADMIN_ID), Ok(Some(_)))
}

/// Middleware for every admin page: no session → to /login (or /setup on a fresh install).
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if is_signed_in(&req.get_session()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let target = match req.app_data::<web::Data<AppState>>() {
        Some(state) => match state.admin_exists().await {
            Ok(false) => "/setup",
            _ => "/login",
        },
        None => "/login",
    };
    let resp = if crate::page::is_htmx(req.headers()) {
        HttpResponse::Unauthorized()
            .insert_header(("HX-Redirect", target))
            .finish()
    } else {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target))
            .finish()
    };
    Ok(req.into_response(resp).map_into_right_body())
}

/// A form body whose CSRF token (field `csrf` or header `X-CSRF-Token`) matched the session's.
/// Repeated keys (`status=a&status=b`) deserialise into `Vec`s.
pub struct CsrfForm<T>(pub T);

/// The body of a button's form: nothing but the CSRF token.
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// A POST with no fields of its own, CSRF-checked.
pub type CsrfOnly = CsrfForm<NoFields>;

#[derive(Debug, thiserror::Error)]
pub enum FormRejection {
    #[error("CSRF token missing or wrong")]
    Csrf(Lang),
    #[error("unreadable form: {1}")]
    Malformed(Lang, String),
}

impl ResponseError for FormRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            FormRejection::Csrf(_) => actix_web::http::StatusCode::FORBIDDEN,
            FormRejection::Malformed(..) => actix_web::http::StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let text = match self {
            FormRejection::Csrf(lang) => lang.t("forbidden_csrf").to_string(),
            // The parser's own words, quoted: they say which field it could not read.
            FormRejection::Malformed(lang, reason) => format!("{}«{reason}»", lang.t("bad_form")),
        };
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(text)
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = FormRejection;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let lang = Lang::from_request(req);
        let expected = req.get_session().get::<String>(CSRF).ok().flatten();
        let header = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|e| FormRejection::Malformed(lang, e.to_string()))?;
            let fields: Vec<(String, String)> =
                serde_html_form::from_bytes(&body).unwrap_or_default();
            let sent = header.or_else(|| {
                fields
                    .into_iter()
                    .find(|(k, _)| k == CSRF_FIELD)
                    .map(|(_, v)| v)
            });
            match (expected, sent) {
                (Some(e), Some(s)) if svyazka_core::crypto::secure_eq(&e, &s) => {}
                _ => return Err(FormRejection::Csrf(lang)),
            }
            serde_html_form::from_bytes(&body)
                .map(CsrfForm)
                .map_err(|e| FormRejection::Malformed(lang, e.to_string()))
        })
    }
}
