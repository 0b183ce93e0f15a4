//! Signed-in state and CSRF protection.
//!
//! The cookie (encrypted and signed, with a key derived for it alone) carries a session token,
//! the admin's name for the page header and a per-session CSRF token. Whether the session is
//! live is decided on the server: the token must match a row of `admin_sessions` that is
//! within its idle and absolute lifetimes (see `svyazka_core::auth::sessions`). Signing out,
//! changing the password and «выйти на всех устройствах» delete rows, so a copied cookie stops
//! working too. Every admin POST goes through `CsrfForm`, which refuses the request with 403
//! before the handler runs.

use actix_session::{Session, SessionExt};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use svyazka_core::auth::sessions::{self, SessionLimits, SignedIn};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::state::AppState;

const TOKEN: &str = "session";
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

/// Starts a server-side session for the admin and puts its token in the cookie.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    admin_id: i64,
    name: &str,
) -> Result<(), WebError> {
    let limits = SessionLimits::from_config(&state.core.config);
    let token = state
        .core
        .db(move |c| sessions::create(c, admin_id, limits))
        .await?;
    // A new cookie session on sign-in, so a token planted before login is worthless after it.
    session.renew();
    let _ = session.insert(TOKEN, token);
    let _ = session.insert(ADMIN_NAME, name);
    let _ = session.insert(CSRF, svyazka_core::crypto::random_token(24));
    Ok(())
}

/// Ends this session on the server (every copy of the cookie) and clears the cookie.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<(), WebError> {
    if let Ok(Some(token)) = session.get::<String>(TOKEN) {
        state.core.db(move |c| sessions::end(c, &token)).await?;
    }
    session.purge();
    Ok(())
}

/// The live session behind this cookie, if any; a cookie whose session is over is cleared.
async fn signed_in(state: &AppState, session: &Session) -> Result<Option<SignedIn>, WebError> {
    let Ok(Some(token)) = session.get::<String>(TOKEN) else {
        return Ok(None);
    };
    let limits = SessionLimits::from_config(&state.core.config);
    let found = state
        .core
        .db(move |c| sessions::validate(c, &token, limits))
        .await?;
    if found.is_none() {
        session.purge();
    }
    Ok(found)
}

/// Middleware for every admin page: no live session → to /login (or /setup on a fresh
/// install). Handlers find the session's admin as `web::ReqData<SignedIn>`.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(WebError::Internal("application state missing".into()).into());
    };
    if let Some(admin) = signed_in(&state, &req.get_session()).await? {
        req.extensions_mut().insert(admin);
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let target = match state.admin_exists().await {
        Ok(false) => "/setup",
        _ => "/login",
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
