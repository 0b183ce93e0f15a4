//! An operator edits or deletes a reply already delivered, where the messenger allows it: a
//! Telegram bot may edit and delete its own messages; the WhatsApp gateway can do neither, so
//! the WhatsApp channel does not offer it (see `Channel::for_messenger`). Best effort, within
//! the request: MG hears the outcome in the answer, nothing is retried.

use super::errors;
use crate::Core;
use crate::db::DbError;
use crate::engine::clients;
use crate::providers::ProviderKind;
use crate::retailcrm::mg_webhook::{ErrorCode, MessageRef, SendingError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Edit(String),
    Delete,
}

/// Applies the change to the customer's copy; `Some` is the refusal to tell MG. A message we
/// did not deliver (a customer's, or unknown) needs nothing from us.
pub async fn apply(
    core: &Core,
    provider_id: i64,
    data: &MessageRef,
    change: Change,
) -> Result<Option<SendingError>, DbError> {
    let Some(external) = data.external_message_id.clone() else {
        return Ok(None);
    };
    let channel = data.channel_id;
    let reply = core
        .db(move |c| super::delivered(c, provider_id, channel, &external))
        .await?;
    let Some(reply) = reply else {
        return Ok(None);
    };
    let (Some(messenger), Some(chat)) = (reply.messenger_provider_id, reply.chat_id.clone()) else {
        return Ok(None);
    };
    let refused = |why: &str| Ok(Some(SendingError::new(ErrorCode::General, why)));
    let Ok(provider) = core.provider(messenger).await else {
        return refused("the messenger connection is gone from Svyazka");
    };
    if provider.kind != ProviderKind::Telegram {
        return refused("this messenger does not allow changing a sent message");
    }
    let (Ok(api), Some(message_id)) = (
        clients::telegram(core, &provider),
        reply
            .external_message_id
            .as_deref()
            .and_then(|m| m.parse::<i64>().ok()),
    ) else {
        return refused("the Telegram bot cannot be reached from Svyazka");
    };
    let result = match &change {
        Change::Edit(text) => api
            .edit_message_text(chat.as_str(), message_id, text)
            .await
            .map(|_| ()),
        Change::Delete => api.delete_message(chat.as_str(), message_id).await,
    };
    match result {
        Ok(()) => {
            if let Change::Edit(text) = change {
                let id = reply.id;
                core.db(move |c| super::set_content(c, id, &text)).await?;
            }
            Ok(None)
        }
        Err(e) => Ok(Some(errors::from_telegram(&e))),
    }
}
