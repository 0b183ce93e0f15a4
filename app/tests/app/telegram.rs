//! Telegram by long polling: a local install (public URL http) receives updates through
//! getUpdates in the worker; the offset advances only after the inbox rows exist; one poller
//! per bot (leases); errors show on the provider page.

use std::time::Duration;

use svyazka_core::Core;
use svyazka_core::inbox::writer::InboxWriter;
use svyazka_core::jobs::Jobs;
use svyazka_core::providers::Settings;
use svyazka_core::providers::settings::{TelegramReceive, TelegramSettings};
use svyazka_core::telegram_poll;
use svyazka_testkit::telegram::{Delivery, TgUser};

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

fn tg_settings(p: &svyazka_core::providers::Provider) -> TelegramSettings {
    match &p.settings {
        Settings::Telegram(s) => s.clone(),
        other => panic!("not a Telegram provider: {other:?}"),
    }
}

async fn offset(app_core: &Core, id: i64) -> i64 {
    let p = app_core
        .db(move |c| svyazka_core::providers::get(c, id))
        .await
        .unwrap();
    tg_settings(&p).poll_offset
}

async fn inbox(core: &Core) -> i64 {
    use diesel::prelude::*;
    use svyazka_core::db::schema::inbox;
    core.db(|c| {
        inbox::table
            .count()
            .get_result::<i64>(c)
            .map_err(svyazka_core::db::DbError::from)
    })
    .await
    .unwrap()
}

fn queued_id(d: Delivery) -> i64 {
    match d {
        Delivery::Queued { update_id } => update_id,
        other => panic!("expected the update to wait for getUpdates, got {other:?}"),
    }
}

both_backends!(
    polling_turns_messages_into_runs_and_advances_the_offset,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let tg = app.add_telegram(&fakes).await;
        let p = app.provider(tg).await;
        assert_eq!(
            tg_settings(&p).receive,
            TelegramReceive::Polling,
            "the test app's public URL is http"
        );
        assert_eq!(fakes.tg.webhook_url(TG_TOKEN).unwrap(), None);
        let html = app.get_html(&format!("/providers/{tg}")).await.1;
        assert!(
            html.contains(r#"<p id="telegram-mode">Получение сообщений: опрос getUpdates"#),
            "the page says which mode is active"
        );

        app.bundle(
            tg,
            "incoming_message",
            &[],
            tg,
            vec![step(
                "send_message",
                vec![
                    ("chat_id", event_field("chat_id")),
                    (
                        "text",
                        template("{{ sender_name }}, вы написали: {{ text }}"),
                    ),
                ],
            )],
        )
        .await;
        let anna = TgUser::new(5_000_000_001, "Анна");
        let first = queued_id(
            fakes
                .tg
                .user_writes(TG_TOKEN, &anna, "Где мой заказ?")
                .await
                .unwrap(),
        );
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let sent = fakes.tg.sent_to(anna.id);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].text, "Анна, вы написали: Где мой заказ?");
        assert_eq!(app.inbox_count().await, 1);
        // The offset moved past the update, and the next call confirmed it to Telegram.
        let core = app.core().clone();
        assert!(
            eventually(SETTLE, || async {
                (offset(&core, tg).await == first + 1).then_some(())
            })
            .await
            .is_some()
        );
        assert!(
            eventually(SETTLE, || async {
                (fakes.tg.pending_count(TG_TOKEN).unwrap() == 0).then_some(())
            })
            .await
            .is_some()
        );

        // A second message (and an update we do not import) is picked up by the same poller.
        let boris = TgUser::new(5_000_000_002, "Борис");
        fakes
            .tg
            .user_presses_button(TG_TOKEN, &boris, "menu")
            .await
            .unwrap();
        let second = queued_id(
            fakes
                .tg
                .user_writes(TG_TOKEN, &boris, "Хочу оформить заказ")
                .await
                .unwrap(),
        );
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        assert_eq!(
            fakes.tg.sent_to(boris.id)[0].text,
            "Борис, вы написали: Хочу оформить заказ"
        );
        assert!(
            eventually(SETTLE, || async {
                (offset(&core, tg).await == second + 1).then_some(())
            })
            .await
            .is_some()
        );
        assert_eq!(
            app.inbox_count().await,
            2,
            "the button press is not an incoming message"
        );

        // Telegram sending the first update again: deduplicated by the inbox, no second run.
        fakes.tg.redeliver(TG_TOKEN, first).await.unwrap();
        assert!(
            eventually(SETTLE, || async {
                (fakes.tg.pending_count(TG_TOKEN).unwrap() == 0).then_some(())
            })
            .await
            .is_some()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.inbox_count().await, 2);
        assert_eq!(app.runs().await.len(), 2);
        assert_eq!(fakes.tg.sent_to(anna.id).len(), 1);

        // This process holds the bot's lease.
        let lease = core
            .db(move |c| telegram_poll::lease_of(c, tg))
            .await
            .unwrap();
        let (_, until) = lease.expect("a lease row");
        assert!(until > chrono::Utc::now().naive_utc());
        let html = app.get_html(&format!("/providers/{tg}")).await.1;
        assert!(
            html.contains(r#"<span class="badge ok">"#),
            "no polling error on the provider"
        );
        app.stop().await;
    }
);

