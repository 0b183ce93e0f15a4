//! What an admin sees of the events that arrive: the warning that the upstreams cannot reach
//! a local public address, the test event sent from the provider page, and the Events page
//! with a matched, a skipped (another store's order) and a failed event, filtered by outcome.

use std::time::Duration;

use serde_json::json;

use crate::browser::Browser;
use crate::support::{Backend, CRM_KEY, Fakes, TestApp, mailing_steps};
use crate::{add_retailcrm, setup_admin};

/// Inbox rows not dispatched yet.
async fn waiting(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use svyazka_core::db::schema::inbox;
    app.core()
        .db(|c| {
            inbox::table
                .filter(inbox::outcome.is_null())
                .count()
                .get_result(c)
                .map_err(svyazka_core::db::DbError::from)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_shows_matched_skipped_and_failed_events() {
    let fakes = Fakes::start();
    fakes.crm.add_site("second", "Второй магазин");
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(mut b) = Browser::start(&app.base).await else {
        return;
    };
    setup_admin(&mut b, &app.setup_code()).await;
    // The test app's public address is plain http on 127.0.0.1: nothing outside reaches it.
    b.goto("/").await;
    let warning = b.text("#reach-warning").await;
    assert!(warning.contains("localhost"), "{warning}");
    assert!(warning.contains("SVYAZKA_PUBLIC_URL"), "{warning}");
    let (crm, hook) = add_retailcrm(&mut b, &fakes).await;
    assert!(
        b.text("#reach-warning")
            .await
            .contains("SVYAZKA_PUBLIC_URL")
    );

    // The mailing bundle (built in the editor by the flow 2 test; here only its effect counts).
    app.login().await;
    let wa = app.add_chatapi(&fakes).await;
    app.bundle(crm, "new_deal", &["send-to-delivery"], wa, mailing_steps())
        .await;

    // The test event button: an order already in the status; the outcome names the run.
    let order = fakes
        .crm
        .insert_order(
            "shop",
            json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "+79991112233"}),
        )
        .unwrap();
    b.goto(&format!("/providers/{crm}")).await;
    b.fill("#sample-event input[name=order_id]", &order.to_string())
        .await;
    b.click("#send-sample").await;
    let outcome = b.wait_text("#sample-outcome", "Запущено связок: 1").await;
    assert!(outcome.contains("Запуск №"), "{outcome}");
    b.click("#sample-event-link").await;
    b.wait_path("/events/").await;
    b.wait_text("#event-outcome", "запущены связки").await;
    assert!(b.text("#event-runs").await.contains("№"));

    // A real trigger for an order of the other store: skipped, with the reason.
    let (_, reply) = fakes
        .crm
        .create_order_and_fire(
            &hook,
            "second",
            json!({"status": "send-to-delivery", "phone": "+79991112235"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The key loses API access: the next order cannot be read, the event fails.
    let settled = |n: i64| {
        let app = &app;
        async move {
            crate::support::eventually(Duration::from_secs(20), || async {
                (app.inbox_count().await >= n && waiting(app).await == 0).then_some(())
            })
            .await
            .expect("the inbox settled");
        }
    };
    settled(2).await;
    fakes.crm.set_api_enabled(CRM_KEY, false);
    fakes
        .crm
        .create_order_and_fire(
            &hook,
            "shop",
            json!({"status": "send-to-delivery", "phone": "+79991112236"}),
        )
        .await
        .unwrap();
    settled(3).await;
    fakes.crm.set_api_enabled(CRM_KEY, true);

    b.click_text("События").await;
    b.wait_path("/events").await;
    let table = b.wait_text("#events-table", "ошибка").await;
    assert!(table.contains("запущены связки"), "{table}");
    assert!(
        table.contains("заказ другого магазина — пропущен"),
        "{table}"
    );
    assert!(
        table.contains("«shop»"),
        "the skip names the key's store: {table}"
    );
    b.screenshot("events-page").await;
    // Filter: only the skipped one.
    b.choose(
        "#events-filter select[name=outcome]",
        None,
        "заказ другого магазина — пропущен",
    )
    .await;
    b.click_text("Показать").await;
    b.wait_path("/events?").await;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#events-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        b.text("#events-table")
            .await
            .contains("заказ другого магазина — пропущен")
    );
    b.close().await;
    app.stop().await;
}
