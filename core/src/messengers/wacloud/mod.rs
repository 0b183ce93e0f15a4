//! WhatsApp Cloud API (Meta, official): sends through the Graph API, webhooks signed with the
//! app secret, a 24-hour window for free text, approved templates outside it.

pub mod client;
pub mod media;
pub mod webhook;

pub use client::{CloudApi, CloudApiError, PhoneNumber, Template};

/// Free text is accepted within this many hours of the customer's last message.
pub const WINDOW_HOURS: i64 = 24;
