//! The queue transport (apalis: SQLite storage in embedded mode, Redis in queue mode) and the
//! worker loop around `svyazka_core::work`. The web process uses `JobQueue::push`; workers
//! (in-process or `svyazka-worker`) run `run_worker`.

mod announce;
pub mod cli;
mod queue;
mod runner;
mod telegram_poll;

pub use announce::spawn_announcer;
pub use queue::{JobQueue, QueueError};
pub use runner::{WorkerHandle, run_worker, spawn_worker};
