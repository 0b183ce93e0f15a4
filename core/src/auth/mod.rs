//! The administrator: argon2id password hashes, first-run setup (guarded by a one-time code),
//! sign-in checks, password change and reset, server-side sessions.
//!
//! Password hashing is deliberately slow, so it never runs inside a database slot: the
//! account is read in one slot, the hash is verified on a blocking thread limited by its own
//! semaphore, and webhooks keep their database slots during a sign-in flood.

pub mod sessions;
pub mod setup_code;

use std::sync::OnceLock;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use diesel::prelude::*;

use crate::Core;
use crate::db::schema::{admin_sessions, admins};
use crate::db::{AnyConnection, DbError, is_unique_violation, now};

/// Shortest password the setup, change and reset accept.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Argon2 runs on at most half the cores at once, whatever the sign-in traffic, so webhooks
/// and pages keep the rest.
fn hashing_slot_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = admins)]
pub struct Admin {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an administrator already exists")]
    AlreadySetUp,
    #[error("the set-up code is missing or wrong")]
    WrongSetupCode,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("there is no administrator yet; open /setup in the browser")]
    NoAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<diesel::result::Error> for AuthError {
    fn from(e: diesel::result::Error) -> Self {
        AuthError::Db(DbError::Query(e))
    }
}

pub fn admin_exists(conn: &mut AnyConnection) -> Result<bool, DbError> {
    let n: i64 = admins::table.count().get_result(conn)?;
    Ok(n > 0)
}

pub fn check_password_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(AuthError::WeakPassword)
    } else {
        Ok(())
    }
}

/// Argon2id at 7 MiB and five passes, one of OWASP's equivalent configurations (its first
/// choice, 19 MiB and two passes, was `argon2`'s default here before). Every hash allocates
/// its whole memory cost at once, and the embedded process has 50 MB in all: at 19 MiB each
/// sign-in was the process' peak. Stored hashes carry their own parameters, so older ones
/// still verify, and are re-hashed at the next sign-in.
const PARAMS: Params = match Params::new(7 * 1024, 5, 1, None) {
    Ok(p) => p,
    Err(_) => panic!("argon2 parameters out of range"),
};

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Hashes on the calling thread; for the command line and tests. Request handlers use
/// [`hash_password_off_thread`].
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Verification takes the algorithm and costs from the stored hash itself.
fn verify_hash(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A stored hash made with other costs than [`PARAMS`] (an older release's).
fn outdated(hash: &str) -> bool {
    PasswordHash::new(hash)
        .ok()
        .and_then(|parsed| Params::try_from(&parsed).ok())
        .is_none_or(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                != (PARAMS.m_cost(), PARAMS.t_cost(), PARAMS.p_cost())
        })
}

fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(hashing_slot_count()))
}

/// Runs `f` on a blocking thread once a hashing slot is free; never holds a database slot.
async fn with_hashing_slot<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    // The semaphore is never closed, so acquiring only waits.
    let permit = hashing_slots().acquire().await;
    let out = tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    drop(permit);
    out
}

pub async fn hash_password_off_thread(password: String) -> Result<String, AuthError> {
    with_hashing_slot(move || hash_password(&password)).await
}

async fn verify_off_thread(hash: String, password: String) -> bool {
    with_hashing_slot(move || verify_hash(&hash, &password)).await
}

/// A valid argon2id hash of a random string: unknown users pay for one verification too, so
/// response time does not tell which part was wrong.
fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            hash_password(&crate::crypto::random_token(24)).unwrap_or_else(|_| {
                "$argon2id$v=19$m=7168,t=5,p=1$c3ZpYXprYWR1bW15c2FsdA$2o5nYl3YkY1J0dQm0n9Z2b6m2r1p6b3sR6pJtG5mX5Q".to_string()
            })
        })
        .clone()
}

fn find_by_username(conn: &mut AnyConnection, username: &str) -> Result<Option<Admin>, DbError> {
    Ok(admins::table
        .filter(admins::username.eq(username))
        .select(Admin::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut AnyConnection, id: i64) -> Result<Option<Admin>, DbError> {
    Ok(admins::table
        .find(id)
        .select(Admin::as_select())
        .first(conn)
        .optional()?)
}

/// Returns the admin when the password matches. The account is read in a database slot; the
/// hash is verified outside it.
pub async fn authenticate(
    core: &Core,
    username: &str,
    password: &str,
) -> Result<Option<Admin>, DbError> {
    let name = username.to_owned();
    let admin = core.db(move |c| find_by_username(c, &name)).await?;
    let hash = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = verify_off_thread(hash, password.to_owned()).await;
    let admin = admin.filter(|_| ok);
    if let Some(a) = admin.as_ref().filter(|a| outdated(&a.password_hash)) {
        // The password was just proven: store it again at today's costs, keeping sessions.
        // A failure here only postpones the upgrade to the next sign-in.
        if let Ok(hash) = hash_password_off_thread(password.to_owned()).await {
            let id = a.id;
            let stored = core
                .db(move |c| store_hash(c, id, &hash).map_err(DbError::Query))
                .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "could not store the re-hashed password");
            }
        }
    }
    Ok(admin)
}

