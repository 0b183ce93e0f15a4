//! What every upstream client (RetailCRM, MG, ChatAPI, Telegram) shares: one way to build an
//! HTTP client and one way to say whether a failure is worth retrying.

use std::time::Duration;

/// How the engine should treat a failed upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Timeouts, 5xx, rate-limit answers: try again later (after `after` when the upstream said so).
    Transient { after: Option<Duration> },
    /// Validation errors, wrong keys, unknown chats: retrying cannot help.
    Permanent,
}

/// Implemented by each client's error type so the engine can decide retries without knowing the
/// client, and show the admin the upstream's own words.
pub trait UpstreamFailure: std::error::Error {
    fn retry(&self) -> Retry;
    /// The message to show the admin; keeps the upstream's own text.
    fn user_message(&self) -> String {
        self.to_string()
    }
}

/// Shared reqwest settings: rustls, bounded timeouts, a recognisable user agent.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("svyazka/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(64)
        .build()
        // Building only fails when the TLS backend cannot initialise, which is a broken binary.
        .unwrap_or_else(|e| panic!("cannot initialise the HTTP client: {e}"))
}
