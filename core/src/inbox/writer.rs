//! The webhook writer: group commit for the inbox. Handlers hand their delivery to one writer
//! task and wait for its commit; whatever arrives while a commit is in flight goes into the
//! next one. Under load one statement and one fsync carry dozens of webhooks, at idle a
//! webhook waits for nobody. Every caller still gets its answer only after its row is
//! durable, so "200" keeps meaning "stored". After each commit the writer tells the queue
//! about the new rows itself (one message per `MAX_IDS_PER_JOB`), after the callers were
//! answered; a push that fails leaves the rows pending for the sweeper. When the worker in
//! this process pulls from the inbox (embedded, see `pull`), it is only woken.
//!
//! Intake gives way to execution: while every slot of this process' worker is busy (see
//! `pressure`), the writer pauses after each commit for as long as it was taking webhooks
//! before it (at most `MAX_PAUSE`), so a flood gets at most half of the time and the runs the
//! rest. Nobody is refused: a webhook waits a little longer for its 200, which still comes
//! only once its row is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{NewItem, Stored, store_batch};
use crate::Core;
use crate::db::DbError;
use crate::jobs::{Job, Jobs};

/// Most rows in one commit; more waiting callers go into the next.
const MAX_BATCH: usize = 512;
/// Callers that may wait for the writer before `store` itself waits (backpressure).
const QUEUE: usize = 8192;
/// The longest pause after a commit while execution is saturated: what a lone webhook may
/// wait beyond its commit at worst.
const MAX_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("database: {0}")]
    Db(String),
    #[error("the inbox writer has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Stored, WriteError>>;

#[derive(Clone)]
pub struct InboxWriter {
    lanes: Arc<[mpsc::Sender<(NewItem, Reply)>]>,
    next: Arc<AtomicUsize>,
}

impl InboxWriter {
    /// Starts the writer (and its announcer, which pushes to `jobs`) on the current runtime.
    ///
    /// SQLite has one writer at a time, so one lane; PostgreSQL overlaps a few commits (it
    /// flushes concurrent commits together), so webhooks are spread over several lanes.
    pub fn spawn(core: Core, jobs: Jobs) -> Self {
        let lanes = if core.config.is_embedded() { 1 } else { 4 };
        let (announce, announced) = mpsc::unbounded_channel();
        tokio::spawn(announcer(core.clone(), jobs, announced));
        let lanes: Arc<[_]> = (0..lanes)
            .map(|_| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(run(core.clone(), rx, announce.clone()));
                tx
            })
            .collect();
        let next = Arc::new(AtomicUsize::new(0));
        InboxWriter { lanes, next }
    }

    /// Stores one delivery; returns once it is committed.
    pub async fn store(&self, item: NewItem) -> Result<Stored, WriteError> {
        let answer = self.send(self.lane(), item).await?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Stores several deliveries of one webhook (they may land in different commits), in the
    /// order given: all go through one lane, so their ids keep the order in which the upstream
    /// listed them (a conversation is dispatched in id order).
    pub async fn store_all(&self, items: Vec<NewItem>) -> Result<Vec<Stored>, WriteError> {
        let lane = self.lane();
        let mut answers = Vec::with_capacity(items.len());
        for item in items {
            answers.push(self.send(lane, item).await?);
        }
        let mut stored = Vec::with_capacity(answers.len());
        for answer in answers {
            stored.push(answer.await.map_err(|_| WriteError::Stopped)??);
        }
        Ok(stored)
    }

    fn lane(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()
    }

    async fn send(
        &self,
        lane: usize,
        item: NewItem,
    ) -> Result<oneshot::Receiver<Result<Stored, WriteError>>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.lanes[lane]
            .send((item, reply))
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(answer)
    }
}

/// One queue message per group commit (split at `MAX_IDS_PER_JOB`), pushed after the callers
/// were answered: a slow queue never delays an acknowledgement.
async fn announcer(core: Core, jobs: Jobs, mut stored: mpsc::UnboundedReceiver<Vec<i64>>) {
    while let Some(mut ids) = stored.recv().await {
        if core.inbox_pull.is_active() {
            core.inbox_pull.wake();
            continue;
        }
        // Commits that landed while the last push was in flight go out together.
        while let Ok(more) = stored.try_recv() {
            ids.extend(more);
        }
        jobs.push_or_leave(Job::dispatch(&ids)).await;
    }
}

async fn run(
    core: Core,
    mut rx: mpsc::Receiver<(NewItem, Reply)>,
    announce: mpsc::UnboundedSender<Vec<i64>>,
) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    let mut taking_since = Instant::now();
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        let (items, replies): (Vec<NewItem>, Vec<Reply>) = waiting.drain(..).unzip();
        let results = write(&core, items).await;
        let new: Vec<i64> = results
            .iter()
            .filter_map(|r| match r {
                Ok(Stored::New(id)) => Some(*id),
                _ => None,
            })
            .collect();
        if !new.is_empty() {
            // The announcer gone (shutdown) is fine: the sweeper covers it.
            let _ = announce.send(new);
        }
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone (client disconnected); its row is stored regardless.
            let _ = reply.send(result);
        }
        if core.pressure.saturated() {
            tokio::time::sleep(taking_since.elapsed().min(MAX_PAUSE)).await;
        }
        taking_since = Instant::now();
    }
}

/// One answer per item, in order.
async fn write(core: &Core, items: Vec<NewItem>) -> Vec<Result<Stored, WriteError>> {
    let n = items.len();
    let res = core
        .db(move |c| {
            Ok::<_, DbError>(match store_batch(c, &items) {
                Ok(stored) => stored.into_iter().map(Ok).collect(),
                // One bad row (say, its provider was deleted a moment ago) must not cost the
                // others their commit: store them one by one.
                Err(e) if items.len() > 1 => {
                    tracing::debug!(error = %e, rows = items.len(), "batch refused; storing rows one by one");
                    items
                        .iter()
                        .map(|i| {
                            store_batch(c, std::slice::from_ref(i))
                                .map_err(|e| WriteError::Db(e.to_string()))?
                                .pop()
                                .ok_or_else(|| WriteError::Db("no row stored".into()))
                        })
                        .collect()
                }
                Err(e) => vec![Err(WriteError::Db(e.to_string()))],
            })
        })
        .await;
    res.unwrap_or_else(|e| vec![Err(WriteError::Db(e.to_string())); n])
}
