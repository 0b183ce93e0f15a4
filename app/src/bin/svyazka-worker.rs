//! `svyazka-worker`: the same as `svyazka worker`, kept for existing deployments.

fn main() {
    svyazka_app::malloc::limit_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("svyazka-worker: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        svyazka_app::init_tracing();
        if let Err(e) = svyazka_app::worker_process::run().await {
            eprintln!("svyazka-worker: {e}");
            std::process::exit(1);
        }
    });
}
