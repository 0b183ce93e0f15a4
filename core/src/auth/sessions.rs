//! Server-side sessions. The cookie carries a random token; the database keeps its SHA-256,
//! the admin, and two times: sign-in (for the absolute lifetime) and last use (for the idle
//! lifetime). Ending a session deletes the row, which ends it for every copy of the cookie.

use std::time::Duration;

use diesel::prelude::*;

use crate::Config;
use crate::db::schema::{admin_sessions, admins};
use crate::db::{AnyConnection, DbError, now};

/// Last use is written at most this often, so browsing is not a write per request; the idle
/// lifetime is enforced to within this much.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: Duration,
    pub absolute: Duration,
}

impl SessionLimits {
    pub fn from_config(config: &Config) -> Self {
        SessionLimits {
            idle: config.session_idle,
            absolute: config.session_absolute,
        }
    }

    fn idle(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.idle).unwrap_or(chrono::Duration::hours(2))
    }

    fn absolute(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.absolute).unwrap_or(chrono::Duration::hours(12))
    }
}

/// Whose session a valid token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub admin_id: i64,
    pub username: String,
}

fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session and returns its token (for the cookie). Sessions that are over are
/// deleted on the way.
pub fn create(
    conn: &mut AnyConnection,
    admin_id: i64,
    limits: SessionLimits,
) -> Result<String, DbError> {
    let t = now();
    diesel::delete(
        admin_sessions::table.filter(
            admin_sessions::last_seen_at
                .lt(t - limits.idle())
                .or(admin_sessions::created_at.lt(t - limits.absolute())),
        ),
    )
    .execute(conn)?;
    let token = crate::crypto::random_token(32);
    diesel::insert_into(admin_sessions::table)
        .values((
            admin_sessions::token_hash.eq(token_hash(&token)),
            admin_sessions::admin_id.eq(admin_id),
            admin_sessions::created_at.eq(t),
            admin_sessions::last_seen_at.eq(t),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The admin of a live session; `None` (and the row deleted) once it is over or unknown.
pub fn validate(
    conn: &mut AnyConnection,
    token: &str,
    limits: SessionLimits,
) -> Result<Option<SignedIn>, DbError> {
    let hash = token_hash(token);
    let row: Option<(i64, String, chrono::NaiveDateTime, chrono::NaiveDateTime)> =
        admin_sessions::table
            .inner_join(admins::table)
            .filter(admin_sessions::token_hash.eq(&hash))
            .select((
                admin_sessions::admin_id,
                admins::username,
                admin_sessions::created_at,
                admin_sessions::last_seen_at,
            ))
            .first(conn)
            .optional()?;
    let Some((admin_id, username, created_at, last_seen_at)) = row else {
        return Ok(None);
    };
    let t = now();
    if t - created_at >= limits.absolute() || t - last_seen_at >= limits.idle() {
        diesel::delete(admin_sessions::table.find(&hash)).execute(conn)?;
        return Ok(None);
    }
    if t - last_seen_at >= TOUCH_EVERY {
        diesel::update(admin_sessions::table.find(&hash))
            .set(admin_sessions::last_seen_at.eq(t))
            .execute(conn)?;
    }
    Ok(Some(SignedIn { admin_id, username }))
}

/// Sign-out: this session, wherever its cookie is.
pub fn end(conn: &mut AnyConnection, token: &str) -> Result<(), DbError> {
    diesel::delete(admin_sessions::table.find(token_hash(token))).execute(conn)?;
    Ok(())
}

/// «Выйти на всех устройствах»: every session of the admin.
pub fn end_all(conn: &mut AnyConnection, admin_id: i64) -> Result<usize, DbError> {
    Ok(
        diesel::delete(admin_sessions::table.filter(admin_sessions::admin_id.eq(admin_id)))
            .execute(conn)?,
    )
}

/// How many live sessions the admin has (shown next to «выйти на всех устройствах»).
pub fn count(conn: &mut AnyConnection, admin_id: i64) -> Result<i64, DbError> {
    Ok(admin_sessions::table
        .filter(admin_sessions::admin_id.eq(admin_id))
        .count()
        .get_result(conn)?)
}
