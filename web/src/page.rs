//! What every page and fragment handler starts from (`PageCtx`, an extractor: the admin's
//! language, session, CSRF token, whether htmx asked), and rendering with a chosen status.

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::session;

/// An htmx request wants a fragment (or an `HX-Redirect`), not a page.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

pub struct PageCtx {
    pub lang: Lang,
    pub csrf: String,
    pub admin: Option<String>,
    /// Which navigation entry is current ("providers", "bundles", "runs", "events", or "").
    pub nav: &'static str,
    pub htmx: bool,
    pub session: Session,
}

impl PageCtx {
    pub fn new(req: &HttpRequest) -> Self {
        let session = req.get_session();
        let section = req.path().trim_start_matches('/');
        let section = section.split('/').next().unwrap_or_default();
        PageCtx {
            lang: Lang::from_request(req),
            csrf: session::csrf_token(&session),
            admin: session::admin_name(&session),
            nav: ["providers", "bundles", "runs", "events"]
                .into_iter()
                .find(|s| *s == section)
                .unwrap_or(""),
            htmx: is_htmx(req.headers()),
            session,
        }
    }

    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
}

impl FromRequest for PageCtx {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(PageCtx::new(req)))
    }
}

pub fn render<T: askama::Template>(page: &T, status: StatusCode) -> Result<HttpResponse, WebError> {
    let html = page.render()?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

pub fn ok<T: askama::Template>(page: &T) -> Result<HttpResponse, WebError> {
    render(page, StatusCode::OK)
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}
