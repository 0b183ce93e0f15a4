//! When each provider's webhook last delivered, and its last refused delivery: the admin's
//! proof that the upstream reaches us (and, when it does not, why).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::Core;
use crate::db::schema::hook_deliveries as hd;
use crate::db::{AnyConnection, DbError, now};

/// Successful deliveries are noted at most this often per provider: a busy webhook should not
/// cost a second write per message.
const OK_EVERY: Duration = Duration::from_secs(10);
/// Stored error details are cut to this many characters.
const MAX_ERROR: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = hd)]
pub struct HookLog {
    pub provider_id: i64,
    pub last_ok_at: Option<NaiveDateTime>,
    /// What was wrong with the refused delivery, as the parser said it (quoted on the page).
    pub last_error: Option<String>,
    pub last_error_at: Option<NaiveDateTime>,
}

pub fn get(conn: &mut AnyConnection, provider_id: i64) -> Result<Option<HookLog>, DbError> {
    Ok(hd::table
        .find(provider_id)
        .select(HookLog::as_select())
        .first(conn)
        .optional()?)
}

/// Every provider's last refused delivery, newest first (the Events page lists them: a body
/// that could not be read is refused, so it is not stored as an event).
pub fn refusals(conn: &mut AnyConnection) -> Result<Vec<HookLog>, DbError> {
    Ok(hd::table
        .filter(hd::last_error_at.is_not_null())
        .order(hd::last_error_at.desc())
        .select(HookLog::as_select())
        .load(conn)?)
}

fn ensure_row(conn: &mut AnyConnection, provider_id: i64) -> Result<(), DbError> {
    let exists = hd::table
        .find(provider_id)
        .select(hd::provider_id)
        .first::<i64>(conn)
        .optional()?
        .is_some();
    if !exists {
        // Two deliveries racing to create the row: the loser's insert fails harmlessly.
        let _ = diesel::insert_into(hd::table)
            .values(hd::provider_id.eq(provider_id))
            .execute(conn);
    }
    Ok(())
}

pub fn record_ok(conn: &mut AnyConnection, provider_id: i64) -> Result<(), DbError> {
    ensure_row(conn, provider_id)?;
    diesel::update(hd::table.find(provider_id))
        .set(hd::last_ok_at.eq(Some(now())))
        .execute(conn)?;
    Ok(())
}

pub fn record_error(
    conn: &mut AnyConnection,
    provider_id: i64,
    error: &str,
) -> Result<(), DbError> {
    ensure_row(conn, provider_id)?;
    let error: String = error.chars().take(MAX_ERROR).collect();
    diesel::update(hd::table.find(provider_id))
        .set((
            hd::last_error.eq(Some(error)),
            hd::last_error_at.eq(Some(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Keyed by the `Core` too: several apps in one process (tests) have their own providers 1, 2, …
fn ok_due(core: &Core, provider_id: i64) -> bool {
    static LAST: OnceLock<Mutex<HashMap<(usize, i64), Instant>>> = OnceLock::new();
    let key = (std::sync::Arc::as_ptr(&core.db_slots) as usize, provider_id);
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let due = last.get(&key).is_none_or(|t| t.elapsed() >= OK_EVERY);
    if due {
        last.insert(key, Instant::now());
    }
    due
}

/// Notes a delivery's outcome; failures to note it are logged, never the caller's problem.
pub async fn note(core: &Core, provider_id: i64, outcome: Result<(), String>) {
    let result = match outcome {
        Ok(()) if !ok_due(core, provider_id) => return,
        Ok(()) => core.db(move |c| record_ok(c, provider_id)).await,
        Err(e) => core.db(move |c| record_error(c, provider_id, &e)).await,
    };
    if let Err(e) = result {
        tracing::warn!(provider = provider_id, error = %e, "could not note a webhook delivery");
    }
}
