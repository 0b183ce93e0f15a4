//! The Events page: every stored webhook and trigger with what came of it, filterable by
//! provider and outcome, paginated; an order of another store is skipped, never retried.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::json;
use svyazka_core::db::schema::inbox;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

/// (id, status, outcome, attempts) of every inbox row, oldest first.
async fn rows(app: &TestApp) -> Vec<(i64, String, Option<String>, i32)> {
    app.core()
        .db(|c| {
            inbox::table
                .order(inbox::id.asc())
                .select((inbox::id, inbox::status, inbox::outcome, inbox::attempts))
                .load(c)
                .map_err(svyazka_core::db::DbError::from)
        })
        .await
        .unwrap()
}

/// Waits until `n` rows are stored and none waits any more.
async fn settled(app: &TestApp, n: usize) -> Vec<(i64, String, Option<String>, i32)> {
    eventually(SETTLE, || async {
        let r = rows(app).await;
        (r.len() >= n && r.iter().all(|(_, s, _, _)| s == "done" || s == "failed")).then_some(r)
    })
    .await
    .expect("the inbox did not settle")
}

/// The `data-outcome` of each row of an events page, top (newest) first.
fn outcomes(html: &str) -> Vec<String> {
    html.split("data-outcome=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        .collect()
}

both_backends!(
    events_page_shows_what_came_of_every_delivery,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        fakes.crm.add_site("second", "Второй магазин");
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, mailing_steps())
            .await;
        let url = app.hook_url(crm).await;
        // 1. Created in the chosen status: a run.
        let (started, _) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "+79991112233"}),
            )
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        // 2. Created in another status: listened to, no status matched.
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "phone": "+79991112234"}),
            )
            .await
            .unwrap();
        // 3. An order of the other store: skipped, not failed.
        let (other, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "second",
                json!({"status": "send-to-delivery", "phone": "+79991112235"}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        settled(&app, 3).await;
        // 4. The key lost API access: the order cannot be read, the event fails.
        fakes.crm.set_api_enabled(CRM_KEY, false);
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "send-to-delivery", "phone": "+79991112236"}),
            )
            .await
            .unwrap();
        settled(&app, 4).await;
        fakes.crm.set_api_enabled(CRM_KEY, true);
        // 5. A WhatsApp message nobody listens to.
        let wa_url = app.hook_url(wa).await;
        fakes
            .wa
            .post_incoming(&wa_url, "79991234567", "Иван", "Здравствуйте")
            .await
            .unwrap();
        let stored = settled(&app, 5).await;
        let got: Vec<(String, Option<String>)> = stored
            .iter()
            .map(|(_, s, o, _)| (s.clone(), o.clone()))
            .collect();
        let want = |s: &str, o: &str| (s.to_string(), Some(o.to_string()));
        assert_eq!(
            got,
            vec![
                want("done", "started"),
                want("done", "no_match"),
                want("done", "other_store"),
                want("failed", "failed"),
                want("done", "not_listened"),
            ]
        );
        // The other store's order was looked at once, and only one message went out.
        assert_eq!(stored[2].3, 1, "a skip is never retried");
        assert_eq!(fakes.wa.sent_count(), 1);

        let (status, html) = app.get_html("/events").await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert_eq!(
            outcomes(&html),
            [
                "not_listened",
                "failed",
                "other_store",
                "no_match",
                "started"
            ]
        );
        assert!(html.contains("ни одна запущенная связка не слушает это событие"));
        assert!(html.contains("заказ другого магазина — пропущен"));
        assert!(html.contains("статус «new» не выбран ни в одной"), "{html}");
        assert!(html.contains(&format!("заказ {other}")));
        assert!(html.contains("Здравствуйте"));
        // The started event links its run, and the run links back to it.
        let run = runs[0].id;
        assert!(html.contains(&format!(r#"href="/runs/{run}""#)));
        let (_, run_page) = app.get_html(&format!("/runs/{run}")).await;
        let event_id = stored[0].0;
        assert!(run_page.contains(&format!(r#"href="/events/{event_id}" id="run-event-link""#)));
        let (status, event_page) = app.get_html(&format!("/events/{event_id}")).await;
        assert_eq!(status, 200);
        assert!(event_page.contains(&format!(r#"href="/runs/{run}""#)));
        assert!(unescape(&event_page).contains(&format!("заказ {started}")));
        // The failure and the skip say why.
        let (_, failed) = app.get_html(&format!("/events/{}", stored[3].0)).await;
        assert!(failed.contains(r#"id="event-detail""#), "{failed}");
        let (_, skipped) = app.get_html(&format!("/events/{}", stored[2].0)).await;
        assert!(unescape(&skipped).contains("«shop»"), "{skipped}");

        // The test event for that order shows the same skip, and the event it stored.
        let page = format!("/providers/{crm}");
        let other_id = other.to_string();
        let r = app
            .submit(
                &page,
                &format!("/providers/{crm}/test-event"),
                &[("order_id", other_id.as_str()), ("event", "new")],
            )
            .await;
        assert_eq!(r.status().as_u16(), 200);
        let html = unescape(&r.text().await.unwrap());
        let outcome = html.split(r#"id="sample-outcome">"#).nth(1).unwrap();
        assert!(
            outcome.contains("заказ другого магазина — пропущен"),
            "{outcome}"
        );
        assert!(outcome.contains(r#"id="sample-event-link""#), "{outcome}");
        let stored = rows(&app).await;
        assert_eq!(stored.len(), 6);
        assert_eq!(stored[5].2.as_deref(), Some("other_store"));

        // Filters: by outcome, by provider (the provider page links there), both.
        let (_, html) = app.get_html("/events?outcome=other_store").await;
        assert_eq!(outcomes(&html), ["other_store", "other_store"]);
        let (_, html) = app.get_html(&format!("/events?provider_id={wa}")).await;
        assert_eq!(outcomes(&html), ["not_listened"]);
        let (_, html) = app
            .get_html(&format!("/events?provider_id={crm}&outcome=failed"))
            .await;
        assert_eq!(outcomes(&html), ["failed"]);
        let (_, provider) = app.get_html(&format!("/providers/{crm}")).await;
        assert!(provider.contains(&format!(r#"href="/events?provider_id={crm}""#)));
        // Bad filters are dropped with a note, the page still answers.
        let (status, html) = app.get_html("/events?outcome=bogus&provider_id=x").await;
        assert_eq!(status, 200);
        assert_eq!(outcomes(&html).len(), 6);
        assert!(html.contains("run-filter-note"));
        // A trigger that cannot be read is refused, not stored; the page shows the refusal.
        let refused = reqwest::Client::new()
            .post(&url)
            .form(&[("type", "order"), ("id", "abc"), ("event", "new")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 400);
        let (_, html) = app.get_html("/events").await;
        assert_eq!(outcomes(&html).len(), 6, "nothing stored");
        let refusals = html
            .split(r#"id="event-refusals""#)
            .nth(1)
            .expect("refusals shown");
        assert!(
            unescape(refusals).contains("id must be a positive integer"),
            "{refusals}"
        );
        // In English too.
        app.get("/lang/en").await;
        let (_, html) = app.get_html("/events").await;
        assert!(html.contains("an order of another store — skipped"));
        assert!(html.contains("no running bundle listens to this event"));
        assert_eq!(app.get_html("/events/999999").await.0, 404);
        app.stop().await;
    }
);

both_backends!(
    events_page_is_paginated_newest_first,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let wa = app.add_chatapi(&fakes).await;
        let url = app.hook_url(wa).await;
        for i in 0..55 {
            fakes
                .wa
                .post_incoming(&url, "79991234567", "Иван", &format!("сообщение {i}"))
                .await
                .unwrap();
        }
        settled(&app, 55).await;
        let (_, first) = app.get_html("/events").await;
        assert_eq!(outcomes(&first).len(), 50);
        assert!(first.contains("сообщение 54"), "newest first");
        assert!(unescape(&first).contains(r#"href="/events?page=2""#));
        let (_, second) = app.get_html("/events?page=2").await;
        assert_eq!(outcomes(&second).len(), 5);
        assert!(second.contains("сообщение 0"));
        assert!(!second.contains("сообщение 54"));
        // Past the end: the last page.
        let (_, past) = app.get_html("/events?page=9").await;
        assert_eq!(outcomes(&past).len(), 5);
        // The filters travel with the pages.
        let (_, filtered) = app
            .get_html(&format!("/events?provider_id={wa}&outcome=not_listened"))
            .await;
        assert!(unescape(&filtered).contains(&format!(
            "/events?provider_id={wa}&outcome=not_listened&page=2"
        )));
        app.stop().await;
    }
);

/// Stores `n` dispatched events of `provider` in one statement (a history as a busy shop has
/// after months): every tenth failed, the rest nobody listened to.
async fn bulk_history(app: &TestApp, provider: i64, n: i64) {
    let sql = format!(
        "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) \
         INSERT INTO inbox (provider_id, dedup_key, kind, payload, status, attempts, \
             next_attempt_at, created_at, updated_at, outcome) \
         SELECT {provider}, 'msg:bulk' || CAST(i AS TEXT), 'incoming_message', \
             '{{\"message_id\":\"bulk\",\"sender_id\":\"79990000000\",\"sender_phone\":null,\
\"sender_name\":\"Иван\",\"chat_id\":\"79990000000@c.us\",\"text\":\"история\",\"time\":1}}', \
             CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'done' END, 1, \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, \
             CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'not_listened' END \
         FROM seq"
    );
    app.core()
        .db(move |c| {
            use svyazka_core::db::AnyConnection;
            let q = diesel::sql_query(sql);
            match c {
                AnyConnection::Sqlite(c) => q.execute(c),
                AnyConnection::Postgresql(c) => q.execute(c),
            }
            .map_err(svyazka_core::db::DbError::from)
        })
        .await
        .unwrap();
}

both_backends!(
    events_page_stays_fast_on_a_big_inbox,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let wa = app.add_chatapi(&fakes).await;
        let crm = app.add_retailcrm(&fakes).await;
        bulk_history(&app, wa, 100_000).await;
        bulk_history(&app, crm, 1_000).await;
        // Warm the connection pool and the page's caches once, then time each view.
        app.get_html("/events").await;
        for path in [
            "/events".to_string(),
            "/events?outcome=failed".to_string(),
            format!("/events?provider_id={crm}"),
            format!("/events?provider_id={wa}&outcome=failed&page=150"),
            "/events?page=1500".to_string(),
        ] {
            let started = std::time::Instant::now();
            let (status, html) = app.get_html(&path).await;
            let took = started.elapsed();
            assert_eq!(status, 200);
            assert_eq!(outcomes(&html).len(), 50, "{path}");
            assert!(
                took < Duration::from_secs(2),
                "{path} took {took:?} on a 101 000-event inbox"
            );
            println!("{path}: {took:?}");
        }
        app.stop().await;
    }
);
