//! The lease protocol of inbox rows and runs, and the step records, against real databases:
//! SQLite always, PostgreSQL in a fresh database when TEST_DATABASE_URL is set.
//!
//! What the workers rely on: a row is claimed by one worker at a time, taken over when its
//! holder's lease expires, retried only once due, never again once failed; the sweeper
//! re-enqueues exactly the rows a claim would take whose queue message may be lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;
use support::PgDb;
use svyazka_core::config::Mode;
use svyazka_core::db::schema::{bundles, inbox as inbox_rows, providers, runs as run_rows};
use svyazka_core::db::{self, AnyConnection, now};
use svyazka_core::inbox::{self, InboxKind, InboxStatus};
use svyazka_core::runs::{self, RunStatus, StepOutcome, StepStatus};

mod support;

const LEASE: Duration = Duration::hours(1);

fn with_sqlite(test: impl FnOnce(&mut AnyConnection)) {
    let dir = tempfile::tempdir().unwrap();
    let mode = Mode::Embedded {
        db_path: dir.path().join("svyazka.db"),
    };
    let pool = db::connect(&mode, 1).unwrap();
    test(&mut db::checkout(&pool).unwrap());
}

fn with_postgres(test: impl FnOnce(&mut AnyConnection)) {
    let Some(pg) = PgDb::create("lease") else {
        return;
    };
    let mode = Mode::Queue {
        database_url: pg.url.clone(),
        redis_url: String::new(),
    };
    let pool = db::connect(&mode, 1).unwrap();
    test(&mut db::checkout(&pool).unwrap());
    drop(pool);
}

fn provider(c: &mut AnyConnection) -> i64 {
    let t = now();
    diesel::insert_into(providers::table)
        .values((
            providers::kind.eq("telegram"),
            providers::name.eq("bot"),
            providers::settings.eq("{}"),
            providers::secrets.eq(""),
            providers::webhook_secret.eq("s"),
            providers::check_status.eq("ok"),
            providers::created_at.eq(t),
            providers::updated_at.eq(t),
        ))
        .returning(providers::id)
        .get_result(c)
        .unwrap()
}

/// A queued run (with its bundle and inbox row), as a dispatch leaves it.
fn queued_run(c: &mut AnyConnection) -> i64 {
    let p = provider(c);
    let t = now();
    let bundle: i64 = diesel::insert_into(bundles::table)
        .values((
            bundles::name.eq("b"),
            bundles::source_provider_id.eq(p),
            bundles::event_type.eq("incoming_message"),
            bundles::status_filter.eq("[]"),
            bundles::target_provider_id.eq(p),
            bundles::steps.eq("[]"),
            bundles::state.eq("running"),
            bundles::created_at.eq(t),
            bundles::updated_at.eq(t),
        ))
        .returning(bundles::id)
        .get_result(c)
        .unwrap();
    let item = inbox::store(c, p, "msg:run", InboxKind::IncomingMessage, &json!({}))
        .unwrap()
        .id();
    diesel::insert_into(run_rows::table)
        .values((
            run_rows::bundle_id.eq(bundle),
            run_rows::inbox_id.eq(item),
            run_rows::status.eq(RunStatus::Queued),
            run_rows::attempts.eq(0),
            run_rows::definition.eq("{}"),
            run_rows::event.eq("{}"),
            run_rows::next_attempt_at.eq(t),
            run_rows::created_at.eq(t),
            run_rows::updated_at.eq(t),
        ))
        .returning(run_rows::id)
        .get_result(c)
        .unwrap()
}

fn ago(seconds: i64) -> NaiveDateTime {
    now() - Duration::seconds(seconds)
}

