//! The web app: admin pages, webhook endpoints, sign-in. The app crate assembles the process
//! and hands `serve` a ready state and a bound listener.

pub mod error;
pub mod i18n;
pub mod login_limit;
pub mod page;
pub mod routes;
pub mod security_headers;
pub mod session;
pub mod state;

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

pub use state::AppState;

/// The HTTP server over `listener`, not yet polled: the caller spawns it and keeps its handle.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let key = Key::from(state.core.crypto.cookie_key());
    let secure = state.core.config.public_url.starts_with("https://");
    let data = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_name("svyazka_session".into())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .cookie_content_security(CookieContentSecurity::Private)
                    .build(),
            )
            .configure(routes::configure)
    })
    .listen(listener)?
    .run())
}
