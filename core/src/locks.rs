//! Named locks across worker processes, for a few upstream operations that must not overlap:
//! the search-then-create of a RetailCRM contact, which two runs doing it for one phone at the
//! same moment would both find missing and both create.
//!
//! A lock is a row of `locks` held by a random holder token until `lock_until`, taken with the
//! same conditional update-or-insert as the Telegram poll leases: portable to SQLite and
//! PostgreSQL, held across the HTTP calls without pinning a database connection, and given up
//! by expiry when its holder dies. Holding it longer than its time (an upstream slower than
//! every timeout) lets the next taker in; the locks only narrow a race the upstream cannot
//! close for us, they do not replace its own checks.

use std::time::Duration;

use diesel::prelude::*;

use crate::Core;
use crate::db::schema::locks;
use crate::db::{AnyConnection, DbError, is_unique_violation, now};

/// Takes `name` for `holder` until now + `ttl` when it is free, expired or already theirs.
/// `false` while someone else holds it. Runs on its own, outside any transaction: on
/// PostgreSQL the insert's unique violation would abort a surrounding one.
pub fn try_take(
    conn: &mut AnyConnection,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, DbError> {
    let t = now();
    let until = t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60));
    let taken = diesel::update(locks::table)
        .filter(locks::name.eq(name))
        .filter(locks::holder.eq(holder).or(locks::lock_until.lt(t)))
        .set((locks::holder.eq(holder), locks::lock_until.eq(until)))
        .execute(conn)?;
    if taken == 1 {
        return Ok(true);
    }
    let inserted = diesel::insert_into(locks::table)
        .values((
            locks::name.eq(name),
            locks::holder.eq(holder),
            locks::lock_until.eq(until),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Gives `name` up if `holder` still has it.
pub fn release(conn: &mut AnyConnection, name: &str, holder: &str) -> Result<(), DbError> {
    diesel::delete(locks::table)
        .filter(locks::name.eq(name).and(locks::holder.eq(holder)))
        .execute(conn)?;
    Ok(())
}

/// A lock this process holds; give it back with [`Held::release`] (dropped without, it
/// expires).
#[must_use = "release the lock when done"]
pub struct Held {
    name: String,
    holder: String,
}

impl Held {
    pub async fn release(self, core: &Core) {
        let Held { name, holder } = self;
        let res = core.db(move |c| release(c, &name, &holder)).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "lock not released; it expires by itself");
        }
    }
}

/// Waits for `name` (polling, at most `ttl` plus a little: by then its holder's time is up)
/// and holds it for `ttl`. `None` if it could not be had meanwhile.
pub async fn acquire(core: &Core, name: &str, ttl: Duration) -> Result<Option<Held>, DbError> {
    let holder = crate::crypto::random_token(12);
    let deadline = tokio::time::Instant::now() + ttl + Duration::from_secs(1);
    let mut pause = Duration::from_millis(5);
    loop {
        let (n, h) = (name.to_string(), holder.clone());
        if core.db(move |c| try_take(c, &n, &h, ttl)).await? {
            return Ok(Some(Held {
                name: name.to_string(),
                holder,
            }));
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(None);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
