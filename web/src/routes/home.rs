//! The home page: is execution healthy right now? How many workers are alive, how much work
//! waits and since when, and a loud warning when work waits with no worker to do it.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use svyazka_core::reachability::{self, Unreachable};
use svyazka_core::workers::{self, Health};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::page::{PageCtx, ok};
use crate::state::AppState;

/// What the admin reads when the upstreams cannot reach our public address; `None` when they can.
pub(crate) fn reach_warning(lang: Lang, public_url: &str) -> Option<String> {
    let key = match reachability::check(public_url)? {
        Unreachable::Localhost => "reach_localhost",
        Unreachable::Private => "reach_private",
        Unreachable::PlainHttp => "reach_http",
        Unreachable::Invalid => "reach_invalid",
    };
    Some(format!(
        "{} {}",
        lang.f(key, &[("url", &public_url as &dyn std::fmt::Display)]),
        lang.t("reach_fix")
    ))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    reach: Option<String>,
    health: Health,
    queue_mode: bool,
    /// Whole seconds the oldest due item has waited.
    oldest_secs: u64,
}

/// Whether work waits with no live worker (pages then show `_stall.html`).
pub async fn stalled(state: &AppState) -> Result<bool, WebError> {
    let stall_after = state.core.config.stall_after;
    Ok(state
        .core
        .db(move |c| workers::health(c, stall_after))
        .await?
        .stalled)
}

#[get("/")]
pub async fn home(ctx: PageCtx, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let stall_after = state.core.config.stall_after;
    let health = state
        .core
        .db(move |c| workers::health(c, stall_after))
        .await?;
    let oldest_secs = health.backlog.age(svyazka_core::db::now()).as_secs();
    ok(&HomePage {
        reach: reach_warning(ctx.lang, &state.core.config.public_url),
        ctx,
        health,
        queue_mode: !state.core.config.is_embedded(),
        oldest_secs,
    })
}
