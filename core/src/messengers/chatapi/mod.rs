//! WhatsApp through a ChatAPI-family gateway (chat-api.com, closed in 2023, and its successor
//! 1msg.io, which kept the same requests and webhook bodies).

pub mod client;
pub mod webhook;

pub use client::{AccountState, ChatApi, ChatApiError, InstanceStatus, SentMessage};
