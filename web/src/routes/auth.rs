//! First-run setup, sign-in, sign-out, the account page (password change, «выйти на всех
//! устройствах»), language switch.

use std::net::{IpAddr, Ipv4Addr};

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, cookie::Cookie, get, post, web};
use askama::Template;
use serde::Deserialize;
use svyazka_core::auth::sessions::SignedIn;
use svyazka_core::auth::{self, AuthError, MIN_PASSWORD_CHARS};
use svyazka_core::reason::field_problems;
use validator::Validate;

use crate::error::WebError;
use crate::i18n::{self, Lang, Msg, reasons};
use crate::login_limit;
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::{self, CsrfForm, CsrfOnly};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    ctx: PageCtx,
    username: String,
    err_code: Option<Msg>,
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

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    ctx: PageCtx,
    sessions: i64,
    done: bool,
    err_current: Option<&'static str>,
    err_new: Option<&'static str>,
    err_repeat: Option<&'static str>,
}

/// The first administrator; the rules are checked by `validator`, worded by `i18n::reasons`.
#[derive(Deserialize, Validate)]
pub struct SetupForm {
    #[serde(default)]
    setup_code: String,
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

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// The client's address for throttling: the peer, or behind a trusted proxy the address it
/// forwarded.
fn client_ip(req: &HttpRequest, state: &AppState) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(Ipv4Addr::UNSPECIFIED.into());
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    login_limit::client_addr(
        peer,
        forwarded.as_deref(),
        &state.core.config.trusted_proxies,
    )
}

fn already_set_up(lang: Lang) -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body(lang.t("setup_done"))
}

pub async fn setup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if state.admin_exists().await? {
        return Ok(see_other("/login"));
    }
    ok(&SetupPage {
        ctx: PageCtx::new(&req),
        username: String::new(),
        err_code: None,
        err_username: None,
        err_password: None,
        err_repeat: None,
    })
}

pub async fn setup(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SetupForm>,
) -> Result<HttpResponse, WebError> {
    let lang = Lang::from_request(&req);
    if state.admin_exists().await? {
        return Ok(already_set_up(lang));
    }
    let username = form.username.trim().to_string();
    let page = |err_code, err_username, err_password, err_repeat| SetupPage {
        ctx: PageCtx::new(&req),
        username: username.clone(),
        err_code,
        err_username,
        err_password,
        err_repeat,
    };
    // A wrong code counts like a wrong password: guessing it is throttled per address.
    if !state
        .login_limiter
        .attempt_anonymous(client_ip(&req, &state))
    {
        let p = page(
            Some(Msg::new(lang.t("too_many_sign_in_attempts"))),
            None,
            None,
            None,
        );
        return render(&p, StatusCode::TOO_MANY_REQUESTS);
    }
    let form = SetupForm {
        username: username.clone(),
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
        let p = page(
            None,
            err("username"),
            err("password"),
            err("password_repeat"),
        );
        return render(&p, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let created =
        auth::create_first_admin(&state.core, &form.setup_code, &username, &form.password).await;
    match created {
        Ok(admin) => {
            state.mark_admin_exists();
            session::sign_in(&state, &session, admin.id, &admin.username).await?;
            Ok(see_other("/providers"))
        }
        Err(AuthError::WrongSetupCode) => {
            tracing::warn!(ip = %client_ip(&req, &state), "set-up refused: wrong set-up code");
            let p = page(Some(Msg::new(lang.t("err_setup_code"))), None, None, None);
            render(&p, StatusCode::FORBIDDEN)
        }
        Err(AuthError::AlreadySetUp) => Ok(already_set_up(lang)),
        Err(e) => Err(e.into()),
    }
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if !state.admin_exists().await? {
        return Ok(see_other("/setup"));
    }
    ok(&LoginPage {
        ctx: PageCtx::new(&req),
        username: String::new(),
        error: None,
    })
}

pub async fn login(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let lang = Lang::from_request(&req);
    let ip = client_ip(&req, &state);
    let username = form.username.trim().to_string();
    // Counted before the password is checked, so parallel guesses are counted too.
    if !state.login_limiter.attempt(ip, &username) {
        tracing::warn!(%ip, "sign-in refused: too many attempts");
        let page = LoginPage {
            ctx: PageCtx::new(&req),
            username,
            error: Some(lang.t("too_many_sign_in_attempts")),
        };
        return render(&page, StatusCode::TOO_MANY_REQUESTS);
    }
    let admin = auth::authenticate(&state.core, &username, &form.password).await?;
    match admin {
        Some(admin) => {
            state.login_limiter.succeeded(ip, &username);
            session::sign_in(&state, &session, admin.id, &admin.username).await?;
            Ok(see_other("/providers"))
        }
        None => {
            tracing::info!(%ip, "failed sign-in");
            let page = LoginPage {
                ctx: PageCtx::new(&req),
                username,
                error: Some(lang.t("bad_login")),
            };
            render(&page, StatusCode::UNAUTHORIZED)
        }
    }
}

#[post("/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    session::sign_out(&state, &session).await?;
    Ok(see_other("/login"))
}

#[derive(Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn account_page(
    req: &HttpRequest,
    state: &AppState,
    admin: &SignedIn,
) -> Result<AccountPage, WebError> {
    let id = admin.admin_id;
    let sessions = state.core.db(move |c| auth::sessions::count(c, id)).await?;
    Ok(AccountPage {
        ctx: PageCtx::new(req),
        sessions,
        done: false,
        err_current: None,
        err_new: None,
        err_repeat: None,
    })
}

