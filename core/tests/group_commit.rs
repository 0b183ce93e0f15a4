//! Group commit of run state against real databases: SQLite always, PostgreSQL in a fresh
//! database when TEST_DATABASE_URL is set.
//!
//! What the engine relies on: a write answered Ok is committed; writes arriving together share
//! transactions; one write that fails takes nobody else's down and leaves nothing of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use diesel::prelude::*;
use support::PgDb;
use svyazka_core::config::Mode;
use svyazka_core::db::group::GroupCommit;
use svyazka_core::db::schema::providers;
use svyazka_core::db::{self, DbError, Pool, now};

mod support;

const WRITES: usize = 200;

fn insert_provider(c: &mut db::AnyConnection, name: &str) -> Result<i64, DbError> {
    let t = now();
    Ok(diesel::insert_into(providers::table)
        .values((
            providers::kind.eq("chatapi"),
            providers::name.eq(name),
            providers::settings.eq("{}"),
            providers::secrets.eq(""),
            providers::webhook_secret.eq(name),
            providers::check_status.eq("ok"),
            providers::created_at.eq(t),
            providers::updated_at.eq(t),
        ))
        .returning(providers::id)
        .get_result(c)?)
}

/// `WRITES` concurrent writes, every tenth of which inserts its row and then fails.
async fn crowd(pool: Pool, lanes: usize) {
    let slots = Arc::new(tokio::sync::Semaphore::new(4));
    let group = GroupCommit::start(pool.clone(), slots, None, lanes);
    let writes = (0..WRITES).map(|i| {
        let group = group.clone();
        tokio::spawn(async move {
            group
                .write(move |c| {
                    let id = insert_provider(c, &format!("p{i}"))?;
                    if i % 10 == 0 {
                        return Err(DbError::Group(format!("write {i} refused")));
                    }
                    Ok(id)
                })
                .await
                .expect("committer running")
        })
    });
    let answers = futures::future::join_all(writes).await;

    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.unwrap();
        if i % 10 == 0 {
            assert!(
                matches!(&answer, Err(DbError::Group(m)) if m == &format!("write {i} refused")),
                "write {i}: {answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "write {i}: {answer:?}");
        }
    }
    let mut c = db::checkout(&pool).unwrap();
    let mut names: Vec<String> = providers::table
        .select(providers::name)
        .load(&mut **c)
        .unwrap();
    names.sort();
    let mut expected: Vec<String> = (0..WRITES)
        .filter(|i| i % 10 != 0)
        .map(|i| format!("p{i}"))
        .collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "every Ok committed, nothing of a failed write"
    );
    let transactions = group.transactions() as usize;
    assert!(
        transactions < WRITES / 2,
        "{transactions} group transactions for {WRITES} concurrent writes: not shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_writes_share_commits_and_a_failure_stays_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mode = Mode::Embedded {
        db_path: dir.path().join("svyazka.db"),
    };
    crowd(db::connect(&mode, 4).unwrap(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_writes_share_commits_and_a_failure_stays_its_own() {
    let Some(pg) = PgDb::create("group") else {
        return;
    };
    let mode = Mode::Queue {
        database_url: pg.url.clone(),
        redis_url: String::new(),
    };
    crowd(db::connect(&mode, 4).unwrap(), 2).await;
}
