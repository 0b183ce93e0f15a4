//! The load generator: a fixed number of HTTP/1.1 keep-alive connections, each driven by its own
//! task sending one request after another (closed loop, like `wrk`). Bounded by a deadline and
//! by a request count, whichever comes first; every request also has its own timeout.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

/// Builds request number `n` (0-based, unique across the whole load run).
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

pub struct LoadSpec {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Stop starting new requests after this long.
    pub duration: Duration,
    /// Stop after this many requests in total.
    pub max_requests: u64,
    pub request_timeout: Duration,
    pub make: MakeRequest,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub connections: usize,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Non-2xx answers plus connection errors and timeouts.
    pub errors: u64,
    pub elapsed_s: f64,
    /// 2xx answers per second.
    pub rps: f64,
    /// Answers of any status per second (for probes that expect e.g. 404).
    pub responses_rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Answer status → count ("io" for connection errors, "timeout" for timeouts).
    pub statuses: BTreeMap<String, u64>,
}

struct ConnStats {
    hist: Histogram<u64>,
    ok: u64,
    statuses: BTreeMap<String, u64>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, 1 µs .. 120 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 120_000_000, 3)?)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the connection closes; errors surface on the request side.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn one_connection(
    spec: Arc<LoadSpec>,
    next: Arc<AtomicU64>,
    deadline: Instant,
) -> anyhow::Result<ConnStats> {
    let mut stats = ConnStats {
        hist: histogram()?,
        ok: 0,
        statuses: BTreeMap::new(),
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let bump =
        |statuses: &mut BTreeMap<String, u64>, key: String| *statuses.entry(key).or_insert(0) += 1;
    while Instant::now() < deadline {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= spec.max_requests {
            break;
        }
        let req = (spec.make)(n);
        let started = Instant::now();
        let attempt = async {
            let mut s = match sender.take() {
                Some(mut s) if !s.is_closed() => match s.ready().await {
                    Ok(()) => s,
                    Err(_) => connect(spec.addr).await?,
                },
                _ => connect(spec.addr).await?,
            };
            let resp = s.send_request(req).await?;
            let status = resp.status();
            let keep = resp
                .headers()
                .get(hyper::header::CONNECTION)
                .is_none_or(|v| v.as_bytes() != b"close");
            resp.into_body().collect().await?;
            if keep {
                sender = Some(s);
            }
            anyhow::Ok(status)
        };
        match tokio::time::timeout(spec.request_timeout, attempt).await {
            Ok(Ok(status)) => {
                let us = u64::try_from(started.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                stats.hist.saturating_record(us);
                if status.is_success() {
                    stats.ok += 1;
                }
                bump(&mut stats.statuses, status.as_u16().to_string());
            }
            Ok(Err(_)) => {
                bump(&mut stats.statuses, "io".into());
                sender = None;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(_) => {
                bump(&mut stats.statuses, "timeout".into());
                sender = None;
            }
        }
    }
    Ok(stats)
}

/// Runs the load; `first_id` offsets the request numbers (so a warm-up and the measured run
/// never reuse an id). Returns the result and the next free request number.
pub async fn run(spec: LoadSpec, first_id: u64) -> anyhow::Result<(LoadResult, u64)> {
    let spec = Arc::new(LoadSpec {
        max_requests: spec.max_requests.saturating_add(first_id),
        ..spec
    });
    let next = Arc::new(AtomicU64::new(first_id));
    let started = Instant::now();
    let deadline = started + spec.duration;
    let tasks: Vec<_> = (0..spec.connections)
        .map(|_| tokio::spawn(one_connection(spec.clone(), next.clone(), deadline)))
        .collect();
    let mut hist = histogram()?;
    let mut ok = 0;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let s = t.await??;
        hist.add(&s.hist)?;
        ok += s.ok;
        for (k, v) in s.statuses {
            *statuses.entry(k).or_insert(0) += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: u64 = statuses.values().sum();
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let result = LoadResult {
        connections: spec.connections,
        ok,
        errors: total - ok,
        elapsed_s: elapsed,
        rps: if elapsed > 0.0 {
            ok as f64 / elapsed
        } else {
            0.0
        },
        responses_rps: if elapsed > 0.0 {
            hist.len() as f64 / elapsed
        } else {
            0.0
        },
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1000.0,
        mean_ms: hist.mean() / 1000.0,
        statuses,
    };
    let used = next.load(Ordering::Relaxed).min(spec.max_requests);
    Ok((result, used))
}

/// `POST path` with a form body.
pub fn form_post(addr: SocketAddr, path: &str, body: String) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("request for {path} cannot be built: {e}"))
}

pub fn get(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("request for {path} cannot be built: {e}"))
}
