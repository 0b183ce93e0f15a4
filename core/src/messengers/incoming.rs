//! The normalised "Incoming message" event every messenger webhook is turned into.

use serde::{Deserialize, Serialize};

/// One message a customer sent to the shop, whatever the messenger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// Upstream message id; together with the provider it is the dedup key of the inbox.
    pub message_id: String,
    /// Who wrote: the phone in international digits for WhatsApp ("79991234567"), the user id for Telegram.
    pub sender_id: String,
    /// Phone in international digits when the messenger gives one (WhatsApp always; Telegram only for a shared contact).
    pub sender_phone: Option<String>,
    pub sender_name: String,
    /// Where to answer: "79991234567@c.us" for ChatAPI, the chat id for Telegram.
    pub chat_id: String,
    pub text: String,
    /// Unix seconds as sent by the upstream.
    pub time: i64,
}

/// What a webhook body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Customer messages to store (a ChatAPI body may carry several).
    Messages(Vec<IncomingMessage>),
    /// A well-formed body that carries nothing for us (acks, our own echoes, non-message updates).
    Ignored(&'static str),
}

/// A webhook body we cannot read: answered with 400 and this reason, nothing stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadPayload(pub String);
