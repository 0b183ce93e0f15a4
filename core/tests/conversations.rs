//! Conversations, trigger repeats and named locks against real databases: SQLite always,
//! PostgreSQL in a fresh database when TEST_DATABASE_URL is set.
//!
//! What the workers rely on: the deliveries of one chat or order are dispatched one at a time
//! in arrival order and their runs claimed one at a time in the same order, whoever asks; the
//! row that settles hands its conversation on; a trigger repeated within its window is a
//! duplicate, but an order that comes back to a status is not; a lock has one holder at a time
//! until it expires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use diesel::prelude::*;
use serde_json::json;
use support::PgDb;
use svyazka_core::bundles::{self, BundleState, NewBundle};
use svyazka_core::config::Mode;
use svyazka_core::db::schema::{inbox as inbox_rows, locks as lock_rows, providers};
use svyazka_core::db::{self, AnyConnection, now};
use svyazka_core::inbox::{self, Dedup, InboxKind, InboxOutcome, InboxStatus, NewItem, Stored};
use svyazka_core::runs::{self, RunStatus};
use svyazka_core::{conversations, locks};

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
    let Some(pg) = PgDb::create("conv") else {
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
            providers::kind.eq("chatapi"),
            providers::name.eq("wa"),
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

fn message(provider_id: i64, id: &str, chat: &str) -> NewItem {
    NewItem {
        provider_id,
        dedup_key: format!("msg:{id}"),
        kind: InboxKind::IncomingMessage,
        payload: json!({"id": id}).to_string(),
        conversation: Some(conversations::of_chat(chat)),
        dedup: Dedup::Forever,
    }
}

fn trigger(provider_id: i64, order: i64, status: &str, window: Duration) -> NewItem {
    NewItem {
        provider_id,
        dedup_key: format!("order:{order}"),
        kind: InboxKind::RetailcrmTrigger,
        payload: json!({"id": order, "status": status, "event": "status"}).to_string(),
        conversation: Some(conversations::of_order(order)),
        dedup: Dedup::Repeats { window },
    }
}

fn ids(stored: &[Stored]) -> Vec<i64> {
    stored.iter().map(|s| s.id()).collect()
}

fn inbox_in_order(c: &mut AnyConnection) {
    let p = provider(c);
    let stored = inbox::store_batch(
        c,
        &[
            message(p, "a1", "chat-a"),
            message(p, "b1", "chat-b"),
            message(p, "a2", "chat-a"),
            message(p, "a3", "chat-a"),
        ],
    )
    .unwrap();
    let [a1, b1, a2, a3] = ids(&stored)[..] else {
        panic!("four rows")
    };
    assert!(a1 < a2 && a2 < a3, "stored in the order given");

    // The second message of chat A waits for the first; chat B does not.
    assert!(
        inbox::claim(c, a2, LEASE).unwrap().is_none(),
        "not its turn"
    );
    assert!(inbox::claim(c, b1, LEASE).unwrap().is_some());
    assert_eq!(
        inbox::take_due(c, Duration::zero(), 100).unwrap(),
        vec![a1],
        "the sweeper pushes only what may be claimed"
    );
    let first = inbox::claim(c, a1, LEASE).unwrap().expect("first in turn");
    assert!(
        inbox::claim(c, a2, LEASE).unwrap().is_none(),
        "still waits while the first is dispatched"
    );

    // A transient failure of the first keeps the others waiting.
    inbox::retry_later(c, a1, "timeout", now() - Duration::seconds(1)).unwrap();
    assert!(inbox::claim(c, a2, LEASE).unwrap().is_none());
    let first = inbox::claim(c, a1, LEASE).unwrap().unwrap_or(first);

    // Dispatched: it hands on to the next, which is now taken; the sweeper leaves it to the
    // hand-over until the grace has passed.
    inbox::finish(c, a1, None, InboxOutcome::NotListened, None).unwrap();
    assert_eq!(inbox::hand_on(c, &first).unwrap(), Some(a2));
    assert!(
        inbox::take_due(c, Duration::minutes(10), 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(inbox::take_due(c, Duration::zero(), 100).unwrap(), vec![a2]);
    assert!(
        inbox::claim(c, a3, LEASE).unwrap().is_none(),
        "the third waits for the second"
    );
    let second = inbox::claim(c, a2, LEASE).unwrap().expect("its turn");

    // Failed for good also hands on.
    inbox::fail(c, a2, "unreadable").unwrap();
    assert_eq!(inbox::hand_on(c, &second).unwrap(), Some(a3));
    let third = inbox::claim(c, a3, LEASE).unwrap().expect("its turn");
    assert_eq!(third.status, InboxStatus::Processing);
    inbox::finish(c, a3, None, InboxOutcome::NotListened, None).unwrap();
    assert_eq!(inbox::hand_on(c, &third).unwrap(), None, "the last one");
}

fn bundle(c: &mut AnyConnection, p: i64) -> svyazka_core::bundles::Bundle {
    let id = bundles::create(
        c,
        &NewBundle {
            name: "b".into(),
            source_provider_id: p,
            event_type: "incoming_message".into(),
            target_provider_id: p,
            steps: vec![],
        },
    )
    .unwrap();
    bundles::set_state(c, id, BundleState::Running).unwrap();
    bundles::get(c, id).unwrap().unwrap()
}

fn runs_in_order(c: &mut AnyConnection) {
    let p = provider(c);
    let b = bundle(c, p);
    let items = ids(&inbox::store_batch(
        c,
        &[
            message(p, "1", "chat"),
            message(p, "2", "chat"),
            message(p, "3", "chat"),
            message(p, "4", "chat"),
        ],
    )
    .unwrap());
    let conv = conversations::of_run(b.id, &conversations::of_chat("chat"));
    let conv = Some(conv.as_str());
    let event = json!({});
    let first = runs::create_claimed(c, &b.snapshot(), items[0], &event, conv, LEASE)
        .unwrap()
        .expect("created claimed");
    for item in &items[1..] {
        assert_eq!(
            runs::waits_for(c, conv, *item).unwrap(),
            Some(first.id),
            "behind the first"
        );
        let waiting = runs::create_waiting(c, &b.snapshot(), *item, &event, conv).unwrap();
        assert_eq!(
            runs::queued_for_inbox(c, *item).unwrap(),
            Vec::from_iter(waiting)
        );
        assert_eq!(
            runs::create_waiting(c, &b.snapshot(), *item, &event, conv).unwrap(),
            None,
            "created once"
        );
    }
    let waiting: Vec<i64> = items[1..]
        .iter()
        .map(|i| runs::queued_for_inbox(c, *i).unwrap()[0])
        .collect();
    let [r2, r3, r4] = waiting[..] else {
        panic!("three waiting")
    };
    assert!(runs::claim(c, r2, LEASE).unwrap().is_none(), "not its turn");
    assert!(
        runs::take_due(c, Duration::zero(), 100).unwrap().is_empty(),
        "nothing for the sweeper while the first runs"
    );
    assert_eq!(runs::waiting_behind(c, conv, items[0]).unwrap(), 3);

    // A retry keeps its place: the ones behind keep waiting.
    runs::retry_later(c, first.id, "503", now() - Duration::seconds(1)).unwrap();
    assert!(runs::claim(c, r2, LEASE).unwrap().is_none());
    assert_eq!(
        runs::take_due(c, Duration::zero(), 100).unwrap(),
        vec![first.id],
        "only the head is due"
    );
    runs::claim(c, first.id, LEASE).unwrap().expect("retried");

    // Succeeded: hands on to the second; the sweeper leaves it to the hand-over until the grace
    // has passed (its worker died in between).
    runs::succeed(c, first.id).unwrap();
    assert_eq!(runs::hand_on(c, conv, items[0]).unwrap(), Some(r2));
    assert!(
        runs::take_due(c, Duration::minutes(10), 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(runs::take_due(c, Duration::zero(), 100).unwrap(), vec![r2]);
    assert!(runs::claim(c, r3, LEASE).unwrap().is_none());
    runs::claim(c, r2, LEASE).unwrap().expect("its turn");

    // Failed for good: the next goes on.
    runs::fail(c, r2, "chat not found").unwrap();
    assert_eq!(runs::hand_on(c, conv, items[1]).unwrap(), Some(r3));
    runs::claim(c, r3, LEASE).unwrap().expect("its turn");
    // Waiting for a retry, the admin skips it: the fourth goes on.
    runs::retry_later(c, r3, "503", now() + Duration::hours(1)).unwrap();
    assert_eq!(runs::waits_for(c, conv, items[3]).unwrap(), Some(r3));
    let r3_row = runs::get(c, r3).unwrap().unwrap();
    assert!(runs::can_replay(&r3_row) && runs::can_skip(&r3_row));
    assert_eq!(runs::skip(c, r3).unwrap(), Some(Some(r4)));
    assert_eq!(
        runs::get(c, r3).unwrap().unwrap().status,
        RunStatus::Skipped
    );
    assert_eq!(runs::skip(c, r3).unwrap(), None, "skipped once");
    let fourth = runs::claim(c, r4, LEASE).unwrap().expect("its turn");
    assert_eq!(
        runs::skip(c, fourth.id).unwrap(),
        None,
        "not while a worker holds it"
    );

    // Replaying the failed second puts it back in line: later runs not yet started wait.
    runs::succeed(c, r4).unwrap();
    assert!(runs::replay(c, r2).unwrap());
    assert!(runs::claim(c, r2, LEASE).unwrap().is_some());

    // Runs from before conversations (no key) never wait.
    let item = inbox::store(c, p, "msg:old", InboxKind::IncomingMessage, &json!({}))
        .unwrap()
        .id();
    assert!(runs::create(c, &b.snapshot(), item, &event).unwrap());
    let old = runs::queued_for_inbox(c, item).unwrap()[0];
    assert!(runs::claim(c, old, LEASE).unwrap().is_some());
}

/// A settle looks for the next row of its conversation only when a row waits for it, and a
/// waiter that comes too late for the mark finds the row settled and goes on by itself.
fn settles_look_only_when_waited_on(c: &mut AnyConnection) {
    let p = provider(c);
    let stored = inbox::store_batch(
        c,
        &[
            message(p, "a1", "chat-a"),
            message(p, "b1", "chat-b"),
            message(p, "a2", "chat-a"),
        ],
    )
    .unwrap();
    let [a1, b1, a2] = ids(&stored)[..] else {
        panic!("three rows")
    };
    let first = inbox::claim_or_wait(c, a1, LEASE)
        .unwrap()
        .expect("in turn");
    assert!(inbox::claim_or_wait(c, a2, LEASE).unwrap().is_none());
    inbox::claim_or_wait(c, b1, LEASE)
        .unwrap()
        .expect("in turn");
    assert!(
        !inbox::finish(c, b1, None, InboxOutcome::NotListened, None).unwrap(),
        "nobody waits in chat B"
    );
    assert!(
        inbox::finish(c, a1, None, InboxOutcome::NotListened, None).unwrap(),
        "the second message of chat A waits"
    );
    assert_eq!(inbox::hand_on(c, &first).unwrap(), Some(a2));
    inbox::claim_or_wait(c, a2, LEASE)
        .unwrap()
        .expect("its turn");
    assert!(!inbox::finish(c, a2, None, InboxOutcome::NotListened, None).unwrap());

    let b = bundle(c, p);
    let items = ids(&inbox::store_batch(
        c,
        &[
            message(p, "r1", "chat-r"),
            message(p, "r2", "chat-r"),
            message(p, "r3", "chat-r"),
            message(p, "s1", "chat-s"),
        ],
    )
    .unwrap());
    let conv = |chat| conversations::of_run(b.id, &conversations::of_chat(chat));
    let (r, s) = (conv("chat-r"), conv("chat-s"));
    let event = json!({});
    let r1 = runs::create_claimed(c, &b.snapshot(), items[0], &event, Some(&r), LEASE)
        .unwrap()
        .expect("created");
    // Queued without a mark (as a replay leaves the runs behind it): its refused claim marks.
    let r2 = runs::create_waiting(c, &b.snapshot(), items[1], &event, Some(&r))
        .unwrap()
        .expect("created");
    assert!(runs::claim_or_wait(c, r2, LEASE).unwrap().is_none());
    // A dispatch creating the third marks the two before it.
    assert!(runs::wait_behind(c, Some(&r), items[2]).unwrap());
    let r3 = runs::create_waiting(c, &b.snapshot(), items[2], &event, Some(&r))
        .unwrap()
        .expect("created");
    assert!(!runs::wait_behind(c, Some(&s), items[3]).unwrap());
    let s1 = runs::create_claimed(c, &b.snapshot(), items[3], &event, Some(&s), LEASE)
        .unwrap()
        .expect("created");
    assert!(!runs::succeed(c, s1.id).unwrap(), "an independent run");
    assert!(runs::succeed(c, r1.id).unwrap(), "the second waits for it");
    assert_eq!(runs::hand_on(c, Some(&r), items[0]).unwrap(), Some(r2));
    runs::claim_or_wait(c, r2, LEASE)
        .unwrap()
        .expect("its turn");
    assert!(runs::succeed(c, r2).unwrap(), "the third waits for it");
    assert_eq!(runs::hand_on(c, Some(&r), items[1]).unwrap(), Some(r3));
    runs::claim_or_wait(c, r3, LEASE)
        .unwrap()
        .expect("its turn");
    assert!(!runs::succeed(c, r3).unwrap(), "the last one");
}

/// The race the mark closes: a later row's claim is refused while the earlier row's settle is
/// in flight; once the settle commits, the waiter is either handed on or goes on by itself.
fn waiter_and_settle_race(pool: &db::Pool) {
    let mut c = db::checkout(pool).unwrap();
    let c = &mut c;
    let p = provider(c);
    let stored =
        inbox::store_batch(c, &[message(p, "x1", "chat-x"), message(p, "x2", "chat-x")]).unwrap();
    let [x1, x2] = ids(&stored)[..] else {
        panic!("two rows")
    };
    let first = inbox::claim_or_wait(c, x1, LEASE)
        .unwrap()
        .expect("in turn");
    let (settling, settled) = std::sync::mpsc::channel();
    let waiter = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let mut other = db::checkout(pool).unwrap();
            settling.send(()).unwrap();
            inbox::claim_or_wait(&mut other, x2, LEASE).unwrap()
        });
        settled.recv().unwrap();
        let waited_on = c
            .transaction::<_, db::DbError, _>(|c| {
                let waited_on = inbox::finish(c, x1, None, InboxOutcome::NotListened, None)?;
                // The waiter runs now, against the uncommitted settle.
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok(waited_on)
            })
            .unwrap();
        let handed = if waited_on {
            inbox::hand_on(c, &first).unwrap()
        } else {
            None
        };
        let claimed = waiter.join().unwrap();
        (handed, claimed)
    });
    match waiter {
        (Some(next), None) => assert_eq!(next, x2, "handed on"),
        (None, Some(item)) => assert_eq!(item.id, x2, "went on by itself"),
        other => panic!("the second row was lost or doubled: {other:?}"),
    }
}

fn trigger_repeats(c: &mut AnyConnection) {
    let p = provider(c);
    let w = Duration::minutes(10);
    let store = |c: &mut AnyConnection, items: &[NewItem]| inbox::store_batch(c, items).unwrap();

    // A → A (RetailCRM repeating itself) → B → A: three events.
    let a = store(c, &[trigger(p, 7, "a", w)])[0];
    assert!(matches!(a, Stored::New(_)));
    assert_eq!(
        store(c, &[trigger(p, 7, "a", w)])[0],
        Stored::Duplicate(a.id())
    );
    let b = store(c, &[trigger(p, 7, "b", w)])[0];
    assert!(matches!(b, Stored::New(id) if id > a.id()));
    let a2 = store(c, &[trigger(p, 7, "a", w)])[0];
    assert!(matches!(a2, Stored::New(id) if id > b.id()), "{a2:?}");
    assert_eq!(
        store(c, &[trigger(p, 7, "a", w)])[0],
        Stored::Duplicate(a2.id())
    );
    // Other orders and providers are not affected.
    assert!(matches!(
        store(c, &[trigger(p, 8, "a", w)])[0],
        Stored::New(_)
    ));
    let q = provider(c);
    assert!(matches!(
        store(c, &[trigger(q, 7, "a", w)])[0],
        Stored::New(_)
    ));

    // Two changes of one order in one batch are both stored, in order; a repeat in it is not.
    let got = store(
        c,
        &[
            trigger(p, 9, "a", w),
            trigger(p, 9, "a", w),
            trigger(p, 9, "b", w),
            trigger(p, 9, "a", w),
        ],
    );
    assert!(matches!(got[0], Stored::New(_)));
    assert_eq!(got[1], Stored::Duplicate(got[0].id()));
    assert!(matches!(got[2], Stored::New(id) if id > got[0].id()));
    assert!(matches!(got[3], Stored::New(id) if id > got[2].id()));

    // After the window the same trigger runs again.
    let old = store(c, &[trigger(p, 10, "a", w)])[0];
    diesel::update(inbox_rows::table.find(old.id()))
        .set(inbox_rows::created_at.eq(now() - Duration::minutes(11)))
        .execute(c)
        .unwrap();
    assert!(matches!(
        store(c, &[trigger(p, 10, "a", w)])[0],
        Stored::New(id) if id > old.id()
    ));

    // A message id stays a duplicate however late.
    let m = store(c, &[message(p, "x", "chat")])[0];
    diesel::update(inbox_rows::table.find(m.id()))
        .set(inbox_rows::created_at.eq(now() - Duration::days(30)))
        .execute(c)
        .unwrap();
    assert_eq!(
        store(c, &[message(p, "x", "chat")])[0],
        Stored::Duplicate(m.id())
    );
}

/// One statement claims a whole queue message's items, each conversation's first only; the
/// others are marked as waited on, as a single claim would have done.
fn batch_claims_keep_the_turn(c: &mut AnyConnection) {
    let p = provider(c);
    let stored = inbox::store_batch(
        c,
        &[
            message(p, "a1", "chat-a"),
            message(p, "b1", "chat-b"),
            message(p, "a2", "chat-a"),
            message(p, "c1", "chat-c"),
        ],
    )
    .unwrap();
    let [a1, b1, a2, c1] = ids(&stored)[..] else {
        panic!("four rows")
    };
    let claimed: Vec<i64> = inbox::claim_many(c, &[a1, b1, a2, c1], LEASE)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(
        claimed,
        vec![a1, b1, c1],
        "one per conversation, in id order"
    );
    assert!(inbox::wait_or_claim(c, a2, LEASE).unwrap().is_none());
    let waited: bool = inbox_rows::table
        .find(a1)
        .select(inbox_rows::waited_on)
        .first(c)
        .unwrap();
    assert!(waited, "a1 knows a2 waits for it");
    assert!(
        inbox::claim_many(c, &[a1, b1], LEASE).unwrap().is_empty(),
        "held rows are not claimed twice"
    );
    // A lease that is still ours is renewed; one that is not any more (another worker took
    // it after it expired) is not.
    let held = inbox::get(c, b1).unwrap().unwrap().lease_until.unwrap();
    assert!(inbox::renew(c, b1, held, LEASE).unwrap());
    assert!(
        !inbox::renew(c, b1, held, LEASE).unwrap(),
        "the old stamp is not ours any more"
    );
    // A stopping worker gives an unstarted claim back: waiting, its attempt returned.
    inbox::release(c, c1).unwrap();
    let again = inbox::claim(c, c1, LEASE)
        .unwrap()
        .expect("claimable again");
    assert_eq!(again.attempts, 1);
}

/// Two processes' caches over one database: an edit made through either is seen by the other
/// at its next look-up, and nothing unchanged is read again.
fn bundle_cache_sees_every_edit(c: &mut AnyConnection) {
    use svyazka_core::bundles::cache::BundleCache;
    let p = provider(c);
    let b = bundle(c, p);
    let (web, worker) = (BundleCache::default(), BundleCache::default());
    let first = worker.running_for_source(c, p).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].snapshot, b.snapshot());
    let again = worker.running_for_source(c, p).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "unchanged: kept, not parsed again"
    );

    bundles::rename(c, b.id, "переименована").unwrap();
    let renamed = worker.running_for_source(c, p).unwrap();
    assert_eq!(renamed[0].bundle.name, "переименована");
    assert!(
        renamed[0].snapshot.json.contains("переименована"),
        "runs store the new name"
    );

    bundles::set_status_filter(c, b.id, &["new".to_string()]).unwrap();
    assert_eq!(
        web.running_for_source(c, p).unwrap()[0]
            .bundle
            .status_filter,
        ["new"]
    );
    assert_eq!(
        worker.running_for_source(c, p).unwrap()[0]
            .bundle
            .status_filter,
        ["new"]
    );

    bundles::set_state(c, b.id, BundleState::Stopped).unwrap();
    assert!(
        worker.running_for_source(c, p).unwrap().is_empty(),
        "stopped: no runs"
    );
    bundles::set_state(c, b.id, BundleState::Running).unwrap();
    let second = bundle(c, p);
    let both = worker.running_for_source(c, p).unwrap();
    assert_eq!(
        both.iter().map(|l| l.bundle.id).collect::<Vec<_>>(),
        [b.id, second.id]
    );
    bundles::delete(c, b.id).unwrap();
    let left = worker.running_for_source(c, p).unwrap();
    assert_eq!(
        left.iter().map(|l| l.bundle.id).collect::<Vec<_>>(),
        [second.id]
    );
}

