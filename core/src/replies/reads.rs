//! An operator read a customer's message in RetailCRM's chat (`message_read`): the messenger
//! marks it read where it allows — the WhatsApp gateway's `readMessage` (the customer sees the
//! blue ticks); a Telegram bot has no such call, so nothing happens there. Best effort: MG is
//! answered 200 `{}` whatever happens, a failure is logged.
//!
//! MG names the message by the external id we gave it, the step's idempotency key
//! `svz-{run}-{step}` (see `engine::execute`): the run's event holds the messenger's id of the
//! message and its bundle the messenger provider it came through.

use crate::Core;
use crate::engine::clients;
use crate::providers::ProviderKind;
use crate::retailcrm::mg_webhook::MessageRef;

/// The run a chat message of ours came from, by its external id `svz-{run}-{step}`.
fn run_of(external_message_id: &str) -> Option<i64> {
    let rest = external_message_id.strip_prefix("svz-")?;
    let (run, step) = rest.split_once('-')?;
    step.parse::<u32>().ok()?;
    run.parse().ok()
}

/// Marks the customer's message read in its messenger. `provider_id` is the RetailCRM
/// provider the webhook came for: only its own runs' messages are touched.
pub async fn apply(core: &Core, provider_id: i64, data: &MessageRef) {
    if let Err(why) = try_apply(core, provider_id, data).await {
        tracing::info!(provider = provider_id, why, "message_read not passed on");
    }
}

async fn try_apply(core: &Core, provider_id: i64, data: &MessageRef) -> Result<(), String> {
    let run_id = data
        .external_message_id
        .as_deref()
        .and_then(run_of)
        .ok_or("not a message Svyazka posted")?;
    let run = core
        .db(move |c| crate::runs::get(c, run_id))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its run is gone")?;
    let bundle = run.snapshot().map_err(|e| e.to_string())?;
    if bundle.target_provider_id != provider_id {
        return Err("a message of another RetailCRM provider".into());
    }
    let event = run.event_fields();
    let message_id = event
        .get("message_id")
        .and_then(|m| m.as_str())
        .ok_or("the event names no message")?
        .to_owned();
    let source = core
        .provider(bundle.source_provider_id)
        .await
        .map_err(|e| e.to_string())?;
    match source.kind {
        ProviderKind::Chatapi => {
            let api = clients::chatapi(core, &source).map_err(|e| e.reason.to_string())?;
            api.read_message(&message_id)
                .await
                .map_err(|e| e.to_string())
        }
        // A bot cannot mark a user's messages read.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_external_ids_name_the_run() {
        assert_eq!(run_of("svz-42-3"), Some(42));
        assert_eq!(run_of("svz-42"), None);
        assert_eq!(run_of("svz-x-1"), None);
        assert_eq!(run_of("wamid.HBg"), None);
    }
}
