//! The alert settings page: how failures reach the admin (off, a Telegram bot, SMTP), when a
//! bundle stops itself, how often a failing bundle alerts, and «Send test alert».

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::alerts::deliver;
use svyazka_core::alerts::settings::{self, AlertSettings, Form};
use svyazka_core::alerts::{self, Alert};
use svyazka_core::providers::{self, ProviderKind};

use crate::error::WebError;
use crate::i18n::{Msg, alerts as words, reasons};
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::{CsrfForm, CsrfOnly};
use crate::state::AppState;

const RECENT: i64 = 20;

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    ctx: PageCtx,
    form: Form,
    bots: Vec<(i64, String)>,
    has_password: bool,
    /// Whether the development setting allows a plain local SMTP server.
    allow_plain: bool,
    errors: Vec<(String, String)>,
    saved: bool,
    /// The outcome of «Send test alert»: `Ok` or the reason, as HTML.
    test: Option<Result<(), String>>,
    recent: Vec<RecentView>,
}

struct RecentView {
    created: String,
    kind: String,
    name: String,
    count: i32,
    status: &'static str,
    error: Option<String>,
}

impl AlertsPage {
    fn err(&self, field: &str) -> Option<&String> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m)
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn page(ctx: PageCtx, state: &AppState, form: Option<Form>) -> Result<AlertsPage, WebError> {
    let (saved, bots, has_password, recent) = state
        .core
        .db(|c| {
            Ok::<_, WebError>((
                settings::load(c)?,
                providers::list(c)?
                    .into_iter()
                    .filter(|p| p.kind == ProviderKind::Telegram)
                    .map(|p| (p.id, p.name))
                    .collect::<Vec<_>>(),
                settings::has_password(c)?,
                alerts::recent(c, RECENT)?,
            ))
        })
        .await?;
    let recent = recent.iter().map(|a| recent_view(&ctx, a)).collect();
    Ok(AlertsPage {
        form: form.unwrap_or_else(|| Form::from_settings(&saved)),
        bots,
        has_password,
        allow_plain: state.core.config.dev_allow_loopback,
        errors: Vec::new(),
        saved: false,
        test: None,
        recent,
        ctx,
    })
}

fn recent_view(ctx: &PageCtx, a: &Alert) -> RecentView {
    let lang = ctx.lang;
    RecentView {
        created: a.created_at.format("%Y-%m-%d %H:%M").to_string(),
        kind: a.kind.to_string(),
        name: a.subject_name.clone(),
        count: a.count,
        status: lang.t(&format!("alerts_status_{}", a.status)),
        error: a.error.as_deref().map(|e| {
            match serde_json::from_str::<deliver::SendFailure>(e) {
                Ok(f) => words::send_failure(lang, &f),
                Err(_) => Msg::default().quote(e),
            }
            .to_string()
        }),
    }
}

#[get("/settings/alerts")]
pub async fn show(
    ctx: PageCtx,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let mut p = page(ctx, &state, None).await?;
    p.saved = query.done.as_deref() == Some("saved");
    ok(&p)
}

/// Saves the settings; any problem → 422 with the reasons by the fields, nothing written.
#[post("/settings/alerts")]
pub async fn save(
    ctx: PageCtx,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<Form>,
) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    let bot_ids: Vec<i64> = state
        .core
        .db(|c| {
            Ok::<_, WebError>(
                providers::list(c)?
                    .into_iter()
                    .filter(|p| p.kind == ProviderKind::Telegram)
                    .map(|p| p.id)
                    .collect(),
            )
        })
        .await?;
    let parsed: Result<AlertSettings, _> = form.parse(&bot_ids);
    let new_settings = match parsed {
        Ok(s) => s,
        Err(problems) => {
            let mut p = page(ctx, &state, Some(form)).await?;
            p.errors = problems
                .iter()
                .map(|(f, problem)| (f.clone(), reasons::rule(lang, f, problem).to_string()))
                .collect();
            p.form.smtp_password.clear();
            return render(&p, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let crypto = state.core.crypto.clone();
    let password = form.new_password().map(str::to_owned);
    state
        .core
        .db(move |c| settings::save(c, &crypto, &new_settings, password.as_deref()))
        .await?;
    Ok(see_other("/settings/alerts?done=saved"))
}

/// «Send test alert» through the saved settings; a failure shows the upstream's own words.
#[post("/settings/alerts/test")]
pub async fn test(
    ctx: PageCtx,
    state: web::Data<AppState>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    let outcome = deliver::send_test(&state.core).await;
    let mut p = page(ctx, &state, None).await?;
    p.test = Some(outcome.map_err(|f| words::send_failure(lang, &f).to_string()));
    let status = match p.test {
        Some(Err(_)) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::OK,
    };
    render(&p, status)
}
