//! A webhook receiver for tests: records every POST and answers with scripted statuses, so a
//! fake's webhook delivery (headers, bodies, retries) can be checked without the real app.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, http::StatusCode, web};
use serde_json::Value;
use tokio::sync::watch;

use crate::server::{Running, spawn};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, e.g. "/hook/secret".
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct SinkState {
    received: Vec<Received>,
    /// Replies to use before falling back to 200: (status, Retry-After seconds).
    script: VecDeque<(u16, Option<u64>)>,
}

#[derive(Clone)]
pub struct WebhookSink {
    state: Arc<Mutex<SinkState>>,
    count: Arc<watch::Sender<usize>>,
}

impl Default for WebhookSink {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookSink {
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            count: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Listen on a free loopback port; every path is accepted.
    pub fn start() -> std::io::Result<(Self, Running)> {
        let sink = Self::new();
        let data = web::Data::new(sink.clone());
        let running = spawn(
            "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
            move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(receive))
            },
        )?;
        Ok((sink, running))
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        // A test that panicked while holding the lock already failed; keep serving the rest.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answer the next request with `status` (and a `Retry-After` header when given).
    pub fn respond_next(&self, status: u16, retry_after: Option<u64>) {
        self.lock().script.push_back((status, retry_after));
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    pub fn clear(&self) {
        self.lock().received.clear();
    }

    /// Wait until at least `n` requests arrived (or `timeout` passed) and return them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut rx = self.count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|count| *count >= n)).await;
        self.received()
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, sink: web::Data<WebhookSink>) -> HttpResponse {
    let received = Received {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let (reply, count) = {
        let mut state = sink.lock();
        state.received.push(received);
        (state.script.pop_front(), state.received.len())
    };
    sink.count.send_replace(count);
    match reply {
        None => HttpResponse::Ok().json(serde_json::json!({"ok": true})),
        Some((status, retry_after)) => {
            let mut response = HttpResponse::build(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let Some(secs) = retry_after {
                response.insert_header(("Retry-After", secs.to_string()));
            }
            response.body(format!("scripted {status}"))
        }
    }
}
