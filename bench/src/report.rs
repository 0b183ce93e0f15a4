//! Result types (serialised to results.json) and the markdown tables (results.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::load::LoadResult;
use crate::procs::ProcReport;

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub started_at: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub cpus: usize,
    pub kernel: String,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub quick: bool,
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub e2e_runs: u64,
    pub rate_limited_runs: u64,
    pub web_binary: String,
    pub worker_binary: String,
    pub total_s: f64,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelloResult {
    pub load: LoadResult,
    pub procs: Vec<ProcReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub name: String,
    pub mode: String,
    pub load: LoadResult,
    /// Inbox rows in the database after the run (warm-up + measured).
    pub inbox_rows: i64,
    /// 2xx answers during warm-up + measured run; every one must be an inbox row.
    pub acknowledged: u64,
    pub procs: Vec<ProcReport>,
    /// CPU of all app processes during the measured window / 2xx answers, µs.
    pub cpu_us_per_request: f64,
    pub ratio_to_hello: Option<f64>,
    pub ratio_to_pgbench: Option<f64>,
    /// Cheaper paths of the same app under the same load, to see where ingest time goes.
    pub probes: Vec<Probe>,
}

/// A diagnostic load run against a cheaper path of the app under test.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub what: String,
    /// Answers of the expected status per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers with another status, connection errors and timeouts.
    pub unexpected: u64,
    /// CPU of all app processes per answer, µs.
    pub cpu_us_per_request: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    pub name: String,
    pub mode: String,
    pub workers: usize,
    /// Client-side RetailCRM budget per process (SVYAZKA_RETAILCRM_RPS).
    pub client_rps: u32,
    /// The fake RetailCRM's per-key limit (`None` = off).
    pub fake_limit_rps: Option<f64>,
    /// The triggers carried the order's fields (the trigger card's extended body).
    pub extended_body: bool,
    pub runs: u64,
    /// The trigger posts (ack latency of the webhook under this load).
    pub post: LoadResult,
    /// First post → last message received by the fake ChatAPI (or the timeout).
    pub elapsed_s: f64,
    pub runs_per_s: f64,
    pub complete: bool,
    pub messages: u64,
    pub distinct_orders: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Messages whose text did not name one of the benchmark's orders.
    pub unexpected: u64,
    pub runs_by_status: BTreeMap<String, i64>,
    pub inbox_by_status: BTreeMap<String, i64>,
    pub run_errors: Vec<String>,
    /// Requests the fake RetailCRM received during the measured window.
    pub crm_requests: u64,
    /// Of those, answered 503 by the fake's limiter.
    pub crm_rate_limited: u64,
    /// Most requests of the key within any one second.
    pub crm_max_per_second: u32,
    /// crm_requests / elapsed.
    pub crm_avg_rps: f64,
    /// Jobs the sweeper pushed again during the scenario (runs or inbox rows that sat in the
    /// queue longer than its grace period), from the process logs.
    pub sweeper_reenqueued: u64,
    /// WARN/ERROR lines in the process logs.
    pub log_warnings: u64,
    pub procs: Vec<ProcReport>,
    /// What one run cost each party (app, PostgreSQL, Redis, harness), and its commits, rows and
    /// Redis commands; measured from the first post until the scenario settled.
    pub cost: crate::profile::RunCost,
    pub cpu_ms_per_run: f64,
}

/// Flow 1 under a conversational load (see `scenarios::conversations`).
#[derive(Debug, Clone, Serialize)]
pub struct ConversationResult {
    pub name: String,
    pub mode: String,
    pub workers: usize,
    pub customers: u64,
    pub messages_per_customer: u64,
    /// Messages = runs.
    pub runs: u64,
    /// First post → last chat message received by the fake MG (or the timeout).
    pub elapsed_s: f64,
    pub runs_per_s: f64,
    pub complete: bool,
    pub post_p99_ms: f64,
    pub post_errors: u64,
    /// Customers in the fake RetailCRM, and phones that have more than one.
    pub contacts: u64,
    pub customers_with_two_contacts: u64,
    /// Orders, and customers that have more than one.
    pub deals: u64,
    pub contacts_with_two_deals: u64,
    /// Messages in the fake MG, those never delivered, those delivered more than once, and
    /// chats whose messages are not in the order written.
    pub chat_messages: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub chats_out_of_order: u64,
    pub runs_by_status: BTreeMap<String, i64>,
    pub inbox_by_status: BTreeMap<String, i64>,
    pub run_errors: Vec<String>,
    pub crm_requests: u64,
    pub sweeper_reenqueued: u64,
    pub log_warnings: u64,
    pub procs: Vec<ProcReport>,
    pub cpu_ms_per_run: f64,
}

