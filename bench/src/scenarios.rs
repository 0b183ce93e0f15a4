//! The scenarios: hello-world baseline, webhook ingest, end to end, rate-limited end to end,
//! and the pgbench ceiling.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use svyazka_testkit::chatapi::FakeChatApi;
use svyazka_testkit::retailcrm::{ApiKey, FakeRetailCrm};

use crate::app::{self, App, Bins, Layout, Services};
use crate::load::{self, LoadResult, LoadSpec};
use crate::procs::{Proc, ProcReport, Sample, mib};
use crate::profile;
use crate::report::{
    ConversationResult, E2eResult, HelloResult, IngestResult, PgbenchResult, Probe,
};

/// What every scenario shares.
pub struct Settings {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub e2e_runs: u64,
    pub rate_limited_runs: u64,
    /// Upper bound of an end-to-end scenario from first post to last message.
    pub e2e_timeout: Duration,
    pub max_requests: u64,
    pub pgbench_secs: u32,
    /// Where the app's process logs are copied after each scenario.
    pub log_dir: PathBuf,
    /// Extra environment for every app process (`--app-env KEY=VALUE`).
    pub app_env: Vec<(String, String)>,
}

impl Settings {
    /// `--app-env` values, then the scenario's own (which win).
    pub(crate) fn env<'a>(&'a self, own: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        self.app_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(own.iter().copied())
            .collect()
    }
}

/// The fake upstreams of one scenario, in the bench process.
pub struct Fakes {
    pub crm: FakeRetailCrm,
    pub wa: FakeChatApi,
    pub crm_base: String,
    pub wa_base: String,
    _running: Vec<svyazka_testkit::server::Running>,
}

impl Fakes {
    pub fn start() -> anyhow::Result<Fakes> {
        let (crm, r1) = FakeRetailCrm::start()?;
        crm.add_site(app::CRM_SITE, "Bench shop");
        crm.add_key(ApiKey::selective(app::CRM_KEY, &[app::CRM_SITE]));
        crm.set_rate_limit(None);
        let (wa, r2) = FakeChatApi::start()?;
        wa.add_instance(app::WA_INSTANCE, app::WA_TOKEN);
        Ok(Fakes {
            crm_base: r1.base_url(),
            wa_base: format!("{}/instance{}", r2.base_url(), app::WA_INSTANCE),
            crm,
            wa,
            _running: vec![r1, r2],
        })
    }
}

pub(crate) fn reports(
    names: &[String],
    idle: &[Sample],
    before: &[Sample],
    after: &[Sample],
) -> Vec<ProcReport> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let get = |v: &[Sample]| v.get(i).copied().unwrap_or_default();
            ProcReport {
                name: name.clone(),
                idle_rss_mib: mib(get(idle).rss_kib),
                peak_rss_mib: mib(get(after).hwm_kib),
                cpu_s: (get(after).cpu_s - get(before).cpu_s).max(0.0),
            }
        })
        .collect()
}

/// `e2e, queue, 2 workers` → `e2e-queue-2-workers`.
pub(crate) fn slug(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

pub(crate) fn cpu_total(before: &[Sample], after: &[Sample]) -> f64 {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| (a.cpu_s - b.cpu_s).max(0.0))
        .sum()
}

fn trigger_body(id: u64) -> String {
    format!("type=order&status=new&id={id}&event=new")
}

fn spec(s: &Settings, addr: SocketAddr, duration: Duration, make: &load::MakeRequest) -> LoadSpec {
    LoadSpec {
        addr,
        connections: s.connections,
        duration,
        max_requests: s.max_requests,
        request_timeout: Duration::from_secs(10),
        make: make.clone(),
    }
}

/// Unmeasured warm-up; returns the warm-up result and the next unused request number.
async fn warmup(
    s: &Settings,
    addr: SocketAddr,
    make: &load::MakeRequest,
) -> anyhow::Result<(LoadResult, u64)> {
    load::run(spec(s, addr, s.warmup, make), 0).await
}

