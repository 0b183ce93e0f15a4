//! `svyazka`: the web app. Embedded mode by default (SQLite under ./data, worker in-process).

use svyazka_core::{Config, Mode};

#[actix_web::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,apalis=warn".into()),
        )
        .init();
    // `svyazka worker` runs a queue-mode worker, the same as the `svyazka-worker` binary, so one
    // image or one binary can serve both roles.
    if std::env::args().nth(1).as_deref() == Some("worker") {
        if let Err(e) = svyazka_worker::cli::run().await {
            eprintln!("svyazka worker: {e}");
            std::process::exit(1);
        }
        return;
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("svyazka: {e}");
            std::process::exit(2);
        }
    };
    let mode = match &config.mode {
        Mode::Embedded { db_path } => format!(
            "embedded mode: data in {} (SQLite), worker inside this process",
            db_path.display()
        ),
        Mode::Queue { .. } => format!(
            "queue mode: PostgreSQL + Redis (queue {:?}); start svyazka-worker processes to run jobs{}",
            config.queue_name,
            if config.embedded_worker {
                ", plus one worker in this process"
            } else {
                ""
            }
        ),
    };
    let public = config.public_url.clone();
    let running = match svyazka_web::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("svyazka: {e}");
            std::process::exit(1);
        }
    };
    println!("svyazka: {mode}");
    println!("svyazka: listening on {}; open {public}", running.addr);
    if let Err(e) = running.wait().await {
        eprintln!("svyazka: server error: {e}");
        std::process::exit(1);
    }
}
