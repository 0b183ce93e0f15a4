//! `svyazka-worker`: consumes jobs from Redis in queue mode. Start as many as you need.

use svyazka_core::{Config, Core};
use svyazka_worker::{JobQueue, run_worker};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    if let Err(e) = run().await {
        eprintln!("svyazka-worker: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    if config.is_embedded() {
        return Err("DATABASE_URL and REDIS_URL: svyazka-worker is for queue mode; in embedded mode the web process runs the worker".into());
    }
    let core = Core::start(config)?;
    let queue = JobQueue::connect(&core.config).await?;
    println!(
        "svyazka-worker: queue mode, consuming {:?} from {} (concurrency {})",
        core.config.queue_name,
        queue.backend_name(),
        core.config.worker_concurrency
    );
    run_worker(core, queue).await.map_err(|e| e.to_string().into())
}
