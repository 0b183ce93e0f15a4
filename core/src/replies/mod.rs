//! Operator replies: messages RetailCRM operators write in a chat, which MG posts to our
//! transport webhook for delivery to the customer's messenger.
//!
//! A reply is stored before MG gets an answer, keyed by MG's message id, so a repeated webhook
//! finds the row instead of sending again. The request that stored it tries the delivery at
//! once and answers MG with the outcome; a delivery that cannot finish in time (a messenger
//! outage being retried with backoff) is answered `async` and its outcome goes to MG later
//! through `POST /messages/ack` (see [`deliver`]).
//!
//! The row follows the lease protocol of the other work tables (`db::lease`). Two columns are
//! its checkpoint: `external_message_id` (delivered; never sent again) and `mg_error` (failed
//! for good); `answer = 'async'` says MG waits for an acknowledgement.

pub mod changes;
pub mod deliver;
pub mod errors;
mod media;
pub mod reads;
pub mod receipts;
pub mod routes;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::mg_replies;
use crate::db::{AnyConnection, DbError, now};
use crate::retailcrm::mg_webhook::{MessageSent, SendingError, SentAnswer};

crate::db::text_enum! {
    /// Where a reply is.
    pub enum ReplyStatus {
        /// Waiting for its (next) attempt at `next_attempt_at`.
        Waiting = "waiting",
        /// Being delivered by the holder of its lease.
        Sending = "sending",
        /// Delivered (and acknowledged to MG when it waited for that).
        Sent = "sent",
        /// Not delivered, for good; `error` says why, `mg_error` is what MG was told.
        Failed = "failed",
    }
}