fn inbox_lease_protocol(c: &mut AnyConnection) {
    let p = provider(c);
    let id = inbox::store(c, p, "msg:1", InboxKind::IncomingMessage, &json!({}))
        .unwrap()
        .id();
    let grace = Duration::minutes(10);

    // Just stored and announced: the sweeper leaves it to the queue message.
    assert_eq!(inbox::take_due(c, grace, 100).unwrap(), Vec::<i64>::new());

    let item = inbox::claim(c, id, LEASE)
        .unwrap()
        .expect("a pending row is claimed");
    assert_eq!((item.status, item.attempts), (InboxStatus::Processing, 1));
    assert!(
        inbox::claim(c, id, LEASE).unwrap().is_none(),
        "held by its worker"
    );
    assert_eq!(
        inbox::take_due(c, Duration::zero(), 100).unwrap(),
        Vec::<i64>::new(),
        "a live lease is not the sweeper's business"
    );

    // The holder died: once its lease has expired, the row is the sweeper's and anyone's.
    diesel::update(inbox_rows::table.find(id))
        .set(inbox_rows::lease_until.eq(Some(ago(1))))
        .execute(c)
        .unwrap();
    assert_eq!(inbox::take_due(c, Duration::zero(), 100).unwrap(), vec![id]);
    let item = inbox::claim(c, id, LEASE).unwrap().expect("taken over");
    assert_eq!(item.attempts, 2);

    // A transient failure: waits until its retry time, then the sweeper enqueues it once.
    inbox::retry_later(c, id, "upstream timeout", now() + Duration::hours(1)).unwrap();
    let item = inbox::get(c, id).unwrap().unwrap();
    assert_eq!(
        (item.status, item.error.as_deref(), item.lease_until),
        (InboxStatus::Pending, Some("upstream timeout"), None)
    );
    assert!(inbox::claim(c, id, LEASE).unwrap().is_none(), "not due yet");
    assert_eq!(inbox::take_due(c, grace, 100).unwrap(), Vec::<i64>::new());
    diesel::update(inbox_rows::table.find(id))
        .set(inbox_rows::next_attempt_at.eq(ago(1)))
        .execute(c)
        .unwrap();
    assert_eq!(inbox::take_due(c, grace, 100).unwrap(), vec![id]);
    assert_eq!(
        inbox::take_due(c, grace, 100).unwrap(),
        Vec::<i64>::new(),
        "a second sweep within the grace period does not push it again"
    );
    assert_eq!(inbox::claim(c, id, LEASE).unwrap().unwrap().attempts, 3);

    // Failed for good: nobody claims or sweeps it again.
    inbox::fail(c, id, "unreadable").unwrap();
    let item = inbox::get(c, id).unwrap().unwrap();
    assert_eq!(
        (item.status, item.error.as_deref(), item.lease_until),
        (InboxStatus::Failed, Some("unreadable"), None)
    );
    diesel::update(inbox_rows::table.find(id))
        .set(inbox_rows::next_attempt_at.eq(ago(1)))
        .execute(c)
        .unwrap();
    assert!(inbox::claim(c, id, LEASE).unwrap().is_none());
    assert_eq!(
        inbox::take_due(c, Duration::zero(), 100).unwrap(),
        Vec::<i64>::new()
    );
}

fn run_lease_protocol(c: &mut AnyConnection) {
    let id = queued_run(c);
    assert_eq!(
        runs::take_due(c, Duration::minutes(10), 100).unwrap(),
        vec![id],
        "never enqueued: the sweeper pushes it"
    );
    let run = runs::claim(c, id, LEASE).unwrap().expect("claimed");
    assert_eq!((run.status, run.attempts), (RunStatus::Running, 1));
    let started = run.started_at.expect("started");
    assert!(runs::claim(c, id, LEASE).unwrap().is_none());

    runs::retry_later(c, id, "429", ago(1)).unwrap();
    let run = runs::claim(c, id, LEASE).unwrap().expect("due again");
    assert_eq!(run.attempts, 2);
    assert_eq!(
        run.started_at,
        Some(started),
        "the first attempt's start is kept"
    );

    runs::fail(c, id, "chat not found").unwrap();
    let run = runs::get(c, id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("chat not found"));
    assert!(run.finished_at.is_some() && run.lease_until.is_none());
    assert!(runs::claim(c, id, LEASE).unwrap().is_none());
    assert_eq!(runs::count_by_status(c, RunStatus::Failed).unwrap(), 1);

    // Replay queues it again with a fresh attempt budget.
    assert!(runs::replay(c, id).unwrap());
    let run = runs::claim(c, id, LEASE).unwrap().expect("replayed");
    assert_eq!((run.status, run.attempts), (RunStatus::Running, 1));
}

