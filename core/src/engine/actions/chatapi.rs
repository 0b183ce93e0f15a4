use serde_json::json;

use super::{Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::providers::Provider;

pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent(e.to_string()))?;
    let text = input(inputs, "text")?;
    let api = clients::chatapi(core, target)?;
    let sent = api
        .send_text(&to, text)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(json!({"message_id": sent.id})
        .as_object()
        .cloned()
        .unwrap_or_default())
}
