//! First-run setup, sign-in, sign-out, language switch.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, cookie::Cookie, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::reason::field_problems;
use validator::Validate;

use crate::error::WebError;
use crate::i18n::{self, Lang, Msg, reasons};
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::{self, CsrfForm, CsrfOnly};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    ctx: PageCtx,
    username: String,
    err_username: Option<Msg>,
    err_password: Option<Msg>,
    err_repeat: Option<Msg>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    username: String,
    error: Option<&'static str>,
}

/// The first administrator; the rules are checked by `validator`, worded by `i18n::reasons`.
#[derive(Deserialize, Validate)]
pub struct SetupForm {
    #[serde(default)]
    #[validate(length(min = 3, max = 64))]
    username: String,
    #[serde(default)]
    #[validate(length(min = 10))]
    password: String,
    #[serde(default)]
    #[validate(must_match(other = "password"))]
    password_repeat: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn setup_form(
    ctx: PageCtx,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if state.admin_exists().await? {
        return Ok(see_other("/login"));
    }
    ok(&SetupPage {
        ctx,
        username: String::new(),
        err_username: None,
        err_password: None,
        err_repeat: None,
    })
}

fn already_set_up(lang: Lang) -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body(lang.t("setup_done"))
}

pub async fn setup(
    ctx: PageCtx,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    if state.admin_exists().await? {
        return Ok(already_set_up(lang));
    }
    let form = SetupForm {
        username: form.username.trim().to_string(),
        ..form
    };
    if let Err(invalid) = form.validate() {
        let problems = field_problems(&invalid);
        let err = |field: &str| {
            problems
                .iter()
                .find(|(f, _)| f == field)
                .map(|(f, p)| reasons::labelled(lang, f, f, p))
        };
        let page = SetupPage {
            err_username: err("username"),
            err_password: err("password"),
            err_repeat: err("password_repeat"),
            ctx,
            username: form.username,
        };
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let username = form.username;
    let password = form.password;
    let name = username.clone();
    let created = state
        .core
        .db(move |c| svyazka_core::auth::create_first_admin(c, &name, &password))
        .await;
    match created {
        Ok(admin) => {
            state.mark_admin_exists();
            session::sign_in(&ctx.session, admin.id, &admin.username);
            Ok(see_other("/providers"))
        }
        Err(svyazka_core::auth::AuthError::AlreadySetUp) => Ok(already_set_up(lang)),
        Err(e) => Err(e.into()),
    }
}

pub async fn login_form(
    ctx: PageCtx,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if !state.admin_exists().await? {
        return Ok(see_other("/setup"));
    }
    ok(&LoginPage {
        ctx,
        username: String::new(),
        error: None,
    })
}

pub async fn login(
    req: HttpRequest,
    ctx: PageCtx,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let lang = ctx.lang;
    let ip = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let username = form.username.trim().to_string();
    if state.login_limiter.is_blocked(ip) {
        let page = LoginPage {
            ctx,
            username,
            error: Some(lang.t("too_many_attempts")),
        };
        return render(&page, StatusCode::TOO_MANY_REQUESTS);
    }
    let (name, password) = (username.clone(), form.password);
    let admin = state
        .core
        .db(move |c| svyazka_core::auth::verify_login(c, &name, &password))
        .await?;
    match admin {
        Some(admin) => {
            state.login_limiter.clear(ip);
            session::sign_in(&ctx.session, admin.id, &admin.username);
            Ok(see_other("/providers"))
        }
        None => {
            state.login_limiter.record_failure(ip);
            tracing::info!(%ip, "failed sign-in");
            let page = LoginPage {
                ctx,
                username,
                error: Some(lang.t("bad_login")),
            };
            render(&page, StatusCode::UNAUTHORIZED)
        }
    }
}

#[post("/logout")]
pub async fn logout(ctx: PageCtx, _form: CsrfOnly) -> HttpResponse {
    session::sign_out(&ctx.session);
    see_other("/login")
}

/// Sets the language cookie and goes back. A GET is fine: it changes a display preference only.
#[get("/lang/{code}", name = "lang")]
pub async fn switch_lang(req: HttpRequest, code: web::Path<String>) -> HttpResponse {
    let code = if code.as_str() == "en" { "en" } else { "ru" };
    // Only same-site paths are followed back, never an absolute URL from the Referer.
    let back = req
        .headers()
        .get("referer")
        .and_then(|v| v.to_str().ok())
        .and_then(url_path)
        .unwrap_or_else(|| "/".to_string());
    let cookie = Cookie::build(i18n::COOKIE, code)
        .path("/")
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header(("Location", back))
        .finish()
}

fn url_path(referer: &str) -> Option<String> {
    let after_scheme = referer.split_once("://").map(|(_, rest)| rest)?;
    let path = after_scheme.find('/').map(|i| &after_scheme[i..])?;
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_string())
}
