use crate::both_backends;
use crate::support::*;

both_backends!(
    chatapi_webhook_is_stored_once_and_bad_input_changes_nothing,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let wa = app.add_chatapi(&fakes).await;
        let url = app.hook_url(wa).await;
        let status = fakes
            .wa
            .post_incoming(&url, "79991234567", "Иван", "Здравствуйте")
            .await
            .unwrap();
        assert_eq!(status.as_u16(), 200);
        assert_eq!(app.inbox_count().await, 1);
        // A redelivery of the same message is acknowledged and not stored twice.
        assert_eq!(
            fakes.wa.redeliver_last().await.unwrap().unwrap().as_u16(),
            200
        );
        assert_eq!(app.inbox_count().await, 1);
        // Our own echo and acks are acknowledged and ignored.
        assert_eq!(
            fakes
                .wa
                .post_echo(&url, "79991234567", "reply")
                .await
                .unwrap()
                .as_u16(),
            200
        );
        assert_eq!(app.inbox_count().await, 1);

        let http = reqwest::Client::new();
        let wrong = url.rsplit_once('/').unwrap().0.to_string() + "/not-the-secret";
        let r = http.post(&wrong).body("{}").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert!(
            r.text().await.unwrap().is_empty(),
            "no detail on a wrong secret"
        );
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"messages\": [")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert!(!r.text().await.unwrap().is_empty(), "400 says why");
        let r = http
            .post(&url)
            .body(r#"{"hello":"world"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let r = http
            .post(&url)
            .body(vec![0xffu8, 0xfe, 0x00])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let nested = "[".repeat(100_000) + &"]".repeat(100_000);
        let r = http.post(&url).body(nested).send().await.unwrap();
        assert!(
            r.status().is_client_error(),
            "deeply nested JSON is refused, got {}",
            r.status()
        );
        let r = http
            .post(&url)
            .body(vec![b' '; 300 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413);
        assert_eq!(app.inbox_count().await, 1, "bad input stored nothing");
        app.stop().await;
    }
);

both_backends!(
    retailcrm_trigger_bad_bodies_are_refused_with_reasons,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let url = app.hook_url(crm).await;
        let http = reqwest::Client::new();
        for body in [
            "",
            "type=order&status=new&event=new",
            "type=order&id=x&event=new",
            "type=order&id=1&event=delete",
            "type=order&id=1&id=2&event=new",
        ] {
            let r = http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 400, "{body}");
            let reason: serde_json::Value = r.json().await.unwrap();
            assert!(
                reason["error"].as_str().is_some_and(|s| !s.is_empty()),
                "{body}: {reason}"
            );
        }
        assert_eq!(app.inbox_count().await, 0);
        // The same trigger arriving as query string or JSON is accepted and deduplicated.
        let ok = http
            .post(format!("{url}?type=order&status=new&id=5&event=new"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        let ok = http
            .post(&url)
            .json(&serde_json::json!({"type":"order","status":"new","id":"5","event":"new"}))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(
            ok.json::<serde_json::Value>().await.unwrap()["duplicates"],
            1
        );
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

both_backends!(
    telegram_webhook_needs_the_secret_header,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let tg = app.add_telegram(&fakes).await;
        let p = app.provider(tg).await;
        let url = app.hook_url(tg).await;
        let update = serde_json::json!({"update_id": 1, "message": {"message_id": 5, "date": 1700000000, "text": "hi",
        "from": {"id": 5123456789i64, "is_bot": false, "first_name": "Anna"}, "chat": {"id": 5123456789i64, "type": "private"}}});
        let http = reqwest::Client::new();
        let r = http.post(&url).json(&update).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "missing header");
        let r = http
            .post(&url)
            .header("X-Telegram-Bot-Api-Secret-Token", "wrong")
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert_eq!(app.inbox_count().await, 0);
        let r = http
            .post(&url)
            .header("X-Telegram-Bot-Api-Secret-Token", &p.webhook_secret)
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

both_backends!(
    a_concurrent_burst_with_redeliveries_stores_each_delivery_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let url = app.hook_url(crm).await;
        // 100 orders, each trigger delivered twice, all at once: the webhook writer puts them
        // into shared commits, where a redelivery can meet its original in the same batch.
        let http = reqwest::Client::new();
        let posts = (0..200u32).map(|i| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let id = 1000 + i % 100;
                let r = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("type=order&status=new&id={id}&event=new"))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap();
                (id, status, body)
            }
        });
        let replies = futures::future::join_all(posts).await;
        let mut by_order: std::collections::HashMap<u32, Vec<serde_json::Value>> =
            std::collections::HashMap::new();
        for (id, status, body) in replies {
            assert_eq!(status, 200, "{body}");
            by_order.entry(id).or_default().push(body);
        }
        assert_eq!(app.inbox_count().await, 100, "one row per delivery");
        for (id, bodies) in by_order {
            let [a, b] = bodies.as_slice() else {
                panic!("order {id}: {bodies:?}");
            };
            assert_eq!(a["stored"], b["stored"], "order {id}: both name one row");
            let duplicates = a["duplicates"].as_u64().unwrap() + b["duplicates"].as_u64().unwrap();
            assert_eq!(duplicates, 1, "order {id}: one original, one redelivery");
        }
        app.stop().await;
    }
);
