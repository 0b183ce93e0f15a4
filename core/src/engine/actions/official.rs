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
use crate::messengers::templates::{
    Filled, HEADER_MEDIA, HEADER_PARAM, HeaderNeed, HeaderValue, MAX_PARAMS, SHAPE, Shape,
    button_param,
};
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
    /// The header value, body variables and URL button variables.
    pub values: Filled,
}

/// The template, its language and its values: body variables up to the last one mapped, and
/// the header value and URL button variables its stored [`Shape`] names. A value that came
/// out empty fails the step for good, naming it: the template would be refused for a missing
/// parameter anyway, and saying which field was empty is more use to the admin. So does a
/// media header's link that is not https (Meta fetches it).
pub fn template_inputs(inputs: &Inputs) -> Result<TemplateInputs<'_>, StepError> {
    let key = |n: usize| format!("param{n}");
    let count = (1..=MAX_PARAMS)
        .rev()
        .find(|n| inputs.contains_key(&key(*n)))
        .unwrap_or(0);
    let params = (1..=count)
        .map(|n| input(inputs, &key(n)).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    let shape = Shape::parse(optional(inputs, SHAPE).unwrap_or_default());
    let header = match shape.header {
        HeaderNeed::None => None,
        HeaderNeed::Text => Some(HeaderValue::Text(input(inputs, HEADER_PARAM)?.to_owned())),
        kind => Some(HeaderValue::Media {
            kind,
            // Unconfirmed: whether Meta refuses a plain http link at once or fails the message
            // later; https only, as the task and Meta's examples have it.
            link: https_link(input(inputs, HEADER_MEDIA)?, HEADER_MEDIA)?,
        }),
    };
    let buttons = shape
        .url_buttons
        .iter()
        .enumerate()
        .map(|(n, index)| Ok((*index, input(inputs, &button_param(n + 1))?.to_owned())))
        .collect::<Result<Vec<_>, StepError>>()?;
    Ok(TemplateInputs {
        name: input(inputs, "template")?,
        language: optional(inputs, "language").unwrap_or("ru"),
        namespace: optional(inputs, "namespace").unwrap_or_default(),
        values: Filled {
            header,
            body: params,
            buttons,
        },
    })
}

/// `value` when it is an absolute https address, else a permanent failure naming `param`.
fn https_link(value: &str, param: &str) -> Result<String, StepError> {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(u.to_string())
        }
        _ => Err(StepError::permanent(Reason::NotHttpsLink {
            param: param.to_owned(),
            value: value.to_owned(),
        })),
    }
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
