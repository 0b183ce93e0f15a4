//! Failure alerts: a bundle that keeps failing pauses itself and tells the admin once (through
//! a Telegram bot or e-mail), failures within the window are coalesced into a count, a restart
//! sends nothing twice, and the settings page refuses bad input and reports the upstream's own
//! error for «Send test alert».

use std::time::Duration;

use serde_json::json;
use svyazka_core::alerts::{self, AlertKind, AlertStatus};
use svyazka_core::bundles::Value;
use svyazka_testkit::smtp::SmtpSink;
use svyazka_testkit::telegram::TgUser;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);
const ADMIN_CHAT: i64 = 5_000_000_001;
/// Never wrote to the bot: sending there is Telegram's permanent 400 «chat not found».
const STRANGER_CHAT: &str = "5000000002";

fn lit(v: &str) -> Value {
    Value::Literal { value: v.into() }
}

/// The admin's Telegram chat with the bot exists (they sent /start).
async fn admin_talks_to_bot(fakes: &Fakes) {
    fakes
        .tg
        .user_writes(TG_TOKEN, &TgUser::new(ADMIN_CHAT, "Админ"), "/start")
        .await
        .unwrap();
}

async fn save_settings(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.submit("/settings/alerts", "/settings/alerts", fields)
        .await
}

/// Alerts through the test bot to the admin's chat, in `language`; answers the form's status.
async fn alert_by_telegram(
    app: &TestApp,
    tg: i64,
    language: &str,
    pause_after: &str,
    coalesce_minutes: &str,
) -> u16 {
    let r = save_settings(
        app,
        &[
            ("channel", "telegram"),
            ("telegram_provider", &tg.to_string()),
            ("telegram_chat", &ADMIN_CHAT.to_string()),
            ("language", language),
            ("pause_after", pause_after),
            ("coalesce_minutes", coalesce_minutes),
        ],
    )
    .await;
    r.status().as_u16()
}

/// A RetailCRM account whose triggers feed a bundle that fails `failures` times for good, with
/// alerts by Telegram in `language` set up first; answers the bundle's and account's ids.
async fn failing_runs(
    app: &TestApp,
    fakes: &Fakes,
    (language, pause_after, coalesce_minutes): (&str, &str, &str),
    failures: usize,
) -> (i64, i64) {
    admin_talks_to_bot(fakes).await;
    let crm = app.add_retailcrm(fakes).await;
    let tg = app.add_telegram(fakes).await;
    assert_eq!(
        alert_by_telegram(app, tg, language, pause_after, coalesce_minutes).await,
        303
    );
    let bundle = failing_bundle(app, crm, tg).await;
    for n in 1..=failures {
        fire_order(app, fakes, crm).await;
        app.settled_runs(n, SETTLE).await;
    }
    (bundle, crm)
}

/// A bundle whose every run fails for good: it writes to a chat the bot cannot reach.
async fn failing_bundle(app: &TestApp, crm: i64, tg: i64) -> i64 {
    app.bundle(
        crm,
        "new_deal",
        &[],
        tg,
        vec![step(
            "send_message",
            vec![
                ("chat_id", lit(STRANGER_CHAT)),
                ("text", template("Заказ №{{ number }}")),
            ],
        )],
    )
    .await
}

async fn fire_order(app: &TestApp, fakes: &Fakes, crm: i64) {
    fakes
        .crm
        .create_order_and_fire(
            &app.hook_url(crm).await,
            "shop",
            json!({"status": "new", "firstName": "Анна", "phone": "+79990000009"}),
        )
        .await
        .unwrap();
}

fn alert_texts(fakes: &Fakes) -> Vec<String> {
    fakes
        .tg
        .sent_to(ADMIN_CHAT)
        .into_iter()
        .map(|m| m.text)
        .collect()
}

async fn stored_alerts(app: &TestApp) -> Vec<alerts::Alert> {
    app.core().db(|c| alerts::recent(c, 100)).await.unwrap()
}

/// Stops the app and starts it again on the same database and port (a restart).
async fn restart(app: &mut TestApp) {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let old = app.running.take().unwrap();
    let config = (*old.state.core.config).clone();
    old.stop().await;
    let listener = std::net::TcpListener::bind(addr).unwrap();
    app.running = Some(svyazka_app::start_on(config, listener).await.unwrap());
}