/// `answer` when MG was told `async` and waits for `POST /messages/ack`.
pub const ANSWER_ASYNC: &str = "async";

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = mg_replies)]
pub struct Reply {
    pub id: i64,
    /// The RetailCRM provider whose transport received it.
    pub provider_id: i64,
    pub dedup_key: String,
    pub mg_message_id: Option<i64>,
    pub channel_id: i64,
    pub external_user_id: String,
    /// MG's message type (text, image, file, …).
    pub kind: String,
    pub content: String,
    /// The webhook's `data`, as received.
    pub payload: String,
    /// Where it goes, once known.
    pub messenger_provider_id: Option<i64>,
    pub chat_id: Option<String>,
    pub status: ReplyStatus,
    pub attempts: i32,
    /// Why the last attempt failed (JSON of a `Reason`).
    pub error: Option<String>,
    /// What MG was (or will be) told of a failure (JSON of `SendingError`).
    pub mg_error: Option<String>,
    pub external_message_id: Option<String>,
    /// Set just before a messenger call and cleared with its outcome: still set on a claim,
    /// it means a worker died during the call (the message may have gone out).
    pub send_started_at: Option<NaiveDateTime>,
    pub answer: Option<String>,
    pub acked_at: Option<NaiveDateTime>,
    pub read_at: Option<NaiveDateTime>,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub enqueued_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Reply {
    pub fn sending_error(&self) -> Option<SendingError> {
        self.mg_error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
    }

    /// What MG is told about this reply now: its outcome when decided, else `async`.
    pub fn answer_now(&self) -> SentAnswer {
        if let Some(id) = &self.external_message_id {
            SentAnswer::Sent {
                external_message_id: id.clone(),
            }
        } else if let Some(e) = self.sending_error() {
            SentAnswer::Failed(e)
        } else {
            SentAnswer::Async
        }
    }

    pub fn waits_for_ack(&self) -> bool {
        self.answer.as_deref() == Some(ANSWER_ASYNC)
    }
}

crate::db::lease::lease_queries! {
    table: mg_replies,
    row: Reply,
    status: ReplyStatus { waiting: Waiting, leased: Sending, failed: Failed },
}

/// The key a repeated webhook is recognised by: MG's message id when it sends one; older MG
/// does not, and then its in-app id or the body itself tells a repeat from a new message.
pub fn dedup_key(data: &MessageSent, body: &[u8]) -> String {
    match (data.id, data.in_app_id) {
        (Some(id), _) => format!("mg:{id}"),
        (None, Some(in_app)) => format!("in_app:{}:{in_app}", data.channel_id),
        (None, None) => {
            use sha2::{Digest, Sha256};
            format!("body:{}", hex::encode(Sha256::digest(body)))
        }
    }
}

/// What [`store`] found.
#[derive(Debug)]
pub enum Stored {
    /// Stored now, leased to the caller (attempt 1) to deliver at once.
    New(Reply),
    /// MG repeated a webhook we already have.
    Existing(Reply),
}

/// Stores the operator's message `data` (the webhook's `data`, `payload` as received) for
/// the RetailCRM provider unless a row with its key exists. A new row is leased to the
/// caller, so no sweeper takes it while the request delivers it.
pub fn store(
    conn: &mut AnyConnection,
    provider_id: i64,
    data: &MessageSent,
    payload: &str,
    dedup_key: &str,
    lease: chrono::Duration,
) -> Result<Stored, DbError> {
    let t = now();
    let values = (
        mg_replies::provider_id.eq(provider_id),
        mg_replies::dedup_key.eq(dedup_key),
        mg_replies::mg_message_id.eq(data.id),
        mg_replies::channel_id.eq(data.channel_id),
        mg_replies::external_user_id.eq(&data.external_user_id),
        mg_replies::kind.eq(&data.kind),
        mg_replies::content.eq(data.content.as_deref().unwrap_or_default()),
        mg_replies::payload.eq(payload),
        mg_replies::status.eq(ReplyStatus::Sending),
        mg_replies::attempts.eq(1),
        mg_replies::next_attempt_at.eq(t),
        mg_replies::lease_until.eq(Some(t + lease)),
        mg_replies::enqueued_at.eq(Some(t)),
        mg_replies::created_at.eq(t),
        mg_replies::updated_at.eq(t),
    );
    let key = (mg_replies::provider_id, mg_replies::dedup_key);
    let inserted = crate::db::each_backend!(conn, |c| diesel::insert_into(mg_replies::table)
        .values(values)
        .on_conflict(key)
        .do_nothing()
        .returning(Reply::as_select())
        .get_result(c)
        .optional()?);
    if let Some(row) = inserted {
        return Ok(Stored::New(row));
    }
    let existing = mg_replies::table
        .filter(mg_replies::provider_id.eq(provider_id))
        .filter(mg_replies::dedup_key.eq(dedup_key))
        .select(Reply::as_select())
        .first(conn)?;
    Ok(Stored::Existing(existing))
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<Reply>, DbError> {
    Ok(mg_replies::table
        .find(id)
        .select(Reply::as_select())
        .first(conn)
        .optional()?)
}

/// MG is told `async` unless the outcome is already decided; answers what to tell MG now.
/// One conditional statement, so it cannot cross the delivery's checkpoint write: either
/// the delivery sees `async` and acknowledges, or this sees its outcome.
pub fn answer_or_defer(conn: &mut AnyConnection, id: i64) -> Result<Option<SentAnswer>, DbError> {
    diesel::update(
        mg_replies::table
            .find(id)
            .filter(mg_replies::external_message_id.is_null())
            .filter(mg_replies::mg_error.is_null()),
    )
    .set((
        mg_replies::answer.eq(Some(ANSWER_ASYNC)),
        mg_replies::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(get(conn, id)?.map(|r| r.answer_now()))
}

/// Marks the start of a messenger call (see [`Reply::send_started_at`]) and where it goes.
pub fn mark_send_started(
    conn: &mut AnyConnection,
    id: i64,
    messenger_provider_id: i64,
    chat_id: &str,
) -> Result<(), DbError> {
    diesel::update(mg_replies::table.find(id))
        .set((
            mg_replies::send_started_at.eq(Some(now())),
            mg_replies::messenger_provider_id.eq(Some(messenger_provider_id)),
            mg_replies::chat_id.eq(Some(chat_id)),
            mg_replies::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The messenger ids other replies recorded for messages to `chat_id` through
/// `messenger_provider_id` since `since`: a lost answer's retry does not take the same text
/// sent by an earlier reply (an operator's second "OK") for its own.
pub fn sent_by_others(
    conn: &mut AnyConnection,
    id: i64,
    messenger_provider_id: i64,
    chat_id: &str,
    since: NaiveDateTime,
) -> Result<std::collections::HashSet<String>, DbError> {
    let ids: Vec<Option<String>> = mg_replies::table
        .filter(mg_replies::id.ne(id))
        .filter(mg_replies::messenger_provider_id.eq(messenger_provider_id))
        .filter(mg_replies::chat_id.eq(chat_id))
        .filter(mg_replies::external_message_id.is_not_null())
        .filter(mg_replies::updated_at.ge(since))
        .select(mg_replies::external_message_id)
        .load(conn)?;
    Ok(ids.into_iter().flatten().collect())
}

/// The delivery's outcome, decided: delivered with the messenger's id, or failed with what MG
/// is told and why (our reason). Answers whether MG waits for an acknowledgement (it was told
/// `async`); otherwise the reply is settled here.
pub fn record_outcome(
    conn: &mut AnyConnection,
    id: i64,
    outcome: Result<&str, (&SendingError, &str)>,
    from_worker: bool,
) -> Result<bool, DbError> {
    let t = now();
    let (external, mg_error, error) = match outcome {
        Ok(ext) => (Some(ext.to_owned()), None, None),
        Err((e, reason)) => (
            None,
            Some(serde_json::to_string(e).unwrap_or_default()),
            Some(reason.to_owned()),
        ),
    };
    conn.transaction(|conn| {
        // A worker's attempt has no request waiting for it: MG hears the outcome only
        // through an acknowledgement.
        if from_worker {
            diesel::update(
                mg_replies::table
                    .find(id)
                    .filter(mg_replies::answer.is_null()),
            )
            .set(mg_replies::answer.eq(Some(ANSWER_ASYNC)))
            .execute(conn)?;
        }
        let answer: Option<String> = diesel::update(mg_replies::table.find(id))
            .set((
                mg_replies::external_message_id.eq(&external),
                mg_replies::mg_error.eq(&mg_error),
                mg_replies::error.eq(&error),
                mg_replies::send_started_at.eq(None::<NaiveDateTime>),
                mg_replies::updated_at.eq(t),
            ))
            .returning(mg_replies::answer)
            .get_result(conn)?;
        let waits = answer.as_deref() == Some(ANSWER_ASYNC);
        if !waits {
            settle(conn, id, external.is_some(), false)?;
        }
        Ok(waits)
    })
}

/// Final status: sent or failed, with whether MG has been acknowledged.
pub fn settle(
    conn: &mut AnyConnection,
    id: i64,
    delivered: bool,
    acked: bool,
) -> Result<(), DbError> {
    let t = now();
    let status = if delivered {
        ReplyStatus::Sent
    } else {
        ReplyStatus::Failed
    };
    diesel::update(mg_replies::table.find(id))
        .set((
            mg_replies::status.eq(status),
            mg_replies::lease_until.eq(None::<NaiveDateTime>),
            mg_replies::acked_at.eq(acked.then_some(t)),
            mg_replies::updated_at.eq(t),
        ))
        .execute(conn)?;
    Ok(())
}

/// A transient failure of the messenger call: waits until `retry_at` (the sweeper enqueues
/// it then). When the call's outcome is known (the messenger answered), its start mark is
/// cleared; when its answer was lost (`outcome_unknown`), the mark stays, so the retry looks
/// in the messenger's history before sending again.
pub fn retry_send_later(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    retry_at: NaiveDateTime,
    outcome_unknown: bool,
) -> Result<(), DbError> {
    if !outcome_unknown {
        diesel::update(mg_replies::table.find(id))
            .set((
                mg_replies::send_started_at.eq(None::<NaiveDateTime>),
                mg_replies::updated_at.eq(now()),
            ))
            .execute(conn)?;
    }
    retry_later(conn, id, error, retry_at)
}

/// The delivered reply MG knows by our `external_message_id` in `channel_id`.
pub fn delivered(
    conn: &mut AnyConnection,
    provider_id: i64,
    channel_id: i64,
    external_message_id: &str,
) -> Result<Option<Reply>, DbError> {
    Ok(mg_replies::table
        .filter(mg_replies::provider_id.eq(provider_id))
        .filter(mg_replies::channel_id.eq(channel_id))
        .filter(mg_replies::external_message_id.eq(external_message_id))
        .select(Reply::as_select())
        .first(conn)
        .optional()?)
}

/// The operator edited a delivered reply: its text as the customer now sees it.
pub fn set_content(conn: &mut AnyConnection, id: i64, content: &str) -> Result<(), DbError> {
    diesel::update(mg_replies::table.find(id))
        .set((
            mg_replies::content.eq(content),
            mg_replies::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest replies first, for the history page.
pub fn recent(conn: &mut AnyConnection, limit: i64) -> Result<Vec<Reply>, DbError> {
    Ok(mg_replies::table
        .order(mg_replies::id.desc())
        .limit(limit)
        .select(Reply::as_select())
        .load(conn)?)
}
