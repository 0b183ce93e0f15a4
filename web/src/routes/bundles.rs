//! bundles screens.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;

use crate::error::WebError;
use crate::page::{PageCtx, ok};

#[rustfmt::skip]
pub const LABELS: &[(&str, &str, &str)] = &[
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list);
}

#[derive(Template)]
#[template(path = "section.html")]
struct SectionPage {
    ctx: PageCtx,
    title: &'static str,
    empty: &'static str,
}

#[get("/bundles")]
pub async fn list(req: HttpRequest, session: Session) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(&req, &session, "bundles");
    ok(&SectionPage { title: ctx.t("bundles"), empty: ctx.t("empty_bundles"), ctx })
}
