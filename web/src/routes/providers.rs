//! Провайдеры: list, add (choose type → form), page with webhook set-up, edit, re-check,
//! rotate secret, delete. The live checks and registrations live in core
//! (`providers::connect`); handlers only map forms and render.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::hook_log::HookLog;
use svyazka_core::inbox::Stored;
use svyazka_core::providers::connect::{self, CheckFailure, FieldErrors, ProviderForm};
use svyazka_core::providers::settings::mask;
use svyazka_core::providers::{self, Provider, ProviderError, ProviderKind, Secrets, Settings};
use svyazka_core::sample_event::{self, SampleState};

use crate::error::WebError;
use crate::i18n::{self, Lang, Msg, reasons};
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::{CsrfForm, CsrfOnly};
use crate::state::AppState;

/// The body RetailCRM's trigger must send, exactly as in the guide.
pub const TRIGGER_BODY: &str = r#"type=order&status={{ changeSet.getNewValue("status").getCode() }}&id={{ order.id }}&event={% if changeSet.isCreate() %}new{% else %}status{% endif %}"#;

/// The extended body, offered beside the guide's: the same four parameters, then the order
/// fields bundles use, so a run needing only these makes no RetailCRM call (the dispatch
/// fetches whatever is missing or empty). Confirmed for RetailCRM: `{{ order.id }}`,
/// `{{ order.number }}` and the guide's `changeSet` expressions. UNCONFIRMED: the Twig-standard
/// `url_encode` filter, and the property names `order.firstName`, `order.lastName`,
/// `order.phone`, `order.email`, `order.totalSumm` (the API's names, by Twig's getter
/// resolution) and `order.site.code` (as in `store_condition`). The receiver also reads the
/// values raw, should the filter have to be dropped.
pub const TRIGGER_BODY_EXTENDED: &str = r#"type=order&status={{ changeSet.getNewValue("status").getCode() }}&id={{ order.id }}&event={% if changeSet.isCreate() %}new{% else %}status{% endif %}&number={{ order.number|url_encode }}&first_name={{ order.firstName|url_encode }}&last_name={{ order.lastName|url_encode }}&phone={{ order.phone|url_encode }}&email={{ order.email|url_encode }}&total={{ order.totalSumm }}&site={{ order.site.code|url_encode }}"#;

/// The trigger's condition: only order creation and status changes reach us. The event to pick
/// is shown as «Изменение заказа»; RetailCRM's exact label for it is UNCONFIRMED.
/// PipeLang facts: `changeSet.isCreate()` and `changeSet.hasChangedField("status")` are
/// documented; joining them with `or` (rather than `||`) is UNCONFIRMED on a real account.
pub const TRIGGER_CONDITION: &str =
    r#"changeSet.isCreate() or changeSet.hasChangedField("status")"#;

