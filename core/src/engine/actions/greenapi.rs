//! «Отправить сообщение» through Green-API.

use super::{Attempt, Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::providers::Provider;
use crate::runs;

/// How far before the earlier attempt's start the history is searched: Green-API stamps
/// messages with its own clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// Sends the text, unless an earlier attempt (its answer lost) already did: the chat's
/// history (`getChatHistory`) is asked first, and a message there another run recorded as its
/// own is not this one. Green-API journals with a lag of up to two minutes, which the
/// engine's retry delay covers.
pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    attempt: &Attempt<'_>,
) -> Result<Outputs, StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent((&e).into()))?;
    let text = input(inputs, "text")?;
    let api = clients::greenapi(core, target)?;
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
        let own = history.iter().find(|m| {
            m.text_message.as_deref().map(str::trim) == Some(text)
                && !others.contains(&m.id_message)
        });
        if let Some(m) = own {
            tracing::info!(message = %m.id_message, "an earlier attempt was delivered; not sending again");
            return Ok(super::chatapi::outputs(&m.id_message));
        }
    }
    let id = api
        .send_text(&to, text)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(super::chatapi::outputs(&id))
}
