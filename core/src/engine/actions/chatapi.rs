use serde_json::json;

use super::{Attempt, Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::providers::Provider;
use crate::runs;

/// How far before the earlier attempt's start the history is searched: the gateway stamps
/// messages with its own clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// Sends the text, unless an earlier attempt (started at `earlier`, its answer lost to a
/// timeout or a dead worker) already did: the gateway's history of this chat is asked first,
/// so a retry never reaches the customer twice. A message there that another run recorded as
/// its own (the same text to the same chat minutes earlier, e.g. an order back in a status) is
/// not this one.
pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    attempt: &Attempt<'_>,
) -> Result<Outputs, StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent((&e).into()))?;
    let text = input(inputs, "text")?;
    let api = clients::chatapi(core, target)?;
    if let Some(at) = attempt.earlier {
        let since = at - chrono::Duration::seconds(CLOCK_SKEW_SECS);
        let history = api
            .sent_since(&to, since.and_utc().timestamp())
            .await
            .map_err(|e| StepError::upstream(&e))?;
        let run_id = attempt.run_id;
        let others = core
            .db(move |c| runs::messages_sent_by_others(c, run_id, since))
            .await?;
        let own = history
            .iter()
            .rev()
            .find(|m| m.body.trim() == text && !others.contains(&m.id));
        if let Some(m) = own {
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

pub(super) fn outputs(message_id: &str) -> Outputs {
    let mut out = Outputs::new();
    out.insert("message_id".into(), json!(message_id));
    out
}
