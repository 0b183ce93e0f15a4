//! The Telegram long-polling loop of a worker. Every few seconds it lists the Telegram
//! providers in polling mode; for each whose lease it can take (one poller per bot across all
//! workers, see `svyazka_core::telegram_poll`) it starts a task that renews the lease and calls
//! `getUpdates`; the updates go through the webhook writer, which announces them to the queue.
//!
//! Stopping the worker cancels the tasks at a safe point (never while a lease write is in
//! flight) and waits for them; each gives its lease back as it ends, so a restarted process
//! (or another worker) takes over at once instead of after the lease expires. Dropping the
//! handle without `stop` aborts them, and the leases still go back (see `Lease`).

use std::collections::HashMap;
use std::time::Duration;

use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::telegram_poll::{self, PollError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long one `getUpdates` waits for something new. A new message ends the wait at once.
const POLL_TIMEOUT_SECS: u32 = 10;
/// Longer than one poll (its timeout plus the client's grace) plus the longest back-off, so a
/// live poller never loses its lease between renewals.
const LEASE: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// The provider list is re-read at the sweep interval, but at least this often.
const MAX_LIST_INTERVAL: Duration = Duration::from_secs(5);

/// How long `stop` waits for the pollers to give their leases back.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A polling task: cancelled and awaited by `stop`, aborted when dropped.
pub struct PollerGuard {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl PollerGuard {
    fn spawn(cancel: CancellationToken, f: impl Future<Output = ()> + Send + 'static) -> Self {
        PollerGuard {
            cancel,
            task: tokio::spawn(f),
        }
    }

    /// Cancels the task and waits (a little) until it has given its leases back.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::debug!("Telegram poller did not stop in time; aborted");
        }
    }

    fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for PollerGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn spawn(core: Core, inbox: InboxWriter) -> PollerGuard {
    let cancel = CancellationToken::new();
    PollerGuard::spawn(cancel.clone(), supervise(core, inbox, cancel))
}

async fn supervise(core: Core, inbox: InboxWriter, cancel: CancellationToken) {
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
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        pollers.retain(|_, p| !p.is_finished());
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
                    // The guard exists before the task runs: a task aborted before its first
                    // poll still drops it, and the lease goes back.
                    let lease = Lease {
                        core: core.clone(),
                        provider_id: id,
                        holder: holder.clone(),
                    };
                    let token = cancel.child_token();
                    let task = poll_provider(core.clone(), inbox.clone(), lease, token.clone());
                    pollers.insert(id, PollerGuard::spawn(token, task));
                }
                // Another worker polls this bot.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(provider = id, error = %e, "Telegram polling: cannot take the lease")
                }
            }
        }
    }
    futures::future::join_all(pollers.into_values().map(PollerGuard::stop)).await;
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

/// Sleeps, unless cancelled first; says whether to go on.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

async fn poll_provider(core: Core, inbox: InboxWriter, lease: Lease, cancel: CancellationToken) {
    let (id, holder) = (lease.provider_id, lease.holder.clone());
    tracing::info!(provider = id, "receiving Telegram updates by getUpdates");
    let mut backoff = Duration::ZERO;
    // The error last written to the provider (shown on its page), cleared on the next success.
    let mut reported: Option<String> = None;
    // Cancellation is looked at only here and while waiting, never during the lease renewal:
    // a renewal committing after the guard's release would hold the lease for nothing.
    while !cancel.is_cancelled() {
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
                pause(&cancel, backoff).await;
                continue;
            }
        }
        // Cancelling a poll is safe: what it stored stays stored, and Telegram repeats what was
        // not confirmed, which the inbox recognises.
        let polled = tokio::select! {
            () = cancel.cancelled() => break,
            polled = telegram_poll::poll_once(&core, &inbox, id, POLL_TIMEOUT_SECS) => polled,
        };
        match polled {
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
                pause(&cancel, backoff).await;
            }
        }
    }
}