both_backends!(
    poll_once_stores_before_confirming_and_leases_admit_one_poller,
    |backend| async move {
        let Some(mut app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let tg = app.add_telegram(&fakes).await;
        // Stop the app (and its poller); drive the core by hand against the same database.
        app.running.take().unwrap().stop().await;
        let config = svyazka_core::Config::from_vars(&app.db.vars()).unwrap();
        let core = Core::start(config).unwrap();
        let queue = svyazka_worker::JobQueue::connect(&core.config)
            .await
            .unwrap();
        let writer = InboxWriter::spawn(core.clone(), Jobs::new(queue));
        let ids = core.db(telegram_poll::polled_provider_ids).await.unwrap();
        assert_eq!(ids, vec![tg]);

        // The stopped poller gave its lease back: a new holder gets it at once.
        let c2 = core.clone();
        let got = eventually(Duration::from_secs(5), || async {
            c2.db(move |c| telegram_poll::claim_lease(c, tg, "worker-a", Duration::from_secs(60)))
                .await
                .unwrap()
                .then_some(())
        })
        .await;
        assert!(
            got.is_some(),
            "the lease was released when the poller stopped"
        );
        let claim = |holder: &'static str, ttl: Duration| {
            let core = core.clone();
            async move {
                core.db(move |c| telegram_poll::claim_lease(c, tg, holder, ttl))
                    .await
                    .unwrap()
            }
        };
        assert!(
            !claim("worker-b", Duration::from_secs(60)).await,
            "one poller per bot"
        );
        assert!(
            claim("worker-a", Duration::from_secs(60)).await,
            "the holder renews"
        );
        core.db(move |c| telegram_poll::release_lease(c, tg, "worker-b"))
            .await
            .unwrap();
        assert!(
            !claim("worker-b", Duration::from_secs(60)).await,
            "only the holder can release"
        );
        core.db(move |c| telegram_poll::release_lease(c, tg, "worker-a"))
            .await
            .unwrap();
        assert!(
            claim("worker-b", Duration::ZERO).await,
            "released: free to take"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            claim("worker-a", Duration::from_secs(60)).await,
            "an expired lease can be taken over"
        );
        assert!(!claim("worker-b", Duration::from_secs(60)).await);
        let missing = core
            .db(|c| telegram_poll::claim_lease(c, 987_654, "worker-a", Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(!missing, "no lease for a provider that does not exist");

        // Two messages and a button press: one call stores both messages, then moves the offset.
        let anna = TgUser::new(5_000_000_001, "Анна");
        let first = queued_id(fakes.tg.user_writes(TG_TOKEN, &anna, "Раз").await.unwrap());
        queued_id(fakes.tg.user_writes(TG_TOKEN, &anna, "Два").await.unwrap());
        let last = queued_id(
            fakes
                .tg
                .user_presses_button(TG_TOKEN, &anna, "ok")
                .await
                .unwrap(),
        );
        let before = inbox(&core).await;
        let new = telegram_poll::poll_once(&core, &writer, tg, 0)
            .await
            .unwrap();
        assert_eq!(new.len(), 2);
        assert_eq!(inbox(&core).await, before + 2);
        assert_eq!(offset(&core, tg).await, last + 1);
        assert_eq!(
            fakes.tg.pending_count(TG_TOKEN).unwrap(),
            3,
            "not confirmed until the next call"
        );
        assert!(
            telegram_poll::poll_once(&core, &writer, tg, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(fakes.tg.pending_count(TG_TOKEN).unwrap(), 0);

        // A crash after storing but before the offset write: Telegram sends the update again; the
        // inbox recognises it, and the offset never moves backwards past what is stored.
        let p = core
            .db(move |c| svyazka_core::providers::get(c, tg))
            .await
            .unwrap();
        let mut s = tg_settings(&p);
        s.poll_offset = 0;
        core.db(move |c| svyazka_core::providers::update_settings(c, tg, &Settings::Telegram(s)))
            .await
            .unwrap();
        fakes.tg.redeliver(TG_TOKEN, first).await.unwrap();
        assert!(
            telegram_poll::poll_once(&core, &writer, tg, 0)
                .await
                .unwrap()
                .is_empty(),
            "a redelivery is not new"
        );
        assert_eq!(inbox(&core).await, before + 2);
        assert_eq!(offset(&core, tg).await, first + 1);

        // An admin switching the provider to another bot meanwhile keeps their settings.
        let polled = tg_settings(&p);
        let mut other = polled.clone();
        other.bot_id += 1;
        other.poll_offset = 7;
        let o = other.clone();
        core.db(move |c| svyazka_core::providers::update_settings(c, tg, &Settings::Telegram(o)))
            .await
            .unwrap();
        let moved = core
            .db(move |c| telegram_poll::advance_offset(c, tg, &polled, 1_000))
            .await
            .unwrap();
        assert!(!moved);
        assert_eq!(offset(&core, tg).await, 7);

        // Webhook mode: nothing to poll.
        other.receive = TelegramReceive::Webhook;
        core.db(move |c| {
            svyazka_core::providers::update_settings(c, tg, &Settings::Telegram(other))
        })
        .await
        .unwrap();
        assert!(
            core.db(telegram_poll::polled_provider_ids)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            telegram_poll::poll_once(&core, &writer, tg, 0).await,
            Err(telegram_poll::PollError::NotPolled(_))
        ));
    }
);

both_backends!(
    polling_errors_show_on_the_provider_and_clear_on_recovery,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let tg = app.add_telegram(&fakes).await;
        app.bundle(
            tg,
            "incoming_message",
            &[],
            tg,
            vec![step(
                "send_message",
                vec![
                    ("chat_id", event_field("chat_id")),
                    ("text", template("Получили: {{ text }}")),
                ],
            )],
        )
        .await;
        // Someone else (another install) points the bot at their webhook: getUpdates gets 409.
        let bot = svyazka_core::messengers::telegram::Telegram::with_client(
            app.core().http.clone(),
            &fakes.tg_base,
            TG_TOKEN,
        )
        .unwrap();
        bot.set_webhook("http://127.0.0.1:9/elsewhere", "")
            .await
            .unwrap();
        let page = format!("/providers/{tg}");
        let shown = eventually(SETTLE, || async {
            let html = unescape(&app.get_html(&page).await.1);
            html.contains("getUpdates: Telegram: Conflict")
                .then_some(html)
        })
        .await;
        let html = shown.expect("the polling error is shown on the provider page");
        assert!(html.contains(r#"<span class="badge error">"#));

        // The conflict is resolved: messages flow again and the error is cleared.
        bot.delete_webhook().await.unwrap();
        let anna = TgUser::new(5_000_000_001, "Анна");
        fakes
            .tg
            .user_writes(TG_TOKEN, &anna, "Вы тут?")
            .await
            .unwrap();
        let runs = app.settled_runs(1, Duration::from_secs(40)).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert_eq!(fakes.tg.sent_to(anna.id)[0].text, "Получили: Вы тут?");
        let html = app.get_html(&page).await.1;
        assert!(!html.contains("Conflict") && html.contains(r#"<span class="badge ok">"#));
        app.stop().await;
    }
);
