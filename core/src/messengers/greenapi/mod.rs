//! WhatsApp through Green-API (green-api.com): a linked-device (QR) account reached at
//! `{apiUrl}/waInstance{idInstance}/{method}/{apiTokenInstance}`. No 24-hour window applies;
//! webhooks carry the `webhookUrlToken` we set in an `Authorization` header.

pub mod client;
pub mod media;
pub mod webhook;

pub use client::{GreenApi, GreenApiError, HistoryMessage};
