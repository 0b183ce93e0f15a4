//! One RetailCRM budget per API key for all processes (queue mode). Each worker process has
//! its own in-process limiter (`rate_limit`), which cannot see the others: with N workers the
//! key would get N × 10 requests per second. Here the slots are reserved in Redis instead, by
//! one atomic script (GCRA with a burst of one: the key's "next free slot" moves one interval
//! per request), with Redis' own clock, so every process spaces its requests against the same
//! schedule and adding workers needs no manual `10 / N`.
//!
//! The Redis key names the account by a hash of its address and key, never the key itself. If
//! Redis cannot be reached the caller falls back to its in-process limiter (logged): the
//! request waits as it did before this existed rather than failing.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Reserves the next slot; answers how long the caller waits for it, in microseconds.
/// KEYS[1]: the budget's key; ARGV[1]: the interval between requests in microseconds.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(next_free, now)
local after = slot + interval
redis.call('SET', KEYS[1], string.format('%d', after), 'PX', math.floor((after - now) / 1000) + 1000)
return slot - now
";

/// A handle on the shared budgets (cheap to clone).
#[derive(Clone)]
pub struct SharedBudget(Arc<Inner>);

struct Inner {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    /// Keys live under the queue's name, so two installations (or tests) on one Redis do not
    /// share budgets by accident.
    prefix: String,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("prefix", &self.0.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    /// Budgets in the Redis at `url` (connected on first use).
    pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(SharedBudget(Arc::new(Inner {
            client: redis::Client::open(url)?,
            conn: OnceCell::new(),
            script: redis::Script::new(RESERVE),
            prefix: prefix.to_string(),
        })))
    }

    /// The Redis key of `(scope, api_key)`: a hash, so the key never reaches Redis.
    pub fn key_for(&self, scope: &str, api_key: &str) -> String {
        let digest = Sha256::digest(format!("{scope}\n{api_key}").as_bytes());
        format!("{}:rate:{}", self.0.prefix, hex::encode(&digest[..16]))
    }

    /// Reserves the next request slot of the budget `key` at one request per `interval`;
    /// answers how long to wait for it.
    pub async fn reserve(
        &self,
        key: &str,
        interval: Duration,
    ) -> Result<Duration, redis::RedisError> {
        let mut conn = self
            .0
            .conn
            .get_or_try_init(|| ConnectionManager::new(self.0.client.clone()))
            .await?
            .clone();
        let micros = u64::try_from(interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let wait: i64 = self
            .0
            .script
            .key(key)
            .arg(micros)
            .invoke_async(&mut conn)
            .await?;
        Ok(Duration::from_micros(u64::try_from(wait).unwrap_or(0)))
    }
}
