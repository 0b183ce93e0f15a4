//! What every handler gets: the core (database, crypto, config), the job sink, the webhook
//! writer, and the in-memory login limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Jobs;

use crate::login_limit::LoginLimiter;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub jobs: Jobs,
    /// Group commit for webhook deliveries; see `svyazka_core::inbox::writer`.
    pub inbox: InboxWriter,
    pub login_limiter: Arc<LoginLimiter>,
    /// Once an admin exists it never stops existing, so the check is cached after the first yes.
    admin_exists: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(core: Core, jobs: Jobs, inbox: InboxWriter) -> Self {
        AppState {
            core,
            jobs,
            inbox,
            login_limiter: Arc::new(LoginLimiter::default()),
            admin_exists: Arc::new(AtomicBool::new(false)),
        }
    }

    pub async fn admin_exists(&self) -> Result<bool, svyazka_core::db::DbError> {
        if self.admin_exists.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let exists = self.core.db(svyazka_core::auth::admin_exists).await?;
        if exists {
            self.admin_exists.store(true, Ordering::Relaxed);
        }
        Ok(exists)
    }

    pub fn mark_admin_exists(&self) {
        self.admin_exists.store(true, Ordering::Relaxed);
    }
}
