//! One integration-test binary (faster to link than one per file): the real app over HTTP.
#![allow(clippy::unwrap_used)]

mod auth;
mod health;
pub mod support;
