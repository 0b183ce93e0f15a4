use chrono::NaiveDateTime;
use serde_json::json;

use super::{Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::providers::Provider;

/// How far before the earlier attempt's start the history is searched: the gateway stamps
/// messages with its own clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// Sends the text, unless an earlier attempt (started at `earlier`, its answer lost to a
/// timeout or a dead worker) already did: the gateway's history of this chat is asked first,
/// so a retry never reaches the customer twice.
pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    earlier: Option<NaiveDateTime>,
) -> Result<Outputs, StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent((&e).into()))?;
    let text = input(inputs, "text")?;
    let api = clients::chatapi(core, target)?;
    if let Some(at) = earlier {
        let since = at.and_utc().timestamp() - CLOCK_SKEW_SECS;
        let history = api
            .sent_since(&to, since)
            .await
            .map_err(|e| StepError::upstream(&e))?;
        if let Some(m) = history.iter().rev().find(|m| m.body.trim() == text) {
            tracing::info!(message = %m.id, "an earlier attempt was delivered; not sending again");
            return Ok(outputs(&m.id));
        }
    }
    let sent = api
        .send_text(&to, text)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(outputs(&sent.id))
}

fn outputs(message_id: &str) -> Outputs {
    let mut out = Outputs::new();
    out.insert("message_id".into(), json!(message_id));
    out
}
