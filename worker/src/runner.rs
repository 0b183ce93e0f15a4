//! The worker loop: apalis delivers job messages, `svyazka_core::work::handle` does the work,
//! follow-up jobs are pushed, and a sweeper re-enqueues anything whose message went missing.

use std::sync::Arc;

use apalis::prelude::*;
use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Job;
use tokio::task::JoinHandle;

use crate::queue::JobQueue;

struct Ctx {
    core: Core,
    /// Items in flight across all messages of this process (`worker_concurrency`).
    slots: tokio::sync::Semaphore,
}

async fn handle(job: Job, ctx: Data<Arc<Ctx>>) -> Result<(), BoxDynError> {
    let size = job.len();
    svyazka_core::work::handle(&ctx.core, job, &ctx.slots)
        .await
        .map_err(|e| {
            tracing::warn!(items = size, error = %e, "job failed; it will be retried");
            Box::new(e) as BoxDynError
        })
}

fn worker_name() -> String {
    format!(
        "svyazka-{}-{}",
        std::process::id(),
        svyazka_core::crypto::random_token(4)
    )
}

/// Runs until the process ends (or the returned future is dropped). If the queue backend
/// fails (Redis restarted, say), the consumer is rebuilt after a pause; the sweeper and our
/// tables make sure nothing enqueued meanwhile is lost.
pub async fn run_worker(
    core: Core,
    queue: JobQueue,
    inbox: InboxWriter,
) -> Result<(), BoxDynError> {
    let ctx = Arc::new(Ctx {
        core: core.clone(),
        slots: tokio::sync::Semaphore::new(core.config.worker_concurrency),
    });
    // Aborted when this future is dropped (`WorkerHandle::stop`), like the pollers.
    let sweeper = AbortOnDrop(tokio::spawn(sweep_loop(core.clone(), queue.clone())));
    let _telegram_poller = crate::telegram_poll::spawn(core.clone(), inbox);
    loop {
        match consume(&core, ctx.clone(), queue.clone()).await {
            Ok(()) => tracing::warn!("queue consumer stopped; restarting"),
            Err(e) => tracing::warn!(error = %e, "queue consumer failed; restarting in 1 s"),
        }
        if sweeper.0.is_finished() {
            return Err("sweeper stopped".into());
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
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

/// A worker running on the current runtime; stopping it aborts its tasks.
pub struct WorkerHandle {
    task: JoinHandle<()>,
}

impl WorkerHandle {
    pub fn stop(self) {
        self.task.abort();
    }
}

pub fn spawn_worker(core: Core, queue: JobQueue, inbox: InboxWriter) -> WorkerHandle {
    let task = tokio::spawn(async move {
        if let Err(e) = run_worker(core, queue, inbox).await {
            tracing::error!(error = %e, "worker stopped");
        }
    });
    WorkerHandle { task }
}
