//! Связки: the list and the two-step "Add" (`list`), the editor page with the name and
//! Start/Stop (`editor`, built from `view`), the event card's status selector (`statuses`), and
//! the chain of action cards (`steps`).
//!
//! htmx requests get the changed fragment only (a card, the chain, the run bar); the same
//! endpoints answer plain form posts with a redirect back to the editor, so every screen also
//! works without JavaScript. Editing logic lives in `svyazka_core::bundles::editor`.

mod editor;
mod list;
mod statuses;
mod steps;
mod view;

use actix_web::{HttpResponse, web};

use crate::page::see_other;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list::list)
        .service(list::new_providers)
        .service(list::new_type)
        .service(list::create)
        .service(editor::edit)
        .service(editor::rename)
        .service(editor::start)
        .service(editor::stop)
        .service(editor::delete)
        .service(statuses::statuses)
        .service(statuses::save_statuses)
        .service(statuses::refresh_statuses)
        .service(steps::add_step)
        .service(steps::save_step)
        .service(steps::move_step)
        .service(steps::remove_step)
        .service(steps::preview);
}

/// An event or action to choose, with its label.
struct Choice {
    key: &'static str,
    label: String,
}

/// After a change made by a plain form post: back to the editor, at `anchor`.
fn back_to_editor(id: i64, anchor: &str) -> HttpResponse {
    see_other(&format!("/bundles/{id}{anchor}"))
}
