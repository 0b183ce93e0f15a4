//! The RetailCRM provider page: the whole trigger set-up in the guide's order, whether the
//! upstreams can reach us, the webhook's last delivery and error, and a test event.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

both_backends!(
    retailcrm_page_gives_the_whole_trigger_setup,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let html = unescape(&app.get_html(&format!("/providers/{crm}")).await.1);
        // In the guide's order: active, name, event, condition, store, then the request.
        let order = [
            "«Активность»",
            r#"id="trigger-name">Обработка нового заказа<"#,
            r#"id="trigger-event">Изменение заказа<"#,
            r#"id="trigger-condition">changeSet.isCreate() or changeSet.hasChangedField("status")<"#,
            r#"id="trigger-store-condition">order.site.code == "shop"<"#,
            r#"id="trigger-full-condition">(changeSet.isCreate() or changeSet.hasChangedField("status")) and order.site.code == "shop"<"#,
            r#"id="hook-url""#,
            r#"id="hook-body""#,
            // Beside it, the extended body, its unconfirmed parts named.
            r#"id="hook-body-extended">type=order&status={{ changeSet.getNewValue("status").getCode() }}&id={{ order.id }}"#,
            "&first_name={{ order.firstName|url_encode }}",
            "&site={{ order.site.code|url_encode }}<",
            r#"id="extended-body-unconfirmed">Не подтверждено"#,
        ];
        let mut at = 0;
        for needle in order {
            let found = html[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing or out of order in:\n{html}"));
            at += found;
        }
        for copy in [
            "#trigger-name",
            "#trigger-event",
            "#trigger-condition",
            "#trigger-store-condition",
            "#trigger-full-condition",
            "#hook-body",
            "#hook-body-extended",
        ] {
            assert!(
                html.contains(&format!(r#"data-copy="{copy}""#)),
                "no copy button for {copy}"
            );
        }
        assert!(html.contains("«Мой магазин»"), "the store is named");
        app.get("/lang/en").await;
        let html = unescape(&app.get_html(&format!("/providers/{crm}")).await.1);
        assert!(html.contains(r#"id="trigger-name">New order processing<"#));
        assert!(html.contains("Tick «Active»."));
        assert!(html.contains(r#"id="extended-body-unconfirmed">Not confirmed"#));
        app.stop().await;
    }
);

both_backends!(
    admin_sees_reachability_deliveries_and_a_test_event,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let page = format!("/providers/{crm}");

        // The test app's public address is http on 127.0.0.1: both pages say it cannot work.
        for path in ["/", page.as_str(), &format!("/providers/{wa}")] {
            let html = unescape(&app.get_html(path).await.1);
            assert!(
                html.contains(r#"id="reach-warning""#)
                    && html.contains("указывает на этот компьютер (localhost)")
                    && html.contains("SVYAZKA_PUBLIC_URL"),
                "{path}: {html}"
            );
        }

        // No delivery yet.
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains("ещё не было"), "{html}");
        // A delivery we cannot read: its reason is shown.
        let url = app.hook_url(crm).await;
        let r = client()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("type=order&event=new")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let html = unescape(&app.get_html(&page).await.1);
        let error = html.split(r#"id="hook-last-error">"#).nth(1).unwrap();
        assert!(error.contains("id is missing"), "{html}");
        // A good one: the last delivery time appears (noted before the endpoint answers).
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, mailing_steps())
            .await;
        let (order, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991112233"}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let shown = eventually(SETTLE, || async {
            let html = unescape(&app.get_html(&page).await.1);
            let ok = html.split(r#"id="hook-last-ok">"#).nth(1)?.to_string();
            (ok.trim_start().starts_with("20") && ok.contains("UTC")).then_some(())
        })
        .await;
        assert!(shown.is_some(), "the last delivery is not shown");

        let order_id = order.to_string();
        let test_event = |event: &'static str| {
            let (app, page, order_id) = (&app, &page, &order_id);
            async move {
                let r = app
                    .submit(
                        page,
                        &format!("/providers/{crm}/test-event"),
                        &[("order_id", order_id.as_str()), ("event", event)],
                    )
                    .await;
                assert_eq!(r.status().as_u16(), 200);
                let html = unescape(&r.text().await.unwrap());
                html.split(r#"id="sample-outcome">"#)
                    .nth(1)
                    .unwrap()
                    .split("</div>")
                    .next()
                    .unwrap()
                    .to_string()
            }
        };
        // The order is in «new»: the bundle waits for «send-to-delivery», and the page says so.
        let outcome = test_event("status").await;
        assert!(outcome.contains("Событие сохранено"), "{outcome}");
        assert!(
            outcome
                .contains("Событие ждут связки «Test bundle», но статус заказа «new» не отмечен"),
            "{outcome}"
        );
        // Moved into the bundle's status: the test event starts it, once.
        assert!(fakes.crm.set_order_status(order, "send-to-delivery"));
        let outcome = test_event("status").await;
        assert!(
            outcome.contains("Запущено связок: 1.") && outcome.contains("«Test bundle»"),
            "{outcome}"
        );
        let outcome = test_event("status").await;
        assert!(outcome.contains("Такое событие уже приходило"), "{outcome}");
        app.settled_runs(1, SETTLE).await;
        assert_eq!(fakes.wa.sent_count(), 1);
        assert_eq!(app.runs().await.len(), 1);
        // Not a number: said so.
        let r = app
            .submit(
                &page,
                &format!("/providers/{crm}/test-event"),
                &[("order_id", "abc"), ("event", "new")],
            )
            .await;
        let html = unescape(&r.text().await.unwrap());
        assert!(html.contains("Укажите ID заказа"));
        app.stop().await;
    }
);
