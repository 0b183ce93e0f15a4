//! Section pages.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, get};
use askama::Template;

use crate::error::WebError;
use crate::page::{PageCtx, ok, see_other};

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    ctx: PageCtx,
    title: &'static str,
    empty: &'static str,
}

#[get("/")]
pub async fn home() -> HttpResponse {
    see_other("/providers")
}

fn section(req: &HttpRequest, session: &Session, nav: &'static str, empty: &'static str) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(req, session, nav);
    ok(&SectionPage { title: ctx.t(nav), empty: ctx.t(empty), ctx })
}

#[get("/providers")]
pub async fn providers(req: HttpRequest, session: Session) -> Result<HttpResponse, WebError> {
    section(&req, &session, "providers", "empty_providers")
}

#[get("/bundles")]
pub async fn bundles(req: HttpRequest, session: Session) -> Result<HttpResponse, WebError> {
    section(&req, &session, "bundles", "empty_bundles")
}

#[get("/runs")]
pub async fn runs(req: HttpRequest, session: Session) -> Result<HttpResponse, WebError> {
    section(&req, &session, "runs", "empty_runs")
}
