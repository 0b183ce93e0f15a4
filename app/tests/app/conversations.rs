//! Conversations in order: a customer who writes several messages at once gets one contact and
//! one deal, and the shop's chat shows the messages in the order they were written; an order
//! whose status comes back runs again, a repeated delivery does not; a run that keeps failing
//! holds its conversation until it succeeds, fails for good, or the admin skips it.
//!
//! SQLite runs the embedded worker; PostgreSQL + Redis runs two `svyazka worker` processes
//! behind a web process that only enqueues.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::json;
use svyazka_testkit::retailcrm::MgMessageRecord;

use crate::both_backends;
use crate::support::*;

/// Settings for bursts: no client-side rate limit in the way, quick retries.
const BURST: [(&str, &str); 3] = [
    ("SVYAZKA_RETAILCRM_RPS", "10000"),
    ("SVYAZKA_WORKER_CONCURRENCY", "16"),
    ("SVYAZKA_BACKOFF_MS", "200"),
];

/// The app for `backend` with its workers: the embedded one on SQLite; two worker processes
/// (web only enqueues) on PostgreSQL.
async fn app_with_workers(
    backend: Backend,
    extra: &[(&str, &str)],
) -> Option<(TestApp, Vec<AppProcess>)> {
    let mut settings: Vec<(&str, &str)> = extra.to_vec();
    if backend == Backend::Postgres {
        settings.push(("SVYAZKA_EMBEDDED_WORKER", "false"));
    }
    let app = TestApp::spawn_with(backend, &settings).await?;
    app.setup_admin().await;
    let mut workers = Vec::new();
    if backend == Backend::Postgres {
        let mut vars = app.db.vars();
        for (k, v) in &settings {
            vars.insert((*k).into(), (*v).into());
        }
        workers.push(AppProcess::worker(&vars));
        workers.push(AppProcess::worker(&vars));
    }
    Some((app, workers))
}

fn phone(customer: usize) -> String {
    format!("7995{customer:07}")
}

fn text(customer: usize, message: usize) -> String {
    format!("Клиент {customer}: сообщение {message}")
}

/// `customers` new customers each write `messages` messages, one right after the other (the
/// next as soon as the webhook of the previous was answered, as a gateway delivers one chat),
/// all customers at the same time.
async fn burst(fakes: &Fakes, url: &str, customers: usize, messages: usize) {
    let writers = (0..customers).map(|c| async move {
        for m in 0..messages {
            let status = fakes
                .wa
                .post_incoming(url, &phone(c), &format!("Клиент {c}"), &text(c, m))
                .await
                .unwrap();
            assert_eq!(status.as_u16(), 200);
        }
    });
    futures::future::join_all(writers).await;
}

