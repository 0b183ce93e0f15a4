//! «Отправить сообщение» and «Отправить шаблон» through the WhatsApp Cloud API.
//!
//! The Cloud API has no history to look a lost answer up in, so a send is at most once: when
//! the answer is lost after the request left (a timeout), the step fails for good with
//! "interrupted" instead of risking a second message; only a connection that never opened
//! is retried.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Inputs, Outputs, input, optional};
use crate::Core;
use crate::conversations;
use crate::db::schema::inbox;
use crate::db::{AnyConnection, DbError, now};
use crate::engine::{StepError, clients};
use crate::messengers::phone::WaRecipient;
use crate::messengers::wacloud::client::CODE_WINDOW_CLOSED;
use crate::messengers::wacloud::{CloudApiError, WINDOW_HOURS};
use crate::providers::Provider;
use crate::reason::Reason;

/// When the customer behind `chat_id` last wrote to this provider (our receipt time).
pub fn last_customer_message(
    conn: &mut AnyConnection,
    provider_id: i64,
    chat_id: &str,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(inbox::table
        .filter(inbox::provider_id.eq(provider_id))
        .filter(inbox::kind.eq("incoming_message"))
        .filter(inbox::conversation.eq(conversations::of_chat(chat_id)))
        .select(diesel::dsl::max(inbox::created_at))
        .first::<Option<NaiveDateTime>>(conn)?)
}

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

fn window_closed(last: Option<NaiveDateTime>) -> StepError {
    StepError::permanent(Reason::ReplyWindowClosed {
        last_customer_message: last
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            // Empty: the customer never wrote to this number (or not since it was connected).
            .unwrap_or_default(),
    })
}

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

fn outputs(id: &str) -> Outputs {
    let mut out = Outputs::new();
    out.insert("message_id".into(), serde_json::json!(id));
    out
}

/// Free text: only inside the 24-hour window, known from the customer's last message here;
/// outside it the step fails at once, for good, without calling Meta.
pub async fn send_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let (to, digits) = recipient(inputs)?;
    let text = input(inputs, "text")?;
    let (id, chat) = (target.id, to.chat_id().to_owned());
    let last = core
        .db(move |c| last_customer_message(c, id, &chat))
        .await?;
    if last.is_none_or(|t| now() - t >= chrono::Duration::hours(WINDOW_HOURS)) {
        return Err(window_closed(last));
    }
    let api = clients::wacloud(core, target)?;
    let id = api.send_text(&digits, text).await.map_err(|e| failed(&e))?;
    Ok(outputs(&id))
}

/// An approved template with up to five body parameters, in order; empty ones end the list.
pub async fn send_template(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let (_, digits) = recipient(inputs)?;
    let name = input(inputs, "template")?;
    let language = optional(inputs, "language").unwrap_or("ru");
    let params: Vec<String> = (1..=5)
        .map_while(|n| optional(inputs, &format!("param{n}")).map(str::to_owned))
        .collect();
    let api = clients::wacloud(core, target)?;
    let id = api
        .send_template(&digits, name, language, &params)
        .await
        .map_err(|e| failed(&e))?;
    Ok(outputs(&id))
}
