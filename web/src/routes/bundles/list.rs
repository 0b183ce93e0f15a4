//! The bundles list, and "Add" in two steps: the two providers, then the event and the first
//! action. Nothing is stored until the second step is sent.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles::editor;
use svyazka_core::bundles::{self, NewBundle};
use svyazka_core::catalog;
use svyazka_core::providers::{self, Provider};

use super::Choice;
use crate::error::WebError;
use crate::i18n;
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::CsrfForm;
use crate::state::AppState;

struct Row {
    id: i64,
    name: String,
    source: String,
    target: String,
    event: String,
    running: bool,
    /// Why it stopped itself, when it did (HTML).
    paused: Option<String>,
    /// Latest run: status (the badge's class), its label, and when.
    last: Option<(String, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "bundles/list.html")]
struct ListPage {
    ctx: PageCtx,
    rows: Vec<Row>,
    running: &'static str,
    stopped: &'static str,
    no_runs: &'static str,
}

#[get("/bundles")]
pub async fn list(ctx: PageCtx, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let (all, provs, last) = state
        .core
        .db(|c| {
            let all = editor::summaries(c)?;
            let provs = providers::list(c)?;
            let last = bundles::last_runs(c)?;
            Ok::<_, providers::ProviderError>((all, provs, last))
        })
        .await?;
    let lang = ctx.lang;
    let run_labels = [
        ("succeeded", ctx.t("b_run_succeeded")),
        ("failed", ctx.t("b_run_failed")),
        ("running", ctx.t("b_run_running")),
        ("queued", ctx.t("b_run_queued")),
    ];
    let by_id: HashMap<i64, &Provider> = provs.iter().map(|p| (p.id, p)).collect();
    let mut last: HashMap<i64, (String, chrono::NaiveDateTime)> =
        last.into_iter().map(|(b, s, t)| (b, (s, t))).collect();
    let name_of = |id: i64| {
        by_id
            .get(&id)
            .map_or_else(|| format!("#{id}"), |p| p.name.clone())
    };
    let rows = all
        .into_iter()
        .map(|b| {
            let event = by_id.get(&b.source_provider_id).map_or_else(
                || b.event_type.clone(),
                |p| i18n::catalog::event(lang, p.kind, &b.event_type),
            );
            let last = last.remove(&b.id).map(|(status, at)| {
                let label = run_labels
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or(run_labels[3].1, |(_, l)| l);
                (status, label, at.format("%Y-%m-%d %H:%M").to_string())
            });
            Row {
                source: name_of(b.source_provider_id),
                target: name_of(b.target_provider_id),
                running: b.running,
                paused: b.paused.as_ref().map(|p| paused_note(lang, p)),
                id: b.id,
                name: b.name,
                event,
                last,
            }
        })
        .collect();
    ok(&ListPage {
        running: ctx.t("b_running"),
        stopped: ctx.t("b_stopped"),
        no_runs: ctx.t("b_no_runs"),
        ctx,
        rows,
    })
}

struct ProviderOption {
    id: i64,
    label: String,
}

#[derive(Template)]
#[template(path = "bundles/new.html")]
struct NewPage {
    ctx: PageCtx,
    options: Vec<ProviderOption>,
    source: Option<i64>,
    target: Option<i64>,
    err_source: bool,
    err_target: bool,
}

impl NewPage {
    fn is_source(&self, id: &i64) -> bool {
        self.source == Some(*id)
    }

    fn is_target(&self, id: &i64) -> bool {
        self.target == Some(*id)
    }
}

#[derive(Template)]
#[template(path = "bundles/type.html")]
struct TypePage {
    ctx: PageCtx,
    source: Provider,
    target: Provider,
    events: Vec<Choice>,
    actions: Vec<Choice>,
    event: String,
    action: String,
    error: bool,
}

#[derive(Deserialize, Default)]
pub struct PairQuery {
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
}

async fn provider_options(state: &AppState) -> Result<Vec<Provider>, WebError> {
    Ok(state.core.db(providers::list).await?)
}

fn options_of(provs: &[Provider]) -> Vec<ProviderOption> {
    provs
        .iter()
        .map(|p| ProviderOption {
            id: p.id,
            label: format!("{} ({})", p.name, p.kind.title()),
        })
        .collect()
}

