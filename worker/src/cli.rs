//! The worker process entry point, shared by `svyazka-worker` and `svyazka worker`.

use svyazka_core::{Config, Core};

use crate::{JobQueue, run_worker};

pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    if config.is_embedded() {
        return Err("DATABASE_URL and REDIS_URL: the worker process is for queue mode; in embedded mode the web process runs the worker".into());
    }
    let core = Core::start(config)?;
    let queue = JobQueue::connect(&core.config).await?;
    println!(
        "svyazka-worker: queue mode, consuming {:?} from {} (concurrency {})",
        core.config.queue_name,
        queue.backend_name(),
        core.config.worker_concurrency
    );
    run_worker(core, queue)
        .await
        .map_err(|e| e.to_string().into())
}
