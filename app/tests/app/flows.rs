//! The two jobs users buy Svyazka for, end to end over HTTP against the fakes.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

both_backends!(
    flow1_incoming_whatsapp_message_lands_in_retailcrm,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
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
            .post_incoming(&url, "79991234567", "Иван", "Хочу заказать диван")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let customers = fakes.crm.customers();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0]["phones"][0]["number"], "+79991234567");
        let orders = fakes.crm.orders();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0]["customer"]["id"], customers[0]["id"]);
        let chat = fakes.crm.mg_messages();
        assert_eq!(chat.len(), 1);
        assert_eq!(chat[0].text, "Хочу заказать диван");

        // A second message from the same phone: no second customer, and (open deal exists) no second order.
        fakes
            .wa
            .post_incoming(&url, "+7 (999) 123-45-67", "Иван", "А доставка когда?")
            .await
            .unwrap();
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"));
        assert_eq!(fakes.crm.customers().len(), 1);
        assert_eq!(fakes.crm.orders().len(), 1);
        assert_eq!(fakes.crm.mg_messages().len(), 2);
        app.stop().await;
    }
);

both_backends!(
    flow2_order_status_sends_templated_whatsapp,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(
        crm,
        "new_deal",
        &["send-to-delivery"],
        wa,
        vec![step(
            "send_message",
            vec![("recipient", event_field("phone")), ("text", template("Здравствуйте, {{ first_name }}! Заказ №{{ number }} передан в доставку."))],
        )],
    )
    .await;
        let url = app.hook_url(crm).await;
        let (order, reply) = fakes
        .crm
        .create_order_and_fire(&url, "shop", json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "+7 999 111-22-33"}))
        .await
        .unwrap();
        assert_eq!(reply.status, 200);
        app.settled_runs(1, SETTLE).await;
        let sent = fakes.wa.sent_messages();
        assert_eq!(sent.len(), 1);
        let number = fakes.crm.order(order).unwrap()["number"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            sent[0].body,
            format!("Здравствуйте, Анна! Заказ №{number} передан в доставку.")
        );
        assert_eq!(sent[0].chat_id, "79991112233@c.us");

        // The same trigger again: stored once, one message.
        fakes
            .crm
            .fire_trigger(&url, order, svyazka_testkit::retailcrm::TriggerEvent::New)
            .await
            .unwrap();
        // A status outside the filter: no run.
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Олег", "phone": "+79995554433"}),
            )
            .await
            .unwrap();
        let inbox_done = eventually(SETTLE, || async {
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
            (pending == 0).then_some(())
        })
        .await;
        assert!(inbox_done.is_some());
        assert_eq!(app.inbox_count().await, 2);
        assert_eq!(app.runs().await.len(), 1);
        assert_eq!(fakes.wa.sent_count(), 1);
        app.stop().await;
    }
);

both_backends!(
    transient_503_mid_run_is_retried_without_duplicates,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        // Let New contact (find + create) through, then RetailCRM rate-limits longer than the
        // client's own three retries: the run has to come back later.
        fakes.crm.fail_after(2, 5, 503);
        fakes
            .wa
            .post_incoming(&app.hook_url(wa).await, "79990001122", "Пётр", "Привет")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert!(runs[0].attempts >= 2, "the run was retried");
        let steps = app
            .core()
            .db({
                let id = runs[0].id;
                move |c| svyazka_core::runs::steps(c, id)
            })
            .await
            .unwrap();
        assert_eq!(
            steps[0].attempt, 1,
            "New contact succeeded once and was not repeated"
        );
        assert_eq!(fakes.crm.customers().len(), 1);
        assert_eq!(fakes.crm.orders().len(), 1);
        assert_eq!(fakes.crm.mg_messages().len(), 1);
        app.stop().await;
    }
);

both_backends!(
    permanent_400_fails_the_run_with_retailcrm_message,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let lit = |v: &str| svyazka_core::bundles::Value::Literal { value: v.into() };
        app.bundle(
            wa,
            "incoming_message",
            &[],
            crm,
            vec![step(
                "new_deal",
                vec![
                    ("phone", event_field("sender_id")),
                    ("contact_id", lit("999999")),
                    ("only_if_no_open_deal", lit("false")),
                ],
            )],
        )
        .await;
        fakes
            .wa
            .post_incoming(&app.hook_url(wa).await, "79990001122", "Пётр", "Привет")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].attempts, 1, "permanent errors are not retried");
        // Stored as a typed reason that keeps RetailCRM's own words.
        use svyazka_core::reason::{Reason, Service, Stored, Upstream, read_stored};
        let error = runs[0].error.clone().unwrap();
        match read_stored::<Reason>(&error) {
            Stored::Typed(Reason::Upstream(u)) => {
                assert_eq!(u.service, Service::Retailcrm, "{error}");
                assert!(
                    matches!(&u.failure, Upstream::Refused { details, .. }
                        if details.iter().any(|d| d.contains("999999"))),
                    "upstream's own message: {error}"
                );
            }
            other => panic!("not an upstream failure: {other:?}"),
        }
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[0].id)).await.1);
        assert!(
            html.contains(r#"<q class="upstream">Errors in the entity format</q>"#),
            "shown quoted on the run page"
        );
        assert!(fakes.crm.orders().is_empty());
        app.stop().await;
    }
);
