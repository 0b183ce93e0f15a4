//! Every migration can be undone: applied one by one, each `down.sql` must bring the schema
//! back to exactly what it was before its `up.sql`, and applying everything again must give
//! the same schema as the first time. An upgrade that goes wrong is rolled back with these
//! scripts, so a down that forgets an index or a table leaves a database the next up fails on.
//!
//! SQLite always; PostgreSQL in a fresh database when TEST_DATABASE_URL is set (with
//! SVYAZKA_REQUIRE_SERVICES=1 a missing URL is a failure, not a skip).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use support::PgDb;
use svyazka_core::db::{PG_MIGRATIONS, SQLITE_MIGRATIONS};

mod support;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Everything SQLite knows about the schema, one line per object with its DDL (diesel's own
/// bookkeeping and the AUTOINCREMENT counter table, which SQLite never drops, left out).
const SQLITE_SCHEMA: &str = "\
    SELECT type || ' ' || name || ' on ' || tbl_name || ': ' || COALESCE(sql, '') AS line \
    FROM sqlite_master \
    WHERE tbl_name NOT IN ('__diesel_schema_migrations', 'sqlite_sequence') \
    ORDER BY line";

/// The same for PostgreSQL, from the catalog: relations (tables, sequences, indexes, views),
/// columns with type, nullability and default, constraints, index definitions, triggers and
/// functions of the public schema.
const PG_SCHEMA: &str = "\
    SELECT 'relation ' || c.relkind::text || ' ' || c.relname::text AS line \
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
      WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_\\_diesel%' \
    UNION ALL \
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || \
           ' nullable=' || is_nullable || ' default=' || COALESCE(column_default, '') \
      FROM information_schema.columns \
      WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'constraint ' || t.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid) \
      FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
      WHERE n.nspname = 'public' AND t.relname <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'index ' || indexdef FROM pg_indexes \
      WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
    UNION ALL \
    SELECT 'trigger ' || t.relname || '.' || g.tgname || ' ' || pg_get_triggerdef(g.oid) \
      FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
      WHERE n.nspname = 'public' AND NOT g.tgisinternal \
    UNION ALL \
    SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ')' \
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
      WHERE n.nspname = 'public' \
    ORDER BY line";

fn schema<C: Connection>(conn: &mut C, query: &str) -> Vec<String>
where
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Line>,
{
    diesel::sql_query(query)
        .load::<Line>(conn)
        .expect("read the schema")
        .into_iter()
        .map(|l| l.line)
        .collect()
}

/// Up one by one, down one by one (each down must restore the schema its up started from),
/// then all up again (must equal the first time). Returns the final schema for a sanity check.
fn round_trip<DB, C>(
    conn: &mut C,
    migrations: fn() -> EmbeddedMigrations,
    snapshot: impl Fn(&mut C) -> Vec<String>,
) -> Vec<String>
where
    DB: Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    let total = conn.pending_migrations(migrations()).expect("list").len();
    assert!(total > 0, "no migrations found");

    // before[i]: the schema migration i starts from; before[total]: all applied.
    let mut before = vec![snapshot(conn)];
    let mut names = Vec::new();
    for _ in 0..total {
        let v = conn.run_next_migration(migrations()).expect("up");
        names.push(v.to_string());
        before.push(snapshot(conn));
    }
    assert!(
        conn.pending_migrations(migrations())
            .expect("list")
            .is_empty(),
        "all applied"
    );
    let first_up = before[total].clone();

    for i in (0..total).rev() {
        let v = conn.revert_last_migration(migrations()).expect("down");
        assert_eq!(v.to_string(), names[i], "migrations revert newest first");
        let now = snapshot(conn);
        assert_eq!(
            now, before[i],
            "down.sql of {} does not undo its up.sql",
            names[i]
        );
    }
    assert!(
        before[0].is_empty(),
        "an empty database has no schema: {:?}",
        before[0]
    );

    conn.run_pending_migrations(migrations()).expect("up again");
    let second_up = snapshot(conn);
    assert_eq!(
        second_up, first_up,
        "the schema after down and up again differs from the first up"
    );
    second_up
}

/// The tables the storage layer reads; a snapshot that misses them would compare nothing.
fn assert_covers_tables(schema: &[String]) {
    for table in [
        "admins",
        "providers",
        "inbox",
        "bundles",
        "runs",
        "run_steps",
        "poll_leases",
    ] {
        assert!(
            schema.iter().any(|l| l.contains(table)),
            "{table} missing from the schema listing: {schema:#?}"
        );
    }
}

#[test]
fn sqlite_migrations_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svyazka.db");
    let mut conn = SqliteConnection::establish(&path.display().to_string()).unwrap();
    // As the app opens it: with foreign keys enforced, a down that drops tables in the wrong
    // order fails here as it would in production.
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA foreign_keys = ON")
        .unwrap();
    let schema = round_trip(
        &mut conn,
        || SQLITE_MIGRATIONS,
        |c| schema(c, SQLITE_SCHEMA),
    );
    assert_covers_tables(&schema);
}

#[test]
fn postgres_migrations_round_trip() {
    let Some(db) = PgDb::create("migrations") else {
        return;
    };
    let mut conn = PgConnection::establish(&db.url).unwrap();
    let schema = round_trip(&mut conn, || PG_MIGRATIONS, |c| schema(c, PG_SCHEMA));
    assert_covers_tables(&schema);
}
