//! The worker loop: apalis delivers job messages, `svyazka_core::work::handle` does the work,
//! a sweeper re-enqueues anything whose message went missing, and a heartbeat tells the web
//! process that this worker is alive.
//!
//! Stopping is graceful: the consumer stops taking messages, work in flight finishes its
//! current step (a run stops between steps and is released, see `svyazka_core::shutdown`) for
//! at most the shutdown grace, and the heartbeat row is removed. Handlers run as tracked tasks,
//! so stopping the consumer never cancels a step halfway through an upstream call.

use std::future::Future;
use std::sync::Arc;

use apalis::prelude::*;
use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Job;
use svyazka_core::workers::{self, WorkerId};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::queue::JobQueue;

struct Ctx {
    core: Core,
    /// Items in flight across all messages of this process (`worker_concurrency`).
    slots: Arc<tokio::sync::Semaphore>,
    /// Every handler's work, so a stop can wait for it.
    tasks: TaskTracker,
}

async fn handle(job: Job, ctx: Data<Arc<Ctx>>) -> Result<(), BoxDynError> {
    let size = job.len();
    let (core, slots) = (ctx.core.clone(), ctx.slots.clone());
    // Detached from this future: apalis dropping it (the consumer stopping) leaves the work to
    // finish or release itself.
    let work = ctx
        .tasks
        .spawn(async move { svyazka_core::work::handle(&core, job, &slots).await });
    match work.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(items = size, error = %e, "job failed; it will be retried");
            Err(Box::new(e) as BoxDynError)
        }
        Err(e) => Err(Box::new(e) as BoxDynError),
    }
}

fn worker_name() -> String {
    format!(
        "svyazka-{}-{}",
        std::process::id(),
        svyazka_core::crypto::random_token(4)
    )
}

/// Runs until `stop` completes, then stops gracefully. If the queue backend fails (Redis
/// restarted, say), the consumer is rebuilt after a pause; the sweeper and our tables make
/// sure nothing enqueued meanwhile is lost. `in_web`: this worker lives in the web process.
pub async fn run_worker(
    core: Core,
    queue: JobQueue,
    inbox: InboxWriter,
    in_web: bool,
    stop: impl Future<Output = ()>,
) -> Result<(), BoxDynError> {
    let me = WorkerId::new(in_web);
    let ctx = Arc::new(Ctx {
        core: core.clone(),
        slots: Arc::new(tokio::sync::Semaphore::new(core.config.worker_concurrency)),
        tasks: TaskTracker::new(),
    });
    core.pressure.worker_started(core.config.worker_concurrency);
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(core.clone(), me.clone())));
    let sweeper = AbortOnDrop(tokio::spawn(sweep_loop(core.clone(), queue.clone())));
    // Embedded: new webhooks are pulled from the inbox rather than announced through the
    // queue (see `svyazka_core::inbox::pull`).
    let puller = core.config.is_embedded().then(|| {
        core.inbox_pull.start();
        AbortOnDrop(tokio::spawn(pull_loop(ctx.clone())))
    });
    let telegram_poller = crate::telegram_poll::spawn(core.clone(), inbox);
    let consuming = async {
        loop {
            match consume(&core, ctx.clone(), queue.clone()).await {
                Ok(()) => tracing::warn!("queue consumer stopped; restarting"),
                Err(e) => tracing::warn!(error = %e, "queue consumer failed; restarting in 1 s"),
            }
            if sweeper.0.is_finished() {
                return Err::<(), BoxDynError>("sweeper stopped".into());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    };
    let res = tokio::select! {
        res = consuming => res,
        () = stop => Ok(()),
    };
    // No new step starts from here on; what runs finishes its step or is released.
    core.closing.begin();
    telegram_poller.stop().await;
    core.inbox_pull.stop();
    drop(puller);
    drop(sweeper);
    ctx.tasks.close();
    let in_flight = ctx.tasks.len();
    if in_flight > 0 {
        tracing::info!(jobs = in_flight, "stopping: finishing the steps in flight");
    }
    if tokio::time::timeout(core.config.shutdown_grace, ctx.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            jobs = ctx.tasks.len(),
            "stopping: steps still running after the grace period; their runs resume when the lease expires"
        );
    }
    drop(heartbeat);
    let id = me.id.clone();
    if let Err(e) = core.db(move |c| workers::leave(c, &id)).await {
        tracing::debug!(error = %e, "heartbeat row not removed; it expires");
    }
    tracing::info!(worker = %me.id, "worker stopped");
    res
}

