//! Storage: one diesel connection type over SQLite and PostgreSQL, an r2d2 pool, migrations.

pub mod cached;
pub mod gate;
pub mod group;
pub mod lease;
pub mod schema;
mod text_enum;

pub use text_enum::UnknownValue;
pub(crate) use text_enum::text_enum;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::Mode;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection: for statements the multi-backend
/// connection cannot express (`ON CONFLICT … RETURNING`), written once for both backends.
macro_rules! each_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgresql($c) => $body,
            $crate::db::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use each_backend;

/// The backend type diesel derives for [`AnyConnection`].
pub type Backend = <AnyConnection as diesel::Connection>::Backend;

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = r2d2::PooledConnection<Manager>;

/// A connection that was not used for this long is tested (`SELECT 1`) before it is handed
/// out: after a database restart the pool holds dead connections, and a test per checkout
/// would cost a round trip on every busy-path query instead.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A pooled connection with what the pool needs to know about it.
pub struct PoolConn {
    conn: AnyConnection,
    last_used: Instant,
    broken: bool,
}

impl std::ops::Deref for PoolConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl PoolConn {
    /// `SELECT 1`; a connection that fails it is dropped by the pool when returned.
    fn test(&mut self) -> Result<(), diesel::result::Error> {
        let res = self.conn.batch_execute("SELECT 1");
        self.broken = res.is_err();
        res
    }

    /// After a failed statement: was it the connection? Then the pool replaces it.
    pub fn check_after_error(&mut self) {
        let _ = self.test();
    }

    pub fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

/// A live connection: idle ones are tested first, dead ones are dropped and the next taken.
pub fn checkout(pool: &Pool) -> Result<Conn, DbError> {
    for _ in 0..=pool.max_size() {
        let mut conn = pool.get()?;
        if conn.last_used.elapsed() < IDLE_CHECK || conn.test().is_ok() {
            return Ok(conn);
        }
    }
    // Every pooled connection was dead: one more, freshly opened by the pool, or its error.
    let mut conn = pool.get()?;
    conn.test()?;
    Ok(conn)
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("migrations: {0}")]
    Migrate(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// The runtime stopped before the call ran (the process is shutting down); the row's
    /// lease or queue message brings the work back.
    #[error("database call cancelled: the process is stopping")]
    Cancelled,
    /// A group commit could not be made (see `group`); each of its writers gets this.
    #[error("database (group commit): {0}")]
    Group(String),
}

pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Opens connections by URL scheme. diesel's own `AnyConnection::establish` tries PostgreSQL and
/// then SQLite with the same string and drops the real error, so the variant is chosen here.
#[derive(Debug, Clone)]
pub struct Manager {
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Sqlite(String),
    Postgres(String),
}

impl Manager {
    fn connect(&self) -> Result<AnyConnection, diesel::ConnectionError> {
        match &self.target {
            Target::Postgres(url) => Ok(AnyConnection::Postgresql(
                diesel::PgConnection::establish(url)?,
            )),
            Target::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(path)?;
                // Pragmas are per connection. WAL + NORMAL keeps commits durable against process
                // crashes (a 200 on a webhook means the row is in the WAL) at a fraction of FULL's cost.
                // The page cache is per connection too: 1 MiB each instead of SQLite's 2 MiB
                // keeps a full pool within the embedded process' memory budget; the OS caches
                // the file anyway. busy_timeout goes first: switching to WAL needs a lock, and a
                // connection opened while another one writes must wait for it, not fail.
                c.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024;",
                )
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(c))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PoolConn, r2d2::Error> {
        let conn = Manager::connect(self).map_err(r2d2::Error::ConnectionError)?;
        Ok(PoolConn {
            conn,
            last_used: Instant::now(),
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        conn.test().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.broken
    }
}

/// One connection, without migrating: for a health check that must not change anything.
pub fn open(mode: &Mode) -> Result<AnyConnection, DbError> {
    let target = match mode {
        Mode::Embedded { db_path } => Target::Sqlite(db_path.display().to_string()),
        Mode::Queue { database_url, .. } => Target::Postgres(database_url.clone()),
    };
    Ok(Manager { target }.connect()?)
}

/// Builds the pool for the configured mode and applies pending migrations.
pub fn connect(mode: &Mode, size: u32) -> Result<Pool, DbError> {
    let target = match mode {
        Mode::Embedded { db_path } => {
            if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            Target::Sqlite(db_path.display().to_string())
        }
        Mode::Queue { database_url, .. } => Target::Postgres(database_url.clone()),
    };
    let manager = Manager { target };
    // Fail fast with the real error (wrong password, missing file) instead of r2d2's timeout.
    let mut first = manager.connect()?;
    migrate(&mut first)?;
    drop(first);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        // Tested in `checkout` when idle and after errors instead: see `IDLE_CHECK`.
        .test_on_check_out(false)
        .build(manager)?;
    Ok(pool)
}

/// Key of the PostgreSQL advisory lock held while migrating ("SVZK" in ASCII).
const MIGRATION_LOCK: i64 = 0x5356_5A4B;

/// Applies pending migrations. On PostgreSQL the whole run holds an advisory lock: processes
/// started together on an empty database (compose starts web and workers at once) would
/// otherwise race to create the same tables and all but one fail; with the lock the others
/// wait, then find the schema current. SQLite is one file of one embedded process.
pub fn migrate(conn: &mut AnyConnection) -> Result<(), DbError> {
    let res = match conn {
        AnyConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let res = c.run_pending_migrations(PG_MIGRATIONS).map(|_| ());
            // The lock also ends with the session; unlocking lets the others go on at once.
            let unlocked = c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            if let Err(e) = unlocked {
                tracing::warn!(error = %e, "migration lock not released; it ends with the connection");
            }
            res
        }
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    res.map_err(|e| DbError::Migrate(e.to_string()))
}

/// `SELECT 1` through the pool, for /readyz.
pub fn ping(pool: &Pool) -> Result<(), DbError> {
    let mut c = checkout(pool)?;
    c.test()?;
    c.touch();
    Ok(())
}

pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