fn outcome<'a>(
    run_id: i64,
    position: i32,
    inputs: &'a serde_json::Value,
    result: Result<&'a serde_json::Value, &'a str>,
    attempt: i32,
) -> StepOutcome<'a> {
    StepOutcome {
        run_id,
        position,
        action: "send_message",
        inputs,
        result,
        attempt,
        duration_ms: 7,
        started_at: now(),
    }
}

fn step_records(c: &mut AnyConnection) {
    let run = queued_run(c);
    let first = json!({"text": "hello"});
    let second = json!({"text": "hello again"});
    let sent = json!({"message_id": 5});

    runs::mark_step_started(c, run, 0, "send_message", &first, 1).unwrap();
    let steps = runs::steps(c, run).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].status, steps[0].attempt, steps[0].finished_at),
        (StepStatus::Running, 1, None)
    );

    runs::record_step(c, &outcome(run, 0, &first, Err("timeout"), 1)).unwrap();
    let steps = runs::steps(c, run).unwrap();
    assert_eq!(steps.len(), 1, "one record per step, updated in place");
    assert_eq!(
        (steps[0].status, steps[0].error.as_deref()),
        (StepStatus::Failed, Some("timeout"))
    );
    assert!(steps[0].finished_at.is_some());

    // The retry: marked in flight with its own inputs, then succeeded.
    runs::mark_step_started(c, run, 0, "send_message", &second, 2).unwrap();
    let steps = runs::steps(c, run).unwrap();
    assert_eq!(
        (steps[0].status, steps[0].attempt, steps[0].inputs.as_str()),
        (StepStatus::Running, 2, second.to_string().as_str())
    );
    runs::record_step(c, &outcome(run, 0, &second, Ok(&sent), 2)).unwrap();
    runs::record_step(c, &outcome(run, 1, &first, Ok(&sent), 2)).unwrap();
    let steps = runs::steps(c, run).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (
            steps[0].status,
            steps[0].error.as_deref(),
            steps[0].outputs.as_deref(),
            steps[0].duration_ms
        ),
        (
            StepStatus::Succeeded,
            None,
            Some(sent.to_string().as_str()),
            7
        )
    );
    assert_eq!(
        (steps[1].position, steps[1].status),
        (1, StepStatus::Succeeded)
    );
}

#[test]
fn sqlite_inbox_lease_protocol() {
    with_sqlite(inbox_lease_protocol);
}

#[test]
fn postgres_inbox_lease_protocol() {
    with_postgres(inbox_lease_protocol);
}

#[test]
fn sqlite_run_lease_protocol() {
    with_sqlite(run_lease_protocol);
}

#[test]
fn postgres_run_lease_protocol() {
    with_postgres(run_lease_protocol);
}

#[test]
fn sqlite_step_records() {
    with_sqlite(step_records);
}

#[test]
fn postgres_step_records() {
    with_postgres(step_records);
}

#[test]
fn statuses_are_stored_as_their_words() {
    assert_eq!(InboxStatus::Processing.as_str(), "processing");
    assert_eq!("queued".parse::<RunStatus>().unwrap(), RunStatus::Queued);
    assert!("paused".parse::<RunStatus>().is_err());
    assert_eq!(
        serde_json::to_value(StepStatus::Succeeded).unwrap(),
        json!("succeeded")
    );
}
