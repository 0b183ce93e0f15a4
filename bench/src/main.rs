//! `svyazka-bench`: the benchmark harness. Starts the release binaries of the app as separate
//! processes against fresh databases, the fakes in this process, drives load over loopback only,
//! and writes `results.json` + `results.md`. See BENCHMARKS.md.
//!
//!     cargo run --release -p svyazka-bench -- [--quick] [--duration-secs S] [--e2e-runs N]
//!         [--rate-limited-runs N] [--customers N] [--messages M] [--connections C] [--out DIR]
//!         [--overload-secs S] [--only LIST] [--no-build]
//!         [--pg-url URL] [--redis-url URL] [--bin-dir DIR] [--app-env KEY=VALUE]...

mod app;
mod load;
mod overload;
mod procs;
mod profile;
mod report;
mod scenarios;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use app::{Bins, Layout, Services};
use report::Results;
use scenarios::{ConversationParams, E2eParams, Settings};

const USAGE: &str =
    "usage: svyazka-bench [--quick] [--duration-secs S] [--e2e-runs N] [--rate-limited-runs N]
                     [--customers N] [--messages M] [--connections C] [--out DIR]
                     [--overload-secs S]
                     [--only hello,ingest,e2e,conversations,ratelimited,overload,pgbench]
                     [--no-build] [--bin-dir DIR] [--pg-url URL] [--redis-url URL] [--app-env KEY=VALUE]...

  --quick             ~2-minute smoke run (3 s load runs, 500 end-to-end runs, 30 rate-limited)
  --duration-secs S   length of each measured load run (default 10; quick 3)
  --e2e-runs N        triggers per end-to-end scenario (default 3000; quick 500)
  --rate-limited-runs N  triggers per rate-limited scenario (default 100; quick 30)
  --customers N       customers of the conversational scenario (default 400; quick 100)
  --messages M        messages each of them writes (default 5)
  --connections C     concurrent connections of the load generator (default 64)
  --overload-secs S   how long the overload scenario posts triggers (default 20; quick 5);
                      it then waits up to 15 minutes for the backlog to drain
  --out DIR           where results.json and results.md go (default bench-results)
  --only LIST         run only these scenario groups
  --no-build          do not run `cargo build --release -p svyazka-app` first
  --bin-dir DIR       where the release binaries are (default <workspace>/target/release)
  --pg-url URL        PostgreSQL admin URL for queue mode and pgbench
                      (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres)
  --redis-url URL     Redis for queue mode (default $BENCH_REDIS_URL or redis://127.0.0.1:6379/0)
  --app-env KEY=VALUE extra environment for every app process, e.g. SVYAZKA_WORKER_CONCURRENCY=32
                      (repeatable; a scenario's own SVYAZKA_RETAILCRM_RPS still wins)";

struct Args {
    quick: bool,
    duration: Option<u64>,
    e2e_runs: Option<u64>,
    rl_runs: Option<u64>,
    customers: Option<u64>,
    messages: u64,
    connections: usize,
    overload_secs: Option<u64>,
    out: PathBuf,
    only: Option<Vec<String>>,
    build: bool,
    bin_dir: Option<PathBuf>,
    pg_url: String,
    redis_url: String,
    app_env: Vec<(String, String)>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        quick: false,
        duration: None,
        e2e_runs: None,
        rl_runs: None,
        customers: None,
        messages: 5,
        connections: 64,
        overload_secs: None,
        out: PathBuf::from("bench-results"),
        only: None,
        build: true,
        bin_dir: None,
        pg_url: std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        redis_url: std::env::var("BENCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
        app_env: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--duration-secs" => {
                a.duration = Some(value(&arg)?.parse().context("--duration-secs")?)
            }
            "--e2e-runs" => a.e2e_runs = Some(value(&arg)?.parse().context("--e2e-runs")?),
            "--rate-limited-runs" => {
                a.rl_runs = Some(value(&arg)?.parse().context("--rate-limited-runs")?)
            }
            "--customers" => a.customers = Some(value(&arg)?.parse().context("--customers")?),
            "--messages" => a.messages = value(&arg)?.parse().context("--messages")?,
            "--connections" => a.connections = value(&arg)?.parse().context("--connections")?,
            "--overload-secs" => {
                a.overload_secs = Some(value(&arg)?.parse().context("--overload-secs")?)
            }
            "--out" => a.out = PathBuf::from(value(&arg)?),
            "--only" => {
                a.only = Some(
                    value(&arg)?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                )
            }
            "--no-build" => a.build = false,
            "--bin-dir" => a.bin_dir = Some(PathBuf::from(value(&arg)?)),
            "--pg-url" => a.pg_url = value(&arg)?,
            "--redis-url" => a.redis_url = value(&arg)?,
            "--app-env" => {
                let kv = value(&arg)?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--app-env expects KEY=VALUE, got {kv}"))?;
                a.app_env.push((k.to_string(), v.to_string()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if a.connections == 0 || a.connections > 1024 {
        bail!("--connections must be 1..=1024");
    }
    if a.duration.is_some_and(|d| d == 0 || d > 120) {
        bail!("--duration-secs must be 1..=120");
    }
    if a.e2e_runs.is_some_and(|n| n == 0 || n > 1_000_000)
        || a.rl_runs.is_some_and(|n| n == 0 || n > 10_000)
    {
        bail!("--e2e-runs must be 1..=1000000 and --rate-limited-runs 1..=10000");
    }
    if a.overload_secs.is_some_and(|d| d == 0 || d > 600) {
        bail!("--overload-secs must be 1..=600");
    }
    if a.customers.is_some_and(|n| n == 0 || n > 100_000) || !(1..=100).contains(&a.messages) {
        bail!("--customers must be 1..=100000 and --messages 1..=100");
    }
    Ok(a)
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn build_binaries(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building: cargo build --release -p svyazka-app");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "svyazka-app"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p svyazka-app failed");
    }
    Ok(())
}

fn command_output(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn services_reachable(s: &Services) -> Result<(), String> {
    let pg = s.pg_admin_url.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        diesel::PgConnection::establish(&pg)
            .map(|_| ())
            .map_err(|e| format!("PostgreSQL {pg}: {e}"))
    })
    .await
    .map_err(|e| e.to_string())??;
    let client = redis::Client::open(s.redis_url.as_str())
        .map_err(|e| format!("Redis {}: {e}", s.redis_url))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("Redis {}: {e}", s.redis_url))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| format!("Redis {}: {e}", s.redis_url))?;
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hello-server") {
        let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
        if let Err(e) = scenarios::hello_server(port) {
            eprintln!("hello-server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("svyazka-bench: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("svyazka-bench: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let a = parse_args()?;
    let root = workspace_root();
    if a.build {
        build_binaries(&root)?;
    }
    let wall = Instant::now();
    let bin_dir = a.bin_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("release")
    });
    let bins = Bins {
        web: bin_dir.join("svyazka"),
        worker: bin_dir.join("svyazka-worker"),
    };
    for b in [&bins.web, &bins.worker] {
        if !b.is_file() {
            bail!(
                "{} not found: build it with `cargo build --release -p svyazka-app` or pass --bin-dir",
                b.display()
            );
        }
    }

    let s = Settings {
        connections: a.connections,
        duration: Duration::from_secs(a.duration.unwrap_or(if a.quick { 3 } else { 10 })),
        warmup: Duration::from_millis(if a.quick { 500 } else { 1000 }),
        e2e_runs: a.e2e_runs.unwrap_or(if a.quick { 500 } else { 3000 }),
        rate_limited_runs: a.rl_runs.unwrap_or(if a.quick { 30 } else { 100 }),
        e2e_timeout: Duration::from_secs(if a.quick { 60 } else { 180 }),
        max_requests: 20_000_000,
        pgbench_secs: if a.quick { 5 } else { 10 },
        app_env: a.app_env.clone(),
        log_dir: a.out.join("logs"),
    };
    let wants = |group: &str| a.only.as_ref().is_none_or(|o| o.iter().any(|g| g == group));
    let candidate = Services {
        pg_admin_url: a.pg_url.clone(),
        redis_url: a.redis_url.clone(),
    };
    let mut results = Results::default();
    let services = match services_reachable(&candidate).await {
        Ok(()) => Some(candidate),
        Err(e) => {
            results
                .skipped
                .push(format!("queue-mode scenarios and pgbench: {e}"));
            None
        }
    };
    let scratch = tempfile::Builder::new()
        .prefix("svyazka-bench-")
        .tempdir()?;
    let started_at = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let loadavg_before = loadavg();
    let mut notes = vec![
        "Load generator: this binary, one HTTP/1.1 keep-alive connection per task, closed loop; it shares the 2 cores with the app.".to_string(),
        "App under test: release `svyazka` / `svyazka-worker` as separate processes, default settings unless named; fakes in the bench process.".to_string(),
    ];
    if !a.app_env.is_empty() {
        let list: Vec<String> = a.app_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        notes.push(format!("Extra app environment: {}", list.join(" ")));
    }
    if loadavg_before
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 0.5)
    {
        notes.push(format!("The machine was not idle at the start (load average {loadavg_before}); numbers may be low."));
    }

    macro_rules! attempt {
        ($label:expr, $fut:expr) => {{
            println!("== {}", $label);
            let t = Instant::now();
            match $fut.await {
                Ok(v) => {
                    println!("   done in {:.1} s", t.elapsed().as_secs_f64());
                    Some(v)
                }
                Err(e) => {
                    let msg = format!("{}: {e:#}", $label);
                    eprintln!("   FAILED: {msg}");
                    results.errors.push(msg);
                    None
                }
            }
        }};
    }

    if wants("hello") {
        results.hello = attempt!("hello-world baseline", scenarios::hello(&s, scratch.path()));
    }
    if wants("ingest") {
        if let Some(r) = attempt!(
            "ingest, embedded",
            scenarios::ingest(&s, &bins, None, Layout::Embedded)
        ) {
            results.ingest.push(r);
        }
        match &services {
            Some(sv) => {
                if let Some(r) = attempt!(
                    "ingest, queue",
                    scenarios::ingest(&s, &bins, Some(sv), Layout::Queue { workers: 0 })
                ) {
                    results.ingest.push(r);
                }
            }
            None => results
                .skipped
                .push("ingest, queue mode (no PostgreSQL/Redis)".into()),
        }
    }
    if wants("e2e") {
        let unlimited = |name: &str, layout| E2eParams {
            name: name.into(),
            layout,
            runs: s.e2e_runs,
            client_rps: 10_000,
            fake_limit: None,
            extended_body: false,
        };
        if let Some(r) = attempt!(
            "end to end, embedded",
            scenarios::e2e(
                &s,
                &bins,
                None,
                unlimited("e2e, embedded", Layout::Embedded)
            )
        ) {
            results.e2e.push(r);
        }
        for workers in [1, 2, 4] {
            let name = format!(
                "e2e, queue, {workers} worker{}",
                if workers > 1 { "s" } else { "" }
            );
            match &services {
                Some(sv) => {
                    let p = unlimited(&name, Layout::Queue { workers });
                    if let Some(r) = attempt!(name.clone(), scenarios::e2e(&s, &bins, Some(sv), p))
                    {
                        results.e2e.push(r);
                    }
                }
                None => results
                    .skipped
                    .push(format!("{name} (no PostgreSQL/Redis)")),
            }
        }
    }
    if wants("conversations") {
        let customers = a.customers.unwrap_or(if a.quick { 100 } else { 400 });
        let params = |name: &str, layout| ConversationParams {
            name: name.into(),
            layout,
            customers,
            messages: a.messages,
        };
        let name = "conversations, embedded";
        if let Some(r) = attempt!(
            name,
            scenarios::conversations(&s, &bins, None, params(name, Layout::Embedded))
        ) {
            results.conversations.push(r);
        }
        let name = "conversations, queue, 2 workers";
        match &services {
            Some(sv) => {
                let p = params(name, Layout::Queue { workers: 2 });
                if let Some(r) = attempt!(name, scenarios::conversations(&s, &bins, Some(sv), p)) {
                    results.conversations.push(r);
                }
            }
            None => results
                .skipped
                .push(format!("{name} (no PostgreSQL/Redis)")),
        }
    }
    if wants("ratelimited") {
        // The short body spends one of the key's 10 requests/s per run; the extended body
        // carries the order, so its runs are bound by the messenger alone (as many runs as
        // the unlimited end-to-end scenario).
        let limited = |name: &str, layout, extended_body: bool| E2eParams {
            name: name.into(),
            layout,
            runs: if extended_body {
                s.e2e_runs
            } else {
                s.rate_limited_runs
            },
            client_rps: 10,
            fake_limit: Some(10.0),
            extended_body,
        };
        for (body, extended) in [("", false), ("extended body, ", true)] {
            let name = format!("rate-limited, {body}embedded");
            let p = limited(&name, Layout::Embedded, extended);
            if let Some(r) = attempt!(&name, scenarios::e2e(&s, &bins, None, p)) {
                results.rate_limited.push(r);
            }
            match &services {
                // Every worker at the key's full 10 rps: the budget is shared through Redis,
                // so the fake's 503 count shows whether adding workers still keeps within it.
                Some(sv) => {
                    for workers in [1, 3] {
                        let name = format!("rate-limited, {body}queue, {workers} workers");
                        let p = limited(&name, Layout::Queue { workers }, extended);
                        if let Some(r) = attempt!(&name, scenarios::e2e(&s, &bins, Some(sv), p)) {
                            results.rate_limited.push(r);
                        }
                    }
                }
                None => results.skipped.push(format!(
                    "rate-limited, {body}queue mode (no PostgreSQL/Redis)"
                )),
            }
        }
    }
    if wants("overload") {
        let secs = a.overload_secs.unwrap_or(if a.quick { 5 } else { 20 });
        let p = overload::OverloadParams {
            load: Duration::from_secs(secs),
            // One order per trigger, more than intake can take at 10,000/s.
            orders: secs * 10_000,
            drain_timeout: Duration::from_secs(900),
        };
        if let Some(r) = attempt!("overload, embedded", overload::overload(&s, &bins, p)) {
            results.overload.push(r);
        }
    }
    if wants("pgbench") {
        match (&services, scenarios::find_pgbench()) {
            (None, _) => results.pgbench_skipped = Some("PostgreSQL not reachable".into()),
            (Some(_), None) => {
                results.pgbench_skipped =
                    Some("pgbench is not installed (Debian: apt-get install postgresql-contrib, or postgresql-client)".into())
            }
            (Some(sv), Some(bin)) => {
                let (url, secs, dir) = (sv.pg_admin_url.clone(), s.pgbench_secs, scratch.path().to_path_buf());
                let c = u32::try_from(s.connections).unwrap_or(64);
                let fut = async move { tokio::task::spawn_blocking(move || scenarios::pgbench(&bin, &url, secs, c, &dir)).await? };
                results.pgbench = attempt!("pgbench single-row INSERT ceiling", fut);
            }
        }
    }

    // Ratios.
    let hello_rps = results
        .hello
        .as_ref()
        .map(|h| h.load.rps)
        .filter(|r| *r > 0.0);
    let pg_tps = results.pgbench.as_ref().map(|p| p.tps).filter(|t| *t > 0.0);
    for i in &mut results.ingest {
        i.ratio_to_hello = hello_rps.map(|h| i.load.rps / h);
        i.ratio_to_pgbench = pg_tps.map(|t| i.load.rps / t);
    }

    let dirty =
        command_output("git", &["status", "--porcelain"], &root).is_some_and(|s| !s.is_empty());
    results.meta = Some(report::Meta {
        started_at,
        git_commit: command_output("git", &["rev-parse", "--short=12", "HEAD"], &root)
            .unwrap_or_else(|| "unknown".into()),
        git_dirty: dirty,
        cpus: std::thread::available_parallelism().map_or(0, usize::from),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        loadavg_before,
        loadavg_after: loadavg(),
        quick: a.quick,
        connections: s.connections,
        duration_s: s.duration.as_secs_f64(),
        warmup_s: s.warmup.as_secs_f64(),
        e2e_runs: s.e2e_runs,
        rate_limited_runs: s.rate_limited_runs,
        web_binary: bins.web.display().to_string(),
        worker_binary: bins.worker.display().to_string(),
        total_s: wall.elapsed().as_secs_f64(),
        notes,
    });
    results.compute_targets();

    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let json_path = a.out.join("results.json");
    let md_path = a.out.join("results.md");
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)?;
    let md = results.markdown();
    std::fs::write(&md_path, &md)?;
    println!("\n{md}");
    println!("wrote {} and {}", json_path.display(), md_path.display());
    if !results.errors.is_empty() {
        bail!("{} scenario(s) failed", results.errors.len());
    }
    Ok(())
}
