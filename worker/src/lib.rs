//! The queue transport (apalis: SQLite storage in embedded mode, Redis in queue mode), which
//! implements core's job sink, and the worker loop around `svyazka_core::work`: the sweeper and
//! the Telegram pollers. The app crate assembles it, in the web process (embedded) or in
//! `svyazka worker` processes (queue mode).

mod queue;
mod runner;
mod telegram_poll;

pub use queue::{JobQueue, QueueError};
pub use runner::{WorkerHandle, run_worker, spawn_worker};
