//! Receiving Telegram updates by long polling (`getUpdates`), for bots whose install Telegram
//! cannot reach (the public URL is not https, so `TelegramReceive::Polling`).
//!
//! Nothing is lost: the updates of one call are stored in the inbox first (through the same
//! webhook writer as webhooks, which also announces them to the queue), and only after those
//! rows are committed is the provider's `poll_offset` moved past them; the next call sends that
//! offset, which is what confirms the updates to Telegram. A crash in between makes Telegram
//! send them again, and the inbox's dedup key turns the redelivery into a no-op.
//!
//! Only one process may poll a bot (Telegram answers 409 to a second one), so pollers take a
//! lease per provider in `poll_leases`. The worker crate owns the loop; this module owns the
//! storage and the upstream call.

use std::time::Duration;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::Core;
use crate::db::schema::poll_leases;
use crate::db::schema::providers as provider_rows;
use crate::db::{AnyConnection, DbError, is_unique_violation, now};
use crate::inbox::Stored;
use crate::inbox::writer::{InboxWriter, WriteError};
use crate::ingest;
use crate::messengers::incoming::{IncomingMessage, Parsed};
use crate::messengers::telegram::webhook::parse_update;
use crate::messengers::telegram::{Telegram, TelegramError};
use crate::providers::settings::{TelegramReceive, TelegramSettings};
use crate::providers::{self, ProviderError, ProviderKind, Secrets, Settings};

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] WriteError),
    #[error(transparent)]
    Telegram(#[from] TelegramError),
    /// The provider's stored settings or secrets cannot be used.
    #[error("provider {0}: {1}")]
    Provider(i64, String),
    /// Deleted, not a Telegram bot, or switched to webhook mode: there is nothing to poll.
    #[error("provider {0} is not a Telegram bot in polling mode")]
    NotPolled(i64),
}

fn polling(settings: &str) -> bool {
    matches!(
        serde_json::from_str::<Settings>(settings),
        Ok(Settings::Telegram(TelegramSettings {
            receive: TelegramReceive::Polling,
            ..
        }))
    )
}

/// Telegram providers that receive by polling. A provider with unreadable settings is skipped
/// rather than stopping the others.
pub fn polled_provider_ids(conn: &mut AnyConnection) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64, String)> = provider_rows::table
        .filter(provider_rows::kind.eq(ProviderKind::Telegram.as_str()))
        .order(provider_rows::id)
        .select((provider_rows::id, provider_rows::settings))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, s)| polling(s))
        .map(|(id, _)| id)
        .collect())
}

