//! Job handling: what a worker does with each queue message. The items of one message are
//! worked on concurrently, bounded by the process-wide `slots`, so a batch of webhooks does
//! not wait for its slowest member and two messages together never exceed the worker's
//! concurrency.

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::Core;
use crate::db::DbError;
use crate::jobs::Job;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("worker is shutting down")]
    Closed,
}

/// Runs every item of `job`; the first database failure is returned after all items have been
/// tried (the queue then retries the message; claims make the retry skip finished items).
pub async fn handle(core: &Core, job: Job, slots: &Semaphore) -> Result<(), WorkError> {
    match job {
        Job::DispatchInbox { ids } => dispatch_items(core, ids, slots).await,
        Job::ExecuteRun { ids } => execute_runs(core, ids, slots).await,
        Job::SendReply { ids } => send_replies(core, ids, slots).await,
        Job::SendAlert { ids } => send_alerts(core, ids).await,
    }
}

/// Deliveries: claimed together in one statement, then each dispatched (and its runs
/// executed) in a slot of its own.
async fn dispatch_items(core: &Core, ids: Vec<i64>, slots: &Semaphore) -> Result<(), WorkError> {
    if core.closing.is_set() {
        // Stopping: none taken here, so handed to whichever worker sweeps next.
        return Ok(core
            .db(move |c| crate::shutdown::hand_back(c, &ids, &[]))
            .await?);
    }
    let claimed = crate::engine::dispatch::claim_batch(core, ids).await?;
    let results: Vec<Result<(), WorkError>> = stream::iter(claimed)
        .map(|item| dispatch_claimed(core, item, slots))
        .buffer_unordered(core.config.worker_concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A delivery this worker claimed (see `engine::dispatch::claim_batch`), in a slot of its own:
/// dispatched, and its runs executed; a worker stopping meanwhile gives it back unstarted.
pub async fn dispatch_claimed(
    core: &Core,
    item: crate::engine::dispatch::Claimed,
    slots: &Semaphore,
) -> Result<(), WorkError> {
    let _slot = slots.acquire().await.map_err(|_| WorkError::Closed)?;
    if core.closing.is_set() {
        let id = item.id();
        return Ok(core.db(move |c| crate::inbox::release(c, id)).await?);
    }
    dispatch_and_execute(core, item).await
}

/// Runs (retries, resumed or handed-back runs): each claimed and executed in its own slot.
async fn execute_runs(core: &Core, ids: Vec<i64>, slots: &Semaphore) -> Result<(), WorkError> {
    let results: Vec<Result<(), WorkError>> = stream::iter(ids)
        .map(|id| async move {
            let _slot = slots.acquire().await.map_err(|_| WorkError::Closed)?;
            let _busy = core.pressure.enter();
            if core.closing.is_set() {
                // Stopping: not started here, so handed to whichever worker sweeps next.
                return Ok(core
                    .db(move |c| crate::shutdown::hand_back(c, &[], &[id]))
                    .await?);
            }
            Ok(crate::engine::execute::execute(core, id).await?)
        })
        .buffer_unordered(core.config.worker_concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Operators' replies: each claimed and delivered (or acknowledged) on its own. A stopping
/// worker starts none; the sweeper of any worker takes them once their push is stale.
async fn send_replies(core: &Core, ids: Vec<i64>, slots: &Semaphore) -> Result<(), WorkError> {
    let results: Vec<Result<(), WorkError>> = stream::iter(ids)
        .map(|id| async move {
            let _slot = slots.acquire().await.map_err(|_| WorkError::Closed)?;
            if core.closing.is_set() {
                return Ok(());
            }
            Ok(crate::replies::deliver::process(core, id).await?)
        })
        .buffer_unordered(core.config.worker_concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Alerts are few: sent one after another, outside the run slots so a backlog of runs never
/// delays telling the admin about it. A stopping worker starts none (the sweeper finds them).
async fn send_alerts(core: &Core, ids: Vec<i64>) -> Result<(), WorkError> {
    for id in ids {
        if core.closing.is_set() {
            break;
        }
        crate::alerts::deliver::process(core, id).await?;
    }
    Ok(())
}

/// A dispatched item's runs are executed right away by the same worker: no second queue trip
/// and no second claim. Should the worker die in between, the runs' leases expire and the
/// sweeper enqueues them. The next item of its conversation, which waited for this one, is
/// dispatched here too, while these runs execute; its runs wait for their turn.
///
/// The conversation's items are dispatched in a loop, not by recursion: a customer with a long
/// backlog of messages must not nest one frame per message on the worker's stack.
async fn dispatch_and_execute(
    core: &Core,
    first: crate::engine::dispatch::Claimed,
) -> Result<(), WorkError> {
    let (dispatched, to_execute) = futures::channel::mpsc::unbounded();
    let dispatching = async move {
        let mut runs = crate::engine::dispatch::dispatch_claimed(core, first).await?;
        loop {
            let next = runs.next;
            // The receiver lives until both halves finish.
            let _ = dispatched.unbounded_send(runs);
            // A stopping worker dispatches no follower: it hands it back for any worker's
            // sweeper.
            let Some(follower) = next else { break };
            if core.closing.is_set() {
                core.db(move |c| crate::shutdown::hand_back(c, &[follower], &[]))
                    .await?;
                break;
            }
            runs = crate::engine::dispatch::dispatch(core, follower).await?;
        }
        Ok::<_, WorkError>(())
    };
    let executing = to_execute
        .map(|runs| execute_dispatched(core.clone(), runs))
        .buffer_unordered(usize::MAX)
        .collect::<Vec<_>>();
    let (dispatched, executed) = futures::future::join(dispatching, executing).await;
    dispatched?;
    executed.into_iter().collect()
}

/// One dispatched item's runs. Several bundles may listen for one event; their runs are leased
/// together, so they run side by side rather than one waiting out another's lease. (Owned and
/// boxed: the worker spawns this work as a `Send` task, and a future borrowing from the
/// stream's closure trips the compiler's higher-ranked `Send` check.)
fn execute_dispatched(
    core: Core,
    runs: crate::engine::dispatch::Dispatched,
) -> futures::future::BoxFuture<'static, Result<(), WorkError>> {
    Box::pin(async move {
        let core = &core;
        let claimed = runs
            .claimed
            .iter()
            .map(|run| crate::engine::execute::execute_claimed(core, run, &[]));
        futures::future::try_join_all(claimed).await?;
        Ok(())
    })
}
