//! The open-loop overload scenario: for a fixed time, `--connections` senders post RetailCRM
//! triggers for a running bundle as fast as the app answers them, without waiting for any run
//! (a bulk status change in the shop, or a sender retrying in a loop). Intake then outruns
//! execution by far, and what counts is how the app copes: does execution keep its share
//! while intake is busy, does the backlog stay on disk (peak RSS), how long does it take to
//! drain afterwards, and is every acknowledged trigger run exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::{App, Bins, Layout};
use crate::load::{self, LoadResult, LoadSpec};
use crate::procs::ProcReport;
use crate::scenarios::{Fakes, Settings, cpu_total, first_name, flow2, proc_names, reports, slug};

pub struct OverloadParams {
    /// How long triggers are posted.
    pub load: Duration,
    /// Orders seeded in the fake (the most triggers that can be posted: one per order).
    pub orders: u64,
    /// How long the backlog may take to drain before the scenario gives up.
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverloadResult {
    pub name: String,
    /// The trigger posts: intake's rate and answer latency under overload.
    pub post: LoadResult,
    /// Runs that delivered their message while triggers were being posted.
    pub runs_during_load: u64,
    pub runs_per_s_during_load: f64,
    /// End of the load → the last acknowledged trigger's message (or the timeout).
    pub drain_s: f64,
    pub runs_per_s_draining: f64,
    /// Every acknowledged trigger delivered within the drain timeout.
    pub complete: bool,
    /// Acknowledged (2xx) triggers without a message.
    pub lost: u64,
    /// Messages beyond the first for one order.
    pub duplicates: u64,
    pub procs: Vec<ProcReport>,
    /// CPU of the app from the first post until the backlog drained, per run.
    pub cpu_ms_per_run: f64,
}

pub async fn overload(
    s: &Settings,
    bins: &Bins,
    p: OverloadParams,
) -> anyhow::Result<OverloadResult> {
    let fakes = Fakes::start()?;
    let mut app = App::start(
        bins,
        Layout::Embedded,
        None,
        &s.env(&[("SVYAZKA_RETAILCRM_RPS", "10000")]),
    )
    .await?;
    app.setup_admin().await?;
    let (path, order_ids) = flow2(&mut app, &fakes, p.orders).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = app.samples()?;
    fakes.wa.clear_sent();

    let addr = app.addr;
    let ids = order_ids.clone();
    let make: load::MakeRequest = Arc::new(move |n| {
        let id = ids
            .get(usize::try_from(n).unwrap_or(usize::MAX))
            .copied()
            .unwrap_or(0);
        load::form_post(
            addr,
            &path,
            format!("type=order&status=new&id={id}&event=new"),
        )
    });
    let spec = LoadSpec {
        addr,
        connections: s.connections,
        duration: p.load,
        max_requests: p.orders,
        request_timeout: Duration::from_secs(10),
        make,
    };
    let before = app.samples()?;
    let started = Instant::now();
    let (post, posted) = load::run(spec, 0).await?;
    let load_s = started.elapsed().as_secs_f64();
    let runs_during_load = fakes.wa.sent_count() as u64;
    app.check_alive()?;

    // Drain: until every acknowledged trigger has its message, or the timeout.
    let drain_started = Instant::now();
    let target = usize::try_from(post.ok).unwrap_or(usize::MAX);
    let mut last_check = Instant::now();
    while fakes.wa.sent_count() < target && drain_started.elapsed() < p.drain_timeout {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_check.elapsed() > Duration::from_secs(1) {
            app.check_alive()?;
            last_check = Instant::now();
        }
    }
    let drain_s = drain_started.elapsed().as_secs_f64();
    let after = app.samples()?;
    // Duplicates would show up a little later.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let index: HashMap<String, u64> = (0..posted.min(p.orders))
        .map(|i| (first_name(i), i))
        .collect();
    let mut per_order: HashMap<u64, u64> = HashMap::new();
    for m in fakes.wa.sent_messages() {
        let name = m
            .body
            .strip_prefix("Здравствуйте, ")
            .and_then(|r| r.strip_suffix('!'));
        if let Some(i) = name.and_then(|n| index.get(n)) {
            *per_order.entry(*i).or_insert(0) += 1;
        }
    }
    let distinct = per_order.len() as u64;
    let duplicates: u64 = per_order.values().map(|c| c.saturating_sub(1)).sum();
    let names = proc_names(&app);
    let cpu = cpu_total(&before, &after);
    let name = format!("overload, embedded, {} s", p.load.as_secs());
    app.save_logs(&s.log_dir, &slug(&name));
    app.stop();
    let drained = distinct.saturating_sub(runs_during_load);
    Ok(OverloadResult {
        name,
        runs_during_load,
        runs_per_s_during_load: if load_s > 0.0 {
            runs_during_load as f64 / load_s
        } else {
            0.0
        },
        drain_s,
        runs_per_s_draining: if drain_s > 0.0 {
            drained as f64 / drain_s
        } else {
            0.0
        },
        // Posts that timed out or failed may still have been stored: they are not counted as
        // acknowledged, and a message for them is no loss.
        complete: distinct >= post.ok,
        lost: post.ok.saturating_sub(distinct),
        duplicates,
        procs: reports(&names, &idle, &before, &after),
        cpu_ms_per_run: if distinct > 0 {
            cpu * 1e3 / distinct as f64
        } else {
            0.0
        },
        post,
    })
}
