//! The event card's status selector for RetailCRM events: the account's statuses by group, read
//! live (cached briefly), loaded lazily by the card or as a page of its own without JavaScript.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles;
use svyazka_core::reason::Reason;
use svyazka_core::references::{self, StatusGroupView};

use super::back_to_editor;
use super::view::{BundleView, Loaded, load};
use crate::error::WebError;
use crate::i18n::{Lang, Msg, reasons};
use crate::page::{PageCtx, ok, see_other};
use crate::session::{CsrfForm, CsrfOnly};
use crate::state::AppState;

struct StatusView {
    groups: Vec<StatusGroupView>,
    /// «Любой статус» is ticked.
    any: bool,
    selected: Vec<String>,
    /// Selected codes the account no longer has.
    unknown: Vec<String>,
    error: Option<Msg>,
    saved: bool,
}

impl StatusView {
    fn is_selected(&self, code: &str) -> bool {
        self.selected.iter().any(|s| s == code)
    }
}

#[derive(Template)]
#[template(path = "bundles/_statuses.html")]
struct StatusesFragment {
    ctx: PageCtx,
    b: BundleView,
    st: StatusView,
}

#[derive(Template)]
#[template(path = "bundles/statuses.html")]
struct StatusesPage {
    ctx: PageCtx,
    b: BundleView,
    st: StatusView,
}

async fn status_view(lang: Lang, state: &AppState, l: &Loaded, saved: bool) -> StatusView {
    let any = l.bundle.any_status();
    let selected: Vec<String> = l
        .bundle
        .status_filter
        .iter()
        .filter(|c| *c != bundles::ANY_STATUS)
        .cloned()
        .collect();
    match references::statuses(&state.core, &l.source).await {
        Ok(refs) => {
            let unknown = selected
                .iter()
                .filter(|c| refs.status_name(c).is_none())
                .cloned()
                .collect();
            StatusView {
                any,
                groups: refs.groups.clone(),
                selected,
                unknown,
                error: None,
                saved,
            }
        }
        Err(e) => StatusView {
            any,
            groups: Vec::new(),
            unknown: selected.clone(),
            selected,
            // The message already says the statuses come from RetailCRM.
            error: Some(match &e.reason {
                Reason::Upstream(u) => reasons::upstream_detail(lang, &u.failure),
                other => reasons::reason(lang, other, None),
            }),
            saved,
        },
    }
}

async fn statuses_response(
    ctx: PageCtx,
    state: &AppState,
    l: &Loaded,
    saved: bool,
) -> Result<HttpResponse, WebError> {
    let st = status_view(ctx.lang, state, l, saved).await;
    let b = l.view(ctx.lang);
    if ctx.htmx {
        ok(&StatusesFragment { b, st, ctx })
    } else {
        ok(&StatusesPage { b, st, ctx })
    }
}

/// Loaded only for events that can be limited to statuses.
async fn load_filterable(state: &AppState, id: i64) -> Result<Loaded, WebError> {
    let l = load(state, id).await?;
    if !l.event.status_filter {
        return Err(WebError::NotFound);
    }
    Ok(l)
}

#[get("/bundles/{id:\\d+}/statuses")]
pub async fn statuses(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let l = load_filterable(&state, *id).await?;
    statuses_response(ctx, &state, &l, false).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: Vec<String>,
    /// The «Любой статус» checkbox; it wins over single statuses ticked with it.
    #[serde(default)]
    any_status: Option<String>,
}

#[post("/bundles/{id:\\d+}/statuses")]
pub async fn save_statuses(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    load_filterable(&state, id).await?;
    let mut codes: Vec<String> = form
        .status
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != bundles::ANY_STATUS)
        .collect();
    codes.sort();
    codes.dedup();
    codes.truncate(500);
    if form.any_status.is_some() {
        codes = vec![bundles::ANY_STATUS.to_string()];
    }
    state
        .core
        .db(move |c| bundles::set_status_filter(c, id, &codes))
        .await?;
    if !ctx.htmx {
        return Ok(back_to_editor(id, "#event-card"));
    }
    let l = load(&state, id).await?;
    statuses_response(ctx, &state, &l, true).await
}

#[post("/bundles/{id:\\d+}/statuses/refresh")]
pub async fn refresh_statuses(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let l = load(&state, *id).await?;
    references::invalidate(l.source.id);
    if !ctx.htmx {
        return Ok(see_other(&format!("/bundles/{}/statuses", l.bundle.id)));
    }
    statuses_response(ctx, &state, &l, false).await
}
