//! The guide's recipes as written: «Новая сделка» limited to statuses is the mailing recipe
//! ("the order was created in, or moved into, one of these statuses").

use std::time::Duration;

use serde_json::json;
use svyazka_core::bundles::{self, BundleState, NewBundle};

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

/// Waits until the inbox has `n` items and every one is done.
async fn inbox_settled(app: &TestApp, n: i64) {
    let done = eventually(SETTLE, || async {
        use diesel::prelude::*;
        use svyazka_core::db::schema::inbox;
        let pending: i64 = app
            .core()
            .db(|c| {
                inbox::table
                    .filter(inbox::status.ne("done"))
                    .count()
                    .get_result(c)
                    .map_err(svyazka_core::db::DbError::from)
            })
            .await
            .unwrap();
        (pending == 0 && app.inbox_count().await >= n).then_some(())
    })
    .await;
    assert!(done.is_some(), "the inbox did not settle");
}

async fn stored(app: &TestApp, id: i64) -> bundles::Bundle {
    app.core()
        .db(move |c| bundles::get(c, id))
        .await
        .unwrap()
        .unwrap()
}

both_backends!(
    new_deal_with_status_fires_when_an_order_moves_into_it,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, mailing_steps())
            .await;
        let url = app.hook_url(crm).await;
        // Created in another status: nothing.
        let (order, _) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991112233"}),
            )
            .await
            .unwrap();
        inbox_settled(&app, 1).await;
        assert_eq!(app.runs().await.len(), 0);
        // Moved into a status the bundle does not list: nothing.
        fakes
            .crm
            .change_status_and_fire(&url, order, "assembling")
            .await
            .unwrap();
        inbox_settled(&app, 2).await;
        assert_eq!(app.runs().await.len(), 0);
        // Moved into the chosen status: one message.
        fakes
            .crm
            .change_status_and_fire(&url, order, "send-to-delivery")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        // RetailCRM repeating the same trigger: still one.
        fakes
            .crm
            .fire_trigger(
                &url,
                order,
                svyazka_testkit::retailcrm::TriggerEvent::Status,
            )
            .await
            .unwrap();
        inbox_settled(&app, 3).await;
        assert_eq!(app.runs().await.len(), 1);
        assert_eq!(fakes.wa.sent_count(), 1);
        let number = fakes.crm.order(order).unwrap()["number"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            fakes.wa.sent_messages()[0].body,
            format!("Заказ №{number}: send-to-delivery")
        );
        app.stop().await;
    }
);

both_backends!(
    status_change_bundle_ignores_new_orders,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(
            crm,
            "deal_status_changed",
            &["send-to-delivery"],
            wa,
            mailing_steps(),
        )
        .await;
        let url = app.hook_url(crm).await;
        // Created straight in the status: «Смена статуса сделки» is for moves only.
        let (order, _) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "+79991112233"}),
            )
            .await
            .unwrap();
        inbox_settled(&app, 1).await;
        assert_eq!(app.runs().await.len(), 0);
        fakes
            .crm
            .change_status_and_fire(&url, order, "assembling")
            .await
            .unwrap();
        fakes
            .crm
            .change_status_and_fire(&url, order, "send-to-delivery")
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        inbox_settled(&app, 3).await;
        assert_eq!(app.runs().await.len(), 1);
        app.stop().await;
    }
);

both_backends!(start_needs_a_status_or_any_status, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let fakes = Fakes::start();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    let new = NewBundle {
        name: "Рассылка".into(),
        source_provider_id: crm,
        event_type: "new_deal".into(),
        target_provider_id: wa,
        steps: mailing_steps(),
    };
    let id = app
        .core()
        .db(move |c| bundles::create(c, &new))
        .await
        .unwrap();
    let editor = format!("/bundles/{id}");
    // No status: refused, and the page says what to do.
    let r = app
        .submit(&editor, &format!("/bundles/{id}/start"), &[])
        .await;
    assert_eq!(r.status().as_u16(), 422);
    let html = unescape(&r.text().await.unwrap());
    assert!(
        html.contains("выберите статусы сделки или отметьте «Любой статус»"),
        "{html}"
    );
    assert_eq!(stored(&app, id).await.state, BundleState::Stopped);

    // The selector offers «Любой статус».
    let (_, page) = app.get_html(&format!("/bundles/{id}/statuses")).await;
    assert!(page.contains(r#"name="any_status""#), "{page}");

    // «Любой статус» ticked (with a single status too: it wins): stored, Start allowed.
    let r = app
        .submit(
            &editor,
            &format!("/bundles/{id}/statuses"),
            &[("status", "new"), ("any_status", "1")],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(stored(&app, id).await.status_filter, [bundles::ANY_STATUS]);
    let (_, page) = app.get_html(&format!("/bundles/{id}/statuses")).await;
    assert!(page.contains(r#"id="any-status" checked"#), "{page}");
    let r = app
        .submit(&editor, &format!("/bundles/{id}/start"), &[])
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(stored(&app, id).await.state, BundleState::Running);

    // «Новая сделка» with any status is every new order, not every move.
    let url = app.hook_url(crm).await;
    let (order, _) = fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": "Анна", "phone": "+79991112233"}),
        )
        .await
        .unwrap();
    app.settled_runs(1, SETTLE).await;
    fakes
        .crm
        .change_status_and_fire(&url, order, "assembling")
        .await
        .unwrap();
    inbox_settled(&app, 2).await;
    assert_eq!(app.runs().await.len(), 1);
    app.stop().await;
});

both_backends!(
    source_of_a_new_contact_is_the_provider_type_picked_in_the_editor,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let bundle = app
            .bundle(
                wa,
                "incoming_message",
                &[],
                crm,
                vec![step(
                    "new_contact",
                    vec![
                        ("phone", event_field("sender_id")),
                        ("name", event_field("sender_name")),
                        ("source", event_field("provider_type")),
                    ],
                )],
            )
            .await;
        // The editor offers the provider's type and name among the event's fields, and a text
        // parameter opens ready to type (plain text is a template with no parameters).
        let (_, page) = app.get_html(&format!("/bundles/{bundle}")).await;
        let page = unescape(&page);
        assert!(
            page.contains(r#"<option value="event:provider_type" selected>"#),
            "{page}"
        );
        assert!(page.contains("Тип провайдера") && page.contains("Название провайдера"));
        assert!(page.contains("Enter — подтвердить"));
        let url = app.hook_url(wa).await;
        fakes
            .wa
            .post_incoming(&url, "79991234567", "Иван", "Здравствуйте")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let customers = fakes.crm.customers();
        assert_eq!(customers.len(), 1);
        assert_eq!(
            customers[0]["source"]["source"],
            "WhatsApp (1msg.io / ChatAPI)"
        );
        app.stop().await;
    }
);
