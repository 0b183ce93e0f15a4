use serde_json::json;

use super::{Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::providers::Provider;

pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let chat = input(inputs, "chat_id")?;
    let text = input(inputs, "text")?;
    let api = clients::telegram(core, target)?;
    let sent = api
        .send_message(chat, text)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(json!({"message_id": sent.message_id})
        .as_object()
        .cloned()
        .unwrap_or_default())
}
