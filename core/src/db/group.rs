//! Group commit for run state. Every step of every run commits its outcome before the next
//! step starts (so a retry never repeats what succeeded); with many runs in flight those
//! commits come in crowds, and one transaction can carry a crowd as well as one caller: the
//! database does one commit, the process one hand-off to a connection. Callers hand their
//! writes to a committer thread and wait for its commit; whatever arrives while a commit is in
//! flight goes into the next one, so at idle a write waits for nobody.
//!
//! The writes of one group share a transaction, so one that fails would take the others down
//! with it; the group is then rolled back and each write tried again in a transaction of its
//! own. Writes must therefore be repeatable (`Fn`): they are, being plain statements on the
//! caller's own rows.
//!
//! A committer is a thread rather than a task: it must outlive whichever runtime first called
//! it (actix runs one per web worker), and it blocks on the database anyway. It holds one of
//! the process' database slots while it commits, so it shares the pool fairly with `Core::db`,
//! and in the embedded process it takes its turn at the write gate like any other call (see
//! `db::gate`).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use diesel::Connection;
use tokio::sync::{Semaphore, oneshot};

use super::gate::WriteGate;
use super::{AnyConnection, DbError, Pool, checkout};

/// Most writes in one transaction; more waiting callers go into the next.
const MAX_GROUP: usize = 64;

type Output = Box<dyn Any + Send>;
type Work = Box<dyn Fn(&mut AnyConnection) -> Result<Output, DbError> + Send>;

struct Write {
    work: Work,
    reply: oneshot::Sender<Result<Output, DbError>>,
}

#[derive(Clone)]
pub struct GroupCommit {
    lanes: Arc<[mpsc::Sender<Write>]>,
    next: Arc<AtomicUsize>,
    /// Group transactions begun so far, for tests and metrics: against the number of writes,
    /// how much sharing there is.
    transactions: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts `lanes` committer threads. SQLite has one writer at a time, so one lane serves;
    /// PostgreSQL overlaps a few commits, so a couple of lanes keep its round trips in flight.
    /// `gate`: the embedded process' write gate, taken for each group transaction.
    pub fn start(pool: Pool, slots: Arc<Semaphore>, gate: Option<WriteGate>, lanes: usize) -> Self {
        let transactions = Arc::new(AtomicU64::new(0));
        let lanes: Arc<[_]> = (0..lanes.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                let (pool, slots, count) = (pool.clone(), slots.clone(), transactions.clone());
                let gate = gate.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("svyazka-commit-{i}"))
                    .spawn(move || committer(&pool, &slots, gate.as_ref(), &count, &rx));
                if let Err(e) = spawned {
                    // Without its thread the lane's receiver is gone: writes fall back to a
                    // transaction of their own (see `write`).
                    tracing::error!(error = %e, "group commit thread not started");
                }
                tx
            })
            .collect();
        GroupCommit {
            lanes,
            next: Arc::new(AtomicUsize::new(0)),
            transactions,
        }
    }

    /// Group transactions begun so far (retries of a failed group's writes not counted).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Runs `work` in the next group transaction; answers once that transaction committed.
    /// `None` (the committer has stopped): the caller runs it on its own.
    pub async fn write<T, F>(&self, work: F) -> Option<Result<T, DbError>>
    where
        F: Fn(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |c| work(c).map(|t| Box::new(t) as Output));
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[lane].send(Write { work, reply }).ok()?;
        let output = answer.await.ok()?;
        Some(output.and_then(|out| {
            out.downcast::<T>()
                .map(|t| *t)
                .map_err(|_| DbError::Group("an answer of another type".into()))
        }))
    }
}

fn committer(
    pool: &Pool,
    slots: &Semaphore,
    gate: Option<&WriteGate>,
    count: &AtomicU64,
    rx: &mpsc::Receiver<Write>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        // Never closed, so acquiring only waits.
        let slot = futures::executor::block_on(slots.acquire());
        let turn = gate.map(WriteGate::enter_blocking);
        count.fetch_add(1, Ordering::Relaxed);
        let outputs = commit(pool, &group);
        drop(turn);
        drop(slot);
        for (w, out) in group.into_iter().zip(outputs) {
            // The caller may have gone (its job was cancelled); its write stands regardless.
            let _ = w.reply.send(out);
        }
    }
}

/// One answer per write, in order: all in one transaction, or, should that fail, each alone.
fn commit(pool: &Pool, group: &[Write]) -> Vec<Result<Output, DbError>> {
    let mut conn = match checkout(pool) {
        Ok(c) => c,
        Err(e) => {
            let e = e.to_string();
            return group
                .iter()
                .map(|_| Err(DbError::Group(e.clone())))
                .collect();
        }
    };
    let together = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<_, DbError, _>(|c| {
            group
                .iter()
                .map(|w| (w.work)(c))
                .collect::<Result<Vec<_>, _>>()
        })
    }));
    let outputs = match together {
        Ok(Ok(outputs)) => outputs.into_iter().map(Ok).collect(),
        Ok(Err(e)) if group.len() == 1 => vec![Err(e)],
        _ => {
            conn.check_after_error();
            group
                .iter()
                .map(|w| {
                    catch_unwind(AssertUnwindSafe(|| {
                        conn.transaction::<_, DbError, _>(|c| (w.work)(c))
                    }))
                    .unwrap_or_else(|_| Err(DbError::Group("a write panicked".into())))
                })
                .collect()
        }
    };
    conn.touch();
    outputs
}
