//! What «Отправить сообщение» shares between the official WhatsApp routes (the Cloud API and
//! 1msg.io): the mode, the 24-hour window for free text, and a template's inputs.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Inputs, input, optional};
use crate::Core;
use crate::catalog::{MODE, MODE_TEMPLATE};
use crate::conversations;
use crate::db::schema::inbox;
use crate::db::{AnyConnection, DbError};
use crate::engine::StepError;
use crate::messengers::templates::MAX_PARAMS;
use crate::messengers::window;
use crate::providers::Provider;
use crate::reason::Reason;

/// Whether the step sends an approved template (else free text).
pub fn template_mode(inputs: &Inputs) -> bool {
    optional(inputs, MODE) == Some(MODE_TEMPLATE)
}

/// A template send's inputs.
pub struct TemplateInputs<'a> {
    pub name: &'a str,
    pub language: &'a str,
    /// 1msg.io's; empty when not known.
    pub namespace: &'a str,
    /// The body variables, in order.
    pub params: Vec<String>,
}

/// The template, its language and its variables up to the last one mapped. A mapped variable
/// that came out empty fails the step for good, naming it: the template would be refused for
/// a missing parameter anyway, and saying which field was empty is more use to the admin.
pub fn template_inputs(inputs: &Inputs) -> Result<TemplateInputs<'_>, StepError> {
    let key = |n: usize| format!("param{n}");
    let count = (1..=MAX_PARAMS)
        .rev()
        .find(|n| inputs.contains_key(&key(*n)))
        .unwrap_or(0);
    let params = (1..=count)
        .map(|n| input(inputs, &key(n)).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TemplateInputs {
        name: input(inputs, "template")?,
        language: optional(inputs, "language").unwrap_or("ru"),
        namespace: optional(inputs, "namespace").unwrap_or_default(),
        params,
    })
}

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

/// Permanent: free text after the window; the customer's last message time says why.
pub fn window_closed(last: Option<NaiveDateTime>) -> StepError {
    StepError::permanent(Reason::ReplyWindowClosed {
        last_customer_message: last
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            // Empty: the customer never wrote to this number (or not since it was connected).
            .unwrap_or_default(),
    })
}

/// Free text through official WhatsApp: only inside the 24-hour window, known from the
/// customer's last message here; outside it the step fails at once, for good, without a
/// call the upstream would refuse (or, on the Cloud API, accept and then fail with 131047).
pub async fn require_open_window(
    core: &Core,
    target: &Provider,
    chat_id: &str,
) -> Result<(), StepError> {
    if !window::official(&target.settings) {
        return Ok(());
    }
    let (id, chat) = (target.id, chat_id.to_owned());
    let last = core
        .db(move |c| last_customer_message(c, id, &chat))
        .await?;
    if window::open(last) {
        Ok(())
    } else {
        Err(window_closed(last))
    }
}
