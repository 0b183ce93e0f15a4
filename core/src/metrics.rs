//! Prometheus metrics. What happens in this process (webhooks answered, steps executed,
//! upstream errors, rate-limit waits) is counted as it happens; what the database knows for
//! every process alike (runs by bundle and status, the waiting work, live workers) is read at
//! scrape time, so any process's `/metrics` tells the same story about the shared state.

use std::time::Duration;

use diesel::prelude::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::db::schema::{bundles, runs};
use crate::db::{AnyConnection, DbError, now};
use crate::reason::{Reason, ServiceFailure};
use crate::workers;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `retailcrm`, `chatapi`, `telegram`, … (the path segment after /hooks/).
    pub kind: String,
    /// The HTTP status answered.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub action: String,
    pub provider_kind: String,
    /// `succeeded`, `transient_error` (tried again while attempts remain) or `permanent_error`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub provider: String,
    pub service: String,
    /// What the upstream answered: `server_502`, `timeout`, `refused_400`, `rate_limited`, …
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    /// The RetailCRM account (its address) whose request budget was waited for.
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub bundle_id: String,
    pub bundle: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BacklogLabels {
    /// `inbox` (events not yet dispatched) or `runs` (runs waiting for an attempt).
    pub queue: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn step_histogram() -> Histogram {
    // 5 ms … ~41 s: instant fakes to an upstream at its timeout.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// This process' metrics (Prometheus scrapes processes, so one registry per process).
pub fn get() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// The process' metrics; see [`get`].
pub struct Metrics {
    registry: Registry,
    webhooks: Family<WebhookLabels, Counter>,
    steps: HistogramFamily<StepLabels>,
    upstream_errors: Family<UpstreamLabels, Counter>,
    rate_limit_waits: Family<AccountLabels, Counter>,
    rate_limit_wait_seconds: Family<AccountLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    runs: Family<RunLabels, Gauge>,
    waiting: Family<BacklogLabels, Gauge>,
    oldest_waiting_seconds: Gauge,
    waiting_oldest: Family<BacklogLabels, Gauge>,
    workers_alive: Gauge,
    /// One scrape at a time: the database gauges are cleared and refilled.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("svyazka"),
            webhooks: Family::default(),
            steps: Family::new_with_constructor(step_histogram),
            upstream_errors: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_wait_seconds: Family::default(),
            runs: Family::default(),
            waiting: Family::default(),
            oldest_waiting_seconds: Gauge::default(),
            waiting_oldest: Family::default(),
            workers_alive: Gauge::default(),
            scrape: tokio::sync::Mutex::new(()),
        };
        let r = &mut m.registry;
        r.register(
            "webhooks",
            "Webhook requests answered by this process, by kind and HTTP status",
            m.webhooks.clone(),
        );
        r.register(
            "step_duration_seconds",
            "Step attempts executed by this process, by action and outcome",
            m.steps.clone(),
        );
        r.register(
            "upstream_errors",
            "Failed step attempts by provider and what the upstream answered",
            m.upstream_errors.clone(),
        );
        r.register(
            "retailcrm_rate_limit_waits",
            "Requests that waited for the RetailCRM account's request budget",
            m.rate_limit_waits.clone(),
        );
        r.register(
            "retailcrm_rate_limit_wait_seconds",
            "Time spent waiting for the RetailCRM account's request budget",
            m.rate_limit_wait_seconds.clone(),
        );
        r.register(
            "runs",
            "Runs in the database by bundle and status",
            m.runs.clone(),
        );
        r.register(
            "waiting",
            "Work due and not taken: events not yet dispatched, runs waiting for a worker",
            m.waiting.clone(),
        );
        r.register(
            "oldest_waiting_seconds",
            "Age of the oldest waiting event or run",
            m.oldest_waiting_seconds.clone(),
        );
        r.register(
            "waiting_oldest_seconds",
            "Age of the oldest waiting item, by queue: `inbox` (events not yet dispatched) or `runs`",
            m.waiting_oldest.clone(),
        );
        r.register(
            "workers_alive",
            "Worker processes with a recent heartbeat",
            m.workers_alive.clone(),
        );
        m
    }
}

/// The database's side of a scrape.
struct Snapshot {
    runs: Vec<(i64, String, String, i64)>,
    backlog: workers::Backlog,
    workers_alive: i64,
}

fn snapshot(c: &mut AnyConnection) -> Result<Snapshot, DbError> {
    let counts: Vec<(i64, String, i64)> = runs::table
        .group_by((runs::bundle_id, runs::status))
        .select((runs::bundle_id, runs::status, diesel::dsl::count_star()))
        .load(c)?;
    let names: std::collections::HashMap<i64, String> = bundles::table
        .select((bundles::id, bundles::name))
        .load::<(i64, String)>(c)?
        .into_iter()
        .collect();
    let runs = counts
        .into_iter()
        .map(|(id, status, n)| {
            let name = names.get(&id).cloned().unwrap_or_default();
            (id, name, status, n)
        })
        .collect();
    Ok(Snapshot {
        runs,
        backlog: workers::backlog(c)?,
        workers_alive: i64::try_from(workers::alive(c)?.len()).unwrap_or(i64::MAX),
    })
}