impl ConversationResult {
    /// One contact and one deal per customer, every message once and in order.
    pub fn correct(&self) -> bool {
        self.complete
            && self.customers_with_two_contacts == 0
            && self.contacts == self.customers
            && self.contacts_with_two_deals == 0
            && self.deals == self.customers
            && self.missing == 0
            && self.duplicates == 0
            && self.chats_out_of_order == 0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PgbenchResult {
    pub clients: u32,
    pub threads: u32,
    pub duration_s: u32,
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    pub transactions: Option<u64>,
    pub script: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Results {
    pub meta: Option<Meta>,
    pub hello: Option<HelloResult>,
    pub ingest: Vec<IngestResult>,
    pub e2e: Vec<E2eResult>,
    pub rate_limited: Vec<E2eResult>,
    pub conversations: Vec<ConversationResult>,
    pub overload: Vec<crate::overload::OverloadResult>,
    pub pgbench: Option<PgbenchResult>,
    /// Why pgbench did not run, if it did not.
    pub pgbench_skipped: Option<String>,
    pub skipped: Vec<String>,
    pub errors: Vec<String>,
    pub targets: Vec<Target>,
}

/// A scenario name without its group prefix, for the targets table.
fn short(name: &str) -> &str {
    ["ingest, ", "e2e, ", "rate-limited, ", "conversations, "]
        .iter()
        .fold(name, |n, p| n.strip_prefix(p).unwrap_or(n))
}

fn f0(v: f64) -> String {
    format!("{v:.0}")
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

fn ratio(v: Option<f64>) -> String {
    v.map_or("–".into(), |r| format!("{:.1} %", r * 100.0))
}

fn counts(m: &BTreeMap<String, i64>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn peak(procs: &[ProcReport]) -> String {
    procs
        .iter()
        .map(|p| format!("{} {:.1}", p.name, p.peak_rss_mib))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Results {
    pub fn compute_targets(&mut self) {
        let mut t = Vec::new();
        for i in &self.ingest {
            let need = if i.mode == "queue" { 10_000.0 } else { 5_000.0 };
            t.push(Target {
                what: format!("durable ingest, {}", i.mode),
                target: format!("≥ {need:.0} req/s"),
                measured: format!("{:.0} req/s", i.load.rps),
                met: Some(i.load.rps >= need && i.load.errors == 0),
            });
            t.push(Target {
                what: format!("ack p99 at {} connections, {}", i.load.connections, i.mode),
                target: "< 20 ms".into(),
                measured: format!("{:.2} ms", i.load.p99_ms),
                met: Some(i.load.p99_ms < 20.0),
            });
        }
        for e in &self.e2e {
            t.push(Target {
                what: format!("end to end, {}", short(&e.name)),
                target: "≥ 2000 runs/s, zero loss".into(),
                measured: format!(
                    "{:.0} runs/s, {} missing, {} duplicated",
                    e.runs_per_s, e.missing, e.duplicates
                ),
                met: Some(
                    e.runs_per_s >= 2000.0 && e.missing == 0 && e.duplicates == 0 && e.complete,
                ),
            });
            t.push(Target {
                what: format!("CPU per run, {}", short(&e.name)),
                target: "< 0.5 ms".into(),
                measured: format!("{:.3} ms", e.cpu_ms_per_run),
                met: Some(e.cpu_ms_per_run < 0.5),
            });
        }
        for e in &self.rate_limited {
            let limit = e.fake_limit_rps.unwrap_or(f64::MAX);
            t.push(Target {
                what: format!("rate-limited end to end, {}", short(&e.name)),
                target: format!("all runs succeed, 0 rate-limit errors, average ≤ {limit:.0} req/s"),
                measured: format!(
                    "{} of {} delivered, {} × 503, {:.1} req/s average (busiest sliding second: {})",
                    e.distinct_orders, e.runs, e.crm_rate_limited, e.crm_avg_rps, e.crm_max_per_second
                ),
                met: Some(
                    e.complete
                        && e.missing == 0
                        && e.duplicates == 0
                        && e.crm_rate_limited == 0
                        && e.runs_by_status.get("failed").copied().unwrap_or(0) == 0
                        && e.crm_avg_rps <= limit,
                ),
            });
            if e.extended_body {
                t.push(Target {
                    what: format!("extended trigger body, {}", short(&e.name)),
                    target: format!(
                        "no RetailCRM request, runs/s above the key's {limit:.0} req/s"
                    ),
                    measured: format!(
                        "{} RetailCRM requests, {:.0} runs/s",
                        e.crm_requests, e.runs_per_s
                    ),
                    met: Some(e.crm_requests == 0 && e.runs_per_s > limit),
                });
            }
        }
        for c in &self.conversations {
            t.push(Target {
                what: format!("conversations in order, {}", short(&c.name)),
                target: "one contact and one deal per customer, every message once, in order".into(),
                measured: format!(
                    "{} contacts / {} deals for {} customers, {} of {} messages, {} missing, {} duplicated, {} chats out of order",
                    c.contacts, c.deals, c.customers, c.chat_messages, c.runs, c.missing, c.duplicates, c.chats_out_of_order
                ),
                met: Some(c.correct()),
            });
        }
        let mut worst: Option<(String, f64)> = None;
        let all_procs = self
            .ingest
            .iter()
            .map(|i| (i.name.as_str(), &i.procs))
            .chain(self.e2e.iter().map(|e| (e.name.as_str(), &e.procs)))
            .chain(
                self.rate_limited
                    .iter()
                    .map(|e| (e.name.as_str(), &e.procs)),
            )
            .chain(
                self.conversations
                    .iter()
                    .map(|c| (c.name.as_str(), &c.procs)),
            );
        for (scenario, procs) in all_procs {
            for p in procs {
                if worst.as_ref().is_none_or(|(_, w)| p.peak_rss_mib > *w) {
                    worst = Some((format!("{} in {scenario}", p.name), p.peak_rss_mib));
                }
            }
        }
        if let Some((who, mib)) = worst {
            t.push(Target {
                what: "peak RSS per process (largest seen)".into(),
                target: "< 50 MB".into(),
                measured: format!("{:.1} MB ({who})", mib * 1.048_576),
                met: Some(mib * 1.048_576 < 50.0),
            });
        }
        self.targets = t;
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        if let Some(m) = &self.meta {
            let _ = writeln!(
                w,
                "Run {} · commit {}{} · {} CPUs · Linux {} · load average before {} / after {}",
                m.started_at,
                m.git_commit,
                if m.git_dirty { " (dirty)" } else { "" },
                m.cpus,
                m.kernel,
                m.loadavg_before,
                m.loadavg_after
            );
            let _ = writeln!(
                w,
                "{}{} connections, {} s per load run after {} s warm-up, {} end-to-end runs, {} rate-limited runs; total {:.0} s.\n",
                if m.quick { "QUICK smoke run: " } else { "" },
                m.connections,
                m.duration_s,
                m.warmup_s,
                m.e2e_runs,
                m.rate_limited_runs,
                m.total_s
            );
            for n in &m.notes {
                let _ = writeln!(w, "- {n}");
            }
            if !m.notes.is_empty() {
                let _ = writeln!(w);
            }
        }

        let _ = writeln!(
            w,
            "### Webhook ingest (RetailCRM trigger, unique id per request)\n"
        );
        let _ = writeln!(
            w,
            "| scenario | req/s | p50 ms | p99 ms | max ms | errors | stored rows / 2xx | vs hello-world | vs pgbench | web CPU µs/req | peak RSS MiB |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        if let Some(h) = &self.hello {
            let _ = writeln!(
                w,
                "| hello-world actix (same generator) | {} | {} | {} | {} | {} | – | 100 % | – | – | {} |",
                f0(h.load.rps),
                f2(h.load.p50_ms),
                f2(h.load.p99_ms),
                f1(h.load.max_ms),
                h.load.errors,
                peak(&h.procs)
            );
        }
        for i in &self.ingest {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |",
                i.name,
                f0(i.load.rps),
                f2(i.load.p50_ms),
                f2(i.load.p99_ms),
                f1(i.load.max_ms),
                i.load.errors,
                i.inbox_rows,
                i.acknowledged,
                ratio(i.ratio_to_hello),
                ratio(i.ratio_to_pgbench),
                f1(i.cpu_us_per_request),
                peak(&i.procs)
            );
        }
        if let Some(p) = &self.pgbench {
            let _ = writeln!(
                w,
                "| PostgreSQL single-row INSERT (pgbench -c {} -j {}) | {} tps | – | – | – | – | – | – | 100 % | – | – |",
                p.clients,
                p.threads,
                f0(p.tps)
            );
        } else if let Some(why) = &self.pgbench_skipped {
            let _ = writeln!(
                w,
                "| PostgreSQL single-row INSERT (pgbench) | not run: {why} | | | | | | | | | |"
            );
        }

        if self.ingest.iter().any(|i| !i.probes.is_empty()) {
            let _ = writeln!(
                w,
                "\nWhere ingest time goes (same app, same generator, {} s each):\n",
                self.meta
                    .as_ref()
                    .map_or(0.0, |m| (m.duration_s / 3.0).max(1.0).round())
            );
            let _ = writeln!(
                w,
                "| app | path | answers/s | p50 ms | p99 ms | app CPU µs/answer |"
            );
            let _ = writeln!(w, "|---|---|---:|---:|---:|---:|");
            for i in &self.ingest {
                for p in &i.probes {
                    let _ = writeln!(
                        w,
                        "| {} | {} | {} | {} | {} | {} |",
                        i.mode,
                        p.what,
                        f0(p.rps),
                        f2(p.p50_ms),
                        f2(p.p99_ms),
                        f1(p.cpu_us_per_request)
                    );
                }
                let _ = writeln!(
                    w,
                    "| {} | full ingest (lookup + insert + enqueue) → 200 | {} | {} | {} | {} |",
                    i.mode,
                    f0(i.load.rps),
                    f2(i.load.p50_ms),
                    f2(i.load.p99_ms),
                    f1(i.cpu_us_per_request)
                );
            }
        }

        let e2e_table = |w: &mut String, title: &str, rows: &[E2eResult], limited: bool| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(w, "\n### {title}\n");
            if limited {
                let _ = writeln!(
                    w,
                    "| scenario | runs | runs/s | delivered | missing | dup | runs by status | fake limit | client budget/process | CRM requests | 503s | busiest sliding 1 s | avg req/s | CPU ms/run |"
                );
                let _ = writeln!(
                    w,
                    "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
                );
                for e in rows {
                    let _ = writeln!(
                        w,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        e.name,
                        e.runs,
                        f1(e.runs_per_s),
                        e.distinct_orders,
                        e.missing,
                        e.duplicates,
                        counts(&e.runs_by_status),
                        e.fake_limit_rps
                            .map_or("off".into(), |r| format!("{r:.0} rps")),
                        e.client_rps,
                        e.crm_requests,
                        e.crm_rate_limited,
                        e.crm_max_per_second,
                        f1(e.crm_avg_rps),
                        f2(e.cpu_ms_per_run)
                    );
                }
            } else {
                let _ = writeln!(
                    w,
                    "| scenario | runs | runs/s | elapsed s | delivered | missing | dup | runs by status | post p99 ms | CRM requests | sweeper re-enqueued | log warnings | CPU ms/run | peak RSS MiB |"
                );
                let _ = writeln!(
                    w,
                    "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
                );
                for e in rows {
                    let _ = writeln!(
                        w,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        e.name,
                        e.runs,
                        f0(e.runs_per_s),
                        f2(e.elapsed_s),
                        e.distinct_orders,
                        e.missing,
                        e.duplicates,
                        counts(&e.runs_by_status),
                        f2(e.post.p99_ms),
                        e.crm_requests,
                        e.sweeper_reenqueued,
                        e.log_warnings,
                        f2(e.cpu_ms_per_run),
                        peak(&e.procs)
                    );
                }
            }
            for e in rows {
                if !e.complete || !e.run_errors.is_empty() {
                    let _ = writeln!(
                        w,
                        "\n{}: {}{}",
                        e.name,
                        if e.complete {
                            String::new()
                        } else {
                            let busy: i64 = ["queued", "running"]
                                .iter()
                                .map(|k| e.runs_by_status.get(*k).copied().unwrap_or(0))
                                .sum();
                            format!(
                                "INCOMPLETE: timed out after {:.0} s with {} of {} messages delivered; {busy} runs were still queued or running (late, not lost). ",
                                e.elapsed_s, e.distinct_orders, e.runs
                            )
                        },
                        if e.run_errors.is_empty() {
                            String::new()
                        } else {
                            format!("failed runs say: {}", e.run_errors.join(" | "))
                        }
                    );
                }
            }
        };
        e2e_table(
            w,
            "End to end: RetailCRM trigger → dispatch (GET order) → ChatAPI sendMessage, fakes answering instantly",
            &self.e2e,
            false,
        );
        if !self.e2e.is_empty() {
            let _ = writeln!(
                w,
                "\n### Where one end-to-end run's time goes\n\nCPU ms per run by party over the window (first post → settled); PostgreSQL and Redis counted by process name, so only meaningful on a quiet machine. Commits and rows from `pg_stat_database`, Redis commands from `INFO commandstats` (queue mode).\n"
            );
            let _ = writeln!(
                w,
                "| scenario | app | PostgreSQL | Redis | harness (load + fakes) | other | machine busy % | commits/run | rows written/run | Redis cmds/run | top Redis commands/run |"
            );
            let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            for e in &self.e2e {
                let c = &e.cost;
                let top: Vec<String> = c
                    .top_redis
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.1}"))
                    .collect();
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    e.name,
                    f2(c.app_ms),
                    f2(c.postgres_ms),
                    f2(c.redis_ms),
                    f2(c.harness_ms),
                    f2(c.other_ms),
                    f0(c.machine_busy_pct),
                    f1(c.commits),
                    f1(c.rows_written),
                    f1(c.redis_commands),
                    top.join(", ")
                );
            }
        }
        e2e_table(
            w,
            "Rate-limited end to end: fake RetailCRM enforcing 10 requests/s per key",
            &self.rate_limited,
            true,
        );

        if !self.conversations.is_empty() {
            let _ = writeln!(
                w,
                "\n### Conversations: WhatsApp message → New contact → New deal → New message (MG), each customer writing several messages back to back, fakes answering instantly\n"
            );
            let _ = writeln!(
                w,
                "| scenario | customers × messages | runs/s | elapsed s | contacts | deals | chat messages | missing | dup | chats out of order | runs by status | post p99 ms | CRM requests | sweeper re-enqueued | log warnings | CPU ms/run | peak RSS MiB |"
            );
            let _ = writeln!(
                w,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
            );
            for c in &self.conversations {
                let _ = writeln!(
                    w,
                    "| {} | {} × {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    c.name,
                    c.customers,
                    c.messages_per_customer,
                    f0(c.runs_per_s),
                    f2(c.elapsed_s),
                    c.contacts,
                    c.deals,
                    c.chat_messages,
                    c.missing,
                    c.duplicates,
                    c.chats_out_of_order,
                    counts(&c.runs_by_status),
                    f2(c.post_p99_ms),
                    c.crm_requests,
                    c.sweeper_reenqueued,
                    c.log_warnings,
                    f2(c.cpu_ms_per_run),
                    peak(&c.procs)
                );
            }
            for c in &self.conversations {
                if !c.complete || !c.run_errors.is_empty() || c.post_errors > 0 {
                    let _ = writeln!(
                        w,
                        "\n{}: {}{}{}",
                        c.name,
                        if c.complete {
                            String::new()
                        } else {
                            format!(
                                "INCOMPLETE: timed out after {:.0} s with {} of {} chat messages. ",
                                c.elapsed_s, c.chat_messages, c.runs
                            )
                        },
                        if c.post_errors > 0 {
                            format!("{} webhook posts failed. ", c.post_errors)
                        } else {
                            String::new()
                        },
                        if c.run_errors.is_empty() {
                            String::new()
                        } else {
                            format!("failed runs say: {}", c.run_errors.join(" | "))
                        }
                    );
                }
            }
        }

        if !self.overload.is_empty() {
            let _ = writeln!(
                w,
                "\n### Overload: triggers posted open-loop for a running bundle, embedded, fakes answering instantly\n"
            );
            let _ = writeln!(
                w,
                "| scenario | intake req/s | p99 ms | errors | runs during load | runs/s during load | drain s | runs/s draining | lost | duplicates | peak RSS MiB | CPU ms/run |"
            );
            let _ = writeln!(
                w,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
            );
            for o in &self.overload {
                let _ = writeln!(
                    w,
                    "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    o.name,
                    if o.complete { "" } else { " (drain timed out)" },
                    f0(o.post.rps),
                    f2(o.post.p99_ms),
                    o.post.errors,
                    o.runs_during_load,
                    f0(o.runs_per_s_during_load),
                    f1(o.drain_s),
                    f0(o.runs_per_s_draining),
                    o.lost,
                    o.duplicates,
                    peak(&o.procs),
                    f2(o.cpu_ms_per_run)
                );
            }
        }

        let _ = writeln!(w, "\n### Memory and CPU per process\n");
        let _ = writeln!(
            w,
            "| scenario | process | idle RSS MiB | peak RSS MiB | CPU s (measured window) | CPU per unit |"
        );
        let _ = writeln!(w, "|---|---|---:|---:|---:|---:|");
        if let Some(h) = &self.hello {
            for p in &h.procs {
                let per = if h.load.ok > 0 {
                    p.cpu_s * 1e6 / h.load.ok as f64
                } else {
                    0.0
                };
                let _ = writeln!(
                    w,
                    "| hello-world | {} | {} | {} | {} | {} µs/req |",
                    p.name,
                    f1(p.idle_rss_mib),
                    f1(p.peak_rss_mib),
                    f2(p.cpu_s),
                    f1(per)
                );
            }
        }
        for i in &self.ingest {
            for p in &i.procs {
                let per = if i.load.ok > 0 {
                    p.cpu_s * 1e6 / i.load.ok as f64
                } else {
                    0.0
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} µs/req |",
                    i.name,
                    p.name,
                    f1(p.idle_rss_mib),
                    f1(p.peak_rss_mib),
                    f2(p.cpu_s),
                    f1(per)
                );
            }
        }
        for e in self.e2e.iter().chain(self.rate_limited.iter()) {
            for p in &e.procs {
                let per = if e.runs > 0 {
                    p.cpu_s * 1e3 / e.runs as f64
                } else {
                    0.0
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} ms/run |",
                    e.name,
                    p.name,
                    f1(p.idle_rss_mib),
                    f1(p.peak_rss_mib),
                    f2(p.cpu_s),
                    f2(per)
                );
            }
        }

        for c in &self.conversations {
            for p in &c.procs {
                let per = if c.runs > 0 {
                    p.cpu_s * 1e3 / c.runs as f64
                } else {
                    0.0
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} ms/run |",
                    c.name,
                    p.name,
                    f1(p.idle_rss_mib),
                    f1(p.peak_rss_mib),
                    f2(p.cpu_s),
                    f2(per)
                );
            }
        }

