//! One integration-test binary (faster to link than one per file): the real app over HTTP.
#![allow(clippy::unwrap_used)]

mod alerts;
mod auth;
mod channels;
mod conversations;
mod dashboard;
mod deployment;
mod events;
mod faults;
mod flows;
mod greenapi;
mod hardening;
mod health;
mod hooks;
mod language;
mod media;
mod operations;
mod overload;
mod provider_page;
mod providers;
mod queue;
mod read_status;
mod recipes;
mod replies;
mod runs;
mod security;
mod startup;
pub mod support;
mod telegram;
mod trigger_body;
mod wa_media;
mod wa_templates;
mod wacloud;
