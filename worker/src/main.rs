//! `svyazka-worker`: consumes jobs from Redis in queue mode. Start as many as you need.

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,apalis=warn".into()),
        )
        .init();
    if let Err(e) = svyazka_worker::cli::run().await {
        eprintln!("svyazka-worker: {e}");
        std::process::exit(1);
    }
}
