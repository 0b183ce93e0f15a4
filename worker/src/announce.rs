//! Tells the queue about newly stored inbox rows: one message per group commit of the
//! webhook writer (split at `MAX_IDS_PER_JOB` ids), pushed after the webhooks were already answered. A push
//! that fails is only logged: the rows are pending, and the sweeper enqueues them.

use svyazka_core::jobs::Job;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::queue::JobQueue;

pub fn spawn_announcer(queue: JobQueue, mut stored: UnboundedReceiver<Vec<i64>>) {
    tokio::spawn(async move {
        while let Some(mut ids) = stored.recv().await {
            // Commits that landed while the last push was in flight go out together.
            while let Ok(more) = stored.try_recv() {
                ids.extend(more);
            }
            for job in Job::dispatch(&ids) {
                if let Err(e) = queue.push(job).await {
                    tracing::warn!(error = %e, "queue unavailable; the sweeper will enqueue the items");
                }
            }
        }
    });
}
