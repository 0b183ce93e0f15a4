//! Связки: the list, "Add" in two steps (providers, then event and first action), and the
//! editor: the event card (with the live status selector for RetailCRM events), the chain of
//! action cards with their parameter forms, the inline name, Start/Stop.
//!
//! htmx requests get the changed fragment only (a card, the chain, the run bar); the same
//! endpoints answer plain form posts with a redirect back to the editor, so every screen also
//! works without JavaScript. Editing logic lives in `svyazka_core::bundles::editor`.

use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::bundles::editor::{self, PickGroup};
use svyazka_core::bundles::{self, Bundle, BundleState, NewBundle, validate};
use svyazka_core::catalog::{self, EventDef, FieldType};
use svyazka_core::providers::{self, Provider};
use svyazka_core::references::{self, StatusGroupView};

use crate::error::WebError;
use crate::i18n::Lang;
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::CsrfForm;
use crate::state::AppState;

#[rustfmt::skip]
pub const LABELS: &[(&str, &str, &str)] = &[
    ("b_route", "Откуда → куда", "Source → target"),
    ("b_event", "Событие", "Event"),
    ("b_state", "Состояние", "State"),
    ("b_last_run", "Последний запуск", "Last run"),
    ("b_running", "Запущена", "Running"),
    ("b_stopped", "Остановлена", "Stopped"),
    ("b_run_succeeded", "успешно", "succeeded"),
    ("b_run_failed", "ошибка", "failed"),
    ("b_run_queued", "в очереди", "queued"),
    ("b_run_running", "выполняется", "running"),
    ("b_no_runs", "ещё не запускалась", "not run yet"),
    ("b_new_title", "Новая связка", "New bundle"),
    ("b_step1", "Шаг 1. Провайдеры", "Step 1. Providers"),
    ("b_step2", "Шаг 2. Тип связки", "Step 2. Bundle type"),
    ("b_source", "Исходящий провайдер", "Outgoing provider"),
    ("b_source_hint", "источник событий: мессенджер или RetailCRM", "where events come from: a messenger or RetailCRM"),
    ("b_target", "Входящий провайдер", "Incoming provider"),
    ("b_target_hint", "выполняет действия связки", "takes the bundle's actions"),
    ("b_choose", "— выберите —", "— choose —"),
    ("b_next", "Далее", "Next"),
    ("b_back", "Назад", "Back"),
    ("b_need_providers", "Сначала подключите провайдеров: мессенджер и RetailCRM.", "Connect providers first: a messenger and RetailCRM."),
    ("b_err_choose", "Выберите провайдера.", "Choose a provider."),
    ("b_event_type", "Тип связки у исходящего провайдера", "Event of the outgoing provider"),
    ("b_action_type", "Тип связки у входящего провайдера", "First action of the incoming provider"),
    ("b_err_type", "Выберите тип связки у обоих провайдеров.", "Choose the event and the first action."),
    ("b_name_label", "Название связки", "Bundle name"),
    ("b_name_hint", "Enter — сохранить, Esc — отменить", "Enter saves, Esc cancels"),
    ("b_name_error", "Название: от 1 до 200 символов.", "Name: 1 to 200 characters."),
    ("b_saved", "Сохранено", "Saved"),
    ("b_start", "Запустить связку", "Start bundle"),
    ("b_stop", "Остановить связку", "Stop bundle"),
    ("b_running_note", "Изменения применяются к новым запускам; уже начатые идут по прежней версии.", "Edits apply to new runs; runs already started keep the version they started with."),
    ("b_refused", "Связку нельзя запустить:", "The bundle cannot start:"),
    ("b_todo", "Перед запуском нужно исправить:", "To fix before starting:"),
    ("b_running_problems", "Связка запущена, но новые запуски завершатся ошибкой:", "The bundle is running, but new runs will fail:"),
    ("b_ready", "Всё заполнено, связку можно запускать.", "Everything is mapped; the bundle can start."),
    ("b_runs_link", "Запуски этой связки", "Runs of this bundle"),
    ("b_delete", "Удалить связку", "Delete bundle"),
    ("b_delete_confirm", "Удалить связку вместе с историей её запусков?", "Delete the bundle and its run history?"),
    ("b_statuses", "Статусы сделки", "Deal statuses"),
    ("b_statuses_hint", "Связка сработает только для сделок в отмеченных статусах; если не отмечен ни один — для любых.", "The bundle reacts only to deals in the ticked statuses; with none ticked, to any."),
    ("b_statuses_loading", "Загрузка статусов из RetailCRM…", "Loading statuses from RetailCRM…"),
    ("b_statuses_open", "Выбрать статусы", "Choose statuses"),
    ("b_statuses_error", "Не удалось получить статусы из RetailCRM:", "Could not read the statuses from RetailCRM:"),
    ("b_refresh", "Обновить список", "Refresh list"),
    ("b_unknown_status", "нет в RetailCRM", "not in RetailCRM"),
    ("b_other_statuses", "Другие", "Other"),
    ("b_event_fields", "Поля события", "Event fields"),
    ("b_actions", "Действия", "Actions"),
    ("b_add_action", "Добавить действие:", "Add an action:"),
    ("b_up", "Выше", "Move up"),
    ("b_down", "Ниже", "Move down"),
    ("b_remove_step", "Удалить шаг", "Remove step"),
    ("b_remove_step_confirm", "Удалить этот шаг?", "Remove this step?"),
    ("b_unsaved", "Несохранённые изменения в карточках будут потеряны. Продолжить?", "Unsaved changes in the cards will be lost. Continue?"),
    ("b_not_set", "— не задано —", "— not set —"),
    ("b_own_value", "Свой текст", "Own text"),
    ("b_literal", "Значение", "Value"),
    ("b_template", "Шаблон с параметрами", "Template with parameters"),
    ("b_required", "обязательный", "required"),
    ("b_preview", "Предпросмотр", "Preview"),
    ("b_insert_param", "Вставить параметр:", "Insert a parameter:"),
    ("b_tpl_hint", "Наберите {{ , чтобы вставить параметр", "Type {{ to insert a parameter"),
    ("b_yes", "Да", "Yes"),
    ("b_no", "Нет", "No"),
    ("b_empty_chain", "Действий пока нет — добавьте первое.", "No actions yet — add the first one."),
    ("b_step", "Шаг", "Step"),
    ("b_sample", "на тестовых данных", "with sample data"),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_providers)
        .service(new_type)
        .service(create)
        .service(edit)
        .service(rename)
        .service(statuses)
        .service(save_statuses)
        .service(refresh_statuses)
        .service(add_step)
        .service(save_step)
        .service(move_step)
        .service(remove_step)
        .service(preview)
        .service(start)
        .service(stop)
        .service(delete);
}

fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

fn is_en(req: &HttpRequest) -> bool {
    Lang::from_request(req) == Lang::En
}

fn label(en: bool, ru: &'static str, en_text: &'static str) -> &'static str {
    if en { en_text } else { ru }
}

// ---------------------------------------------------------------------------------------------
// List

struct Row {
    id: i64,
    name: String,
    source: String,
    target: String,
    event: &'static str,
    running: bool,
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
pub async fn list(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let (all, provs, last) = state
        .core
        .db(|c| {
            let all = editor::summaries(c)?;
            let provs = providers::list(c)?;
            let last = bundles::last_runs(c)?;
            Ok::<_, providers::ProviderError>((all, provs, last))
        })
        .await?;
    let ctx = PageCtx::new(&req, &session, "bundles");
    let en = ctx.lang == Lang::En;
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
            let event = by_id
                .get(&b.source_provider_id)
                .and_then(|p| catalog::event(p.kind, &b.event_type))
                .map_or("?", |e| e.label(en));
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

// ---------------------------------------------------------------------------------------------
// Add: step 1 (providers) and step 2 (event type, first action)

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

struct Choice {
    key: &'static str,
    label: &'static str,
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
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<PairQuery>,
) -> Result<HttpResponse, WebError> {
    let provs = provider_options(&state).await?;
    ok(&NewPage {
        ctx: PageCtx::new(&req, &session, "bundles"),
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
    let en = ctx.lang == Lang::En;
    let events: Vec<Choice> = catalog::events(source.kind)
        .iter()
        .map(|e| Choice {
            key: e.key,
            label: e.label(en),
        })
        .collect();
    let actions: Vec<Choice> = catalog::actions(target.kind)
        .iter()
        .map(|a| Choice {
            key: a.key,
            label: a.label(en),
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
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<PairQuery>,
) -> Result<HttpResponse, WebError> {
    let provs = provider_options(&state).await?;
    let find = |s: &str| {
        s.parse::<i64>()
            .ok()
            .and_then(|id| provs.iter().find(|p| p.id == id).cloned())
    };
    let ctx = PageCtx::new(&req, &session, "bundles");
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
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let (sid, tid) = (form.source, form.target);
    let source = state.core.db(move |c| providers::get(c, sid)).await?;
    let target = state.core.db(move |c| providers::get(c, tid)).await?;
    let event = catalog::event(source.kind, &form.event);
    let step = editor::new_step(target.kind, &form.action);
    let (Some(event), Ok(step)) = (event, step) else {
        let page = type_page(
            PageCtx::new(&req, &session, "bundles"),
            source,
            target,
            &form.event,
            &form.action,
            true,
        );
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

// ---------------------------------------------------------------------------------------------
// Editor

/// A bundle with its two providers and its event, as every editor handler needs them.
struct Loaded {
    bundle: Bundle,
    source: Provider,
    target: Provider,
    event: &'static EventDef,
}

async fn load(state: &AppState, id: i64) -> Result<Loaded, WebError> {
    let (bundle, source, target) = state
        .core
        .db(move |c| {
            let b = bundles::get(c, id)?.ok_or(providers::ProviderError::NotFound)?;
            let s = providers::get(c, b.source_provider_id)?;
            let t = providers::get(c, b.target_provider_id)?;
            Ok::<_, providers::ProviderError>((b, s, t))
        })
        .await?;
    let event = catalog::event(source.kind, &bundle.event_type).ok_or_else(|| {
        WebError::Internal(format!("bundle {id}: unknown event {}", bundle.event_type))
    })?;
    Ok(Loaded {
        bundle,
        source,
        target,
        event,
    })
}

/// What the page header and cards show about the bundle.
struct BundleView {
    id: i64,
    name: String,
    running: bool,
    source_name: String,
    source_title: &'static str,
    target_name: String,
    target_title: &'static str,
    event_label: &'static str,
    status_filter: bool,
    event_fields: Vec<String>,
}

/// The state, Start/Stop, and what stands in the way of starting.
struct RunBar {
    problems: Vec<String>,
    refused: bool,
}

struct ParamView {
    key: &'static str,
    label: &'static str,
    required: bool,
    is_bool: bool,
    bool_value: bool,
    src: String,
    lit: String,
    tpl: String,
    error: Option<String>,
    preview_ok: Option<String>,
    preview_err: Option<String>,
    groups: Vec<PickGroup>,
    /// `[{"v": "first_name", "l": "RetailCRM: Имя"}, …]` for the chip editor.
    vars_json: String,
}

struct StepView {
    index: usize,
    number: usize,
    title: &'static str,
    params: Vec<ParamView>,
    saved: bool,
}

impl Loaded {
    fn view(&self, en: bool) -> BundleView {
        BundleView {
            id: self.bundle.id,
            name: self.bundle.name.clone(),
            running: self.bundle.is_running(),
            source_name: self.source.name.clone(),
            source_title: self.source.kind.title(),
            target_name: self.target.name.clone(),
            target_title: self.target.kind.title(),
            event_label: self.event.label(en),
            status_filter: self.event.status_filter,
            event_fields: self
                .event
                .fields
                .iter()
                .map(|f| f.label(en).to_string())
                .collect(),
        }
    }

    fn run_bar(&self, en: bool, refused: bool) -> RunBar {
        let problems = validate::problems(&self.bundle, self.source.kind, self.target.kind, en)
            .into_iter()
            .map(|p| match p.step {
                Some(n) => {
                    let action = self
                        .bundle
                        .steps
                        .get(n - 1)
                        .and_then(|s| catalog::action(self.target.kind, &s.action))
                        .map_or("?", |a| a.label(en));
                    format!("{} {n} · {action}: {}", label(en, "Шаг", "Step"), p.message)
                }
                None => p.message,
            })
            .collect();
        RunBar { problems, refused }
    }

    fn step_view(&self, index: usize, en: bool, saved: bool) -> Option<StepView> {
        let steps = &self.bundle.steps;
        let step = steps.get(index)?;
        let action = catalog::action(self.target.kind, &step.action)?;
        let groups = editor::picker(
            self.source.kind,
            self.event,
            self.target.kind,
            steps,
            index,
            en,
        );
        let errors = editor::param_errors(self.event, self.target.kind, steps, index, en);
        let vars: Vec<serde_json::Value> = groups
            .iter()
            .flat_map(|g| g.options.iter())
            .map(|o| serde_json::json!({"v": o.var, "l": o.label}))
            .collect();
        let vars_json = serde_json::Value::Array(vars).to_string();
        let params = action
            .params
            .iter()
            .map(|p| {
                let value = step.params.get(p.key);
                let (lit, tpl) = match value {
                    Some(bundles::Value::Literal { value }) => (value.clone(), String::new()),
                    Some(bundles::Value::Template { text }) => (String::new(), text.clone()),
                    _ => (String::new(), String::new()),
                };
                let (preview_ok, preview_err) =
                    if tpl.trim().is_empty() || errors.contains_key(p.key) {
                        (None, None)
                    } else {
                        match editor::preview(self.event, self.target.kind, steps, index, &tpl) {
                            Ok(s) => (Some(s), None),
                            Err(e) => (None, Some(e.localized(en))),
                        }
                    };
                let is_bool = p.ty == FieldType::Bool;
                let bool_value = if is_bool {
                    lit == "true" || (value.is_none() && p.default == Some("true"))
                } else {
                    false
                };
                ParamView {
                    key: p.key,
                    label: p.label(en),
                    required: p.required,
                    is_bool,
                    bool_value,
                    src: editor::source_key(value),
                    lit,
                    tpl,
                    error: errors.get(p.key).cloned(),
                    preview_ok,
                    preview_err,
                    groups: groups.clone(),
                    vars_json: vars_json.clone(),
                }
            })
            .collect();
        Some(StepView {
            index,
            number: index + 1,
            title: action.label(en),
            params,
            saved,
        })
    }

    fn step_views(&self, en: bool) -> Vec<StepView> {
        (0..self.bundle.steps.len())
            .filter_map(|i| self.step_view(i, en, false))
            .collect()
    }

    fn action_choices(&self, en: bool) -> Vec<Choice> {
        catalog::actions(self.target.kind)
            .iter()
            .map(|a| Choice {
                key: a.key,
                label: a.label(en),
            })
            .collect()
    }
}

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

fn editor_page(
    req: &HttpRequest,
    session: &Session,
    l: &Loaded,
    refused: bool,
    name_error: bool,
) -> EditorPage {
    let ctx = PageCtx::new(req, session, "bundles");
    let en = ctx.lang == Lang::En;
    EditorPage {
        b: l.view(en),
        bar: l.run_bar(en, refused),
        steps: l.step_views(en),
        actions: l.action_choices(en),
        name_saved: false,
        name_error,
        oob: false,
        ctx,
    }
}

#[get("/bundles/{id:\\d+}")]
pub async fn edit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let l = load(&state, *id).await?;
    ok(&editor_page(&req, &session, &l, false, false))
}

/// After a change: the fragment for htmx, a redirect to the editor (at `anchor`) otherwise.
fn back_to_editor(id: i64, anchor: &str) -> HttpResponse {
    see_other(&format!("/bundles/{id}{anchor}"))
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

#[post("/bundles/{id:\\d+}/name")]
pub async fn rename(
    req: HttpRequest,
    session: Session,
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
    if !is_htmx(&req) {
        return match cleaned {
            Some(_) => Ok(back_to_editor(id, "")),
            None => render(
                &editor_page(&req, &session, &l, false, true),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        };
    }
    let ctx = PageCtx::new(&req, &session, "bundles");
    let en = ctx.lang == Lang::En;
    if cleaned.is_none() {
        // Keep what was typed so it can be corrected.
        l.bundle.name = form.name;
    }
    ok(&NameFragment {
        b: l.view(en),
        name_saved: cleaned.is_some(),
        name_error: cleaned.is_none(),
        ctx,
    })
}

// ---- event card: the status selector ----

struct StatusView {
    groups: Vec<StatusGroupView>,
    selected: Vec<String>,
    /// Selected codes the account no longer has.
    unknown: Vec<String>,
    error: Option<String>,
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

async fn status_view(state: &AppState, l: &Loaded, saved: bool) -> StatusView {
    let selected = l.bundle.status_filter.clone();
    match references::statuses(&state.core, &l.source).await {
        Ok(refs) => {
            let unknown = selected
                .iter()
                .filter(|c| refs.status_name(c).is_none())
                .cloned()
                .collect();
            StatusView {
                groups: refs.groups.clone(),
                selected,
                unknown,
                error: None,
                saved,
            }
        }
        Err(e) => StatusView {
            groups: Vec::new(),
            unknown: selected.clone(),
            selected,
            error: Some(e.message),
            saved,
        },
    }
}

async fn statuses_response(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    l: &Loaded,
    saved: bool,
) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(req, session, "bundles");
    let en = ctx.lang == Lang::En;
    let st = status_view(state, l, saved).await;
    if is_htmx(req) {
        ok(&StatusesFragment {
            b: l.view(en),
            st,
            ctx,
        })
    } else {
        ok(&StatusesPage {
            b: l.view(en),
            st,
            ctx,
        })
    }
}

/// The selector, read live from the account (cached briefly); loaded lazily by the event card,
/// or as a page of its own without JavaScript.
#[get("/bundles/{id:\\d+}/statuses")]
pub async fn statuses(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let l = load(&state, *id).await?;
    if !l.event.status_filter {
        return Err(WebError::NotFound);
    }
    statuses_response(&req, &session, &state, &l, false).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: Vec<String>,
}

#[post("/bundles/{id:\\d+}/statuses")]
pub async fn save_statuses(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let l = load(&state, id).await?;
    if !l.event.status_filter {
        return Err(WebError::NotFound);
    }
    let mut codes: Vec<String> = form
        .status
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    codes.sort();
    codes.dedup();
    codes.truncate(500);
    state
        .core
        .db(move |c| bundles::set_status_filter(c, id, &codes))
        .await?;
    if !is_htmx(&req) {
        return Ok(back_to_editor(id, "#event-card"));
    }
    let l = load(&state, id).await?;
    statuses_response(&req, &session, &state, &l, true).await
}

#[post("/bundles/{id:\\d+}/statuses/refresh")]
pub async fn refresh_statuses(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfForm<super::providers::NoFields>,
) -> Result<HttpResponse, WebError> {
    let l = load(&state, *id).await?;
    references::invalidate(l.source.id);
    if !is_htmx(&req) {
        return Ok(see_other(&format!("/bundles/{}/statuses", l.bundle.id)));
    }
    statuses_response(&req, &session, &state, &l, false).await
}

// ---- the chain ----

fn chain_fragment(
    req: &HttpRequest,
    session: &Session,
    l: &Loaded,
) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(req, session, "bundles");
    let en = ctx.lang == Lang::En;
    ok(&ChainFragment {
        b: l.view(en),
        steps: l.step_views(en),
        bar: l.run_bar(en, false),
        oob: true,
        ctx,
    })
}

fn step_fragment(
    req: &HttpRequest,
    session: &Session,
    l: &Loaded,
    index: usize,
    saved: bool,
) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(req, session, "bundles");
    let en = ctx.lang == Lang::En;
    let s = l.step_view(index, en, saved).ok_or(WebError::NotFound)?;
    ok(&StepFragment {
        b: l.view(en),
        s,
        bar: l.run_bar(en, false),
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
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> Result<HttpResponse, WebError> {
    let mut l = load(&state, *id).await?;
    let index = editor::add_step(&mut l.bundle.steps, l.target.kind, &form.action)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    store_steps(&state, l.bundle.id, l.bundle.steps.clone()).await?;
    if !is_htmx(&req) {
        return Ok(back_to_editor(l.bundle.id, &format!("#step-{}", index + 1)));
    }
    step_fragment(&req, &session, &l, index, false)
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}")]
pub async fn save_step(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    let kind = l.target.kind;
    let step = l.bundle.steps.get_mut(index).ok_or(WebError::NotFound)?;
    let action = catalog::action(kind, &step.action).ok_or(WebError::NotFound)?;
    step.params = editor::parse_params(action, &fields);
    store_steps(&state, id, l.bundle.steps.clone()).await?;
    if !is_htmx(&req) {
        return Ok(back_to_editor(id, &format!("#step-{}", index + 1)));
    }
    step_fragment(&req, &session, &l, index, true)
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    dir: String,
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/move")]
pub async fn move_step(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    let up = form.dir != "down";
    let moved =
        editor::move_step(&mut l.bundle.steps, index, up).map_err(|_| WebError::NotFound)?;
    if moved {
        store_steps(&state, id, l.bundle.steps.clone()).await?;
    }
    if !is_htmx(&req) {
        let now = if !moved {
            index
        } else if up {
            index - 1
        } else {
            index + 1
        };
        return Ok(back_to_editor(id, &format!("#step-{}", now + 1)));
    }
    chain_fragment(&req, &session, &l)
}

#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/delete")]
pub async fn remove_step(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    _form: CsrfForm<super::providers::NoFields>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let mut l = load(&state, id).await?;
    editor::remove_step(&mut l.bundle.steps, index).map_err(|_| WebError::NotFound)?;
    store_steps(&state, id, l.bundle.steps.clone()).await?;
    if !is_htmx(&req) {
        return Ok(back_to_editor(id, "#chain"));
    }
    chain_fragment(&req, &session, &l)
}

#[derive(Template)]
#[template(path = "bundles/preview.html")]
struct PreviewFragment {
    preview_ok: Option<String>,
    preview_err: Option<String>,
}

#[derive(Deserialize)]
pub struct PreviewQuery {
    param: String,
}

/// The template being typed, rendered with sample data (the editor's live preview).
#[post("/bundles/{id:\\d+}/steps/{index:\\d+}/preview")]
pub async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(i64, usize)>,
    query: web::Query<PreviewQuery>,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, index) = path.into_inner();
    let l = load(&state, id).await?;
    if index >= l.bundle.steps.len() {
        return Err(WebError::NotFound);
    }
    let en = is_en(&req);
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
        match editor::preview_off_executor(l.event, l.target.kind, &l.bundle.steps, index, text)
            .await
        {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.localized(en))),
        }
    };
    ok(&PreviewFragment {
        preview_ok,
        preview_err,
    })
}

// ---- start / stop / delete ----

fn run_bar_response(
    req: &HttpRequest,
    session: &Session,
    l: &Loaded,
    refused: bool,
) -> Result<HttpResponse, WebError> {
    let ctx = PageCtx::new(req, session, "bundles");
    let en = ctx.lang == Lang::En;
    ok(&RunBarFragment {
        b: l.view(en),
        bar: l.run_bar(en, refused),
        oob: false,
        ctx,
    })
}

/// Starts the bundle unless something is unmapped or invalid; then it says what, by name.
#[post("/bundles/{id:\\d+}/start")]
pub async fn start(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfForm<super::providers::NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let mut l = load(&state, id).await?;
    let en = is_en(&req);
    let problems = validate::problems(&l.bundle, l.source.kind, l.target.kind, en);
    let refused = !problems.is_empty();
    if !refused {
        state
            .core
            .db(move |c| bundles::set_state(c, id, BundleState::Running))
            .await?;
        l.bundle.state = BundleState::Running;
    }
    match (is_htmx(&req), refused) {
        (true, _) => run_bar_response(&req, &session, &l, refused),
        (false, false) => Ok(back_to_editor(id, "")),
        (false, true) => render(
            &editor_page(&req, &session, &l, true, false),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

#[post("/bundles/{id:\\d+}/stop")]
pub async fn stop(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfForm<super::providers::NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    state
        .core
        .db(move |c| bundles::set_state(c, id, BundleState::Stopped))
        .await?;
    if !is_htmx(&req) {
        return Ok(back_to_editor(id, ""));
    }
    let l = load(&state, id).await?;
    run_bar_response(&req, &session, &l, false)
}

#[post("/bundles/{id:\\d+}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfForm<super::providers::NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    state.core.db(move |c| bundles::delete(c, id)).await?;
    Ok(see_other("/bundles"))
}
