//! «Отправить сообщение» through the WhatsApp Cloud API: free text inside the 24-hour window,
//! or an approved template.
//!
//! The Cloud API has no history to look a lost answer up in, so a send is at most once: when
//! the answer is lost after the request left (a timeout), the step fails for good with
//! "interrupted" instead of risking a second message; only a connection that never opened
//! is retried.

use super::official::{self, require_open_window, template_inputs, window_closed};
use super::{Inputs, Outputs, input};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::messengers::wacloud::CloudApiError;
use crate::messengers::wacloud::client::CODE_WINDOW_CLOSED;
use crate::providers::Provider;
use crate::reason::Reason;

fn recipient(inputs: &Inputs) -> Result<(WaRecipient, String), StepError> {
    let to = WaRecipient::parse(input(inputs, "recipient")?)
        .map_err(|e| StepError::permanent((&e).into()))?;
    let Some(digits) = to.digits().map(str::to_owned) else {
        // The Cloud API writes to people only.
        return Err(StepError::permanent(Reason::NotAPhone {
            input: to.chat_id().to_owned(),
            problem: crate::messengers::phone::PhoneProblem::BadChatId,
        }));
    };
    Ok((to, digits))
}

/// Meta's refusals: 131047 is the window (permanent, said so); template errors (132000 wrong
/// parameter count, 132001 no such approved template, …) are permanent and 130429 / HTTP 429
/// transient, by the client's classification.
fn failed(e: &CloudApiError) -> StepError {
    match e {
        CloudApiError::Api {
            code: CODE_WINDOW_CLOSED,
            ..
        } => window_closed(None),
        // The request may have reached Meta: never sent twice.
        CloudApiError::Network(n) if !n.is_connect() => {
            StepError::permanent(Reason::InterruptedSend)
        }
        other => StepError::upstream(other),
    }
}

pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let (to, digits) = recipient(inputs)?;
    let id = if official::template_mode(inputs) {
        let t = template_inputs(inputs)?;
        let api = clients::wacloud(core, target)?;
        api.send_template(&digits, t.name, t.language, &t.values)
            .await
            .map_err(|e| failed(&e))?
    } else {
        let text = input(inputs, "text")?;
        require_open_window(core, target, to.chat_id()).await?;
        let api = clients::wacloud(core, target)?;
        api.send_text(&digits, text).await.map_err(|e| failed(&e))?
    };
    Ok(super::chatapi::outputs(&id))
}
