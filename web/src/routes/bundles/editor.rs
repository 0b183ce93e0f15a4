//! The editor page, and what acts on the bundle as a whole: its inline name, Start (refused,
//! with every problem named, while something is unmapped or invalid), Stop, Delete.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles::{self, BundleState, editor, validate};
use svyazka_core::reason::field_problems;

use super::view::{BundleView, Loaded, RunBar, StepView, load};
use super::{Choice, back_to_editor};
use crate::error::WebError;
use crate::i18n::{Msg, reasons};
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::{CsrfForm, CsrfOnly};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "bundles/editor.html")]
struct EditorPage {
    ctx: PageCtx,
    b: BundleView,
    bar: RunBar,
    steps: Vec<StepView>,
    actions: Vec<Choice>,
    name_saved: bool,
    name_error: Option<Msg>,
    oob: bool,
    /// Work waits and no worker is alive: this bundle is not running either.
    stall: bool,
    queue_mode: bool,
}

#[derive(Template)]
#[template(path = "bundles/_name.html")]
struct NameFragment {
    ctx: PageCtx,
    b: BundleView,
    name_saved: bool,
    name_error: Option<Msg>,
}

#[derive(Template)]
#[template(path = "bundles/_runbar.html")]
struct RunBarFragment {
    ctx: PageCtx,
    b: BundleView,
    bar: RunBar,
    oob: bool,
}

async fn editor_page(
    ctx: PageCtx,
    l: &Loaded,
    refused: bool,
    name_error: Option<Msg>,
) -> Result<EditorPage, WebError> {
    let lang = ctx.lang;
    Ok(EditorPage {
        b: l.view(lang),
        bar: l.run_bar(lang, refused),
        steps: l.step_views_off_executor(lang).await?,
        actions: l.action_choices(lang),
        name_saved: false,
        name_error,
        oob: false,
        stall: false,
        queue_mode: false,
        ctx,
    })
}

#[get("/bundles/{id:\\d+}")]
pub async fn edit(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let mut l = load(&state, *id).await?;
    let stall = crate::routes::home::stalled(&state).await?;
    l.read_templates(&state).await;
    ok(&EditorPage {
        stall,
        queue_mode: !state.core.config.is_embedded(),
        ..editor_page(ctx, &l, false, None).await?
    })
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

#[post("/bundles/{id:\\d+}/name")]
pub async fn rename(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let lang = ctx.lang;
    let refused = match editor::clean_name(&form.name) {
        Ok(name) => {
            state
                .core
                .db(move |c| bundles::rename(c, id, &name))
                .await?;
            None
        }
        Err(invalid) => field_problems(&invalid)
            .first()
            .map(|(field, p)| reasons::labelled(lang, "b_name_field", field, p)),
    };
    let mut l = load(&state, id).await?;
    if !ctx.htmx {
        return match refused {
            None => Ok(back_to_editor(id, "")),
            Some(error) => render(
                &editor_page(ctx, &l, false, Some(error)).await?,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        };
    }
    if refused.is_some() {
        // Keep what was typed so it can be corrected.
        l.bundle.name = form.name;
    }
    ok(&NameFragment {
        b: l.view(lang),
        name_saved: refused.is_none(),
        name_error: refused,
        ctx,
    })
}

fn run_bar_response(ctx: PageCtx, l: &Loaded, refused: bool) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    ok(&RunBarFragment {
        b: l.view(lang),
        bar: l.run_bar(lang, refused),
        oob: false,
        ctx,
    })
}

/// Starts the bundle unless something is unmapped or invalid; then it says what, by name.
#[post("/bundles/{id:\\d+}/start")]
pub async fn start(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let mut l = load(&state, id).await?;
    let problems = validate::problems(&l.bundle, l.source.kind, l.target.kind);
    let refused = !problems.is_empty();
    if !refused {
        state
            .core
            .db(move |c| bundles::set_state(c, id, BundleState::Running))
            .await?;
        l.bundle.state = BundleState::Running;
        l.bundle.paused = None;
    }
    match (ctx.htmx, refused) {
        (true, _) => run_bar_response(ctx, &l, refused),
        (false, false) => Ok(back_to_editor(id, "")),
        (false, true) => render(
            &editor_page(ctx, &l, true, None).await?,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

#[post("/bundles/{id:\\d+}/stop")]
pub async fn stop(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    state
        .core
        .db(move |c| bundles::set_state(c, id, BundleState::Stopped))
        .await?;
    if !ctx.htmx {
        return Ok(back_to_editor(id, ""));
    }
    let l = load(&state, id).await?;
    run_bar_response(ctx, &l, false)
}

#[post("/bundles/{id:\\d+}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    state.core.db(move |c| bundles::delete(c, id)).await?;
    Ok(see_other("/bundles"))
}