/// The dispatcher's one call: the first run of a conversation is created claimed, a later one
/// queued behind it (which is marked as waited on, so its settle hands the later one on), a
/// run of another conversation claimed beside them, and nothing twice.
fn runs_created_in_turn(c: &mut AnyConnection) {
    use svyazka_core::db::schema::runs as run_rows;
    let p = provider(c);
    let b = bundle(c, p).snapshot();
    let items = ids(&inbox::store_batch(
        c,
        &[
            message(p, "1", "chat"),
            message(p, "2", "chat"),
            message(p, "3", "other"),
        ],
    )
    .unwrap());
    let conv = |chat: &str| conversations::of_run(b.bundle_id, &conversations::of_chat(chat));
    let (chat, other) = (conv("chat"), conv("other"));
    let event = json!({"n": 1});
    let first = runs::create_in_turn(c, &b, items[0], &event, Some(&chat), LEASE)
        .unwrap()
        .expect("its turn: claimed");
    assert_eq!(first.status, RunStatus::Running);
    assert_eq!(first.attempts, 1);
    assert!(first.lease_until.is_some() && first.started_at.is_some());
    assert_eq!(first.definition, b.json);

    assert!(
        runs::create_in_turn(c, &b, items[1], &event, Some(&chat), LEASE)
            .unwrap()
            .is_none(),
        "behind the first: waiting"
    );
    let second = runs::queued_for_inbox(c, items[1]).unwrap();
    assert_eq!(second.len(), 1, "created queued");
    let marked: bool = run_rows::table
        .find(first.id)
        .select(run_rows::waited_on)
        .first(c)
        .unwrap();
    assert!(marked, "the first knows the second waits for it");
    assert!(
        runs::create_in_turn(c, &b, items[1], &event, Some(&chat), LEASE)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        runs::queued_for_inbox(c, items[1]).unwrap(),
        second,
        "created once"
    );

    let beside = runs::create_in_turn(c, &b, items[2], &event, Some(&other), LEASE)
        .unwrap()
        .expect("another conversation: claimed at once");
    assert_eq!(beside.status, RunStatus::Running);

    assert!(runs::succeed(c, first.id).unwrap(), "waited on");
    assert_eq!(
        runs::hand_on(c, Some(&chat), items[0]).unwrap(),
        Some(second[0]),
        "the settle hands the second on"
    );
}

