//! WhatsApp Cloud API (Meta, official): sends through the Graph API, webhooks signed with the
//! app secret, a 24-hour window for free text, approved templates outside it.

pub mod client;
pub mod media;
pub mod webhook;

pub use crate::messengers::templates::Template;
pub use client::{CloudApi, CloudApiError, PhoneNumber};

pub use crate::messengers::window::WINDOW_HOURS;