#[get("/account")]
pub async fn account(
    req: HttpRequest,
    state: web::Data<AppState>,
    admin: web::ReqData<SignedIn>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = account_page(&req, &state, &admin).await?;
    page.done = query.done.as_deref() == Some("password");
    ok(&page)
}

/// Checks the current password, sets the new one, ends every session (all copies of every
/// cookie), then signs this browser in again with a fresh session.
#[post("/account/password")]
pub async fn change_password(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    admin: web::ReqData<SignedIn>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let lang = Lang::from_request(&req);
    let admin = admin.into_inner();
    let ip = client_ip(&req, &state);
    let mut page = account_page(&req, &state, &admin).await?;
    // Guessing the current password from a stolen session is throttled like signing in.
    if !state.login_limiter.attempt(ip, &admin.username) {
        page.err_current = Some(lang.t("too_many_sign_in_attempts"));
        return render(&page, StatusCode::TOO_MANY_REQUESTS);
    }
    page.err_new =
        (form.new.chars().count() < MIN_PASSWORD_CHARS).then(|| lang.t("err_password_len"));
    page.err_repeat = (form.new != form.repeat).then(|| lang.t("err_password_match"));
    if page.err_new.is_some() || page.err_repeat.is_some() {
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match auth::change_password(&state.core, admin.admin_id, &form.current, &form.new).await {
        Ok(()) => {
            state.login_limiter.succeeded(ip, &admin.username);
            session::sign_in(&state, &session, admin.admin_id, &admin.username).await?;
            Ok(see_other("/account?done=password"))
        }
        Err(AuthError::WrongPassword) => {
            page.err_current = Some(lang.t("err_current_password"));
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(AuthError::WeakPassword) => {
            page.err_new = Some(lang.t("err_password_len"));
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

/// «Выйти на всех устройствах»: every session of the admin, this one included.
#[post("/account/sign-out-everywhere")]
pub async fn sign_out_everywhere(
    state: web::Data<AppState>,
    session: Session,
    admin: web::ReqData<SignedIn>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = admin.admin_id;
    let ended = state
        .core
        .db(move |c| auth::sessions::end_all(c, id))
        .await?;
    tracing::info!(ended, "signed out on all devices");
    session.purge();
    Ok(see_other("/login"))
}

#[derive(Deserialize)]
pub struct LangQuery {
    next: Option<String>,
}

/// Sets the language cookie and goes back. A GET is fine: it changes a display preference only.
/// The way back comes from `next` (added by app.js, since pages send no Referer) or the
/// Referer; only same-site paths are followed, never an absolute URL.
#[get("/lang/{code}", name = "lang")]
pub async fn switch_lang(
    req: HttpRequest,
    code: web::Path<String>,
    query: web::Query<LangQuery>,
) -> HttpResponse {
    let code = if code.as_str() == "en" { "en" } else { "ru" };
    let back = query
        .next
        .as_deref()
        .filter(|p| is_local_path(p))
        .map(str::to_string)
        .or_else(|| {
            req.headers()
                .get("referer")
                .and_then(|v| v.to_str().ok())
                .and_then(url_path)
        })
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

fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.contains(['\\', '\r', '\n'])
}

fn url_path(referer: &str) -> Option<String> {
    let after_scheme = referer.split_once("://").map(|(_, rest)| rest)?;
    let path = after_scheme.find('/').map(|i| &after_scheme[i..])?;
    is_local_path(path).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_back() {
        assert!(is_local_path("/runs?page=2"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
        assert_eq!(
            url_path("http://localhost:8080/providers/1").as_deref(),
            Some("/providers/1")
        );
        assert_eq!(url_path("http://x//evil.example"), None);
    }
}
