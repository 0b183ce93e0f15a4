//! Where a scenario's time goes on this machine: CPU of every party (the app's processes, the
//! PostgreSQL backends, Redis, this harness with its load generator and fakes) and the database
//! and queue work each run costs (commits, rows written, Redis commands). Read before and after
//! the measured window; the difference divided by the runs is the cost of one run.
//!
//! PostgreSQL backends and Redis are found by process name, so other clients of the same
//! servers during a run (a test suite, another benchmark) are counted too: profile on a quiet
//! machine.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;

/// CPU seconds used so far by the processes named `comm` (all of them, summed).
fn cpu_of_named(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm)
        })
        .filter_map(|pid| crate::procs::sample(pid).ok())
        .map(|s| s.cpu_s)
        .sum()
}

/// Busy and total CPU time of the whole machine, seconds, from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // idle and iowait
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    let hz = crate::procs::clock_ticks();
    ((total - idle) / hz, total / hz)
}

/// One reading of the machine, the database and the queue.
#[derive(Debug, Clone, Default)]
pub struct HostSample {
    postgres_s: f64,
    redis_s: f64,
    harness_s: f64,
    busy_s: f64,
    total_s: f64,
    db: DbCounters,
    redis_calls: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, Default, QueryableByName)]
pub struct DbCounters {
    #[diesel(sql_type = BigInt)]
    commits: i64,
    #[diesel(sql_type = BigInt)]
    inserted: i64,
    #[diesel(sql_type = BigInt)]
    updated: i64,
    #[diesel(sql_type = BigInt)]
    deleted: i64,
}

/// This database's counters. PostgreSQL publishes a backend's counts when it goes idle (at
/// most a second late), so read them after the scenario has settled.
pub fn db_counters(c: &mut PgConnection) -> QueryResult<DbCounters> {
    diesel::sql_query(
        "SELECT xact_commit AS commits, tup_inserted AS inserted, tup_updated AS updated, \
         tup_deleted AS deleted FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result(c)
}

/// Calls per Redis command so far (`INFO commandstats`).
async fn redis_calls(url: &str) -> BTreeMap<String, u64> {
    let read = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("commandstats")
            .query_async::<String>(&mut conn)
            .await
    };
    match read.await {
        Ok(info) => info
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_string(), calls))
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

pub async fn sample(db: DbCounters, redis_url: Option<&str>) -> HostSample {
    let (busy_s, total_s) = machine_cpu();
    let harness_s = crate::procs::sample(std::process::id())
        .map(|s| s.cpu_s)
        .unwrap_or(0.0);
    HostSample {
        postgres_s: cpu_of_named("postgres"),
        redis_s: cpu_of_named("redis-server"),
        harness_s,
        busy_s,
        total_s,
        db,
        redis_calls: match redis_url {
            Some(url) => redis_calls(url).await,
            None => BTreeMap::new(),
        },
    }
}

/// What one run cost, by party, over a measured window.
#[derive(Debug, Clone, Serialize)]
pub struct RunCost {
    /// CPU ms per run of the app's processes (web and workers), from the scenario's samples.
    pub app_ms: f64,
    pub postgres_ms: f64,
    pub redis_ms: f64,
    /// The load generator and the fakes (this process).
    pub harness_ms: f64,
    /// The machine's CPU not accounted above (kernel threads, other processes).
    pub other_ms: f64,
    /// Share of the machine's CPU time that was busy during the window, percent.
    pub machine_busy_pct: f64,
    pub commits: f64,
    pub rows_written: f64,
    pub redis_commands: f64,
    /// The busiest Redis commands, calls per run.
    pub top_redis: Vec<(String, f64)>,
}

pub fn cost(before: &HostSample, after: &HostSample, app_cpu_s: f64, runs: u64) -> RunCost {
    let n = runs.max(1) as f64;
    let per = |s: f64| s * 1e3 / n;
    let busy = after.busy_s - before.busy_s;
    let total = after.total_s - before.total_s;
    let postgres = after.postgres_s - before.postgres_s;
    let redis = after.redis_s - before.redis_s;
    let harness = after.harness_s - before.harness_s;
    let d = |f: fn(&DbCounters) -> i64| (f(&after.db) - f(&before.db)) as f64 / n;
    let mut top: Vec<(String, f64)> = after
        .redis_calls
        .iter()
        .map(|(k, v)| {
            let was = before.redis_calls.get(k).copied().unwrap_or(0);
            (k.clone(), v.saturating_sub(was) as f64 / n)
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    let redis_commands = top.iter().map(|(_, v)| v).sum();
    top.truncate(5);
    RunCost {
        app_ms: per(app_cpu_s),
        postgres_ms: per(postgres),
        redis_ms: per(redis),
        harness_ms: per(harness),
        other_ms: per((busy - app_cpu_s - postgres - redis - harness).max(0.0)),
        machine_busy_pct: if total > 0.0 {
            busy * 100.0 / total
        } else {
            0.0
        },
        commits: d(|c| c.commits),
        rows_written: d(|c| c.inserted + c.updated + c.deleted),
        redis_commands,
        top_redis: top,
    }
}
