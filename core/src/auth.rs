//! Admin accounts: argon2id password hashes, first-run setup, credential checks.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use diesel::prelude::*;

use crate::db::schema::admins;
use crate::db::{AnyConnection, DbError, is_unique_violation, now};

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

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Creates the first administrator. Refused once any admin exists, also when two setup forms
/// race: the check and the insert share one transaction.
pub fn create_first_admin(
    conn: &mut AnyConnection,
    username: &str,
    password: &str,
) -> Result<Admin, AuthError> {
    let hash = hash_password(password)?;
    conn.transaction(|conn| {
        if admin_exists(conn)? {
            return Err(AuthError::AlreadySetUp);
        }
        let id: i64 = diesel::insert_into(admins::table)
            .values((
                admins::username.eq(username),
                admins::password_hash.eq(&hash),
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
        Ok(admins::table
            .find(id)
            .select(Admin::as_select())
            .first(conn)?)
    })
}

/// Returns the admin when the password matches. Unknown users still pay for one verification so
/// response time does not tell which part was wrong.
pub fn verify_login(
    conn: &mut AnyConnection,
    username: &str,
    password: &str,
) -> Result<Option<Admin>, DbError> {
    let admin: Option<Admin> = admins::table
        .filter(admins::username.eq(username))
        .select(Admin::as_select())
        .first(conn)
        .optional()?;
    let hash = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = PasswordHash::new(&hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    Ok(admin.filter(|_| ok))
}

pub fn find(conn: &mut AnyConnection, id: i64) -> Result<Option<Admin>, DbError> {
    Ok(admins::table
        .find(id)
        .select(Admin::as_select())
        .first(conn)
        .optional()?)
}

fn dummy_hash() -> String {
    // A fixed valid argon2id hash of a random string: verifying against it costs the same as a real one.
    "$argon2id$v=19$m=19456,t=2,p=1$c3ZpYXprYWR1bW15c2FsdA$2o5nYl3YkY1J0dQm0n9Z2b6m2r1p6b3sR6pJtG5mX5Q".to_string()
}