both_backends!(
    repeated_failures_pause_the_bundle_and_alert_the_admin_once,
    |backend| async move {
        let Some(mut app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (bundle, crm) = failing_runs(&app, &fakes, ("en", "3", "60"), 3).await;
        let runs = app.runs().await;
        assert!(
            runs.iter().all(|r| r.status == "failed"),
            "three permanent failures"
        );
        let b = app
            .core()
            .db(move |c| svyazka_core::bundles::get(c, bundle))
            .await
            .unwrap()
            .unwrap();
        assert!(!b.is_running(), "the bundle paused itself");
        assert_eq!(b.paused.as_ref().map(|p| p.failures), Some(3));

        // The pause and the first failure go out at once, in the admin's language; the two
        // later failures wait for the window, counted in one alert.
        let texts = eventually(SETTLE, || async {
            let t = alert_texts(&fakes);
            (t.len() >= 2).then_some(t)
        })
        .await
        .expect("alerts delivered");
        let paused: Vec<_> = texts
            .iter()
            .filter(|t| t.contains("stopped itself"))
            .collect();
        let failed: Vec<_> = texts
            .iter()
            .filter(|t| t.contains("the bundle «Test bundle» failed"))
            .collect();
        assert_eq!(paused.len(), 1, "{texts:?}");
        assert!(
            paused[0].contains("after 3 failures in a row"),
            "{}",
            paused[0]
        );
        assert!(
            paused[0].contains("chat not found"),
            "the reason, in Telegram's own words: {}",
            paused[0]
        );
        assert!(
            paused[0].contains(&format!("/bundles/{bundle}")),
            "{}",
            paused[0]
        );
        assert_eq!(failed.len(), 1, "one failure alert per window: {texts:?}");
        assert_eq!(texts.len(), 2, "{texts:?}");
        let stored = stored_alerts(&app).await;
        let failures: Vec<_> = stored
            .iter()
            .filter(|a| a.kind == AlertKind::BundleFailed)
            .collect();
        assert_eq!(
            failures.iter().map(|a| a.count).sum::<i32>(),
            3,
            "every failure counted: {stored:?}"
        );
        assert_eq!(
            failures
                .iter()
                .filter(|a| a.status == AlertStatus::Sent)
                .count(),
            1
        );
        assert!(
            failures
                .iter()
                .filter(|a| a.status == AlertStatus::Pending)
                .count()
                <= 1,
            "later failures coalesce into one waiting alert: {stored:?}"
        );

        // A fourth order: the paused bundle makes no run, and no further alert.
        fire_order(&app, &fakes, crm).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(app.runs().await.len(), 3);

        // The reason shows on the bundle, the list and the home page, with links.
        let html = unescape(&app.get_html(&format!("/bundles/{bundle}")).await.1);
        assert!(html.contains(r#"id="paused-reason""#), "{html}");
        assert!(html.contains("3 ошибок подряд"), "{html}");
        let html = unescape(&app.get_html("/bundles").await.1);
        assert!(html.contains("paused-reason"), "{html}");
        let html = unescape(&app.get_html("/").await.1);
        assert!(html.contains(r#"id="attention""#), "{html}");
        assert!(
            html.contains(&format!(r#"href="/bundles/{bundle}""#)),
            "{html}"
        );

        // A restart sends nothing again.
        restart(&mut app).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // (A slow machine may make the bot's long poll fail across the restart, and that
        // provider alert is a new one; the bundle's are what must not come again.)
        let after = alert_texts(&fakes);
        let about_bundle = after.iter().filter(|t| t.contains("«Test bundle»")).count();
        assert_eq!(about_bundle, 2, "nothing resent after a restart: {after:?}");

        // Starting it again (the editor asks for a status choice first) clears the pause and
        // the count.
        app.core()
            .db(move |c| svyazka_core::bundles::set_status_filter(c, bundle, &["*".to_string()]))
            .await
            .unwrap();
        let r = app
            .submit(
                &format!("/bundles/{bundle}"),
                &format!("/bundles/{bundle}/start"),
                &[],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
        let html = unescape(&app.get_html("/").await.1);
        assert!(!html.contains(r#"data-kind="paused""#), "{html}");
        let b = app
            .core()
            .db(move |c| svyazka_core::bundles::get(c, bundle))
            .await
            .unwrap()
            .unwrap();
        assert!(b.is_running() && b.paused.is_none());
        app.stop().await;
    }
);

both_backends!(
    coalesced_failures_go_out_with_their_count_when_the_window_ends,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        // No pausing; a zero window: each failure is due at once, but one waiting alert still
        // takes the failures that come before it is sent.
        let (bundle, _) = failing_runs(&app, &fakes, ("ru", "0", "0"), 2).await;
        let all = eventually(SETTLE, || async {
            let a = stored_alerts(&app).await;
            (a.iter().map(|a| a.count).sum::<i32>() == 2
                && a.iter().all(|a| a.status == AlertStatus::Sent))
            .then_some(a)
        })
        .await
        .expect("every failure alerted and sent");
        assert!(all.iter().all(|a| a.kind == AlertKind::BundleFailed));
        let texts = alert_texts(&fakes);
        assert_eq!(
            texts.len(),
            all.len(),
            "one message per alert row: {texts:?}"
        );
        assert!(texts[0].contains("«Test bundle»"), "Russian: {}", texts[0]);
        assert!(texts[0].contains("завершился ошибкой") || texts[0].contains("с ошибкой: 2"));
        let b = app
            .core()
            .db(move |c| svyazka_core::bundles::get(c, bundle))
            .await
            .unwrap()
            .unwrap();
        assert!(b.is_running(), "0 means never pause");
        app.stop().await;
    }
);

both_backends!(
    a_provider_alerts_when_its_check_starts_failing_not_while_it_keeps_failing,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        admin_talks_to_bot(&fakes).await;
        let tg = app.add_telegram(&fakes).await;
        assert_eq!(alert_by_telegram(&app, tg, "en", "5", "15").await, 303);
        for _ in 0..3 {
            app.core()
                .db(move |c| svyazka_core::providers::record_check(c, tg, false, Some("down")))
                .await
                .unwrap();
        }
        let texts = eventually(SETTLE, || async {
            let t = alert_texts(&fakes);
            (!t.is_empty()).then_some(t)
        })
        .await
        .expect("provider alert");
        tokio::time::sleep(Duration::from_millis(800)).await;
        let texts_after = alert_texts(&fakes);
        assert_eq!(
            texts_after.len(),
            1,
            "one alert for the transition: {texts:?}"
        );
        assert!(texts[0].contains("fails its check"), "{}", texts[0]);
        let html = unescape(&app.get_html("/").await.1);
        assert!(
            html.contains(&format!(r#"href="/providers/{tg}""#)),
            "{html}"
        );
        app.stop().await;
    }
);

both_backends!(
    email_alerts_reach_a_real_smtp_server,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let sink = SmtpSink::start("alerts@shop.test", "smtp-secret-42")
            .await
            .unwrap();
        let port = sink.port().to_string();
        let borrowed: Vec<(&str, &str)> = vec![
            ("channel", "smtp"),
            ("smtp_host", "127.0.0.1"),
            ("smtp_port", &port),
            ("smtp_security", "plain"),
            ("smtp_user", "alerts@shop.test"),
            ("smtp_password", "smtp-secret-42"),
            ("smtp_from", "Svyazka <alerts@shop.test>"),
            ("smtp_to", "owner@shop.test"),
            ("language", "en"),
            ("pause_after", "5"),
            ("coalesce_minutes", "15"),
        ];
        let r = save_settings(&app, &borrowed).await;
        assert_eq!(r.status().as_u16(), 303);
        // The password is stored encrypted, never shown.
        let html = app.get_html("/settings/alerts").await.1;
        assert!(!html.contains("smtp-secret-42"));
        assert!(html.contains(r#"id="password-saved""#));

        let r = app
            .submit("/settings/alerts", "/settings/alerts/test", &[])
            .await;
        assert_eq!(r.status().as_u16(), 200);
        let html = unescape(&r.text().await.unwrap());
        assert!(html.contains("Тестовое оповещение отправлено"), "{html}");
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].user.as_deref(), Some("alerts@shop.test"));
        assert_eq!(mails[0].from, "alerts@shop.test");
        assert_eq!(mails[0].to, vec!["owner@shop.test".to_string()]);
        assert_eq!(
            mails[0].header("Subject").as_deref(),
            Some("Svyazka: test alert")
        );

        // A provider check that starts failing arrives by mail through the worker.
        let fakes = Fakes::start();
        let tg = app.add_telegram(&fakes).await;
        app.core()
            .db(move |c| svyazka_core::providers::record_check(c, tg, false, None))
            .await
            .unwrap();
        let mails = eventually(SETTLE, || async {
            let m = sink.mails();
            (m.len() == 2).then_some(m)
        })
        .await
        .expect("alert mailed");
        assert!(
            mails[1].text().contains("started failing"),
            "{}",
            mails[1].text()
        );

        // The server's own refusal shows for «Send test alert».
        sink.refuse_recipients(550, "5.1.1 owner@shop.test: Recipient address rejected");
        let r = app
            .submit("/settings/alerts", "/settings/alerts/test", &[])
            .await;
        assert_eq!(r.status().as_u16(), 502);
        let html = unescape(&r.text().await.unwrap());
        assert!(html.contains("Recipient address rejected"), "{html}");
        assert!(html.contains("550"), "{html}");
        app.stop().await;
    }
);

both_backends!(
    bad_alert_settings_are_refused_and_nothing_is_saved,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let r = save_settings(
            &app,
            &[
                ("channel", "smtp"),
                ("smtp_host", ""),
                ("smtp_port", "99999"),
                ("smtp_from", "not an address"),
                ("smtp_to", "owner@shop.test"),
                ("language", "ru"),
                ("pause_after", "-1"),
                ("coalesce_minutes", "15"),
            ],
        )
        .await;
        assert_eq!(r.status().as_u16(), 422);
        let html = r.text().await.unwrap();
        for field in ["smtp_host", "smtp_port", "smtp_from", "pause_after"] {
            assert!(
                html.contains(&format!(r#"id="err-{field}""#)),
                "{field}: {html}"
            );
        }
        let saved = app
            .core()
            .db(svyazka_core::alerts::settings::load)
            .await
            .unwrap();
        assert_eq!(saved, svyazka_core::alerts::AlertSettings::default());
        // A Telegram channel needs one of the bot providers.
        let r = save_settings(
            &app,
            &[
                ("channel", "telegram"),
                ("telegram_provider", "999"),
                ("telegram_chat", "12345"),
                ("language", "en"),
                ("pause_after", "5"),
                ("coalesce_minutes", "15"),
            ],
        )
        .await;
        assert_eq!(r.status().as_u16(), 422);
        app.stop().await;
    }
);
