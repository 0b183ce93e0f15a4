//! Errors a handler can end in, and how each answers. A mistake in the admin's own request is a
//! 4xx with the reason (logged at info); anything else a short, generic 5xx with the details in
//! the log only. Error bodies are plain text in the admin's language: an error does not know
//! the request, so `localize` (a middleware around every route) words it.

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use svyazka_core::auth::AuthError;
use svyazka_core::bundles::editor::EditError;
use svyazka_core::db::DbError;
use svyazka_core::providers::ProviderError;

use crate::i18n::Lang;
use crate::session::FormRejection;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("template: {0}")]
    Render(#[from] askama::Error),
    #[error("not found")]
    NotFound,
    /// The admin's request cannot be done as sent (a stale page, a hand-made request).
    #[error("{0:?}")]
    User(UserError),
    #[error("{0}")]
    Internal(String),
}

/// What was wrong with the admin's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// The target provider has no such action.
    UnknownAction { action: String },
    /// No step with this (1-based) number.
    NoStep { number: usize },
}

impl From<ProviderError> for WebError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::NotFound => WebError::NotFound,
            ProviderError::Db(d) => WebError::Db(d),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for WebError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Db(d) => WebError::Db(d),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<EditError> for WebError {
    fn from(e: EditError) -> Self {
        WebError::User(match e {
            EditError::UnknownAction(action) => UserError::UnknownAction { action },
            EditError::NoStep(index) => UserError::NoStep { number: index + 1 },
        })
    }
}

impl WebError {
    /// The body, in the admin's language.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            WebError::NotFound => lang.t("not_found").to_string(),
            WebError::User(UserError::UnknownAction { action }) => {
                lang.f("unknown_action", &[("action", action)])
            }
            WebError::User(UserError::NoStep { number }) => {
                lang.f("no_step", &[("number", number)])
            }
            WebError::Db(_) | WebError::Render(_) | WebError::Internal(_) => {
                lang.t("server_error").to_string()
            }
        }
    }
}

fn plain(status: StatusCode, text: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::NotFound | WebError::User(UserError::NoStep { .. }) => StatusCode::NOT_FOUND,
            WebError::User(UserError::UnknownAction { .. }) => StatusCode::BAD_REQUEST,
            WebError::Db(_) | WebError::Render(_) | WebError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::NotFound => {}
            WebError::User(e) => tracing::info!(error = ?e, "request refused"),
            other => tracing::error!(error = %other, "request failed"),
        }
        plain(self.status_code(), self.message(Lang::Ru))
    }
}

/// Words for an error answer that came with no words of ours (actix's own refusals: a path
/// that does not parse, an unknown route, a body too large).
fn generic(lang: Lang, status: StatusCode) -> String {
    lang.t(match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        s if s.is_server_error() => "server_error",
        _ => "bad_request",
    })
    .to_string()
}

/// Middleware: error answers in the admin's language. Webhooks keep their own answers (bare
/// 404s and JSON for the upstreams).
pub async fn localize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let lang = Lang::from_request(req.request());
    let hook = req.path().starts_with("/hooks/");
    let res = next.call(req).await?;
    let status = res.status();
    if hook || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_left_body());
    }
    let text = match res.response().error() {
        Some(e) => match e.as_error::<WebError>() {
            Some(web) => Some(web.message(lang)),
            // Already worded in the request's language.
            None if e.as_error::<FormRejection>().is_some() => None,
            None => Some(generic(lang, status)),
        },
        // A route that is not there answers an empty 404 (other empty answers, like the
        // sign-in redirect for htmx, are meant to be empty).
        None => (status == StatusCode::NOT_FOUND
            && matches!(
                res.response().body().size(),
                BodySize::Sized(0) | BodySize::None
            ))
        .then(|| generic(lang, status)),
    };
    Ok(match text {
        Some(text) => res.into_response(plain(status, text)).map_into_right_body(),
        None => res.map_into_left_body(),
    })
}
