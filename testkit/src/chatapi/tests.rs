#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

async fn setup() -> (FakeChatApi, Running, reqwest::Client) {
    let (fake, running) = FakeChatApi::start().unwrap();
    fake.add_instance("1101", "tok");
    (fake, running, reqwest::Client::new())
}

async fn post_json(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn wrong_token_is_401_with_the_gateway_text() {
    let (_fake, running, http) = setup().await;
    let base = running.base_url();
    let r = http
        .get(format!("{base}/instance1101/status?token=bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Wrong token \"bad\" for instance \"1101\". Please provide token as a GET parameter."})
    );
    // A token in the body or a header does not count.
    let r = http
        .post(format!("{base}/instance1101/sendMessage"))
        .header("token", "tok")
        .json(&json!({"token": "tok", "chatId": "79991234567@c.us", "body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/instance9999/status?token=tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    running.stop().await;
}

#[tokio::test]
async fn send_message_accepts_phone_or_chat_id_in_json_or_form() {
    let (fake, running, http) = setup().await;
    let base = running.base_url();
    let url = || format!("{base}/instance1101/sendMessage?token=tok");

    let (status, body) = post_json(
        &http,
        url(),
        json!({"phone": 79991234567u64, "body": "one"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["sent"], json!(true));
    assert_eq!(body["message"], json!("ok"));
    assert_eq!(body["queueNumber"], json!(1));
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("true_79991234567@c.us_"), "{id}");
    assert_eq!(id.len(), "true_79991234567@c.us_".len() + 20);

    let (status, _) = post_json(&http, url(), json!({"phone": "79991234567", "body": "two"})).await;
    assert_eq!(status, 200);
    let (status, _) = post_json(
        &http,
        url(),
        json!({"chatId": "79991234567-1479621234@g.us", "body": "three"}),
    )
    .await;
    assert_eq!(status, 200);
    let r = http
        .post(url())
        .form(&[("chatId", "79991234567@c.us"), ("body", "four")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The other two URL forms reach the same instance.
    let (status, _) = post_json(
        &http,
        format!("{base}/1101/sendMessage?token=tok"),
        json!({"chatId": "79991234567@c.us", "body": "five"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_json(
        &http,
        format!("{base}/sendMessage?instanceId=1101&token=tok"),
        json!({"chatId": "79991234567@c.us", "body": "six"}),
    )
    .await;
    assert_eq!(status, 200);

    let sent = fake.sent_messages();
    assert_eq!(sent.len(), 6);
    assert_eq!(sent[0].phone.as_deref(), Some("79991234567"));
    assert_eq!(sent[0].chat_id, "79991234567@c.us");
    assert_eq!(sent[2].chat_id, "79991234567-1479621234@g.us");
    assert_eq!(sent[3].body, "four");
    assert_eq!(sent[5].queue_number, 6);
    assert_eq!(fake.sent_count(), 6);
    running.stop().await;
}

#[tokio::test]
async fn send_message_validation() {
    let (fake, running, http) = setup().await;
    let url = format!("{}/instance1101/sendMessage?token=tok", running.base_url());
    for body in [
        json!({"chatId": "79991234567@c.us"}),
        json!({"chatId": "79991234567@c.us", "body": ""}),
        json!({"body": "x"}),
        json!({"body": "x", "phone": "79991234567", "chatId": "79991234567@c.us"}),
        json!({"body": "x", "phone": "+7 999"}),
        json!({"body": "x", "chatId": "79991234567"}),
        json!({"body": "x", "chatId": 79991234567u64}),
    ] {
        let (status, reply) = post_json(&http, url.clone(), body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(reply["error"].is_string(), "{body}: {reply}");
    }
    let r = http.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(fake.sent_count(), 0);
    running.stop().await;
}

#[tokio::test]
async fn failure_modes() {
    let (fake, running, http) = setup().await;
    let url = format!("{}/instance1101/sendMessage?token=tok", running.base_url());
    let msg = json!({"chatId": "79991234567@c.us", "body": "x"});

    fake.refuse_sends("1101", Some("Chat not found")).unwrap();
    let (status, body) = post_json(&http, url.clone(), msg.clone()).await;
    assert_eq!(
        (status, body),
        (200, json!({"sent": false, "message": "Chat not found"}))
    );
    fake.refuse_sends("1101", None).unwrap();

    fake.fail_next(2);
    for _ in 0..2 {
        let (status, _) = post_json(&http, url.clone(), msg.clone()).await;
        assert_eq!(status, 500);
    }
    let (status, _) = post_json(&http, url.clone(), msg.clone()).await;
    assert_eq!(status, 200);

    fake.set_not_paid("1101").unwrap();
    let (status, body) = post_json(&http, url.clone(), msg.clone()).await;
    assert_eq!(status, 402);
    assert!(body["error"].as_str().unwrap().contains("not paid"));
    assert_eq!(fake.sent_count(), 1);

    fake.set_latency(Duration::from_millis(300));
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    assert!(
        quick
            .get(format!(
                "{}/instance1101/status?token=tok",
                running.base_url()
            ))
            .send()
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert!(fake.set_not_paid("nope").is_err());
    running.stop().await;
}

#[tokio::test]
async fn status_webhook_and_settings() {
    let (fake, running, http) = setup().await;
    let base = running.base_url();
    for status in [
        "authenticated",
        "got qr code",
        "loading",
        "init",
        "not_paid",
    ] {
        fake.set_account_status("1101", status).unwrap();
        let body: Value = http
            .get(format!(
                "{base}/instance1101/status?token=tok&no_wakeup=true"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["accountStatus"], json!(status));
        assert_eq!(body.get("qrCode").is_some(), status == "got qr code");
    }
    fake.set_account_status("1101", "authenticated").unwrap();

    let (status, body) = post_json(
        &http,
        format!("{base}/instance1101/webhook?token=tok"),
        json!({"webhookUrl": "https://shop.example/hook/s3cr3t"}),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"set": true, "message": "https://shop.example/hook/s3cr3t"})
        )
    );
    assert_eq!(
        fake.webhook_url("1101").as_deref(),
        Some("https://shop.example/hook/s3cr3t")
    );
    let body: Value = http
        .get(format!("{base}/instance1101/webhook?token=tok"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"webhookUrl": "https://shop.example/hook/s3cr3t"})
    );
    let (_, body) = post_json(
        &http,
        format!("{base}/instance1101/webhook?token=tok"),
        json!({"webhookUrl": "ftp://x"}),
    )
    .await;
    assert_eq!(body["set"], json!(false));

    let (status, body) = post_json(
        &http,
        format!("{base}/instance1101/settings?token=tok"),
        json!({"ackNotificationsOn": true, "webhookUrl": "http://127.0.0.1:1/h"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["ackNotificationsOn"], json!(true));
    assert_eq!(
        body["update"],
        json!({"ackNotificationsOn": true, "webhookUrl": "http://127.0.0.1:1/h"})
    );
    assert_eq!(
        fake.webhook_url("1101").as_deref(),
        Some("http://127.0.0.1:1/h")
    );
    let body: Value = http
        .get(format!("{base}/instance1101/settings?token=tok"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["guaranteedHooks"], json!(false));
    assert_eq!(body["ackNotificationsOn"], json!(true));

    let r = http
        .get(format!("{base}/instance1101/nope?token=tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    running.stop().await;
}

#[tokio::test]
async fn driver_posts_gateway_shaped_webhooks() {
    let (fake, running, _http) = setup().await;
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let hook = format!("{}/hook/s3cr3t", sink_running.base_url());
    fake.add_instance("2202", "other");
    fake.with_instance("2202", |i| i.webhook_url = Some(hook.clone()))
        .unwrap();

    assert_eq!(
        fake.post_incoming(&hook, "+7 999 123-45-67", "Иван", "Здравствуйте")
            .await
            .unwrap(),
        200
    );
    let id = fake.last_message_id().unwrap();
    assert_eq!(fake.redeliver_last().await.unwrap().unwrap(), 200);
    fake.post_echo(&hook, "79991234567", "Ответ").await.unwrap();
    fake.post_media(
        &hook,
        "79991234567",
        "Иван",
        "image",
        "https://files.example/a.jpg",
    )
    .await
    .unwrap();
    fake.post_ack(
        &hook,
        "true_79991234567@c.us_ABC",
        "79991234567@c.us",
        "delivered",
    )
    .await
    .unwrap();

    let got = sink.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 5);
    assert!(
        got.iter()
            .all(|r| r.path == "/hook/s3cr3t" && r.method == "POST")
    );
    assert!(
        got.iter()
            .all(|r| r.header("x-hub-signature-256").is_none()),
        "no signature"
    );
    let first = got[0].json().unwrap();
    assert_eq!(first["instanceId"], json!("2202"));
    let m = &first["messages"][0];
    assert_eq!(m["id"], json!(id));
    assert!(id.starts_with("false_79991234567@c.us_"));
    assert_eq!(m["type"], json!("chat"));
    assert_eq!(m["fromMe"], json!(false));
    assert_eq!(m["chatId"], json!("79991234567@c.us"));
    assert_eq!(m["author"], json!("79991234567@c.us"));
    assert_eq!(m["senderName"], json!("Иван"));
    assert_eq!(m["body"], json!("Здравствуйте"));
    assert!(m["time"].is_i64());
    assert_eq!(got[1].body, got[0].body, "redelivery repeats the body");
    let echo = got[2].json().unwrap();
    assert_eq!(echo["messages"][0]["fromMe"], json!(true));
    assert!(
        echo["messages"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("true_")
    );
    assert_eq!(
        got[3].json().unwrap()["messages"][0]["body"],
        json!("https://files.example/a.jpg")
    );
    let ack = got[4].json().unwrap();
    assert_eq!(ack["ack"][0]["status"], json!("delivered"));
    assert_eq!(ack["instanceId"], json!("2202"));

    sink.respond_next(500, None);
    assert_eq!(
        fake.post_incoming(&hook, "79991234567", "Иван", "again")
            .await
            .unwrap(),
        500
    );
    sink_running.stop().await;
    running.stop().await;
}

#[tokio::test]
async fn control_endpoints_drive_the_standalone_fake() {
    let (fake, running, http) = setup().await;
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let base = running.base_url();
    let hook = format!("{}/wa", sink_running.base_url());
    post_json(
        &http,
        format!("{base}/instance1101/webhook?token=tok"),
        json!({"webhookUrl": hook}),
    )
    .await;
    let (status, body) = post_json(
        &http,
        format!("{base}/_fake/incoming"),
        json!({"from": "79991234567", "text": "hi"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhookStatus"], json!(200));
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    post_json(
        &http,
        format!("{base}/instance1101/sendMessage?token=tok"),
        json!({"chatId": "79991234567@c.us", "body": "yo"}),
    )
    .await;
    let sent: Value = http
        .get(format!("{base}/_fake/sent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent[0]["body"], json!("yo"));
    assert_eq!(fake.sent_count(), 1);
    sink_running.stop().await;
    running.stop().await;
}
