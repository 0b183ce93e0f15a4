//! Providers as the hot paths see them: every webhook looks its provider up, every run its
//! target. They change rarely, so each process keeps them for a short while instead of
//! reading the row each time. An edit in this process is seen at once (the web handlers call
//! [`ProviderCache::forget`]); an edit made by another process after at most the TTL. Only
//! existing providers are kept, so probing random ids cannot grow the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Provider;

/// How long another process' edit (a rotated webhook secret, a deleted provider) may go
/// unseen here.
pub const TTL: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct ProviderCache {
    entries: Mutex<HashMap<i64, (Instant, Arc<Provider>)>>,
}

impl ProviderCache {
    pub fn get(&self, id: i64) -> Option<Arc<Provider>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&id)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, p)| p.clone())
    }

    pub fn put(&self, p: Provider) -> Arc<Provider> {
        let p = Arc::new(p);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(p.id, (Instant::now(), p.clone()));
        p
    }

    pub fn forget(&self, id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&id);
    }
}