async fn measure(
    s: &Settings,
    addr: SocketAddr,
    make: &load::MakeRequest,
    first_id: u64,
) -> anyhow::Result<LoadResult> {
    Ok(load::run(spec(s, addr, s.duration, make), first_id)
        .await?
        .0)
}

// ---- hello-world ------------------------------------------------------------------------

/// `svyazka-bench hello-server PORT`: actix-web with its default worker count answering
/// `GET /` with a constant, the same framework and defaults as the app.
pub fn hello_server(port: u16) -> std::io::Result<()> {
    use actix_web::{App, HttpServer, web};
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/", web::get().to(|| async { "Hello, world!" })))
            .bind(("127.0.0.1", port))?
            .run()
            .await
    })
}

pub async fn hello(s: &Settings, dir: &Path) -> anyhow::Result<HelloResult> {
    let exe = std::env::current_exe()?;
    let port = app::free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let port_s = port.to_string();
    let mut proc = Proc::spawn("hello", &exe, &["hello-server", &port_s], &[], dir)?;
    let until = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        proc.check_alive()?;
        if Instant::now() > until {
            bail!("hello-world server did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle = vec![proc.sample()?];
    let make: load::MakeRequest = Arc::new(move |_| load::get(addr, "/"));
    let (_, next) = warmup(s, addr, &make).await?;
    let before = vec![proc.sample()?];
    let measured = measure(s, addr, &make, next).await?;
    let after = vec![proc.sample()?];
    proc.stop(Duration::from_secs(5));
    Ok(HelloResult {
        load: measured,
        procs: reports(&["hello".into()], &idle, &before, &after),
    })
}

// ---- ingest -----------------------------------------------------------------------------

fn layout_name(layout: Layout) -> (&'static str, usize) {
    match layout {
        Layout::Embedded => ("embedded", 0),
        Layout::Queue { workers } => ("queue", workers),
    }
}

pub(crate) fn proc_names(app: &App) -> Vec<String> {
    app.procs().iter().map(|p| p.name.clone()).collect()
}

/// Webhook ingest only: a RetailCRM provider and no bundle. In embedded mode the in-process
/// worker runs as shipped (its dispatches are throttled by the default 10 rps RetailCRM budget,
/// so they cost next to nothing); in queue mode no worker process runs, jobs pile up in Redis.
pub async fn ingest(
    s: &Settings,
    bins: &Bins,
    services: Option<&Services>,
    layout: Layout,
) -> anyhow::Result<IngestResult> {
    let fakes = Fakes::start()?;
    let mut app = App::start(bins, layout, services, &s.env(&[])).await?;
    app.setup_admin().await?;
    let crm = app
        .add_provider(
            "retailcrm",
            &[
                ("name", "Bench RetailCRM"),
                ("domain", &fakes.crm_base),
                ("api_key", app::CRM_KEY),
            ],
        )
        .await?;
    let path = app.hook_path(crm).await?;
    let wrong = format!("{}x", path.trim_end_matches('/'));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = app.samples()?;
    let addr = app.addr;
    let make: load::MakeRequest =
        Arc::new(move |n| load::form_post(addr, &path, trigger_body(n + 1)));
    let (warm, next) = warmup(s, addr, &make).await?;
    let before = app.samples()?;
    let measured = measure(s, addr, &make, next).await?;
    let after = app.samples()?;
    app.check_alive()?;
    let (_, inbox) = app.status_counts().await?;
    // Cheaper paths of the same app: no database at all, and the provider lookup alone.
    let probe_paths: [(&str, String, u16); 2] = [
        (
            "GET /healthz (routing + middleware, no database) → 200",
            "/healthz".to_string(),
            200,
        ),
        (
            "webhook with a wrong secret (provider lookup only) → 404",
            wrong,
            404,
        ),
    ];
    let mut probes = Vec::new();
    for (what, probe_path, status) in probe_paths {
        let make: load::MakeRequest = if status == 200 {
            Arc::new(move |_| load::get(addr, &probe_path))
        } else {
            Arc::new(move |n| load::form_post(addr, &probe_path, trigger_body(n + 1)))
        };
        let probe_spec = LoadSpec {
            duration: (s.duration / 3).max(Duration::from_secs(1)),
            ..spec(s, addr, s.duration, &make)
        };
        let b = app.samples()?;
        let (r, _) = load::run(probe_spec, 0).await?;
        let a = app.samples()?;
        let good = r.statuses.get(&status.to_string()).copied().unwrap_or(0);
        let total: u64 = r.statuses.values().sum();
        probes.push(Probe {
            what: what.to_string(),
            rps: if r.elapsed_s > 0.0 {
                good as f64 / r.elapsed_s
            } else {
                0.0
            },
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
            unexpected: total - good,
            cpu_us_per_request: if good > 0 {
                cpu_total(&b, &a) * 1e6 / good as f64
            } else {
                0.0
            },
        });
    }
    let inbox_rows: i64 = inbox.values().sum();
    let names = proc_names(&app);
    let cpu = cpu_total(&before, &after);
    let ok_total = warm.ok + measured.ok;
    let cpu_us_per_request = if measured.ok > 0 {
        cpu * 1e6 / measured.ok as f64
    } else {
        0.0
    };
    let (mode, workers) = layout_name(layout);
    let name = if workers > 0 {
        format!("ingest, {mode}, {workers} workers")
    } else {
        format!("ingest, {mode}")
    };
    app.save_logs(&s.log_dir, &slug(&name));
    app.stop();
    Ok(IngestResult {
        name,
        mode: mode.into(),
        load: measured,
        inbox_rows,
        acknowledged: ok_total,
        procs: reports(&names, &idle, &before, &after),
        cpu_us_per_request,
        ratio_to_hello: None,
        ratio_to_pgbench: None,
        probes,
    })
}

// ---- end to end -------------------------------------------------------------------------

pub struct E2eParams {
    pub name: String,
    pub layout: Layout,
    pub runs: u64,
    /// SVYAZKA_RETAILCRM_RPS of each process.
    pub client_rps: u32,
    /// The fake's per-key limit during the measured window.
    pub fake_limit: Option<f64>,
    /// Post the trigger card's extended body (the order's fields in the trigger) instead of
    /// the guide's short one, so runs need no order fetch.
    pub extended_body: bool,
}

/// The customer's first name in order `i`; the message text names it.
/// Flow 2 of the guide, set up through the app's forms: the RetailCRM and WhatsApp providers
/// on the fakes, the running bundle, and `orders` orders seeded in the fake RetailCRM, each with
/// its own customer name and phone. Answers the RetailCRM webhook path and the order ids.
pub(crate) async fn flow2(
    app: &mut App,
    fakes: &Fakes,
    orders: u64,
) -> anyhow::Result<(String, Arc<Vec<i64>>)> {
    let crm = app
        .add_provider(
            "retailcrm",
            &[
                ("name", "Bench RetailCRM"),
                ("domain", &fakes.crm_base),
                ("api_key", app::CRM_KEY),
            ],
        )
        .await?;
    let wa = app
        .add_provider(
            "chatapi",
            &[
                ("name", "Bench WhatsApp"),
                ("api_url", &fakes.wa_base),
                ("token", app::WA_TOKEN),
            ],
        )
        .await?;
    app.create_flow2_bundle(crm, wa).await?;
    let path = app.hook_path(crm).await?;
    let mut order_ids = Vec::with_capacity(usize::try_from(orders).unwrap_or(0));
    for i in 0..orders {
        let id = fakes
            .crm
            .insert_order(
                app::CRM_SITE,
                json!({"status": "new", "firstName": first_name(i), "phone": order_phone(i)}),
            )
            .map_err(|e| anyhow!("seeding order {i}: {e}"))?;
        order_ids.push(id);
    }
    Ok((path, Arc::new(order_ids)))
}

pub(crate) fn first_name(i: u64) -> String {
    format!("Клиент{i}")
}

fn order_phone(i: u64) -> String {
    format!("+7900{i:07}")
}

/// Order `i` as RetailCRM's trigger renders the card's extended body: the guide's four
/// parameters, then the order's fields, each through `|url_encode` (Cyrillic as UTF-8
/// percent-escapes, the phone's `+` as `%2B`); fields the order lacks render empty.
fn extended_trigger_body(id: i64, i: u64) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("type", "order")
        .append_pair("status", "new")
        .append_pair("id", &id.to_string())
        .append_pair("event", "new")
        .append_pair("number", &format!("{id}A"))
        .append_pair("first_name", &first_name(i))
        .append_pair("last_name", "")
        .append_pair("phone", &order_phone(i))
        .append_pair("email", "")
        .append_pair("total", "0")
        .append_pair("site", app::CRM_SITE)
        .finish()
}

pub async fn e2e(
    s: &Settings,
    bins: &Bins,
    services: Option<&Services>,
    p: E2eParams,
) -> anyhow::Result<E2eResult> {
    let fakes = Fakes::start()?;
    let rps = p.client_rps.to_string();
    let mut app = App::start(
        bins,
        p.layout,
        services,
        &s.env(&[("SVYAZKA_RETAILCRM_RPS", &rps)]),
    )
    .await?;
    app.setup_admin().await?;
    // One order per run, each with its own customer name and phone.
    let (path, order_ids) = flow2(&mut app, &fakes, p.runs).await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = app.samples()?;
    fakes.crm.reset_stats();
    fakes.crm.set_rate_limit(p.fake_limit);
    fakes.wa.clear_sent();

    let addr = app.addr;
    let bodies: Arc<Vec<String>> = Arc::new(
        order_ids
            .iter()
            .zip(0u64..)
            .map(|(id, i)| {
                if p.extended_body {
                    extended_trigger_body(*id, i)
                } else {
                    format!("type=order&status=new&id={id}&event=new")
                }
            })
            .collect(),
    );
    let make: load::MakeRequest = Arc::new(move |n| {
        let body = bodies
            .get(usize::try_from(n).unwrap_or(usize::MAX))
            .cloned()
            .unwrap_or_default();
        load::form_post(addr, &path, body)
    });
    let spec = LoadSpec {
        addr,
        connections: s.connections,
        duration: s.e2e_timeout,
        max_requests: p.runs,
        request_timeout: Duration::from_secs(10),
        make,
    };
    let host_before = app.host_sample().await?;
    let before = app.samples()?;
    let started = Instant::now();
    let deadline = started + s.e2e_timeout;
    let poster = tokio::spawn(load::run(spec, 0));
    let target = usize::try_from(p.runs).unwrap_or(usize::MAX);
    let mut last_check = Instant::now();
    while fakes.wa.sent_count() < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if last_check.elapsed() > Duration::from_secs(1) {
            app.check_alive()?;
            last_check = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = app.samples()?;
    let crm_stats = fakes.crm.stats();
    let max_per_second = fakes.crm.max_requests_per_second(app::CRM_KEY);
    let (post, _) = poster.await??;

    // Let the last runs be marked, and give duplicates a chance to show up.
    let settle_until = Instant::now() + Duration::from_secs(5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (runs_by_status, inbox_by_status) = loop {
        let (r, i) = app.status_counts().await?;
        let busy = ["queued", "running"]
            .iter()
            .any(|k| r.get(*k).copied().unwrap_or(0) > 0)
            || ["pending", "processing"]
                .iter()
                .any(|k| i.get(*k).copied().unwrap_or(0) > 0);
        if !busy || Instant::now() > settle_until {
            break (r, i);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run_errors = app.run_errors().await?;
    // PostgreSQL publishes a backend's counters once it is idle, within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let host_after = app.host_sample().await?;
    let app_settled = app.samples()?;

    // Exactly one message per order.
    let index: HashMap<String, u64> = (0..p.runs).map(|i| (first_name(i), i)).collect();
    let mut per_order: HashMap<u64, u64> = HashMap::new();
    let mut unexpected = 0u64;
    let sent = fakes.wa.sent_messages();
    for m in &sent {
        let name = m
            .body
            .strip_prefix("Здравствуйте, ")
            .and_then(|r| r.strip_suffix('!'));
        match name.and_then(|n| index.get(n)) {
            Some(i) => *per_order.entry(*i).or_insert(0) += 1,
            None => unexpected += 1,
        }
    }
    let distinct = per_order.len() as u64;
    let duplicates: u64 = per_order.values().map(|c| c.saturating_sub(1)).sum();
    let delivered_in_window = usize::try_from(p.runs).unwrap_or(usize::MAX);
    let complete = elapsed < s.e2e_timeout.as_secs_f64() && sent.len() >= delivered_in_window;
    let names = proc_names(&app);
    let cpu = cpu_total(&before, &after);
    let (sweeper_reenqueued, log_warnings) = app.log_summary();
    app.save_logs(&s.log_dir, &slug(&p.name));
    app.stop();
    let (mode, workers) = layout_name(p.layout);
    Ok(E2eResult {
        name: p.name,
        mode: mode.into(),
        workers,
        client_rps: p.client_rps,
        fake_limit_rps: p.fake_limit,
        extended_body: p.extended_body,
        runs: p.runs,
        post,
        elapsed_s: elapsed,
        runs_per_s: if elapsed > 0.0 {
            distinct.min(p.runs) as f64 / elapsed
        } else {
            0.0
        },
        complete,
        messages: sent.len() as u64,
        distinct_orders: distinct,
        missing: p.runs.saturating_sub(distinct),
        duplicates,
        unexpected,
        runs_by_status,
        inbox_by_status,
        run_errors,
        crm_requests: crm_stats.total_requests,
        crm_rate_limited: crm_stats.rate_limited,
        crm_max_per_second: max_per_second,
        crm_avg_rps: if elapsed > 0.0 {
            crm_stats.total_requests as f64 / elapsed
        } else {
            0.0
        },
        sweeper_reenqueued,
        log_warnings,
        procs: reports(&names, &idle, &before, &after),
        cost: profile::cost(
            &host_before,
            &host_after,
            cpu_total(&before, &app_settled),
            p.runs,
        ),
        cpu_ms_per_run: if p.runs > 0 {
            cpu * 1e3 / p.runs as f64
        } else {
            0.0
        },
    })
}

// ---- conversations ----------------------------------------------------------------------

pub struct ConversationParams {
    pub name: String,
    pub layout: Layout,
    pub customers: u64,
    /// Messages each customer writes, one right after the other.
    pub messages: u64,
}

fn conversation_phone(customer: u64) -> String {
    format!("7901{customer:07}")
}

fn conversation_text(customer: u64, message: u64) -> String {
    format!("Клиент {customer}: сообщение {message}")
}

/// Flow 1 of the guide under a conversational load: `customers` new customers each write
/// `messages` WhatsApp messages back to back (the next once the webhook of the previous was
/// answered, as the gateway delivers one chat), all customers at once, at most
/// `s.connections` posts in flight. Each message is a run: find or create the contact, find
/// the open deal or create one, post the message to the customer's MG chat. Measured: runs/s
/// from the first post to the last chat message, and what the shop ends up with: one contact
/// and one deal per customer, each chat's messages once and in the order written.
pub async fn conversations(
    s: &Settings,
    bins: &Bins,
    services: Option<&Services>,
    p: ConversationParams,
) -> anyhow::Result<ConversationResult> {
    let fakes = Arc::new(Fakes::start()?);
    let mut app = App::start(
        bins,
        p.layout,
        services,
        &s.env(&[("SVYAZKA_RETAILCRM_RPS", "10000")]),
    )
    .await?;
    app.setup_admin().await?;
    let crm = app
        .add_provider(
            "retailcrm",
            &[
                ("name", "Bench RetailCRM"),
                ("domain", &fakes.crm_base),
                ("api_key", app::CRM_KEY),
            ],
        )
        .await?;
    let wa = app
        .add_provider(
            "chatapi",
            &[
                ("name", "Bench WhatsApp"),
                ("api_url", &fakes.wa_base),
                ("token", app::WA_TOKEN),
            ],
        )
        .await?;
    app.create_flow1_bundle(wa, crm).await?;
    let url = Arc::new(format!("{}{}", app.base, app.hook_path(wa).await?));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = app.samples()?;
    fakes.crm.reset_stats();
    let total = p.customers * p.messages;
    let before = app.samples()?;
    let started = Instant::now();
    let deadline = started + s.e2e_timeout;
    let slots = Arc::new(tokio::sync::Semaphore::new(s.connections.max(1)));
    let mut writers = tokio::task::JoinSet::new();
    for c in 0..p.customers {
        let (fakes, url, slots) = (fakes.clone(), url.clone(), slots.clone());
        let messages = p.messages;
        writers.spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(messages).unwrap_or(0));
            let mut errors = 0u64;
            for m in 0..messages {
                let Ok(_slot) = slots.acquire().await else {
                    break;
                };
                let t = Instant::now();
                let posted = fakes
                    .wa
                    .post_incoming(
                        &url,
                        &conversation_phone(c),
                        &format!("Клиент {c}"),
                        &conversation_text(c, m),
                    )
                    .await;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                if !posted.is_ok_and(|st| st.is_success()) {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let target = usize::try_from(total).unwrap_or(usize::MAX);
    let mut last_check = Instant::now();
    while fakes.crm.mg_messages().len() < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if last_check.elapsed() > Duration::from_secs(1) {
            app.check_alive()?;
            last_check = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = app.samples()?;
    let crm_stats = fakes.crm.stats();
    let mut latencies = Vec::new();
    let mut post_errors = 0;
    while let Some(done) = writers.join_next().await {
        let (l, e) = done?;
        latencies.extend(l);
        post_errors += e;
    }
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);

    // Let the last runs be marked, and give duplicates a chance to show up.
    let settle_until = Instant::now() + Duration::from_secs(5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (runs_by_status, inbox_by_status) = loop {
        let (r, i) = app.status_counts().await?;
        let busy = ["queued", "running"]
            .iter()
            .any(|k| r.get(*k).copied().unwrap_or(0) > 0);
        if !busy || Instant::now() > settle_until {
            break (r, i);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run_errors = app.run_errors().await?;

    // What the shop has: contacts per phone, deals per contact, each chat's messages.
    let mut contacts: HashMap<String, u64> = HashMap::new();
    for c in fakes.crm.customers() {
        let number = c["phones"][0]["number"].as_str().unwrap_or_default();
        *contacts
            .entry(number.trim_start_matches('+').to_string())
            .or_default() += 1;
    }
    let mut deals: HashMap<i64, u64> = HashMap::new();
    for o in fakes.crm.orders() {
        *deals
            .entry(o["customer"]["id"].as_i64().unwrap_or_default())
            .or_default() += 1;
    }
    let mut chats: HashMap<String, Vec<String>> = HashMap::new();
    let chat_messages = fakes.crm.mg_messages();
    for m in &chat_messages {
        chats
            .entry(m.external_chat_id.clone())
            .or_default()
            .push(m.text.clone());
    }
    let texts: HashMap<String, (u64, u64)> = (0..p.customers)
        .flat_map(|c| (0..p.messages).map(move |m| (conversation_text(c, m), (c, m))))
        .collect();
    let mut seen: HashMap<(u64, u64), u64> = HashMap::new();
    let mut out_of_order = 0u64;
    for msgs in chats.values() {
        let order: Vec<(u64, u64)> = msgs.iter().filter_map(|t| texts.get(t).copied()).collect();
        for key in &order {
            *seen.entry(*key).or_default() += 1;
        }
        let in_order = order
            .windows(2)
            .all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1);
        if !in_order {
            out_of_order += 1;
        }
    }
    let delivered = seen.len() as u64;
    let complete = elapsed < s.e2e_timeout.as_secs_f64() && chat_messages.len() >= target;
    let names = proc_names(&app);
    let cpu = cpu_total(&before, &after);
    let (sweeper_reenqueued, log_warnings) = app.log_summary();
    app.save_logs(&s.log_dir, &slug(&p.name));
    app.stop();
    let (mode, workers) = layout_name(p.layout);
    Ok(ConversationResult {
        name: p.name,
        mode: mode.into(),
        workers,
        customers: p.customers,
        messages_per_customer: p.messages,
        runs: total,
        elapsed_s: elapsed,
        runs_per_s: if elapsed > 0.0 {
            delivered.min(total) as f64 / elapsed
        } else {
            0.0
        },
        complete,
        post_p99_ms: p99,
        post_errors,
        contacts: contacts.values().sum(),
        customers_with_two_contacts: contacts.values().filter(|n| **n > 1).count() as u64,
        deals: deals.values().sum(),
        contacts_with_two_deals: deals.values().filter(|n| **n > 1).count() as u64,
        chat_messages: chat_messages.len() as u64,
        missing: total.saturating_sub(delivered),
        duplicates: seen.values().map(|n| n.saturating_sub(1)).sum(),
        chats_out_of_order: out_of_order,
        runs_by_status,
        inbox_by_status,
        run_errors,
        crm_requests: crm_stats.total_requests,
        sweeper_reenqueued,
        log_warnings,
        procs: reports(&names, &idle, &before, &after),
        cpu_ms_per_run: if total > 0 {
            cpu * 1e3 / total as f64
        } else {
            0.0
        },
    })
}

// ---- pgbench ----------------------------------------------------------------------------

pub fn find_pgbench() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("pgbench");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join("pgbench")))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// `INSERT INTO t(v) VALUES (random())` at `clients` clients for `secs` seconds against a
/// throwaway database; `t` has a bigserial primary key like our inbox.
pub fn pgbench(
    pgbench: &Path,
    admin_url: &str,
    secs: u32,
    clients: u32,
    dir: &Path,
) -> anyhow::Result<PgbenchResult> {
    use diesel::prelude::*;
    let db = app::PgDb::create(admin_url, "svz_bench_pgb")?;
    {
        let mut c = diesel::PgConnection::establish(&db.url)?;
        diesel::sql_query("CREATE TABLE t (id bigserial PRIMARY KEY, v double precision)")
            .execute(&mut c)?;
    }
    let script_text = "INSERT INTO t(v) VALUES (random());";
    let script = dir.join("pgbench-insert.sql");
    std::fs::write(&script, format!("{script_text}\n"))?;
    let threads = 2u32;
    let out = std::process::Command::new(pgbench)
        .args(["-n", "-f"])
        .arg(&script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &threads.to_string(),
            "-T",
            &secs.to_string(),
        ])
        .arg(&db.url)
        .output()
        .with_context(|| format!("running {}", pgbench.display()))?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("pgbench failed ({}): {}", out.status, text.trim());
    }
    let number_after = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tps = number_after("tps = ").ok_or_else(|| anyhow!("no tps in pgbench output: {text}"))?;
    Ok(PgbenchResult {
        clients,
        threads,
        duration_s: secs,
        tps,
        latency_avg_ms: number_after("latency average = "),
        transactions: number_after("number of transactions actually processed: ").map(|v| v as u64),
        script: script_text.into(),
    })
}
