//! The data every page's layout needs, and rendering with a chosen status.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::session;

pub struct PageCtx {
    pub lang: Lang,
    pub csrf: String,
    pub admin: Option<String>,
    /// Which navigation entry is current ("providers", "bundles", "runs", or "").
    pub nav: &'static str,
}

impl PageCtx {
    pub fn new(req: &HttpRequest, session: &Session, nav: &'static str) -> Self {
        PageCtx {
            lang: Lang::from_request(req),
            csrf: session::csrf_token(session),
            admin: session::admin_name(session),
            nav,
        }
    }

    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
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