/// Creates the administrator if `code` is one of the set-up codes printed at start. Refused
/// once an admin exists: the code check, the insert and the removal of all codes share one
/// transaction, and the schema admits a single admin row, so two racing forms cannot both
/// succeed. The `setup-code` file is removed afterwards.
pub async fn create_first_admin(
    core: &Core,
    code: &str,
    username: &str,
    password: &str,
) -> Result<Admin, AuthError> {
    check_password_strength(password)?;
    let hash = hash_password_off_thread(password.to_owned()).await?;
    let (code, username) = (code.to_owned(), username.to_owned());
    let admin = core
        .db(move |c| create_first_admin_with_hash(c, &code, &username, &hash))
        .await?;
    setup_code::remove_file(&core.config.data_dir);
    Ok(admin)
}

fn create_first_admin_with_hash(
    conn: &mut AnyConnection,
    code: &str,
    username: &str,
    hash: &str,
) -> Result<Admin, AuthError> {
    conn.transaction(|conn| {
        if admin_exists(conn)? {
            return Err(AuthError::AlreadySetUp);
        }
        if !setup_code::matches(conn, code)? {
            return Err(AuthError::WrongSetupCode);
        }
        let id: i64 = diesel::insert_into(admins::table)
            .values((
                admins::username.eq(username),
                admins::password_hash.eq(hash),
                admins::created_at.eq(now()),
            ))
            .returning(admins::id)
            .get_result(conn)
            .map_err(|e| {
                if is_unique_violation(&e) {
                    AuthError::AlreadySetUp
                } else {
                    e.into()
                }
            })?;
        setup_code::clear(conn)?;
        Ok(admins::table
            .find(id)
            .select(Admin::as_select())
            .first(conn)?)
    })
}

/// Changes the password after checking the current one, and ends every session of the
/// admin (the caller signs the current browser in again with a fresh session).
pub async fn change_password(
    core: &Core,
    admin_id: i64,
    current: &str,
    new: &str,
) -> Result<(), AuthError> {
    check_password_strength(new)?;
    let admin = core
        .db(move |c| find(c, admin_id))
        .await?
        .ok_or(AuthError::NoAdmin)?;
    if !verify_off_thread(admin.password_hash, current.to_owned()).await {
        return Err(AuthError::WrongPassword);
    }
    let hash = hash_password_off_thread(new.to_owned()).await?;
    core.db(move |c| set_password_hash(c, admin_id, &hash))
        .await
}

/// Writes the admin's hash; answers how many rows it changed (0: no such admin).
fn store_hash(conn: &mut AnyConnection, admin_id: i64, hash: &str) -> QueryResult<usize> {
    diesel::update(admins::table.find(admin_id))
        .set(admins::password_hash.eq(hash))
        .execute(conn)
}

fn set_password_hash(conn: &mut AnyConnection, admin_id: i64, hash: &str) -> Result<(), AuthError> {
    conn.transaction(|conn| {
        if store_hash(conn, admin_id, hash)? == 0 {
            return Err(AuthError::NoAdmin);
        }
        diesel::delete(admin_sessions::table.filter(admin_sessions::admin_id.eq(admin_id)))
            .execute(conn)?;
        Ok(())
    })
}

/// `svyazka admin reset-password`: sets a new password for the administrator without knowing
/// the old one (whoever runs it has the server and its database) and ends all sessions.
/// Returns the admin, whose name the command prints.
pub fn reset_password(conn: &mut AnyConnection, new_password: &str) -> Result<Admin, AuthError> {
    check_password_strength(new_password)?;
    let admin: Admin = admins::table
        .order(admins::id)
        .select(Admin::as_select())
        .first(conn)
        .optional()?
        .ok_or(AuthError::NoAdmin)?;
    let hash = hash_password(new_password)?;
    set_password_hash(conn, admin.id, &hash)?;
    Ok(admin)
}

/// A random password for `reset-password` when none is given: 20 characters, ~120 bits.
pub fn generate_password() -> String {
    crate::crypto::random_token(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_a_dummy_hash_never_matches() {
        let h = hash_password("correct horse battery").expect("hash");
        assert!(verify_hash(&h, "correct horse battery"));
        assert!(!verify_hash(&h, "correct horse batterY"));
        assert!(!verify_hash(&dummy_hash(), ""));
        assert!(!verify_hash("not a hash", "x"));
    }

    /// Hashes of the release before (argon2's default, 19 MiB) still sign in, and are the
    /// ones marked for re-hashing; today's costs 7 MiB.
    #[test]
    fn older_hashes_verify_and_are_marked_outdated() {
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert!(old.contains("m=19456,t=2"));
        assert!(verify_hash(&old, "correct horse battery"));
        assert!(outdated(&old));
        let new = hash_password("correct horse battery").expect("hash");
        assert!(new.contains("$argon2id$v=19$m=7168,t=5,p=1$"), "{new}");
        assert!(!outdated(&new));
        assert!(outdated("not a hash"));
    }

    #[test]
    #[ignore = "timing probe"]
    fn hashing_time() {
        let t = std::time::Instant::now();
        let h = hash_password("x").expect("hash");
        eprintln!("hash {:?}", t.elapsed());
        let t = std::time::Instant::now();
        verify_hash(&h, "y");
        eprintln!("verify {:?}", t.elapsed());
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(
            check_password_strength("123456789"),
            Err(AuthError::WeakPassword)
        ));
        assert!(check_password_strength("1234567890").is_ok());
        assert_eq!(generate_password().chars().count(), 20);
    }
}
