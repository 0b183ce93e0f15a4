//! The editor page, and what acts on the bundle as a whole: its inline name, Start (refused,
//! with every problem named, while something is unmapped or invalid), Stop, Delete.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles::{self, BundleState, editor, validate};

use super::view::{BundleView, Loaded, RunBar, StepView, load};
use super::{Choice, back_to_editor};
use crate::error::WebError;
use crate::i18n::Lang;
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
    name_error: bool,
    oob: bool,
}

#[derive(Template)]
#[template(path = "bundles/_name.html")]
struct NameFragment {
    ctx: PageCtx,
    b: BundleView,
    name_saved: bool,
    name_error: bool,
}

#[derive(Template)]
#[template(path = "bundles/_runbar.html")]
struct RunBarFragment {
    ctx: PageCtx,
    b: BundleView,
    bar: RunBar,
    oob: bool,
}

fn editor_page(ctx: PageCtx, l: &Loaded, refused: bool, name_error: bool) -> EditorPage {
    let lang = ctx.lang;
    EditorPage {
        b: l.view(lang),
        bar: l.run_bar(lang, refused),
        steps: l.step_views(lang),
        actions: l.action_choices(lang),
        name_saved: false,
        name_error,
        oob: false,
        ctx,
    }
}

#[get("/bundles/{id:\\d+}")]
pub async fn edit(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let l = load(&state, *id).await?;
    ok(&editor_page(ctx, &l, false, false))
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
    let cleaned = editor::clean_name(&form.name);
    if let Some(name) = cleaned.clone() {
        state
            .core
            .db(move |c| bundles::rename(c, id, &name))
            .await?;
    }
    let mut l = load(&state, id).await?;
    if !ctx.htmx {
        return match cleaned {
            Some(_) => Ok(back_to_editor(id, "")),
            None => render(
                &editor_page(ctx, &l, false, true),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        };
    }
    if cleaned.is_none() {
        // Keep what was typed so it can be corrected.
        l.bundle.name = form.name;
    }
    ok(&NameFragment {
        b: l.view(ctx.lang),
        name_saved: cleaned.is_some(),
        name_error: cleaned.is_none(),
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
    let en = ctx.lang == Lang::En;
    let problems = validate::problems(&l.bundle, l.source.kind, l.target.kind, en);
    let refused = !problems.is_empty();
    if !refused {
        state
            .core
            .db(move |c| bundles::set_state(c, id, BundleState::Running))
            .await?;
        l.bundle.state = BundleState::Running;
    }
    match (ctx.htmx, refused) {
        (true, _) => run_bar_response(ctx, &l, refused),
        (false, false) => Ok(back_to_editor(id, "")),
        (false, true) => render(
            &editor_page(ctx, &l, true, false),
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