fn named_locks(c: &mut AnyConnection) {
    let ttl = std::time::Duration::from_secs(60);
    assert!(locks::try_take(c, "contact:1", "one", ttl).unwrap());
    assert!(!locks::try_take(c, "contact:1", "two", ttl).unwrap());
    assert!(
        locks::try_take(c, "contact:2", "two", ttl).unwrap(),
        "other names are free"
    );
    assert!(
        locks::try_take(c, "contact:1", "one", ttl).unwrap(),
        "renewed by its holder"
    );
    locks::release(c, "contact:1", "two").unwrap();
    assert!(
        !locks::try_take(c, "contact:1", "two", ttl).unwrap(),
        "only the holder releases"
    );
    locks::release(c, "contact:1", "one").unwrap();
    assert!(locks::try_take(c, "contact:1", "two", ttl).unwrap());
    // Its holder died: once expired it is anybody's.
    diesel::update(lock_rows::table.find("contact:1"))
        .set(lock_rows::lock_until.eq(now() - Duration::seconds(1)))
        .execute(c)
        .unwrap();
    assert!(locks::try_take(c, "contact:1", "three", ttl).unwrap());
}

#[test]
fn sqlite_inbox_in_order() {
    with_sqlite(inbox_in_order);
}

#[test]
fn postgres_inbox_in_order() {
    with_postgres(inbox_in_order);
}

