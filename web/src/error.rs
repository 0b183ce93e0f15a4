//! Errors a handler can end in. The body stays short and generic for 5xx (details go to the
//! log); user mistakes are handled in the handlers themselves, next to the field.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Db(#[from] svyazka_core::db::DbError),
    #[error("template: {0}")]
    Render(#[from] askama::Error),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Internal(String),
}

impl From<svyazka_core::auth::AuthError> for WebError {
    fn from(e: svyazka_core::auth::AuthError) -> Self {
        match e {
            svyazka_core::auth::AuthError::Db(d) => WebError::Db(d),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let msg = match self {
            WebError::NotFound => "Not found / Не найдено".to_string(),
            other => {
                tracing::error!(error = %other, "request failed");
                "Internal error, see the server log / Внутренняя ошибка, подробности в журнале сервера".to_string()
            }
        };
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(msg)
    }
}