/// Takes or renews the right to poll `provider_id` until now + `ttl`. `false` while another
/// holder's lease is live. The insert runs on its own (no surrounding transaction): on
/// PostgreSQL its unique violation would abort a transaction.
pub fn claim_lease(
    conn: &mut AnyConnection,
    provider_id: i64,
    holder: &str,
    ttl: Duration,
) -> Result<bool, DbError> {
    let t = now();
    let until = t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
    let renewed = diesel::update(poll_leases::table)
        .filter(poll_leases::provider_id.eq(provider_id))
        .filter(
            poll_leases::holder
                .eq(holder)
                .or(poll_leases::lease_until.lt(t)),
        )
        .set((
            poll_leases::holder.eq(holder),
            poll_leases::lease_until.eq(until),
        ))
        .execute(conn)?;
    if renewed == 1 {
        return Ok(true);
    }
    let inserted = diesel::insert_into(poll_leases::table)
        .values((
            poll_leases::provider_id.eq(provider_id),
            poll_leases::holder.eq(holder),
            poll_leases::lease_until.eq(until),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        // The row exists with someone else's live lease (or was just created by another worker).
        Err(e) if is_unique_violation(&e) => Ok(false),
        // The provider was deleted meanwhile.
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Gives the lease up (when a poller stops), so another worker need not wait for it to expire.
pub fn release_lease(
    conn: &mut AnyConnection,
    provider_id: i64,
    holder: &str,
) -> Result<(), DbError> {
    diesel::delete(poll_leases::table)
        .filter(
            poll_leases::provider_id
                .eq(provider_id)
                .and(poll_leases::holder.eq(holder)),
        )
        .execute(conn)?;
    Ok(())
}

/// The current holder and expiry of a provider's lease.
pub fn lease_of(
    conn: &mut AnyConnection,
    provider_id: i64,
) -> Result<Option<(String, chrono::NaiveDateTime)>, DbError> {
    Ok(poll_leases::table
        .find(provider_id)
        .select((poll_leases::holder, poll_leases::lease_until))
        .first(conn)
        .optional()?)
}

/// One `getUpdates` call (waiting up to `timeout_secs` for something new) with the stored
/// offset; stores the messages through `inbox`, then advances the offset. Returns the ids of
/// newly stored inbox rows (redeliveries are not among them).
pub async fn poll_once(
    core: &Core,
    inbox: &InboxWriter,
    provider_id: i64,
    timeout_secs: u32,
) -> Result<Vec<i64>, PollError> {
    let provider = match core.db(move |c| providers::get(c, provider_id)).await {
        Ok(p) => p,
        Err(ProviderError::Db(e)) => return Err(e.into()),
        Err(ProviderError::NotFound) => return Err(PollError::NotPolled(provider_id)),
        Err(e) => return Err(PollError::Provider(provider_id, e.to_string())),
    };
    let settings = match &provider.settings {
        Settings::Telegram(s) if s.receive == TelegramReceive::Polling => s.clone(),
        _ => return Err(PollError::NotPolled(provider_id)),
    };
    let token = match provider.secrets(&core.crypto) {
        Ok(Secrets::Telegram { bot_token }) => bot_token,
        Ok(_) => {
            return Err(PollError::Provider(
                provider_id,
                "stored secrets are not a bot token".into(),
            ));
        }
        Err(e) => return Err(PollError::Provider(provider_id, e.to_string())),
    };
    let api = Telegram::with_client(core.http.clone(), &settings.api_base, &token)?;
    let offset = (settings.poll_offset > 0).then_some(settings.poll_offset);
    let updates = api.get_updates(offset, timeout_secs).await?;
    let Some(last) = updates.iter().map(|u| u.update_id).max() else {
        return Ok(Vec::new());
    };
    let mut messages: Vec<IncomingMessage> = Vec::new();
    for u in &updates {
        match parse_update(u) {
            Parsed::Messages(m) => messages.extend(m),
            Parsed::Ignored(why) => tracing::debug!(
                provider = provider_id,
                update = u.update_id,
                why,
                "update ignored"
            ),
        }
    }
    // The rows are committed before `store_all` returns; only then may Telegram forget them.
    let stored = inbox
        .store_all(ingest::message_items(provider_id, &messages))
        .await?;
    core.db(move |c| advance_offset(c, provider_id, &settings, last + 1))
        .await?;
    // The provider page's "last delivery" covers polled updates as well as webhooks.
    crate::hook_log::note(core, provider_id, Ok(())).await;
    Ok(stored
        .into_iter()
        .filter_map(|s| match s {
            Stored::New(id) => Some(id),
            Stored::Duplicate(_) => None,
        })
        .collect())
}

/// Moves `poll_offset` forward to `next`, changing nothing else: a compare-and-set on the
/// settings text, so an admin's save in the meantime is neither overwritten nor lost. When the
/// provider now names another bot or API server, the offset (which belongs to the old one) is
/// left alone. Returns whether the stored offset is at least `next` afterwards.
pub fn advance_offset(
    conn: &mut AnyConnection,
    provider_id: i64,
    polled: &TelegramSettings,
    next: i64,
) -> Result<bool, DbError> {
    for _ in 0..5 {
        let raw: Option<String> = provider_rows::table
            .find(provider_id)
            .select(provider_rows::settings)
            .first(conn)
            .optional()?;
        let Some(raw) = raw else { return Ok(false) };
        let mut s = match serde_json::from_str::<Settings>(&raw) {
            Ok(Settings::Telegram(s)) => s,
            _ => return Ok(false),
        };
        if s.bot_id != polled.bot_id || s.api_base != polled.api_base {
            return Ok(false);
        }
        if s.poll_offset >= next {
            return Ok(true);
        }
        s.poll_offset = next;
        let Ok(new) = serde_json::to_string(&Settings::Telegram(s)) else {
            return Ok(false);
        };
        let n = diesel::update(
            provider_rows::table
                .find(provider_id)
                .filter(provider_rows::settings.eq(&raw)),
        )
        .set(provider_rows::settings.eq(&new))
        .execute(conn)?;
        if n == 1 {
            return Ok(true);
        }
    }
    Ok(false)
}
