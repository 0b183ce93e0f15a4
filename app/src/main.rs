//! `svyazka`: the web app, in embedded mode with its worker inside (SQLite under ./data).
//! `svyazka worker` runs a queue-mode worker instead, so one binary serves both roles;
//! `svyazka health [worker]` is the container health check of either, and
//! `svyazka admin reset-password` the way back in after a forgotten password.

use svyazka_core::{Config, Mode};

fn main() {
    svyazka_app::malloc::limit_arenas();
    actix_web::rt::System::new().block_on(run());
}

async fn run() {
    svyazka_app::init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => {
            if let Err(e) = svyazka_app::worker_process::run().await {
                eprintln!("svyazka worker: {e}");
                std::process::exit(1);
            }
            return;
        }
        Some("admin") => {
            if let Err(e) = svyazka_app::admin_cli::run(&args[1..]).await {
                eprintln!("svyazka admin: {e}");
                std::process::exit(e.exit_code());
            }
            return;
        }
        Some("health") => {
            if let Err(e) = svyazka_app::health_check::run(args.get(1).map(String::as_str)).await {
                eprintln!("svyazka health: {e}");
                std::process::exit(1);
            }
            return;
        }
        _ => {}
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
            "queue mode: PostgreSQL + Redis (queue {:?}); start `svyazka worker` processes to run jobs{}",
            config.queue_name,
            if config.embedded_worker {
                ", plus one worker in this process"
            } else {
                ""
            }
        ),
    };
    let public = config.public_url.clone();
    let running = match svyazka_app::start(config).await {
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