async fn heartbeat(core: Core, me: WorkerId) {
    if let Err(e) = core.db(workers::forget_dead).await {
        tracing::debug!(error = %e, "could not clean old worker rows");
    }
    let mut tick = tokio::time::interval(workers::BEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let m = me.clone();
        if let Err(e) = core.db(move |c| workers::beat(c, &m)).await {
            tracing::warn!(error = %e, "worker heartbeat not written");
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn consume(core: &Core, ctx: Arc<Ctx>, queue: JobQueue) -> Result<(), BoxDynError> {
    let poll = core.config.poll_interval;
    let concurrency = crate::queue::messages_in_flight(&core.config);
    match queue {
        JobQueue::Sqlite(storage) => WorkerBuilder::new(worker_name())
            .backend(storage.poll_with_interval(poll))
            .data(ctx)
            .concurrency(concurrency)
            .build(handle)
            .run()
            .await
            .map_err(|e| Box::new(e) as BoxDynError),
        JobQueue::Redis(storage) => WorkerBuilder::new(worker_name())
            .backend(storage.poll_with_interval(poll))
            .data(ctx)
            .concurrency(concurrency)
            .build(handle)
            .run()
            .await
            .map_err(|e| Box::new(e) as BoxDynError),
    }
}

/// Rows the puller takes at a time, at most: a few queries per second under a flood, and no
/// more ids in memory than the worker's slots.
const PULL_BATCH: usize = 64;

/// Takes new inbox rows as slots free up, each dispatched (and its runs executed) as a
/// tracked task like a queue message's items. In memory at any time: at most twice the
/// worker's `worker_concurrency` rows; the rest of a backlog stays in the table.
async fn pull_loop(ctx: Arc<Ctx>) {
    let core = &ctx.core;
    // Twice the slots: the rows for the next free slots are already taken when one frees, so
    // no slot waits for the next pull's query.
    let budget = Arc::new(tokio::sync::Semaphore::new(
        core.config.worker_concurrency * 2,
    ));
    let idle = core
        .config
        .poll_interval
        .max(std::time::Duration::from_millis(100))
        * 10;
    let mut cursor = 0i64;
    loop {
        let Ok(first) = budget.clone().acquire_owned().await else {
            return;
        };
        let mut permits = vec![first];
        while permits.len() < PULL_BATCH {
            match budget.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let (after, limit) = (cursor, i64::try_from(permits.len()).unwrap_or(1));
        let ids = match core
            .db(move |c| svyazka_core::inbox::pull::pending_after(c, after, limit))
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "inbox pull failed; trying again");
                Vec::new()
            }
        };
        if ids.is_empty() {
            drop(permits);
            core.inbox_pull.wait(idle).await;
            continue;
        }
        cursor = ids.iter().copied().max().unwrap_or(cursor);
        core.inbox_pull.advance(cursor);
        // Claimed together, in one statement; the permits of rows not claimed (another
        // worker's, or waiting for their conversation's turn) are given back at once.
        let claimed = match svyazka_core::engine::dispatch::claim_batch(core, ids).await {
            Ok(claimed) => claimed,
            Err(e) => {
                // Still pending, or leased until it expires: the sweeper takes them again.
                tracing::warn!(error = %e, "pulled webhooks not claimed; the sweeper retries them");
                continue;
            }
        };
        for (item, permit) in claimed.into_iter().zip(permits) {
            let (core, slots) = (core.clone(), ctx.slots.clone());
            ctx.tasks.spawn(async move {
                let _permit = permit;
                let id = item.id();
                if let Err(e) = svyazka_core::work::dispatch_claimed(&core, item, &slots).await {
                    tracing::warn!(id, error = %e, "pulled webhook not dispatched; the sweeper retries it");
                }
            });
        }
    }
}

async fn sweep_loop(core: Core, queue: JobQueue) {
    let grace = core.config.requeue_grace;
    let mut tick = tokio::time::interval(core.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match core
            .db(move |c| svyazka_core::sweep::due_jobs(c, grace))
            .await
        {
            Ok(jobs) => {
                let jobs: Vec<Job> = jobs
                    .into_iter()
                    .filter_map(|job| match job {
                        // A backlog ahead of the embedded puller is its to take, not the
                        // queue's (see `svyazka_core::inbox::pull`).
                        Job::DispatchInbox { ids } => {
                            let ids: Vec<i64> = ids
                                .into_iter()
                                .filter(|id| core.inbox_pull.reached(*id))
                                .collect();
                            (!ids.is_empty()).then_some(Job::DispatchInbox { ids })
                        }
                        other => Some(other),
                    })
                    .collect();
                let count: usize = jobs.iter().map(Job::len).sum();
                if count > 0 {
                    tracing::info!(count, "sweeper re-enqueues work");
                }
                for job in jobs {
                    if let Err(e) = queue.push(job).await {
                        tracing::warn!(error = %e, "sweeper could not enqueue");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeper could not read the database"),
        }
    }
}

/// A worker running on the current runtime.
pub struct WorkerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops at once: in-flight steps are cut off and their runs resume after the lease.
    pub fn abort(self) {
        self.task.abort();
    }

    /// Stops gracefully (see the module comment); returns when the worker has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub fn spawn_worker(core: Core, queue: JobQueue, inbox: InboxWriter, in_web: bool) -> WorkerHandle {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        if let Err(e) = run_worker(core, queue, inbox, in_web, stop).await {
            tracing::error!(error = %e, "worker stopped");
        }
    });
    WorkerHandle { stop, task }
}
