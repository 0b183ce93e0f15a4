//! The first-run set-up code. While no administrator exists, whoever reaches `/setup` first
//! would become one; the code proves they can also read the server's console or data
//! directory. Each web process issues one at start (printed, and written 0600 to
//! `setup-code` in the data directory); the database keeps only hashes, so any process of a
//! queue-mode install accepts any of them. All are deleted when the administrator is created.

use std::path::{Path, PathBuf};

use diesel::prelude::*;

use crate::Core;
use crate::db::schema::setup_codes;
use crate::db::{AnyConnection, DbError, now};

pub const FILE_NAME: &str = "setup-code";

/// Unambiguous characters (no 0/O, 1/I/L): 31 symbols, so 12 of them carry ~59 bits.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;

/// Where the code of this data directory is written.
pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

fn generate() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..GROUPS)
        .map(|_| {
            (0..GROUP_LEN)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        })
        .collect();
    groups.join("-")
}

/// What the admin typed, as stored: spaces and dashes dropped, upper case.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

fn hash(code: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(normalize(code).as_bytes()))
}

/// At start: a new code if no administrator exists (returned for printing), else nothing,
/// and leftovers of an earlier first start are removed.
pub async fn issue(core: &Core) -> Result<Option<String>, IssueError> {
    let code = generate();
    let hashed = hash(&code);
    let issued = core
        .db(move |c| {
            c.transaction(|c| {
                if super::admin_exists(c)? {
                    clear(c)?;
                    return Ok::<_, DbError>(false);
                }
                diesel::insert_into(setup_codes::table)
                    .values((
                        setup_codes::code_hash.eq(&hashed),
                        setup_codes::created_at.eq(now()),
                    ))
                    .execute(c)?;
                Ok(true)
            })
        })
        .await?;
    let path = file_path(&core.config.data_dir);
    if !issued {
        remove_file(&core.config.data_dir);
        return Ok(None);
    }
    crate::data_dir::create_private_dir(&core.config.data_dir)
        .and_then(|()| crate::data_dir::write_private(&path, &format!("{code}\n")))
        .map_err(|source| IssueError::File {
            path: path.display().to_string(),
            source,
        })?;
    Ok(Some(code))
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("set-up code file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// Whether `code` is one of the issued codes (compared by hash, in constant time).
pub fn matches(conn: &mut AnyConnection, code: &str) -> Result<bool, DbError> {
    if normalize(code).is_empty() {
        return Ok(false);
    }
    let wanted = hash(code);
    let stored: Vec<String> = setup_codes::table
        .select(setup_codes::code_hash)
        .load(conn)?;
    Ok(stored.iter().fold(false, |found, h| {
        found | crate::crypto::secure_eq(h, &wanted)
    }))
}

pub fn clear(conn: &mut AnyConnection) -> Result<(), DbError> {
    diesel::delete(setup_codes::table).execute(conn)?;
    Ok(())
}

pub fn remove_file(data_dir: &Path) {
    let path = file_path(data_dir);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove the set-up code file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_typed_loosely() {
        let code = generate();
        assert_eq!(code.len(), GROUPS * GROUP_LEN + GROUPS - 1);
        assert!(
            code.chars()
                .all(|c| c == '-' || ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(code, generate());
        assert_eq!(hash(&code), hash(&code.to_lowercase().replace('-', " ")));
        assert_ne!(hash("ABCD-EFGH-JKMN"), hash("ABCD-EFGH-JKMP"));
    }
}
