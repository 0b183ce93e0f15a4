//! `svyazka-worker`: the same as `svyazka worker`, kept for existing deployments.

#[tokio::main]
async fn main() {
    svyazka_app::init_tracing();
    if let Err(e) = svyazka_app::worker_process::run().await {
        eprintln!("svyazka-worker: {e}");
        std::process::exit(1);
    }
}