impl Metrics {
    pub fn webhook(&self, kind: &str, status: u16) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                kind: kind.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    /// One step attempt; `error` when it failed, with whether the failure is transient.
    pub fn step(
        &self,
        action: &str,
        provider_kind: &str,
        provider_id: i64,
        took: Duration,
        error: Option<(&Reason, bool)>,
    ) {
        let outcome = match error {
            None => "succeeded",
            Some((_, true)) => "transient_error",
            Some((_, false)) => "permanent_error",
        };
        self.steps
            .get_or_create(&StepLabels {
                action: action.to_string(),
                provider_kind: provider_kind.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(took.as_secs_f64());
        if let Some((Reason::Upstream(f), _)) = error {
            self.upstream_errors
                .get_or_create(&UpstreamLabels {
                    provider: provider_id.to_string(),
                    service: label_of(&f.service),
                    code: upstream_code(f),
                })
                .inc();
        }
    }

    pub fn rate_limit_wait(&self, account: &str, waited: Duration) {
        let labels = AccountLabels {
            account: account.to_string(),
        };
        self.rate_limit_waits.get_or_create(&labels).inc();
        self.rate_limit_wait_seconds
            .get_or_create(&labels)
            .inc_by(waited.as_secs_f64());
    }

    /// The text exposition (OpenMetrics), with the database gauges read now.
    pub async fn render(&self, core: &crate::Core) -> Result<String, DbError> {
        let _one = self.scrape.lock().await;
        let snap = core.db(snapshot).await?;
        self.runs.clear();
        for (bundle_id, bundle, status, n) in snap.runs {
            self.runs
                .get_or_create(&RunLabels {
                    bundle_id: bundle_id.to_string(),
                    bundle,
                    status,
                })
                .set(n);
        }
        self.waiting
            .get_or_create(&BacklogLabels {
                queue: "inbox".into(),
            })
            .set(snap.backlog.inbox);
        self.waiting
            .get_or_create(&BacklogLabels {
                queue: "runs".into(),
            })
            .set(snap.backlog.runs);
        let t = now();
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        self.oldest_waiting_seconds.set(secs(snap.backlog.age(t)));
        for (queue, since) in [
            ("inbox", snap.backlog.inbox_oldest),
            ("runs", snap.backlog.runs_oldest),
        ] {
            self.waiting_oldest
                .get_or_create(&BacklogLabels {
                    queue: queue.into(),
                })
                .set(secs(workers::waited(since, t)));
        }
        self.workers_alive.set(snap.workers_alive);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        Ok(out)
    }
}

fn label_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// `kind` of the upstream's answer, with its HTTP status when it has one: `server_502`.
fn upstream_code(f: &ServiceFailure) -> String {
    let v = serde_json::to_value(&f.failure).unwrap_or_default();
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("unknown");
    match v.get("status").and_then(serde_json::Value::as_u64) {
        Some(status) => format!("{kind}_{status}"),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::{Service, Upstream};

    #[test]
    fn upstream_codes_name_the_answer_and_its_status() {
        let f = |failure| ServiceFailure {
            service: Service::Chatapi,
            failure,
        };
        assert_eq!(
            upstream_code(&f(Upstream::Server {
                status: 502,
                message: "Bad Gateway".into()
            })),
            "server_502"
        );
        assert_eq!(upstream_code(&f(Upstream::Timeout)), "timeout");
        assert_eq!(label_of(&Service::RetailcrmChats), "retailcrm_chats");
    }

    #[test]
    fn steps_and_webhooks_are_counted_in_the_exposition() {
        let m = Metrics::default();
        m.webhook("retailcrm", 200);
        m.webhook("retailcrm", 200);
        m.step(
            "send_message",
            "chatapi",
            7,
            Duration::from_millis(30),
            Some((
                &Reason::Upstream(ServiceFailure {
                    service: Service::Chatapi,
                    failure: Upstream::Server {
                        status: 502,
                        message: "Bad Gateway".into(),
                    },
                }),
                true,
            )),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap_or_default();
        assert!(
            out.contains(r#"svyazka_webhooks_total{kind="retailcrm",status="200"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"svyazka_upstream_errors_total{provider="7",service="chatapi",code="server_502"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"svyazka_step_duration_seconds_count{action="send_message",provider_kind="chatapi",outcome="transient_error"} 1"#),
            "{out}"
        );
    }
}
