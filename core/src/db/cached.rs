//! Prepared-statement caching for the statements diesel re-prepares at every call.
//!
//! diesel caches a prepared statement only when it can prove the SQL text is fixed for the
//! query's type, so it never caches an UPDATE (a changeset may skip `None` fields), an upsert's
//! `DO UPDATE`, or an `IN` list on SQLite. SQLite then parses and plans such a statement at
//! every execution: in the end-to-end profile that was 13 % of the embedded process' CPU, spent
//! on the handful of statements every run executes (claim, finish, step records).
//!
//! [`Cached`] lets diesel cache a statement under its SQL text instead of its type. That is
//! safe for any statement: two calls share a prepared statement only when they render the
//! same SQL with the same bind types. Use it for statements whose text takes few forms
//! (an `IN` list adds one form per length, so only for bounded lists).
//!
//! Load it (`get_result`, `load`; add a `RETURNING` if need be), do not `execute` it:
//! `execute` hands the connection a reference, and diesel's `QueryFragment` for references
//! asks the wrapped statement itself whether it may be cached, which says no again.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A statement diesel caches by its SQL text; see the module's documentation.
#[derive(Debug, Clone, Copy)]
pub struct Cached<Q>(pub Q);

/// `.cached()` on any statement.
pub trait CacheStatement: Sized {
    fn cached(self) -> Cached<Self> {
        Cached(self)
    }
}

impl<Q> CacheStatement for Q {}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    // No type-based key: the cache keys this statement by its SQL text and bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::prelude::*;
    use diesel::sqlite::SqliteConnection;

    use super::CacheStatement;

    diesel::table! {
        items (id) {
            id -> BigInt,
            state -> Text,
        }
    }

    /// Counts the statements diesel prepares to keep.
    #[derive(Default)]
    struct Prepared(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Prepared {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                self.0.lock().expect("lock").push(sql.to_string());
            }
        }
    }

    fn update(conn: &mut SqliteConnection, ids: &[i64], cached: bool) -> Vec<i64> {
        let q = diesel::update(items::table.filter(items::id.eq_any(ids)))
            .set(items::state.eq("done"))
            .returning(items::id);
        if cached {
            q.cached().get_results(conn).expect("update")
        } else {
            q.get_results(conn).expect("update")
        }
    }

    /// diesel keeps no UPDATE or upsert prepared by itself; wrapped, each SQL text is
    /// prepared once, and the wrapped statement still does its work.
    #[test]
    fn an_update_is_prepared_once_per_text() {
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        diesel::sql_query("CREATE TABLE items (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
            .execute(&mut conn)
            .expect("create");
        diesel::sql_query("INSERT INTO items VALUES (1, 'new'), (2, 'new'), (3, 'new')")
            .execute(&mut conn)
            .expect("insert");
        let seen = Arc::new(Mutex::new(Vec::new()));
        conn.set_instrumentation(Prepared(seen.clone()));

        update(&mut conn, &[1], false);
        update(&mut conn, &[1], false);
        assert!(
            seen.lock().expect("lock").is_empty(),
            "diesel alone caches none"
        );

        assert_eq!(update(&mut conn, &[2], true), [2]);
        assert_eq!(update(&mut conn, &[3], true), [3]);
        assert_eq!(update(&mut conn, &[1, 2], true).len(), 2);
        assert_eq!(update(&mut conn, &[2, 3], true).len(), 2);
        let prepared = seen.lock().expect("lock").clone();
        assert_eq!(prepared.len(), 2, "one per text: {prepared:?}");
        for round in 0..3 {
            let upsert = diesel::insert_into(items::table)
                .values((items::id.eq(9), items::state.eq(format!("r{round}"))))
                .on_conflict(items::id)
                .do_update()
                .set(items::state.eq(diesel::upsert::excluded(items::state)))
                .returning(items::id);
            assert_eq!(
                upsert
                    .cached()
                    .get_result::<i64>(&mut conn)
                    .expect("upsert"),
                9
            );
        }
        let prepared = seen.lock().expect("lock").clone();
        assert_eq!(prepared.len(), 3, "the upsert once: {prepared:?}");
        diesel::delete(items::table.filter(items::id.eq(9)))
            .execute(&mut conn)
            .expect("delete");
        let states: Vec<String> = items::table
            .select(items::state)
            .load(&mut conn)
            .expect("load");
        assert!(states.iter().all(|s| s == "done"));
    }
}
