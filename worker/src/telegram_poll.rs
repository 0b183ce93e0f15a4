//! The Telegram long-polling loop of a worker. Every few seconds it lists the Telegram
//! providers in polling mode; for each whose lease it can take (one poller per bot across all
//! workers, see `svyazka_core::telegram_poll`) it starts a task that renews the lease and calls
//! `getUpdates`; the updates go through the webhook writer, which announces them to the queue.
//!
//! Stopping the worker aborts the tasks; each gives its lease back as it is dropped, so a
//! restarted process (or another worker) takes over at once instead of after the lease expires.

use std::collections::HashMap;
use std::time::Duration;

use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::telegram_poll::{self, PollError};
use tokio::task::JoinHandle;

/// How long one `getUpdates` waits for something new. A new message ends the wait at once.
const POLL_TIMEOUT_SECS: u32 = 10;
/// Longer than one poll (its timeout plus the client's grace) plus the longest back-off, so a
/// live poller never loses its lease between renewals.
const LEASE: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The provider list is re-read at the sweep interval, but at least this often.
const MAX_LIST_INTERVAL: Duration = Duration::from_secs(5);

/// Aborts its task when dropped, so stopping the worker stops the pollers with it.
pub struct PollerGuard(JoinHandle<()>);

impl Drop for PollerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn spawn(core: Core, inbox: InboxWriter) -> PollerGuard {
    PollerGuard(tokio::spawn(supervise(core, inbox)))
}

async fn supervise(core: Core, inbox: InboxWriter) {
    // Unique per process: two processes must never believe they hold the same lease.
    let holder = format!(
        "{}-{}",
        std::process::id(),
        svyazka_core::crypto::random_token(8)
    );
    let mut pollers: HashMap<i64, PollerGuard> = HashMap::new();
    let mut tick = tokio::time::interval(core.config.sweep_interval.min(MAX_LIST_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pollers.retain(|_, p| !p.0.is_finished());
        let ids = match core.db(telegram_poll::polled_provider_ids).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "Telegram polling: cannot list providers");
                continue;
            }
        };
        for id in ids {
            if pollers.contains_key(&id) {
                continue;
            }
            let h = holder.clone();
            match core
                .db(move |c| telegram_poll::claim_lease(c, id, &h, LEASE))
                .await
            {
                Ok(true) => {
                    let task = tokio::spawn(poll_provider(
                        core.clone(),
                        inbox.clone(),
                        id,
                        holder.clone(),
                    ));
                    pollers.insert(id, PollerGuard(task));
                }
                // Another worker polls this bot.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(provider = id, error = %e, "Telegram polling: cannot take the lease")
                }
            }
        }
    }
}

/// Gives the lease back when the polling task ends or is aborted. Drop cannot wait for the
/// async pool wrapper, so this is one short blocking statement.
struct Lease {
    core: Core,
    provider_id: i64,
    holder: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        match self.core.pool.get() {
            Ok(mut conn) => {
                if let Err(e) =
                    telegram_poll::release_lease(&mut conn, self.provider_id, &self.holder)
                {
                    tracing::debug!(provider = self.provider_id, error = %e, "lease not released; it will expire");
                }
            }
            Err(e) => {
                tracing::debug!(provider = self.provider_id, error = %e, "lease not released; it will expire")
            }
        }
    }
}

fn next_backoff(current: Duration) -> Duration {
    if current.is_zero() {
        Duration::from_secs(1)
    } else {
        (current * 2).min(MAX_BACKOFF)
    }
}

async fn record(core: &Core, id: i64, message: Option<String>) {
    let res = core
        .db(move |c| {
            svyazka_core::providers::record_check(c, id, message.is_none(), message.as_deref())
        })
        .await;
    if let Err(e) = res {
        tracing::debug!(provider = id, error = %e, "could not record the polling state");
    }
}

async fn poll_provider(core: Core, inbox: InboxWriter, id: i64, holder: String) {
    let _lease = Lease {
        core: core.clone(),
        provider_id: id,
        holder: holder.clone(),
    };
    tracing::info!(provider = id, "receiving Telegram updates by getUpdates");
    let mut backoff = Duration::ZERO;
    // The error last written to the provider (shown on its page), cleared on the next success.
    let mut reported: Option<String> = None;
    loop {
        let h = holder.clone();
        match core
            .db(move |c| telegram_poll::claim_lease(c, id, &h, LEASE))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(provider = id, "another worker polls this bot now");
                return;
            }
            Err(e) => {
                tracing::warn!(provider = id, error = %e, "Telegram polling: cannot renew the lease");
                backoff = next_backoff(backoff);
                tokio::time::sleep(backoff).await;
                continue;
            }
        }
        match telegram_poll::poll_once(&core, &inbox, id, POLL_TIMEOUT_SECS).await {
            Ok(_) => {
                backoff = Duration::ZERO;
                if reported.take().is_some() {
                    record(&core, id, None).await;
                }
            }
            Err(PollError::NotPolled(_)) => {
                tracing::info!(
                    provider = id,
                    "Telegram polling stopped: the provider is gone or uses the webhook now"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(provider = id, error = %e, "Telegram getUpdates failed; will retry");
                if !matches!(e, PollError::Db(_) | PollError::Store(_)) {
                    let msg = format!("getUpdates: {e}");
                    if reported.as_deref() != Some(msg.as_str()) {
                        record(&core, id, Some(msg.clone())).await;
                        reported = Some(msg);
                    }
                }
                backoff = next_backoff(backoff);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