#[test]
fn sqlite_runs_in_order() {
    with_sqlite(runs_in_order);
}

#[test]
fn postgres_runs_in_order() {
    with_postgres(runs_in_order);
}

#[test]
fn sqlite_trigger_repeats() {
    with_sqlite(trigger_repeats);
}

#[test]
fn postgres_trigger_repeats() {
    with_postgres(trigger_repeats);
}

#[test]
fn sqlite_named_locks() {
    with_sqlite(named_locks);
}

#[test]
fn postgres_named_locks() {
    with_postgres(named_locks);
}

#[test]
fn sqlite_settles_look_only_when_waited_on() {
    with_sqlite(settles_look_only_when_waited_on);
}

#[test]
fn postgres_settles_look_only_when_waited_on() {
    with_postgres(settles_look_only_when_waited_on);
}

#[test]
fn sqlite_waiter_and_settle_race() {
    let dir = tempfile::tempdir().unwrap();
    let mode = Mode::Embedded {
        db_path: dir.path().join("svyazka.db"),
    };
    waiter_and_settle_race(&db::connect(&mode, 2).unwrap());
}

#[test]
fn postgres_waiter_and_settle_race() {
    let Some(pg) = PgDb::create("convrace") else {
        return;
    };
    let mode = Mode::Queue {
        database_url: pg.url.clone(),
        redis_url: String::new(),
    };
    let pool = db::connect(&mode, 2).unwrap();
    waiter_and_settle_race(&pool);
    drop(pool);
}

#[test]
fn sqlite_batch_claims_keep_the_turn() {
    with_sqlite(batch_claims_keep_the_turn);
}

#[test]
fn postgres_batch_claims_keep_the_turn() {
    with_postgres(batch_claims_keep_the_turn);
}

#[test]
fn sqlite_bundle_cache_sees_every_edit() {
    with_sqlite(bundle_cache_sees_every_edit);
}

#[test]
fn postgres_bundle_cache_sees_every_edit() {
    with_postgres(bundle_cache_sees_every_edit);
}

#[test]
fn sqlite_runs_created_in_turn() {
    with_sqlite(runs_created_in_turn);
}

#[test]
fn postgres_runs_created_in_turn() {
    with_postgres(runs_created_in_turn);
}