#[get("/bundles/new")]
pub async fn new_providers(
    ctx: PageCtx,
    state: web::Data<AppState>,
    query: web::Query<PairQuery>,
) -> Result<HttpResponse, WebError> {
    let provs = provider_options(&state).await?;
    ok(&NewPage {
        ctx,
        options: options_of(&provs),
        source: query.source.parse().ok(),
        target: query.target.parse().ok(),
        err_source: false,
        err_target: false,
    })
}

fn type_page(
    ctx: PageCtx,
    source: Provider,
    target: Provider,
    event: &str,
    action: &str,
    error: bool,
) -> TypePage {
    let lang = ctx.lang;
    let events: Vec<Choice> = catalog::events(source.kind)
        .iter()
        .map(|e| Choice {
            key: e.key,
            label: i18n::catalog::event(lang, source.kind, e.key),
        })
        .collect();
    let actions: Vec<Choice> = catalog::actions(target.kind)
        .iter()
        .map(|a| Choice {
            key: a.key,
            label: i18n::catalog::action(lang, target.kind, a.key),
        })
        .collect();
    // A radio group has a choice made: the first (the guide's usual one) unless the user chose.
    let pick = |chosen: &str, choices: &[Choice]| {
        if choices.iter().any(|c| c.key == chosen) {
            chosen.to_string()
        } else {
            choices
                .first()
                .map(|c| c.key.to_string())
                .unwrap_or_default()
        }
    };
    TypePage {
        event: pick(event, &events),
        action: pick(action, &actions),
        ctx,
        source,
        target,
        events,
        actions,
        error,
    }
}

/// Step 1 → step 2: both providers chosen (a GET form, nothing is stored yet).
#[get("/bundles/new/type")]
pub async fn new_type(
    ctx: PageCtx,
    state: web::Data<AppState>,
    query: web::Query<PairQuery>,
) -> Result<HttpResponse, WebError> {
    let provs = provider_options(&state).await?;
    let find = |s: &str| {
        s.parse::<i64>()
            .ok()
            .and_then(|id| provs.iter().find(|p| p.id == id).cloned())
    };
    match (find(&query.source), find(&query.target)) {
        (Some(source), Some(target)) => ok(&type_page(ctx, source, target, "", "", false)),
        (s, t) => {
            let page = NewPage {
                ctx,
                options: options_of(&provs),
                err_source: s.is_none(),
                err_target: t.is_none(),
                source: s.map(|p| p.id),
                target: t.map(|p| p.id),
            };
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Deserialize)]
pub struct CreateForm {
    source: i64,
    target: i64,
    #[serde(default)]
    event: String,
    #[serde(default)]
    action: String,
}

#[post("/bundles/new")]
pub async fn create(
    ctx: PageCtx,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let (sid, tid) = (form.source, form.target);
    let source = state.core.db(move |c| providers::get(c, sid)).await?;
    let target = state.core.db(move |c| providers::get(c, tid)).await?;
    let event = catalog::event(source.kind, &form.event);
    let step = editor::new_step(target.kind, &form.action);
    let (Some(event), Ok(step)) = (event, step) else {
        let page = type_page(ctx, source, target, &form.event, &form.action, true);
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let new = NewBundle {
        name: format!("{} → {}", source.name, target.name),
        source_provider_id: source.id,
        event_type: event.key.to_string(),
        target_provider_id: target.id,
        steps: vec![step],
    };
    let id = state.core.db(move |c| bundles::create(c, &new)).await?;
    Ok(see_other(&format!("/bundles/{id}")))
}

/// «Stopped automatically after N failures», and the last failure's reason (HTML).
pub(super) fn paused_note(lang: crate::i18n::Lang, p: &svyazka_core::bundles::AutoPause) -> String {
    let m = crate::i18n::Msg::new(lang.f("bundle_auto_paused", &[("count", &p.failures)]));
    match p.last_error.as_deref() {
        Some(e) => m
            .text(" ")
            .text(lang.t("attention_last_error"))
            .then(crate::i18n::reasons::stored(lang, e, None)),
        None => m,
    }
    .to_string()
}
