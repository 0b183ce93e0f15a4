//! Runs screens: the history list (filters, pages, notes for bad input), a run's page (trigger
//! payload, inputs, outputs, the upstream's error), and replay of a failed run.

use std::time::Duration;

use serde_json::json;
use svyazka_core::bundles::Value;
use svyazka_testkit::telegram::TgUser;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);
const REFUSAL: &str = "Номер не зарегистрирован в WhatsApp";

fn lit(v: &str) -> Value {
    Value::Literal { value: v.into() }
}

fn send_on_status() -> Vec<svyazka_core::bundles::Step> {
    vec![step(
        "send_message",
        vec![
            ("recipient", event_field("phone")),
            (
                "text",
                template("Здравствуйте, {{ first_name }}! Заказ №{{ number }} передан в доставку."),
            ),
        ],
    )]
}

fn rows(html: &str) -> usize {
    html.matches(r#"<tr id="run-"#).count()
}

fn has_row(html: &str, id: i64) -> bool {
    html.contains(&format!(r#"<tr id="run-{id}""#))
}

/// The text after `marker` up to the closing tag.
fn field_value(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len();
    html[start..].split('<').next().unwrap().to_string()
}

async fn rename(app: &TestApp, id: i64, name: &str) {
    let name = name.to_string();
    app.core()
        .db(move |c| svyazka_core::bundles::rename(c, id, &name))
        .await
        .unwrap();
}

async fn run_by_order_phone(app: &TestApp, phone_digits: &str) -> svyazka_core::runs::Run {
    app.runs()
        .await
        .into_iter()
        .find(|r| r.event.contains(phone_digits))
        .unwrap_or_else(|| panic!("no run for {phone_digits}"))
}

both_backends!(
    list_shows_runs_with_filters_and_notes,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let on_new = app
            .bundle(crm, "new_deal", &["new"], wa, send_on_status())
            .await;
        let on_delivery = app
            .bundle(crm, "new_deal", &["send-to-delivery"], wa, send_on_status())
            .await;
        rename(&app, on_new, "Новые заказы").await;
        rename(&app, on_delivery, "Доставка").await;
        let url = app.hook_url(crm).await;

        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79990000001"}),
            )
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        fakes.wa.refuse_sends(WA_INSTANCE, Some(REFUSAL)).unwrap();
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Олег", "phone": "+79990000002"}),
            )
            .await
            .unwrap();
        app.settled_runs(2, SETTLE).await;
        fakes.wa.refuse_sends(WA_INSTANCE, None).unwrap();
        fakes
        .crm
        .create_order_and_fire(&url, "shop", json!({"status": "send-to-delivery", "firstName": "Ирина", "phone": "+79990000003"}))
        .await
        .unwrap();
        app.settled_runs(3, SETTLE).await;
        let anna = run_by_order_phone(&app, "9990000001").await;
        let oleg = run_by_order_phone(&app, "9990000002").await;
        let irina = run_by_order_phone(&app, "9990000003").await;
        assert_eq!(
            (
                anna.status.as_str(),
                oleg.status.as_str(),
                irina.status.as_str()
            ),
            ("succeeded", "failed", "succeeded")
        );

        // Everything, newest first, with bundle names, badges, attempts and the error excerpt.
        let (status, html) = app.get_html("/runs").await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert_eq!(rows(&html), 3);
        let (pi, po, pa) = (
            html.find(&format!("run-{}\"", irina.id)).unwrap(),
            html.find(&format!("run-{}\"", oleg.id)).unwrap(),
            html.find(&format!("run-{}\"", anna.id)).unwrap(),
        );
        assert!(pi < po && po < pa, "newest first");
        assert!(html.contains("Новые заказы") && html.contains("Доставка"));
        assert!(html.contains(r#"<span class="badge failed">ошибка</span>"#));
        assert!(html.contains(r#"<span class="badge succeeded">успешно</span>"#));
        assert!(
            html.contains(REFUSAL),
            "the upstream's message is in the list"
        );
        assert!(
            !html.contains(r#"hx-trigger="every 3s""#),
            "nothing in progress, no auto-refresh"
        );
        assert!(!html.contains("run-filter-note"));

        // By status.
        let html = app.get_html("/runs?status=failed").await.1;
        assert_eq!(rows(&html), 1);
        assert!(has_row(&html, oleg.id));
        assert!(
            html.contains(r#"<option value="failed" selected>"#),
            "the form keeps the choice"
        );
        // By bundle, and by bundle and status together.
        let html = app
            .get_html(&format!("/runs?bundle_id={on_delivery}"))
            .await
            .1;
        assert_eq!(rows(&html), 1);
        assert!(has_row(&html, irina.id));
        assert!(html.contains(&format!(r#"<option value="{on_delivery}" selected>"#)));
        let html = app
            .get_html(&format!("/runs?bundle_id={on_new}&status=succeeded"))
            .await
            .1;
        assert_eq!(rows(&html), 1);
        assert!(has_row(&html, anna.id));
        // By dates (UTC days).
        let today = chrono::Utc::now().date_naive();
        let (yesterday, tomorrow) = (today - chrono::Days::new(1), today + chrono::Days::new(1));
        let html = app
            .get_html(&format!("/runs?from={yesterday}&to={tomorrow}"))
            .await
            .1;
        assert_eq!(rows(&html), 3);
        assert!(html.contains(&format!(r#"name="from" value="{yesterday}""#)));
        let html = app.get_html(&format!("/runs?from={tomorrow}")).await.1;
        assert_eq!(rows(&html), 0);
        assert!(html.contains("Нет запусков, подходящих под условия."));
        let html = app.get_html(&format!("/runs?to={yesterday}")).await.1;
        assert_eq!(rows(&html), 0);
        let html = app
            .get_html(&format!("/runs?from={today}T00:00&to={tomorrow}T23:59"))
            .await
            .1;
        assert_eq!(rows(&html), 3, "datetime-local values are understood too");

        // Bad input: the page, every run, and a note per ignored filter; never a 500.
        let (status, html) = app
            .get_html("/runs?status=bogus&from=yesterday&to=2026-13-45&bundle_id=abc&page=zero")
            .await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert_eq!(rows(&html), 3);
        assert!(
            html.contains("Неизвестный статус, фильтр по статусу не применён: «bogus»"),
            "{html}"
        );
        assert!(
            html.contains("Дата не распознана")
                && html.contains("«yesterday»")
                && html.contains("«2026-13-45»")
        );
        assert!(html.contains("Нет такой связки, фильтр по связке не применён: «abc»"));
        assert!(html.contains("Неверный номер страницы"));
        assert!(
            !html.contains(r#"value="bogus""#),
            "an ignored value is not echoed as if applied"
        );
        let (status, html) = app
            .get_html("/runs?bundle_id=987654&status=%FF%FE&from=%3Cscript%3E")
            .await;
        assert_eq!(status, 200);
        assert_eq!(rows(&html), 3);
        assert!(!html.contains("<script>"), "echoed input is escaped");
        app.stop().await;
    }
);

both_backends!(list_is_paginated_fifty_a_page, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let fakes = Fakes::start();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    let bundle_id = app.bundle(crm, "new_deal", &[], wa, send_on_status()).await;
    // 120 finished runs straight through the core (the flows above cover how runs are made).
    let ids: Vec<i64> = app
        .core()
        .db(move |c| {
            use svyazka_core::{bundles, inbox, runs};
            let b = bundles::get(c, bundle_id)?.unwrap();
            let mut ids = Vec::new();
            for i in 0..120 {
                let payload = json!({"id": i, "status": "new", "event": "new"});
                let item = inbox::store(
                    c,
                    crm,
                    &format!("order:{i}:new:new"),
                    inbox::InboxKind::RetailcrmTrigger,
                    &payload,
                )?
                .id();
                inbox::finish(c, item, None, inbox::InboxOutcome::Started, None)?;
                runs::create(
                    c,
                    &b.snapshot(),
                    item,
                    &json!({"order_id": i, "phone": "79990000000"}),
                )?;
                let run = runs::queued_for_inbox(c, item)?[0];
                if i % 10 == 0 {
                    runs::fail(c, run, &format!("ошибка {i}"))?;
                } else {
                    runs::succeed(c, run)?;
                }
                ids.push(run);
            }
            Ok::<_, svyazka_core::db::DbError>(ids)
        })
        .await
        .unwrap();
    let newest = *ids.iter().max().unwrap();
    let oldest = *ids.iter().min().unwrap();

    let html = app.get_html("/runs").await.1;
    assert_eq!(rows(&html), 50);
    assert!(html.contains(&format!(r#"<tr id="run-{newest}""#)) && !has_row(&html, oldest));
    assert!(html.contains("Страница 1 из 3") && html.contains("Всего запусков: 120"));
    assert!(html.contains(r#"rel="next" href="/runs?page=2""#) && !html.contains(r#"rel="prev""#));

    let html = app.get_html("/runs?page=2").await.1;
    assert_eq!(rows(&html), 50);
    assert!(
        html.contains(r#"rel="prev" href="/runs""#)
            && html.contains(r#"rel="next" href="/runs?page=3""#)
    );
    let html = app.get_html("/runs?page=3").await.1;
    assert_eq!(rows(&html), 20);
    assert!(has_row(&html, oldest));
    assert!(html.contains("Страница 3 из 3") && !html.contains(r#"rel="next""#));
    // Past the end: the last page rather than an empty one.
    let html = app.get_html("/runs?page=99").await.1;
    assert_eq!(rows(&html), 20);
    assert!(html.contains("Страница 3 из 3"));

    // Filters travel with the pager.
    let html = unescape(
        &app.get_html(&format!("/runs?bundle_id={bundle_id}&status=succeeded"))
            .await
            .1,
    );
    assert_eq!(rows(&html), 50);
    assert!(html.contains("Всего запусков: 108"));
    assert!(
        html.contains(&format!(
            r#"href="/runs?bundle_id={bundle_id}&status=succeeded&page=2""#
        )),
        "{html}"
    );
    let html = app
        .get_html(&format!("/runs?bundle_id={bundle_id}&status=failed"))
        .await
        .1;
    assert_eq!(rows(&html), 12);
    assert!(html.contains("Страница 1 из 1"));

    // A run in progress switches the table's auto-refresh on.
    let queued = app
        .core()
        .db(move |c| {
            use svyazka_core::{bundles, inbox, runs};
            let b = bundles::get(c, bundle_id)?.unwrap();
            let payload = json!({"id": 999, "status": "new", "event": "new"});
            let item = inbox::store(
                c,
                crm,
                "order:999:new:new",
                inbox::InboxKind::RetailcrmTrigger,
                &payload,
            )?
            .id();
            inbox::finish(c, item, None, inbox::InboxOutcome::Started, None)?;
            runs::create(
                c,
                &b.snapshot(),
                item,
                &json!({"order_id": 999, "phone": "79990000000"}),
            )?;
            Ok::<_, svyazka_core::db::DbError>(runs::queued_for_inbox(c, item)?[0])
        })
        .await
        .unwrap();
    let html = app.get_html("/runs").await.1;
    assert!(html.contains(r#"<span class="badge queued">в очереди</span>"#));
    assert!(
        html.contains(r##"hx-get="/runs" hx-trigger="every 3s" hx-select="#runs-table""##),
        "{html}"
    );
    app.core()
        .db(move |c| svyazka_core::runs::succeed(c, queued))
        .await
        .unwrap();
    app.stop().await;
});

both_backends!(
    run_page_shows_payload_inputs_error_and_replay_succeeds,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &[], wa, send_on_status()).await;
        fakes.wa.refuse_sends(WA_INSTANCE, Some(REFUSAL)).unwrap();
        let (order, _) = fakes
            .crm
            .create_order_and_fire(
                &app.hook_url(crm).await,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+7 999 111-22-33"}),
            )
            .await
            .unwrap();
        let run = app.settled_runs(1, SETTLE).await.remove(0);
        assert_eq!(run.status, "failed");
        let number = fakes.crm.order(order).unwrap()["number"]
            .as_str()
            .unwrap()
            .to_string();
        let page = format!("/runs/{}", run.id);

        let (status, html) = app.get_html(&page).await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        // Header: bundle snapshot name, status, attempts.
        assert!(html.contains("Test bundle"));
        assert!(html.contains(r#"id="run-status">ошибка</span>"#));
        // The trigger payload as labelled fields.
        assert!(html.contains("Телефон контакта <code class=\"muted\">phone</code>"));
        assert!(html.contains(r#"<td data-field="first_name">Анна</td>"#));
        assert!(html.contains(&format!(r#"<td data-field="number">{number}</td>"#)));
        assert!(html.contains("Событие (данные триггера): Новая сделка"));
        // The step: catalog label, resolved inputs, the gateway's own message.
        assert!(html.contains("Шаг 1. Отправить сообщение"));
        let phone = field_value(&html, r#"data-field="phone">"#);
        assert!(phone.contains("999") && phone.contains("111"), "{phone}");
        assert!(
            html.contains(&format!(r#"<td data-input="recipient">{phone}</td>"#)),
            "the resolved recipient is the order's phone"
        );
        assert!(html.contains(&format!(
            r#"<td data-input="text">Здравствуйте, Анна! Заказ №{number} передан в доставку.</td>"#
        )));
        assert!(html.contains(REFUSAL));
        assert!(html.contains(r#"class="step-attempt">1</span>"#));
        assert!(html.contains(r#"id="replay-form""#));

        // Replay needs the CSRF token.
        let r = app.post_form(&format!("{page}/replay"), &[]).await;
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(app.runs().await[0].status, "failed");

        // Fixed upstream, replay: succeeded, exactly one message sent.
        fakes.wa.refuse_sends(WA_INSTANCE, None).unwrap();
        let r = app.submit(&page, &format!("{page}/replay"), &[]).await;
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(r.headers()["location"], page.as_str());
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert_eq!(fakes.wa.sent_count(), 1);
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains(r#"id="run-status">успешно</span>"#));
        assert!(
            html.contains(r#"<td data-output="message_id">"#),
            "outputs are shown"
        );
        assert!(
            !html.contains(r#"id="replay-form""#),
            "only failed runs offer replay"
        );
        assert!(
            !html.contains(REFUSAL),
            "the old error is gone with the new outcome"
        );

        // Replaying a run that did not fail is refused and changes nothing.
        let r = app.submit(&page, &format!("{page}/replay"), &[]).await;
        assert_eq!(r.status().as_u16(), 409);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Повторить можно только запуск, завершившийся ошибкой")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.runs().await[0].status, "succeeded");
        assert_eq!(fakes.wa.sent_count(), 1);

        // Unknown runs.
        assert_eq!(app.get("/runs/987654").await.status().as_u16(), 404);
        assert_eq!(
            app.submit(&page, "/runs/987654/replay", &[])
                .await
                .status()
                .as_u16(),
            404
        );
        assert_eq!(app.get("/runs/abc").await.status().as_u16(), 404);
        app.stop().await;
    }
);

both_backends!(
    replay_resumes_at_the_failed_step_without_repeating_earlier_ones,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let tg = app.add_telegram(&fakes).await;
        let anna = TgUser::new(5_000_000_001, "Анна");
        let boris = TgUser::new(5_000_000_002, "Борис");
        // Anna has talked to the bot; Boris has not, so the bot cannot write to him yet.
        fakes
            .tg
            .user_writes(TG_TOKEN, &anna, "/start")
            .await
            .unwrap();
        app.bundle(
            crm,
            "new_deal",
            &[],
            tg,
            vec![
                step(
                    "send_message",
                    vec![
                        ("chat_id", lit("5000000001")),
                        ("text", template("Заказ №{{ number }} принят")),
                    ],
                ),
                step(
                    "send_message",
                    vec![
                        ("chat_id", lit("5000000002")),
                        ("text", template("Копия: заказ №{{ number }}")),
                    ],
                ),
            ],
        )
        .await;
        fakes
            .crm
            .create_order_and_fire(
                &app.hook_url(crm).await,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79990000009"}),
            )
            .await
            .unwrap();
        let run = app.settled_runs(1, SETTLE).await.remove(0);
        assert_eq!(run.status, "failed");
        assert_eq!(run.attempts, 1, "a 400 from Telegram is permanent");
        let id = run.id;
        let before = app
            .core()
            .db(move |c| svyazka_core::runs::steps(c, id))
            .await
            .unwrap();
        assert_eq!(
            (before[0].status.as_str(), before[1].status.as_str()),
            ("succeeded", "failed")
        );
        let page = format!("/runs/{id}");
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains(r#"id="step-1" data-status="succeeded""#));
        assert!(html.contains(r#"id="step-2" data-status="failed""#));
        assert!(
            html.contains(r#"<q class="upstream">Bad Request: chat not found</q>"#),
            "Telegram's own message, quoted"
        );
        assert!(html.contains(r#"<td data-input="chat_id">5000000002</td>"#));

        // Boris writes to the bot; the replayed run only does step 2.
        fakes
            .tg
            .user_writes(TG_TOKEN, &boris, "/start")
            .await
            .unwrap();
        let r = app.submit(&page, &format!("{page}/replay"), &[]).await;
        assert_eq!(r.status().as_u16(), 303);
        let run = app.settled_runs(1, SETTLE).await.remove(0);
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        assert_eq!(
            fakes.tg.sent_to(anna.id).len(),
            1,
            "step 1 was not repeated"
        );
        assert_eq!(fakes.tg.sent_to(boris.id).len(), 1);
        let after = app
            .core()
            .db(move |c| svyazka_core::runs::steps(c, id))
            .await
            .unwrap();
        assert_eq!(
            after[0].started_at, before[0].started_at,
            "step 1's record is untouched"
        );
        assert_eq!(after[1].status, "succeeded");
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains(r#"id="step-2" data-status="succeeded""#));
        assert!(!html.contains("chat not found"));
        app.stop().await;
    }
);

both_backends!(runs_pages_need_a_session, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.setup_admin().await;
    let token = app.csrf("/runs").await;
    app.logout().await;
    for path in ["/runs", "/runs?status=failed", "/runs/1"] {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    let r = app.post_form("/runs/1/replay", &[("csrf", &token)]).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login");
    // htmx auto-refresh after the session ended: a redirect htmx follows.
    let r = app
        .client
        .get(app.url("/runs"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["hx-redirect"], "/login");
    app.stop().await;
});
