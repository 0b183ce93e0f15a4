//! Action executors, one module per provider kind. Inputs arrive resolved (text); outputs are
//! the fields the catalog declares for the action.

mod chatapi;
mod greenapi;
mod media;
mod official;
mod retailcrm;
mod telegram;
mod wacloud;

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde_json::{Map, Value as Json};

use super::StepError;
use crate::Core;
use crate::providers::{Provider, ProviderKind};
use crate::reason::Reason;

pub type Inputs = BTreeMap<String, String>;
pub type Outputs = Map<String, Json>;

/// Which attempt of which run a step call is: what actions need besides their inputs.
pub struct Attempt<'a> {
    pub run_id: i64,
    /// Unique per run and step: lets RetailCRM and MG recognise a repeated create.
    pub idem: &'a str,
    /// When an earlier attempt of this step may have sent something (its answer lost to a
    /// timeout or a dead worker); `None` on a first attempt.
    pub earlier: Option<NaiveDateTime>,
    /// The messenger the event came from, which picks the RetailCRM chat channel.
    pub messenger: Option<&'a str>,
    /// For a customer's message: the provider and chat an operator's reply goes back to.
    pub source_provider_id: Option<i64>,
    pub chat_id: Option<&'a str>,
    /// When the customer wrote (unix seconds, the messenger's clock).
    pub customer_time: Option<i64>,
    /// The photo, file, … the customer's message carried; it goes into RetailCRM's chat with
    /// the message.
    pub media: Option<crate::messengers::incoming::IncomingMedia>,
}

pub async fn execute(
    core: &Core,
    target: &Provider,
    action: &str,
    inputs: &Inputs,
    attempt: &Attempt<'_>,
) -> Result<Outputs, StepError> {
    let idem = attempt.idem;
    match (target.kind, action) {
        (ProviderKind::Retailcrm, "new_contact") => {
            retailcrm::new_contact(core, target, inputs).await
        }
        (ProviderKind::Retailcrm, "new_deal") => {
            retailcrm::new_deal(core, target, inputs, idem).await
        }
        (ProviderKind::Retailcrm, "new_message") => {
            retailcrm::new_message(core, target, inputs, attempt).await
        }
        (ProviderKind::Chatapi, "send_message") => {
            chatapi::send_message(core, target, inputs, attempt).await
        }
        (ProviderKind::Greenapi, "send_message") => {
            greenapi::send_message(core, target, inputs, attempt).await
        }
        (ProviderKind::Wacloud, "send_message") => {
            wacloud::send_message(core, target, inputs).await
        }
        (ProviderKind::Telegram, "send_message") => {
            telegram::send_message(core, target, inputs).await
        }
        (kind, other) => Err(StepError::permanent(Reason::NoSuchAction {
            kind,
            action: other.to_string(),
        })),
    }
}

/// Whether repeating the action after a crash mid-call is harmless. RetailCRM actions find
/// before they create (contacts by phone, deals and chat messages by our idempotency key); a
/// messenger send has no such key, so its start is recorded before the call.
pub fn repeatable(kind: ProviderKind, action: &str) -> bool {
    !matches!(
        (kind, action),
        (
            ProviderKind::Chatapi
                | ProviderKind::Greenapi
                | ProviderKind::Telegram
                | ProviderKind::Wacloud,
            "send_message"
        )
    )
}

/// Whether an interrupted send can be checked with the upstream before it is repeated: the
/// WhatsApp gateways keep a readable history; a Telegram bot cannot read its own chats.
pub fn confirmable(kind: ProviderKind, action: &str) -> bool {
    matches!(
        (kind, action),
        (
            ProviderKind::Chatapi | ProviderKind::Greenapi,
            "send_message"
        )
    )
}

fn input<'a>(inputs: &'a Inputs, key: &str) -> Result<&'a str, StepError> {
    inputs
        .get(key)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            StepError::permanent(Reason::EmptyParam {
                param: key.to_string(),
            })
        })
}

fn optional<'a>(inputs: &'a Inputs, key: &str) -> Option<&'a str> {
    inputs.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}
