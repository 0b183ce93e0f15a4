//! Client-side throttling shared by every client in the process that uses the same account and
//! API key, because RetailCRM counts requests per key, not per client object.
//!
//! Requests are spaced evenly (one every `1/rps`) instead of allowing bursts: RetailCRM answers
//! an excess request with 503, and even spacing never builds up a burst that a server-side
//! bucket could reject, whatever its capacity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::shared_budget::SharedBudget;

/// RetailCRM's documented budget (official GO client): 10 requests per second per API key.
pub const DEFAULT_RPS: f64 = 10.0;

/// Spacing is stretched by 5% so that network jitter between our send time and the server's
/// arrival time cannot squeeze `rps + 1` requests into one of the server's one-second windows.
const HEADROOM: f64 = 1.05;
const MIN_RPS: f64 = 0.01;
const MAX_RPS: f64 = 10_000.0;

/// `f64` bits of the rate given to limiters created from now on.
static DEFAULT_RATE_BITS: AtomicU64 = AtomicU64::new(DEFAULT_RPS.to_bits());

/// Sets the rate (requests per second) of every key limiter created after this call, e.g.
/// `10.0 / N` when N worker processes share the keys (see the module docs of `retailcrm`).
pub fn set_default_rate_limit(rps: f64) {
    DEFAULT_RATE_BITS.store(sanitize(rps).to_bits(), Ordering::Relaxed);
}

fn default_rate() -> f64 {
    f64::from_bits(DEFAULT_RATE_BITS.load(Ordering::Relaxed))
}

fn sanitize(rps: f64) -> f64 {
    if rps.is_finite() && rps > 0.0 {
        rps.clamp(MIN_RPS, MAX_RPS)
    } else {
        DEFAULT_RPS
    }
}

/// Even-spacing limiter (GCRA with a burst of one).
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<State>,
    /// Whose budget this is, for the metrics (the scope: an account's address, never the key).
    scope: String,
    /// The budget's Redis key when one is shared across processes (see `shared_budget`).
    shared: Mutex<Option<(SharedBudget, String)>>,
    /// The API key, only to name the shared budget (hashed there).
    key: String,
}

#[derive(Debug)]
struct State {
    interval: Duration,
    /// Earliest start of the next request.
    next: Instant,
}

impl Limiter {
    #[cfg(test)]
    fn new(rps: f64) -> Self {
        Self::for_scope(rps, "", "")
    }

    fn for_scope(rps: f64, scope: &str, key: &str) -> Self {
        Self {
            state: Mutex::new(State {
                interval: interval_for(rps),
                next: Instant::now(),
            }),
            scope: scope.to_string(),
            shared: Mutex::new(None),
            key: key.to_string(),
        }
    }

    /// From now on, slots come from `budget`, shared with every process using it.
    pub(crate) fn share(&self, budget: &SharedBudget) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.is_none() {
            *shared = Some((budget.clone(), budget.key_for(&self.scope, &self.key)));
        }
    }

    pub(crate) fn set_rate(&self, rps: f64) {
        self.lock().interval = interval_for(rps);
    }

    /// Waits for this caller's slot. A slot is reserved before sleeping, so concurrent callers
    /// queue in order; a cancelled wait just leaves its slot unused (errs on the slow side).
    pub(crate) async fn acquire(&self) {
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((budget, key)) = shared {
            let interval = self.lock().interval;
            match budget.reserve(&key, interval).await {
                Ok(wait) => {
                    if !wait.is_zero() {
                        crate::metrics::get().rate_limit_wait(&self.scope, wait);
                    }
                    tokio::time::sleep(wait).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; limiting in this process only");
                }
            }
        }
        let slot = {
            let mut state = self.lock();
            let now = Instant::now();
            let slot = state.next.max(now);
            state.next = slot + state.interval;
            slot
        };
        let wait = slot.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            crate::metrics::get().rate_limit_wait(&self.scope, wait);
        }
        tokio::time::sleep_until(slot).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain values, always consistent, so a panic elsewhere cannot have
        // left it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn interval_for(rps: f64) -> Duration {
    // Whole nanoseconds, so 10 rps is exactly 105 ms and not 104.999… ms.
    Duration::from_nanos((HEADROOM * 1e9 / sanitize(rps)).round() as u64)
}

type Registry = Mutex<HashMap<String, Arc<Limiter>>>;

/// The limiter of `(scope, key)`, created at the process default rate on first use. `scope` is
/// the base URL so the same key string on two accounts gets two budgets. Entries live as long
/// as the process: one per distinct key.
pub(crate) fn shared(scope: &str, key: &str) -> Arc<Limiter> {
    shared_with_rate(scope, key, default_rate())
}

/// Like [`shared`] for upstreams with their own budget (MG: 100 rps per transport token).
pub(crate) fn shared_with_rate(scope: &str, key: &str, rps: f64) -> Arc<Limiter> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(Registry::default);
    let mut map = registry.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(format!("{scope}\n{key}"))
        .or_insert_with(|| Arc::new(Limiter::for_scope(rps, scope, key)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time (tokio's paused clock needs the test-util feature): lower bounds are exact,
    // upper bounds only guard against "did not wait at all / waited far too long".

    #[tokio::test]
    async fn spaces_requests_evenly() {
        let limiter = Limiter::new(100.0);
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        // Ten intervals of 10.5 ms after the immediate first slot.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(105), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    }

    #[tokio::test]
    async fn same_key_shares_one_budget() {
        let a = shared("https://rate-test.retailcrm.ru", "k");
        let b = shared("https://rate-test.retailcrm.ru", "k");
        let other = shared("https://other.retailcrm.ru", "k");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
        a.set_rate(20.0);
        let start = Instant::now();
        a.acquire().await;
        b.acquire().await;
        b.acquire().await;
        other.acquire().await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(105), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    }

    #[test]
    fn nonsense_rates_fall_back() {
        assert_eq!(sanitize(f64::NAN), DEFAULT_RPS);
        assert_eq!(sanitize(-1.0), DEFAULT_RPS);
        assert_eq!(sanitize(0.0), DEFAULT_RPS);
        assert_eq!(sanitize(1e9), MAX_RPS);
        assert_eq!(interval_for(10.0), Duration::from_millis(105));
    }
}