/// What the shop sees in RetailCRM after a burst: exactly one customer and one deal per
/// customer, every message once in its customer's chat, in the order written.
fn assert_one_contact_one_deal_messages_in_order(fakes: &Fakes, customers: usize, messages: usize) {
    let mut per_phone: HashMap<String, Vec<i64>> = HashMap::new();
    for c in fakes.crm.customers() {
        let number = c["phones"][0]["number"].as_str().unwrap_or_default();
        per_phone
            .entry(number.trim_start_matches('+').to_string())
            .or_default()
            .push(c["id"].as_i64().unwrap());
    }
    let doubled: Vec<_> = per_phone.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(doubled.is_empty(), "customers created twice: {doubled:?}");
    assert_eq!(per_phone.len(), customers, "one customer per phone");
    let mut deals: HashMap<i64, usize> = HashMap::new();
    for o in fakes.crm.orders() {
        *deals
            .entry(o["customer"]["id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert!(
        deals.values().all(|n| *n == 1),
        "one deal per customer: {deals:?}"
    );
    assert_eq!(deals.len(), customers, "every customer has a deal");

    let chats = chats(&fakes.crm.mg_messages());
    assert_eq!(chats.len(), customers, "one chat per customer");
    for (chat, texts) in &chats {
        let customer = texts[0]
            .strip_prefix("Клиент ")
            .and_then(|t| t.split(':').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("unexpected text in {chat}: {texts:?}"));
        let expected: Vec<String> = (0..messages).map(|m| text(customer, m)).collect();
        assert_eq!(
            texts, &expected,
            "chat {chat}: every message once, in order"
        );
    }
}

/// Texts per MG chat, in the order MG received them.
fn chats(messages: &[MgMessageRecord]) -> BTreeMap<String, Vec<String>> {
    let mut chats: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in messages {
        chats
            .entry(m.external_chat_id.clone())
            .or_default()
            .push(m.text.clone());
    }
    chats
}

both_backends!(
    fifty_new_customers_writing_five_messages_at_once,
    |backend| async move {
        let Some((app, _workers)) = app_with_workers(backend, &BURST).await else {
            return;
        };
        let fakes = Fakes::start();
        // A little latency, so that runs of one chat would overlap if nothing kept them apart.
        fakes.crm.set_latency(Some(Duration::from_millis(5)));
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let url = app.hook_url(wa).await;
        let (customers, messages) = (50, 5);
        burst(&fakes, &url, customers, messages).await;
        let runs = app
            .settled_runs(customers * messages, Duration::from_secs(120))
            .await;
        let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
        assert!(failed.is_empty(), "every run succeeded: {failed:?}");
        assert_eq!(runs.len(), customers * messages);
        assert_eq!(fakes.crm.mg_messages().len(), customers * messages);
        assert_one_contact_one_deal_messages_in_order(&fakes, customers, messages);
        app.stop().await;
    }
);

// Two bundles creating contacts from the same messages (each its own conversation, so their
// runs overlap): the find-or-create of one phone is serialized, one customer per phone.
both_backends!(
    two_bundles_creating_the_same_contact_make_one_customer,
    |backend| async move {
        let Some((app, _workers)) = app_with_workers(backend, &BURST).await else {
            return;
        };
        let fakes = Fakes::start();
        fakes.crm.set_latency(Some(Duration::from_millis(10)));
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let contact = || {
            vec![step(
                "new_contact",
                vec![
                    ("phone", event_field("sender_id")),
                    ("name", event_field("sender_name")),
                ],
            )]
        };
        app.bundle(wa, "incoming_message", &[], crm, contact())
            .await;
        app.bundle(wa, "incoming_message", &[], crm, contact())
            .await;
        let url = app.hook_url(wa).await;
        let customers = 20;
        burst(&fakes, &url, customers, 1).await;
        let runs = app
            .settled_runs(2 * customers, Duration::from_secs(60))
            .await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        let all = fakes.crm.customers();
        assert_eq!(
            all.len(),
            customers,
            "one customer per phone, not one per bundle"
        );
        app.stop().await;
    }
);

async fn status_message_bundle(app: &TestApp, fakes: &Fakes) -> String {
    let crm = app.add_retailcrm(fakes).await;
    let wa = app.add_chatapi(fakes).await;
    app.bundle(
        crm,
        "deal_status_changed",
        &[],
        wa,
        vec![step(
            "send_message",
            vec![
                ("recipient", event_field("phone")),
                ("text", template("Статус заказа: {{ status }}")),
            ],
        )],
    )
    .await;
    app.hook_url(crm).await
}

both_backends!(
    an_order_that_comes_back_to_a_status_runs_again_a_repeat_does_not,
    |backend| async move {
        // A short repeat window, to see a repeat after it run again.
        let mut extra = BURST.to_vec();
        extra.push(("SVYAZKA_TRIGGER_REPEAT_MS", "2000"));
        let Some((app, _workers)) = app_with_workers(backend, &extra).await else {
            return;
        };
        let fakes = Fakes::start();
        fakes.wa.set_latency(Duration::from_millis(20));
        let url = status_message_bundle(&app, &fakes).await;
        let order = fakes
            .crm
            .insert_order(
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79994445566"}),
            )
            .unwrap();
        // A → B → A, fired back to back, and RetailCRM repeating the last one at once.
        for status in [
            "send-to-delivery",
            "delivering",
            "send-to-delivery",
            "send-to-delivery",
        ] {
            let reply = fakes
                .crm
                .change_status_and_fire(&url, order, status)
                .await
                .unwrap();
            assert_eq!(reply.status, 200);
        }
        let runs = app.settled_runs(3, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.runs().await.len(), 3, "the repeat ran nothing");
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        let sent: Vec<String> = fakes
            .wa
            .sent_messages()
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(
            sent,
            [
                "Статус заказа: send-to-delivery",
                "Статус заказа: delivering",
                "Статус заказа: send-to-delivery"
            ],
            "three runs, in the order of the changes"
        );

        // Past the window, the same trigger is an event again.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let reply = fakes
            .crm
            .change_status_and_fire(&url, order, "send-to-delivery")
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        app.settled_runs(4, Duration::from_secs(30)).await;
        assert_eq!(fakes.wa.sent_count(), 4);
        app.stop().await;
    }
);

both_backends!(
    a_message_delivered_three_times_runs_once,
    |backend| async move {
        let Some((app, _workers)) = app_with_workers(backend, &BURST).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let url = app.hook_url(wa).await;
        fakes
            .wa
            .post_incoming(&url, "79993332211", "Ольга", "Здравствуйте")
            .await
            .unwrap();
        for _ in 0..2 {
            let status = fakes.wa.redeliver_last().await.unwrap().unwrap();
            assert_eq!(status.as_u16(), 200, "a redelivery is acknowledged");
        }
        let runs = app.settled_runs(1, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.runs().await.len(), 1, "one run: {runs:?}");
        assert_eq!(app.inbox_count().await, 1);
        assert_eq!(fakes.crm.mg_messages().len(), 1);
        app.stop().await;
    }
);

async fn run_page(app: &TestApp, id: i64) -> String {
    let (status, html) = app.get_html(&format!("/runs/{id}")).await;
    assert_eq!(status, 200);
    unescape(&html)
}

/// The run of inbox row `n` (in arrival order) once it exists.
async fn nth_run(app: &TestApp, n: usize) -> svyazka_core::runs::Run {
    eventually(Duration::from_secs(20), || async {
        let mut runs = app.runs().await;
        runs.sort_by_key(|r| r.inbox_id);
        runs.get(n).cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no run {n}"))
}

async fn wait_status(app: &TestApp, id: i64, status: &str) -> svyazka_core::runs::Run {
    eventually(Duration::from_secs(30), || async {
        let run = app
            .core()
            .db(move |c| svyazka_core::runs::get(c, id))
            .await
            .unwrap()?;
        (run.status == status).then_some(run)
    })
    .await
    .unwrap_or_else(|| panic!("run {id} never became {status}"))
}

both_backends!(
    a_retrying_run_holds_its_conversation_until_replayed_or_skipped,
    |backend| async move {
        // Back-off long enough that a failed attempt waits while the test looks.
        let extra = [
            ("SVYAZKA_RETAILCRM_RPS", "10000"),
            ("SVYAZKA_BACKOFF_MS", "120000"),
        ];
        let Some((app, _workers)) = app_with_workers(backend, &extra).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let url = app.hook_url(wa).await;
        let write = |t: &'static str| fakes.wa.post_incoming(&url, "79997770011", "Пётр", t);

        // The first message's run meets a RetailCRM error and waits for its retry.
        fakes.crm.fail_next(1, 500);
        write("Первое").await.unwrap();
        let first = nth_run(&app, 0).await;
        let first = eventually(Duration::from_secs(20), || async {
            let id = first.id;
            let run = app
                .core()
                .db(move |c| svyazka_core::runs::get(c, id))
                .await
                .unwrap()?;
            (run.status == "queued" && run.error.is_some()).then_some(run)
        })
        .await
        .expect("the first run waits for its retry");
        write("Второе").await.unwrap();
        let second = nth_run(&app, 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(wait_status(&app, second.id, "queued").await.attempts, 0);
        assert!(
            fakes.crm.mg_messages().is_empty(),
            "nothing overtook the first"
        );

        // The pages say who waits for whom, and what the admin can do.
        let html = run_page(&app, second.id).await;
        assert!(
            html.contains(&format!(
                "Ждёт завершения запуска <a href=\"/runs/{}\">{}</a>",
                first.id, first.id
            )),
            "{html}"
        );
        let html = run_page(&app, first.id).await;
        assert!(html.contains("id=\"run-next-attempt\""), "{html}");
        assert!(html.contains("чат 79997770011@c.us"), "{html}");
        assert!(html.contains("<span id=\"run-behind\">1</span>"), "{html}");
        assert!(html.contains("id=\"replay-form\"") && html.contains("id=\"skip-form\""));

        // Replay: the first tries again now, succeeds, and the second follows.
        let r = app
            .submit(
                &format!("/runs/{}", first.id),
                &format!("/runs/{}/replay", first.id),
                &[],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);
        wait_status(&app, second.id, "succeeded").await;
        assert_eq!(wait_status(&app, first.id, "succeeded").await.id, first.id);
        let texts: Vec<String> = fakes
            .crm
            .mg_messages()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["Первое", "Второе"]);

        // Skip: the third keeps failing; the admin gives it up and the fourth goes on.
        fakes.crm.fail_next(1, 500);
        write("Третье").await.unwrap();
        let third = nth_run(&app, 2).await;
        eventually(Duration::from_secs(20), || async {
            let id = third.id;
            let run = app
                .core()
                .db(move |c| svyazka_core::runs::get(c, id))
                .await
                .unwrap()?;
            run.error.is_some().then_some(())
        })
        .await
        .expect("the third run waits for its retry");
        write("Четвёртое").await.unwrap();
        let fourth = nth_run(&app, 3).await;
        let r = app
            .submit(
                &format!("/runs/{}", third.id),
                &format!("/runs/{}/skip", third.id),
                &[],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);
        wait_status(&app, fourth.id, "succeeded").await;
        let third = wait_status(&app, third.id, "skipped").await;
        assert!(third.finished_at.is_some());
        let html = run_page(&app, third.id).await;
        assert!(
            html.contains("<span class=\"badge skipped\" id=\"run-status\">пропущен</span>"),
            "{html}"
        );
        assert!(!html.contains("id=\"skip-form\""), "skipped once");
        let texts: Vec<String> = fakes
            .crm
            .mg_messages()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(texts, ["Первое", "Второе", "Четвёртое"]);
        // Skipping a settled run is refused with a reason.
        let r = app
            .submit(
                &format!("/runs/{}", third.id),
                &format!("/runs/{}/skip", fourth.id),
                &[],
            )
            .await;
        assert_eq!(r.status().as_u16(), 409);
        assert!(unescape(&r.text().await.unwrap()).contains("Пропустить можно только запуск"));
        app.stop().await;
    }
);

/// A worker killed with SIGKILL in the middle of a conversational burst: its runs come back
/// when their leases expire, their conversations continue in order behind them, and every
/// customer still has one contact, one deal and every message once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_worker_during_a_conversational_burst_keeps_each_conversation_in_order() {
    let extra = [
        ("SVYAZKA_RETAILCRM_RPS", "10000"),
        ("SVYAZKA_LEASE_MS", "3000"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
        ("SVYAZKA_BACKOFF_MS", "200"),
    ];
    let Some((app, mut workers)) = app_with_workers(Backend::Postgres, &extra).await else {
        return;
    };
    let fakes = Fakes::start();
    fakes.crm.set_latency(Some(Duration::from_millis(10)));
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
        .await;
    let url = app.hook_url(wa).await;
    let (customers, messages) = if long_faults() { (200, 5) } else { (30, 5) };
    let kill = async {
        // Once the burst is under way, and runs are in flight.
        eventually(Duration::from_secs(30), || async {
            (fakes.crm.mg_messages().len() >= customers).then_some(())
        })
        .await;
        workers[0].kill9();
    };
    futures::join!(burst(&fakes, &url, customers, messages), kill);
    let runs = app
        .settled_runs(customers * messages, Duration::from_secs(180))
        .await;
    let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
    assert!(failed.is_empty(), "every run succeeded: {failed:?}");
    assert_one_contact_one_deal_messages_in_order(&fakes, customers, messages);
    app.stop().await;
}

/// A worker stopped with SIGTERM (a rolling upgrade) in the middle of a conversational burst:
/// it hands back the runs and deliveries it would have continued with, so the other worker
/// goes on at once rather than after the 60 s lease, and every conversation stays in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_worker_during_a_conversational_burst_hands_its_conversations_on() {
    let extra = [
        ("SVYAZKA_RETAILCRM_RPS", "10000"),
        ("SVYAZKA_LEASE_MS", "60000"),
        ("SVYAZKA_REQUEUE_GRACE_MS", "60000"),
        ("SVYAZKA_WORKER_CONCURRENCY", "8"),
    ];
    let Some((app, mut workers)) = app_with_workers(Backend::Postgres, &extra).await else {
        return;
    };
    let fakes = Fakes::start();
    fakes.crm.set_latency(Some(Duration::from_millis(10)));
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
        .await;
    let url = app.hook_url(wa).await;
    let (customers, messages) = (30, 5);
    let started = std::time::Instant::now();
    let stop = async {
        eventually(Duration::from_secs(30), || async {
            (fakes.crm.mg_messages().len() >= customers).then_some(())
        })
        .await;
        workers[0].terminate();
    };
    futures::join!(burst(&fakes, &url, customers, messages), stop);
    let status = workers[0].wait_exit(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "the worker stops cleanly: {status:?}"
    );
    let runs = app
        .settled_runs(customers * messages, Duration::from_secs(50))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "handed on at once, not after the lease or the re-enqueue grace"
    );
    let failed: Vec<_> = runs.iter().filter(|r| r.status != "succeeded").collect();
    assert!(failed.is_empty(), "every run succeeded: {failed:?}");
    assert_one_contact_one_deal_messages_in_order(&fakes, customers, messages);
    app.stop().await;
}
