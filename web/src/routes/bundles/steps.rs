//! The chain of action cards: add, save a card's parameters, move, remove, and the live preview
//! of a template being typed. htmx gets the changed card (or the whole chain) with the run bar
//! out of band; a plain form post is redirected back to the card.

use actix_web::{HttpResponse, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles::{self, editor};
use svyazka_core::catalog;

use super::back_to_editor;
use super::view::{self, BundleView, Loaded, RunBar, StepView, load};
use crate::error::WebError;
use crate::i18n::{Msg, reasons};
use crate::page::{PageCtx, ok};
use crate::session::{CsrfForm, CsrfOnly};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "bundles/step_response.html")]
struct StepFragment {
    ctx: PageCtx,
    b: BundleView,
    s: StepView,
    bar: RunBar,
    oob: bool,
}

#[derive(Template)]
#[template(path = "bundles/chain_response.html")]
struct ChainFragment {
    ctx: PageCtx,
    b: BundleView,
    steps: Vec<StepView>,
    bar: RunBar,
    oob: bool,
}

#[derive(Template)]
#[template(path = "bundles/preview.html")]
struct PreviewFragment {
    preview_ok: Option<String>,
    preview_err: Option<Msg>,
}

async fn chain_fragment(ctx: PageCtx, l: &Loaded) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    ok(&ChainFragment {
        b: l.view(lang),
        steps: l.step_views_off_executor(lang).await?,
        bar: l.run_bar(lang, false),
        oob: true,
        ctx,
    })
}

async fn step_fragment(
    ctx: PageCtx,
    l: &Loaded,
    index: usize,
    saved: bool,
) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    let s = l.step_view_off_executor(index, lang, saved).await?;
    ok(&StepFragment {
        b: l.view(lang),
        s,
        bar: l.run_bar(lang, false),
        oob: true,
        ctx,
    })
}

async fn store_steps(state: &AppState, id: i64, steps: Vec<bundles::Step>) -> Result<(), WebError> {
    Ok(state
        .core
        .db(move |c| bundles::set_steps(c, id, &steps))
        .await?)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    action: String,
}

#[post("/bundles/{id:\\d+}/steps")]
pub async fn add_step(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<HttpResponse, WebError> {
    let mut l = load(&state, *id).await?;
    let index = editor::add_step(&mut l.bundle.steps, l.target.kind, &form.action)?;
    store_steps(&state, l.bundle.id, l.bundle.steps.clone()).await?;
    if !ctx.htmx {
        return Ok(back_to_editor(l.bundle.id, &format!("#step-{}", index + 1)));
    }
    step_fragment(ctx, &l, index, false).await
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}")]
pub async fn save_step(
    ctx: PageCtx,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    let kind = l.target.kind;
    let step = l
        .bundle
        .steps
        .get_mut(index)
        .ok_or(editor::EditError::NoStep(index))?;
    let action = catalog::action(kind, &step.action)
        .ok_or_else(|| editor::EditError::UnknownAction(step.action.clone()))?;
    step.params = editor::parse_params(action, &fields);
    store_steps(&state, id, l.bundle.steps.clone()).await?;
    if !ctx.htmx {
        return Ok(back_to_editor(id, &format!("#step-{}", index + 1)));
    }
    l.read_templates(&state).await;
    step_fragment(ctx, &l, index, true).await
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    dir: String,
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/move")]
pub async fn move_step(
    ctx: PageCtx,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    let up = form.dir != "down";
    let moved = editor::move_step(&mut l.bundle.steps, index, up)?;
    if moved {
        store_steps(&state, id, l.bundle.steps.clone()).await?;
    }
    l.read_templates(&state).await;
    if !ctx.htmx {
        let now = if !moved {
            index
        } else if up {
            index - 1
        } else {
            index + 1
        };
        return Ok(back_to_editor(id, &format!("#step-{}", now + 1)));
    }
    chain_fragment(ctx, &l).await
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/delete")]
pub async fn remove_step(
    ctx: PageCtx,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    editor::remove_step(&mut l.bundle.steps, index)?;
    store_steps(&state, id, l.bundle.steps.clone()).await?;
    l.read_templates(&state).await;
    if !ctx.htmx {
        return Ok(back_to_editor(id, "#chain"));
    }
    chain_fragment(ctx, &l).await
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    param: String,
}

/// The template being typed, rendered with sample data (the editor's live preview).
#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/preview")]
pub async fn preview(
    ctx: PageCtx,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    query: web::Query<PreviewQuery>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let l = load(&state, id).await?;
    if index >= l.bundle.steps.len() {
        return Err(editor::EditError::NoStep(index).into());
    }
    let name = format!("{}.tpl", query.param);
    let text = fields
        .iter()
        .rev()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let (preview_ok, preview_err) = if text.trim().is_empty() {
        (None, None)
    } else {
        match view::preview_off_executor(ctx.lang, &l, index, text).await {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(reasons::template(ctx.lang, &e))),
        }
    };
    ok(&PreviewFragment {
        preview_ok,
        preview_err,
    })
}