        if let Some(p) = &self.pgbench {
            let _ = writeln!(w, "\n### PostgreSQL ceiling\n");
            let _ = writeln!(
                w,
                "pgbench `{}` -c {} -j {} -T {}: **{:.0} tps**{}{}.",
                p.script,
                p.clients,
                p.threads,
                p.duration_s,
                p.tps,
                p.latency_avg_ms
                    .map_or(String::new(), |l| format!(", latency average {l:.2} ms")),
                p.transactions
                    .map_or(String::new(), |n| format!(", {n} transactions"))
            );
            for i in self.ingest.iter().filter(|i| i.mode == "queue") {
                let _ = writeln!(
                    w,
                    "Ours ({}) is {} of it.",
                    i.name,
                    ratio(i.ratio_to_pgbench)
                );
            }
        }

        if !self.targets.is_empty() {
            let _ = writeln!(w, "\n### Against the targets\n");
            let _ = writeln!(w, "| what | target | measured | met |");
            let _ = writeln!(w, "|---|---|---|---|");
            for t in &self.targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                };
                let _ = writeln!(w, "| {} | {} | {} | {met} |", t.what, t.target, t.measured);
            }
            let _ = writeln!(
                w,
                "\nPeers on this machine kind, for context: n8n queue mode 80 req/s ingest and 66 msg/s end to end at ~1.1 GB RSS; Node-RED 941 req/s; hello-world 156,000 req/s."
            );
        }
        if !self.skipped.is_empty() || !self.errors.is_empty() {
            let _ = writeln!(w, "\n### Skipped / failed scenarios\n");
            for s in &self.skipped {
                let _ = writeln!(w, "- skipped: {s}");
            }
            for e in &self.errors {
                let _ = writeln!(w, "- FAILED: {e}");
            }
        }
        md
    }
}
