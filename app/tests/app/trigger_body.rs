//! The extended trigger body (issue 17, item 1): the order's fields come in the trigger, so a
//! run that needs only those makes no RetailCRM call; the guide's short body and a body lacking
//! a field the bundle reads still fetch the order; another store's order is skipped without a
//! fetch; a malformed value is refused with a reason and nothing stored.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::json;
use svyazka_core::db::schema::inbox;
use svyazka_testkit::retailcrm::TriggerEvent;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

/// A greeting that reads every field the extended body carries.
fn greeting_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![step(
        "send_message",
        vec![
            ("recipient", event_field("phone")),
            (
                "text",
                template(
                    "{{ first_name }} {{ last_name }}, заказ №{{ number }} ({{ status }}, {{ site }}): {{ total }} ₽, {{ email }}",
                ),
            ),
        ],
    )]
}

/// RetailCRM fires the extended body for a new order; the webhook stores it (200).
async fn fire_extended(fakes: &Fakes, url: &str, order: i64) {
    let r = fakes
        .crm
        .fire_extended_trigger(url, order, TriggerEvent::New)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// (id, outcome) of every inbox row, oldest first, once none waits any more.
async fn settled_inbox(app: &TestApp, n: usize) -> Vec<(i64, Option<String>)> {
    eventually(SETTLE, || async {
        let rows: Vec<(i64, String, Option<String>)> = app
            .core()
            .db(|c| {
                inbox::table
                    .order(inbox::id.asc())
                    .select((inbox::id, inbox::status, inbox::outcome))
                    .load(c)
                    .map_err(svyazka_core::db::DbError::from)
            })
            .await
            .unwrap();
        (rows.len() >= n && rows.iter().all(|(_, s, _)| s == "done" || s == "failed"))
            .then(|| rows.into_iter().map(|(id, _, o)| (id, o)).collect())
    })
    .await
    .expect("the inbox did not settle")
}

both_backends!(
    extended_trigger_body_spares_the_order_fetch,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        fakes.crm.add_site("second", "Второй магазин");
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, greeting_steps())
            .await;
        let url = app.hook_url(crm).await;
        let order = |phone: &str| {
            json!({"status": "send-to-delivery", "firstName": "Анна", "lastName": "Петрова",
                   "phone": phone, "email": "anna+shop@example.com"})
        };
        let first = fakes
            .crm
            .insert_order("shop", order("+79991112233"))
            .unwrap();
        let second = fakes
            .crm
            .insert_order("shop", order("+79991112244"))
            .unwrap();
        let other = fakes
            .crm
            .insert_order("second", order("+79991112255"))
            .unwrap();
        let requests = || fakes.crm.stats().total_requests;

        // 1. The extended body: the run succeeds and RetailCRM is not asked at all.
        fakes.crm.reset_stats();
        fire_extended(&fakes, &url, first).await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert_eq!(requests(), 0, "no order GET for a fully carried trigger");
        let sent = fakes.wa.sent_messages();
        assert!(
            sent[0].chat_id.starts_with("79991112233"),
            "{:?}",
            sent[0].chat_id
        );
        let from_body = sent[0].body.clone();
        assert!(
            from_body.starts_with(&format!(
                "Анна Петрова, заказ №{first}A (send-to-delivery, shop): "
            )) && from_body.ends_with(" ₽, anna+shop@example.com"),
            "{from_body}"
        );

        // 2. The guide's short body: fetched as before, one GET, the same message.
        let r = fakes
            .crm
            .fire_trigger(&url, second, TriggerEvent::New)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        assert_eq!(requests(), 1, "the short body fetches its order once");
        let fetched = fakes.wa.sent_messages()[1].body.clone();
        assert_eq!(
            fetched.replace(&format!("{second}A"), &format!("{first}A")),
            from_body,
            "the body and the fetch give the same event"
        );

        // 3. An extended body without a field the bundle reads (first_name): fetched.
        let third = fakes
            .crm
            .insert_order("shop", order("+79991112266"))
            .unwrap();
        fakes.crm.reset_stats();
        let body = format!(
            "type=order&status=send-to-delivery&id={third}&event=new&number={third}A\
             &last_name=%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2%D0%B0&phone=%2B79991112266\
             &email=anna%2Bshop%40example.com&total=0&site=shop"
        );
        let r = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let runs = app.settled_runs(3, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        assert_eq!(requests(), 1, "a missing field is fetched");
        assert!(
            fakes.wa.sent_messages()[2].body.starts_with("Анна Петрова"),
            "the fetched name is used"
        );

        // 4. Another store's order, named in the body: skipped with no fetch, no run.
        fakes.crm.reset_stats();
        fire_extended(&fakes, &url, other).await;
        let inbox = settled_inbox(&app, 4).await;
        assert_eq!(inbox[3].1.as_deref(), Some("other_store"), "{inbox:?}");
        assert_eq!(requests(), 0, "another store's order is told from the body");
        assert_eq!(app.runs().await.len(), 3);
        assert_eq!(fakes.wa.sent_count(), 3);
        let (_, event) = app.get_html(&format!("/events/{}", inbox[3].0)).await;
        let event = unescape(&event);
        assert!(
            event.contains("«second»") && event.contains("RetailCRM не запрашивался"),
            "{event}"
        );

        // 5. A second bundle reads `contact_id`, which no trigger body carries: the full
        // extended body no longer suffices, the order is fetched once for both runs.
        let contact = vec![step(
            "send_message",
            vec![
                ("recipient", event_field("phone")),
                ("text", template("Клиент {{ contact_id }}")),
            ],
        )];
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, contact)
            .await;
        let fourth = fakes
            .crm
            .insert_order("shop", order("+79991112277"))
            .unwrap();
        fakes.crm.reset_stats();
        fire_extended(&fakes, &url, fourth).await;
        let runs = app.settled_runs(5, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        assert_eq!(requests(), 1, "contact_id comes only from the fetch");
        let sent = fakes.wa.sent_messages();
        let customer = fakes.crm.order(fourth).unwrap()["customer"]["id"].clone();
        assert!(
            sent.iter().any(|m| m.body == format!("Клиент {customer}")),
            "{sent:?}"
        );
    }
);

both_backends!(
    malformed_extended_trigger_values_are_refused,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let url = app.hook_url(crm).await;
        let http = reqwest::Client::new();
        for (body, reason) in [
            (
                "type=order&status=new&id=3&event=new&total=abc&site=shop",
                "total",
            ),
            (
                "type=order&status=new&id=3&event=new&total=1e999&site=shop",
                "total",
            ),
            (
                "type=order&status=new&id=3&event=new&site=shop&site=second",
                "site",
            ),
        ] {
            let r = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 400, "{body}");
            let answer: serde_json::Value = r.json().await.unwrap();
            assert!(
                answer["error"].as_str().is_some_and(|s| s.contains(reason)),
                "{body}: {answer}"
            );
        }
        assert_eq!(app.inbox_count().await, 0);
    }
);
