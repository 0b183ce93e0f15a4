use chrono::NaiveDateTime;
use serde_json::json;

use super::official;
use super::{Attempt, Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::chatapi::ChatApi;
use crate::messengers::phone::WaRecipient;
use crate::providers::Provider;
use crate::runs;

/// How far before the earlier attempt's start the history is searched: the gateway stamps
/// messages with its own clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// Sends the text (or, in template mode, the approved template through 1msg.io's
/// `sendTemplate`), unless an earlier attempt (started at `earlier`, its answer lost to a
/// timeout or a dead worker) already did: the gateway's history of this chat is asked first,
/// so a retry never reaches the customer twice. A message there that another run recorded as
/// its own (the same text to the same chat minutes earlier, e.g. an order back in a status) is
/// not this one.
///
/// Free text through official WhatsApp (1msg.io) outside the 24-hour window fails at once.
pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    attempt: &Attempt<'_>,
) -> Result<Outputs, StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent((&e).into()))?;
    if official::template_mode(inputs) {
        let t = official::template_inputs(inputs)?;
        let api = clients::chatapi(core, target)?;
        // The history holds the template as the customer read it, which is not known here:
        // any message of ours to this chat since the earlier attempt that no other run owns
        // is taken for it.
        if let Some(at) = attempt.earlier
            && let Some(id) = sent_earlier(core, &api, &to, at, attempt.run_id, None).await?
        {
            return Ok(outputs(&id));
        }
        let sent = api
            .send_template(&to, t.name, t.namespace, t.language, &t.values)
            .await
            .map_err(|e| StepError::upstream(&e))?;
        return Ok(outputs(&sent.id));
    }
    let text = input(inputs, "text")?;
    official::require_open_window(core, target, to.chat_id()).await?;
    let api = clients::chatapi(core, target)?;
    if let Some(at) = attempt.earlier
        && let Some(id) = sent_earlier(core, &api, &to, at, attempt.run_id, Some(text)).await?
    {
        return Ok(outputs(&id));
    }
    let sent = api
        .send_text(&to, text)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(outputs(&sent.id))
}

/// The id of our message to `to` (with `body`, when given) that an attempt started at `at`
/// already sent, if the gateway's history has one no other run owns.
async fn sent_earlier(
    core: &Core,
    api: &ChatApi,
    to: &WaRecipient,
    at: NaiveDateTime,
    run_id: i64,
    body: Option<&str>,
) -> Result<Option<String>, StepError> {
    let since = at - chrono::Duration::seconds(CLOCK_SKEW_SECS);
    let history = api
        .sent_since(to, since.and_utc().timestamp())
        .await
        .map_err(|e| StepError::upstream(&e))?;
    let others = core
        .db(move |c| runs::messages_sent_by_others(c, run_id, since))
        .await?;
    let own = history
        .iter()
        .rev()
        .find(|m| body.is_none_or(|b| m.body.trim() == b) && !others.contains(&m.id));
    Ok(own.map(|m| {
        tracing::info!(message = %m.id, "an earlier attempt was delivered; not sending again");
        m.id.clone()
    }))
}

pub(super) fn outputs(message_id: &str) -> Outputs {
    let mut out = Outputs::new();
    out.insert("message_id".into(), json!(message_id));
    out
}