/// The condition on the order's store, for a key bound to one store. UNCONFIRMED: that the
/// order's store is reachable as `order.site.code` in PipeLang (by analogy with
/// `changeSet.newValue("status").code`); if RetailCRM rejects it, `order.site == "…"` is the
/// other form to try.
pub fn store_condition(site_code: &str) -> String {
    let code = site_code.replace('\\', "\\\\").replace('"', "\\\"");
    format!(r#"order.site.code == "{code}""#)
}

/// Both conditions together, as pasted into the trigger's single condition field.
pub fn full_condition(site_code: &str) -> String {
    format!("({TRIGGER_CONDITION}) and {}", store_condition(site_code))
}

#[derive(Template)]
#[template(path = "providers/list.html")]
struct ListPage {
    ctx: PageCtx,
    providers: Vec<Provider>,
}

impl ListPage {
    fn check(&self, p: &Provider) -> Option<Msg> {
        check_message(self.ctx.lang, p)
    }
}

/// Why the provider's last check failed, in the admin's language.
fn check_message(lang: Lang, p: &Provider) -> Option<Msg> {
    p.check_message
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map(|m| reasons::check(lang, m))
}

#[derive(Template)]
#[template(path = "providers/choose.html")]
struct ChoosePage {
    ctx: PageCtx,
}

#[derive(Template)]
#[template(path = "providers/form.html")]
struct FormPage {
    ctx: PageCtx,
    kind: ProviderKind,
    /// `None` when adding.
    provider_id: Option<i64>,
    form: ProviderForm,
    errors: FieldErrors,
    base_url: Option<String>,
}

impl FormPage {
    fn err(&self, field: &str) -> Option<Msg> {
        self.errors
            .get(field)
            .map(|p| reasons::rule(self.ctx.lang, field, p))
    }
}

#[derive(Template)]
#[template(path = "providers/show.html")]
struct ShowPage {
    ctx: PageCtx,
    p: Provider,
    webhook_url: String,
    masked_secret: String,
    /// Green-API: the webhook token in full while the admin has to enter it in the console
    /// (setSettings failed); masked otherwise.
    webhook_token: String,
    trigger_body: &'static str,
    trigger_body_extended: &'static str,
    trigger_condition: &'static str,
    /// For a RetailCRM provider: the store condition and the whole condition with it.
    store_condition: String,
    full_condition: String,
    store_hint: String,
    /// The upstreams cannot reach our public address: why, and how to fix it.
    reach: Option<String>,
    /// The webhook's last delivery and last refusal.
    hook: HookLog,
    /// What the test event just sent did, line by line.
    sample: Option<Vec<Msg>>,
    /// The stored sample, for a link to its page on the Events page.
    sample_event: Option<i64>,
    in_use: Vec<String>,
    check: Option<Msg>,
}

fn kind_from(path: &str) -> Result<ProviderKind, WebError> {
    ProviderKind::parse(path).ok_or(WebError::NotFound)
}

#[get("/providers")]
pub async fn list(ctx: PageCtx, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let providers = state.core.db(providers::list).await?;
    ok(&ListPage { ctx, providers })
}

#[get("/providers/new")]
pub async fn choose(ctx: PageCtx) -> Result<HttpResponse, WebError> {
    ok(&ChoosePage { ctx })
}

#[get("/providers/new/{kind}")]
pub async fn new_form(ctx: PageCtx, kind: web::Path<String>) -> Result<HttpResponse, WebError> {
    let kind = kind_from(&kind)?;
    ok(&FormPage {
        ctx,
        kind,
        provider_id: None,
        form: ProviderForm::default(),
        errors: FieldErrors::new(),
        base_url: None,
    })
}

#[post("/providers/new/{kind}")]
pub async fn create(
    ctx: PageCtx,
    state: web::Data<AppState>,
    kind: web::Path<String>,
    CsrfForm(form): CsrfForm<ProviderForm>,
) -> Result<HttpResponse, WebError> {
    let kind = kind_from(&kind)?;
    match connect::prepare(&state.core, kind, &form, None).await {
        Ok(new) => {
            let id = {
                let crypto = state.core.crypto.clone();
                state
                    .core
                    .db(move |c| providers::insert(c, &crypto, &new))
                    .await?
            };
            finish_save(&state, id).await?;
            Ok(see_other(&format!("/providers/{id}")))
        }
        Err(errors) => form_again(ctx, &state, kind, None, form, errors),
    }
}

fn form_again(
    ctx: PageCtx,
    state: &AppState,
    kind: ProviderKind,
    provider_id: Option<i64>,
    form: ProviderForm,
    errors: FieldErrors,
) -> Result<HttpResponse, WebError> {
    let base_url = (kind == ProviderKind::Retailcrm && !errors.contains_key("domain"))
        .then(|| {
            svyazka_core::retailcrm::normalize_domain(&form.domain, state.core.http.policy()).ok()
        })
        .flatten();
    let page = FormPage {
        ctx,
        kind,
        provider_id,
        form,
        errors,
        base_url,
    };
    render(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

/// Registers our webhook upstream; a failure is kept as the provider's check message.
async fn finish_save(state: &AppState, id: i64) -> Result<(), WebError> {
    // Webhooks and runs in this process see the new settings and secret from now on.
    state.core.providers.forget(id);
    let p = state.core.db(move |c| providers::get(c, id)).await?;
    svyazka_core::references::invalidate(id);
    match connect::after_save(&state.core, &p).await {
        Ok(Some(settings)) => {
            state
                .core
                .db(move |c| providers::update_settings(c, id, &settings))
                .await?
        }
        Ok(None) => {}
        Err(failure) => {
            let msg = failure.to_stored();
            state
                .core
                .db(move |c| providers::record_check(c, id, false, Some(&msg)))
                .await?
        }
    }
    state.core.providers.forget(id);
    Ok(())
}

/// What the domain field will be read as, or why it cannot be. htmx swaps this in as HTML, so
/// `Msg` escapes whatever the admin typed.
#[get("/providers/normalize")]
pub async fn normalize(
    ctx: PageCtx,
    state: web::Data<AppState>,
    query: web::Query<DomainQuery>,
) -> HttpResponse {
    let ctx_policy = state.core.http.policy();
    let text = match svyazka_core::retailcrm::normalize_domain(&query.domain, ctx_policy) {
        Ok(url) => Msg::new(format!("→ {url}")),
        Err(_) if query.domain.trim().is_empty() => Msg::default(),
        Err(e) => reasons::domain(ctx.lang, &e),
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(text.to_string())
}

#[derive(Deserialize)]
pub struct DomainQuery {
    #[serde(default)]
    domain: String,
}

async fn load(state: &AppState, id: i64) -> Result<Provider, WebError> {
    Ok(state.core.db(move |c| providers::get(c, id)).await?)
}

fn masked(state: &AppState, p: &Provider) -> String {
    match p.secrets(&state.core.crypto) {
        Ok(Secrets::Retailcrm { api_key, .. }) => mask(&api_key),
        Ok(Secrets::Chatapi { token }) => mask(&token),
        Ok(Secrets::Telegram { bot_token }) => mask(&bot_token),
        Ok(Secrets::Greenapi { api_token, .. }) => mask(&api_token),
        Ok(Secrets::Wacloud { access_token, .. }) => mask(&access_token),
        Err(_) => "—".into(),
    }
}

#[get("/providers/{id}")]
pub async fn show(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    let hook = hook_log(&state, p.id).await?;
    ok(&show_page(&state, ctx, p, Vec::new(), hook))
}

async fn hook_log(state: &AppState, id: i64) -> Result<HookLog, WebError> {
    Ok(state
        .core
        .db(move |c| svyazka_core::hook_log::get(c, id))
        .await?
        .unwrap_or_default())
}

fn show_page(
    state: &AppState,
    ctx: PageCtx,
    p: Provider,
    in_use: Vec<String>,
    hook: HookLog,
) -> ShowPage {
    let (site, site_name) = match &p.settings {
        Settings::Retailcrm(s) => (s.site_code.clone(), s.site_name.clone()),
        _ => (String::new(), String::new()),
    };
    ShowPage {
        sample: None,
        sample_event: None,
        hook,
        reach: super::home::reach_warning(ctx.lang, &state.core.config.public_url),
        store_hint: ctx.lang.f(
            "trigger_store_hint",
            &[("store", &site_name as &dyn std::fmt::Display)],
        ),
        trigger_condition: TRIGGER_CONDITION,
        store_condition: store_condition(&site),
        full_condition: full_condition(&site),
        webhook_url: format!("{}{}", state.core.config.public_url, p.webhook_path()),
        masked_secret: masked(state, &p),
        webhook_token: match (&p.settings, p.secrets(&state.core.crypto)) {
            (Settings::Greenapi(s), Ok(Secrets::Greenapi { webhook_token, .. })) => {
                if s.webhook_set {
                    mask(&webhook_token)
                } else {
                    webhook_token
                }
            }
            // Meta's dashboard asks for it when the callback URL is set.
            (Settings::Wacloud(_), Ok(Secrets::Wacloud { verify_token, .. })) => verify_token,
            _ => String::new(),
        },
        trigger_body: TRIGGER_BODY,
        trigger_body_extended: TRIGGER_BODY_EXTENDED,
        in_use,
        check: check_message(ctx.lang, &p),
        ctx,
        p,
    }
}

fn form_of(state: &AppState, p: &Provider) -> ProviderForm {
    let secret = masked(state, p);
    match &p.settings {
        Settings::Retailcrm(s) => ProviderForm {
            name: p.name.clone(),
            domain: s.domain_input.clone(),
            api_key: secret,
            ..Default::default()
        },
        Settings::Chatapi(s) => ProviderForm {
            name: p.name.clone(),
            api_url: s.api_url.clone(),
            token: secret,
            ..Default::default()
        },
        Settings::Greenapi(s) => ProviderForm {
            name: p.name.clone(),
            api_url: s.api_url.clone(),
            instance_id: s.id_instance.clone(),
            token: secret,
            webhook_token: match p.secrets(&state.core.crypto) {
                Ok(Secrets::Greenapi { webhook_token, .. }) => mask(&webhook_token),
                _ => String::new(),
            },
            ..Default::default()
        },
        Settings::Wacloud(s) => {
            let (app_secret, verify_token) = match p.secrets(&state.core.crypto) {
                Ok(Secrets::Wacloud {
                    app_secret,
                    verify_token,
                    ..
                }) => (mask(&app_secret), mask(&verify_token)),
                _ => (String::new(), String::new()),
            };
            ProviderForm {
                name: p.name.clone(),
                api_url: s.graph_url.clone(),
                phone_number_id: s.phone_number_id.clone(),
                waba_id: s.waba_id.clone(),
                token: secret,
                app_secret,
                verify_token,
                ..Default::default()
            }
        }
        Settings::Telegram(s) => ProviderForm {
            name: p.name.clone(),
            api_url: if s.api_base == connect::DEFAULT_TELEGRAM_API {
                String::new()
            } else {
                s.api_base.clone()
            },
            token: secret,
            ..Default::default()
        },
    }
}

#[derive(Template)]
#[template(path = "providers/templates.html")]
struct TemplatesPage {
    ctx: PageCtx,
    p: Provider,
    templates: Vec<svyazka_core::messengers::templates::Template>,
    /// Why the list could not be read.
    failure: Option<Msg>,
}

/// The provider's approved templates, read live (a Cloud API number's business account, a
/// 1msg.io channel): what «Отправить сообщение» in template mode can send, with how many
/// variables each takes.
#[get("/providers/{id}/templates")]
pub async fn templates(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    if !svyazka_core::messengers::templates::offered(p.kind) {
        return Err(WebError::NotFound);
    }
    let (templates, failure) =
        match svyazka_core::messengers::templates::approved_of(&state.core, &p).await {
            Ok(t) => (t, None),
            Err(f) => (Vec::new(), Some(reasons::templates_failure(ctx.lang, &f))),
        };
    ok(&TemplatesPage {
        ctx,
        p,
        templates,
        failure,
    })
}

#[get("/providers/{id}/edit")]
pub async fn edit_form(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    let base_url = match &p.settings {
        Settings::Retailcrm(s) => Some(s.base_url.clone()),
        _ => None,
    };
    ok(&FormPage {
        form: form_of(&state, &p),
        ctx,
        kind: p.kind,
        provider_id: Some(p.id),
        errors: FieldErrors::new(),
        base_url,
    })
}

#[post("/providers/{id}/edit")]
pub async fn update(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ProviderForm>,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    match connect::prepare(&state.core, p.kind, &form, Some(&p)).await {
        Ok(new) => {
            let (id, crypto) = (p.id, state.core.crypto.clone());
            state
                .core
                .db(move |c| providers::update(c, &crypto, id, &new))
                .await?;
            finish_save(&state, id).await?;
            Ok(see_other(&format!("/providers/{id}")))
        }
        Err(errors) => form_again(ctx, &state, p.kind, Some(p.id), form, errors),
    }
}

/// Re-runs the live check with the stored settings, recording the outcome on the provider.
#[post("/providers/{id}/check")]
pub async fn recheck(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    let form = form_of(&state, &p);
    let id = p.id;
    match connect::prepare(&state.core, p.kind, &form, Some(&p)).await {
        Ok(_) => {
            state
                .core
                .db(move |c| providers::record_check(c, id, true, None))
                .await?
        }
        Err(errors) => {
            let msg = CheckFailure::fields(&errors).to_stored();
            state
                .core
                .db(move |c| providers::record_check(c, id, false, Some(&msg)))
                .await?
        }
    }
    Ok(see_other(&format!("/providers/{id}")))
}

#[post("/providers/{id}/rotate")]
pub async fn rotate(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    state
        .core
        .db(move |c| providers::rotate_secret(c, id))
        .await?;
    // Telegram and ChatAPI must learn the new address.
    finish_save(&state, id).await?;
    Ok(see_other(&format!("/providers/{id}")))
}

#[post("/providers/{id}/delete")]
pub async fn delete(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    match state.core.db(move |c| providers::delete(c, id)).await {
        Ok(()) => {
            state.core.providers.forget(id);
            Ok(see_other("/providers"))
        }
        Err(ProviderError::InUse(names)) => {
            let p = load(&state, id).await?;
            let hook = hook_log(&state, id).await?;
            render(
                &show_page(&state, ctx, p, names, hook),
                StatusCode::CONFLICT,
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct SampleForm {
    #[serde(default)]
    order_id: String,
    #[serde(default)]
    event: String,
}

/// How long the page waits for the sample to be dispatched before saying it is still queued.
const SAMPLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// «Отправить тестовое событие»: stores a sample trigger for an order through the webhook's own
/// ingest, waits for its dispatch and says what happened.
#[post("/providers/{id}/test-event")]
pub async fn test_event(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<SampleForm>,
) -> Result<HttpResponse, WebError> {
    let p = load(&state, *id).await?;
    if p.kind != ProviderKind::Retailcrm {
        return Err(WebError::NotFound);
    }
    let lang = ctx.lang;
    let mut sample_event = None;
    let lines = match form.order_id.trim().parse::<i64>() {
        Ok(order) if order > 0 => {
            match sample_event::payload(&state.core, &p, order, form.event != "status").await {
                Err(e) => vec![
                    Msg::new(format!("{} ", lang.t("sample_failed")))
                        .then(reasons::reason(lang, &e.reason, None)),
                ],
                Ok(trigger) => {
                    let event_type = trigger.event_type();
                    let item = svyazka_core::ingest::trigger_item(
                        p.id,
                        &trigger,
                        state.core.config.trigger_repeat_window,
                    );
                    let stored = state
                        .inbox
                        .store(item)
                        .await
                        .map_err(|e| WebError::Internal(format!("inbox: {e}")))?;
                    let inbox_id = stored.id();
                    sample_event = Some(inbox_id);
                    let mut lines = vec![Msg::new(match stored {
                        Stored::New(_) => lang.f("sample_stored", &[("id", &inbox_id)]),
                        Stored::Duplicate(_) => lang.f("sample_duplicate", &[("id", &inbox_id)]),
                    })];
                    let outcome =
                        sample_event::follow(&state.core, p.id, inbox_id, event_type, SAMPLE_WAIT)
                            .await?;
                    lines.extend(sample_lines(lang, event_type, outcome));
                    lines
                }
            }
        }
        _ => vec![Msg::new(lang.t("sample_bad_order"))],
    };
    let hook = hook_log(&state, p.id).await?;
    let mut page = show_page(&state, ctx, p, Vec::new(), hook);
    page.sample = Some(lines);
    page.sample_event = sample_event;
    ok(&page)
}

fn stored_why(lang: Lang, error: Option<String>) -> Msg {
    error
        .as_deref()
        .map(|e| reasons::stored(lang, e, None))
        .unwrap_or_else(|| Msg::new(String::new()))
}

fn sample_lines(lang: Lang, event_type: &str, outcome: SampleState) -> Vec<Msg> {
    let event = i18n::catalog::event(lang, ProviderKind::Retailcrm, event_type);
    match outcome {
        SampleState::Dispatched { runs, .. } if !runs.is_empty() => {
            let mut lines = vec![Msg::new(lang.f("sample_runs", &[("n", &runs.len())]))];
            lines.extend(runs.into_iter().map(|(run, name)| {
                Msg::new(lang.f(
                    "sample_run",
                    &[("run", &run as &dyn std::fmt::Display), ("bundle", &name)],
                ))
            }));
            lines
        }
        SampleState::Dispatched { listening, .. } if listening.is_empty() => {
            vec![Msg::new(
                lang.f("sample_none_listening", &[("event", &event)]),
            )]
        }
        SampleState::Dispatched {
            listening, status, ..
        } => {
            let names = listening
                .iter()
                .map(|n| format!("«{n}»"))
                .collect::<Vec<_>>()
                .join(", ");
            let status = status.unwrap_or_default();
            vec![Msg::new(lang.f(
                "sample_none_status",
                &[
                    ("bundles", &names as &dyn std::fmt::Display),
                    ("status", &status),
                ],
            ))]
        }
        SampleState::Failed { error } => {
            vec![Msg::new(format!("{} ", lang.t("sample_failed"))).then(stored_why(lang, error))]
        }
        SampleState::Skipped { error } => {
            vec![Msg::new(format!("{}: ", lang.t("ev_other_store"))).then(stored_why(lang, error))]
        }
        SampleState::Waiting => vec![Msg::new(lang.t("sample_waiting"))],
    }
}
