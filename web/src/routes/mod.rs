//! URL map. Public: health, sign-in, static files, webhooks, metrics (with its token). Everything else needs a session.
//! Every answer passes `error::localize`, so error pages are in the admin's language.

pub mod alerts;
pub mod auth;
pub mod bundles;
pub mod events;
pub mod health;
pub mod home;
pub mod hooks;
pub mod metrics;
pub mod mg_hook;
pub mod pager;
pub mod providers;
pub mod replies;
pub mod runs;
pub mod static_files;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::error::localize;
use crate::security_headers::security_headers;
use crate::session::require_admin;

/// Everything sits in one scope so every response, 404s included, gets the security headers.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(localize))
            .wrap(from_fn(security_headers))
            .wrap(from_fn(metrics::count_webhooks))
            .configure(routes),
    );
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(metrics::metrics)
        .service(static_files::asset)
        .service(auth::switch_lang)
        .configure(hooks::configure)
        .service(
            web::resource("/setup")
                .route(web::get().to(auth::setup_form))
                .route(web::post().to(auth::setup)),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(auth::login_form))
                .route(web::post().to(auth::login)),
        )
        .service(
            web::scope("")
                .wrap(from_fn(require_admin))
                .service(auth::logout)
                .service(auth::account)
                .service(auth::change_password)
                .service(auth::sign_out_everywhere)
                .service(alerts::show)
                .service(alerts::save)
                .service(alerts::test)
                .service(home::home)
                .service(providers::list)
                .service(providers::choose)
                .service(providers::normalize)
                .service(providers::new_form)
                .service(providers::create)
                .service(providers::show)
                .service(providers::templates)
                .service(providers::test_event)
                .service(providers::edit_form)
                .service(providers::update)
                .service(providers::recheck)
                .service(providers::rotate)
                .service(providers::delete)
                .configure(bundles::configure)
                .configure(runs::configure)
                .configure(events::configure)
                .service(replies::list),
        );
}
