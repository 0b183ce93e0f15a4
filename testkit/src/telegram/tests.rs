#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "5000000000:AAtest-token_1";

fn anna() -> TgUser {
    TgUser::new(5_000_000_123, "Анна").with_username("anna")
}

async fn setup() -> (FakeTelegram, Running, reqwest::Client, String) {
    let (fake, running) = FakeTelegram::start().unwrap();
    fake.add_bot(TOKEN, "shop_bot");
    let api = format!("{}/bot{TOKEN}", running.base_url());
    (fake, running, reqwest::Client::new(), api)
}

async fn call(http: &reqwest::Client, url: String, body: Value) -> (u16, Value, Option<String>) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap();
    (status, body, retry_after)
}

fn assert_error(reply: &(u16, Value, Option<String>), code: u16, description: &str) {
    assert_eq!(reply.0, code, "{}", reply.1);
    assert_eq!(reply.1["ok"], json!(false));
    assert_eq!(reply.1["error_code"], json!(code));
    assert_eq!(reply.1["description"], json!(description));
}

#[tokio::test]
async fn auth_methods_and_get_me() {
    let (_fake, running, http, api) = setup().await;
    let base = running.base_url();
    assert_error(
        &call(
            &http,
            format!("{base}/bot5000000000:wrong/getMe"),
            json!({}),
        )
        .await,
        401,
        "Unauthorized",
    );
    assert_error(
        &call(&http, format!("{base}/botgarbage/getMe"), json!({})).await,
        401,
        "Unauthorized: invalid token specified",
    );
    assert_error(
        &call(&http, format!("{api}/noSuchMethod"), json!({})).await,
        404,
        "Not Found: method not found",
    );

    let (status, body, _) = call(&http, format!("{api}/GETME"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], json!(true));
    assert_eq!(body["result"]["id"], json!(5_000_000_000i64));
    assert_eq!(body["result"]["is_bot"], json!(true));
    assert_eq!(body["result"]["username"], json!("shop_bot"));
    // Plain GET without a body works too.
    let r = http.get(format!("{api}/getMe")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    running.stop().await;
}

#[tokio::test]
async fn short_token_prefixes_still_get_64_bit_ids() {
    let fake = FakeTelegram::new();
    let id = fake.add_bot("123456:demo-token", "demo");
    assert!(id > i64::from(i32::MAX), "{id}");
}

#[tokio::test]
async fn send_message_validation_and_errors() {
    let (fake, running, http, api) = setup().await;
    let url = || format!("{api}/sendMessage");
    let user = anna();
    assert_error(
        &call(&http, url(), json!({"chat_id": user.id, "text": "hi"})).await,
        400,
        "Bad Request: chat not found",
    );
    fake.user_writes(TOKEN, &user, "hello").await.unwrap();

    assert_error(
        &call(&http, url(), json!({"chat_id": user.id, "text": ""})).await,
        400,
        "Bad Request: message text is empty",
    );
    assert_error(
        &call(&http, url(), json!({"chat_id": user.id})).await,
        400,
        "Bad Request: message text is empty",
    );
    assert_error(
        &call(&http, url(), json!({"text": "x"})).await,
        400,
        "Bad Request: chat_id is empty",
    );
    assert_error(
        &call(&http, url(), json!({"chat_id": 42, "text": "x"})).await,
        400,
        "Bad Request: chat not found",
    );
    assert_error(
        &call(
            &http,
            url(),
            json!({"chat_id": user.id, "text": "я".repeat(4097)}),
        )
        .await,
        400,
        "Bad Request: message is too long",
    );

    let (status, body, _) = call(
        &http,
        url(),
        json!({"chat_id": user.id, "text": "я".repeat(4096)}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["chat"]["id"], json!(user.id));
    assert_eq!(
        body["result"]["message_id"],
        json!(2),
        "the user's message was 1"
    );

    // Form, query string and @username addressing.
    let r = http
        .post(url())
        .form(&[("chat_id", user.id.to_string()), ("text", "form".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}?chat_id=%40anna&text=query", url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = fake.sent_to(user.id);
    assert_eq!(
        sent.iter()
            .map(|s| s.text.as_str())
            .skip(1)
            .collect::<Vec<_>>(),
        ["form", "query"]
    );

    fake.user_blocks_bot(TOKEN, &user).await.unwrap();
    assert_error(
        &call(&http, url(), json!({"chat_id": user.id, "text": "x"})).await,
        403,
        "Forbidden: bot was blocked by the user",
    );
    // Writing again means the user unblocked the bot.
    fake.user_writes(TOKEN, &user, "back").await.unwrap();
    assert_eq!(
        call(&http, url(), json!({"chat_id": user.id, "text": "x"}))
            .await
            .0,
        200
    );
    running.stop().await;
}

#[tokio::test]
async fn flood_control_answers_429_with_retry_after_everywhere() {
    let (fake, running, http, api) = setup().await;
    fake.set_flood_limit(Some(FloodLimit {
        per_chat_per_sec: 2,
        retry_after_secs: 7,
    }));
    let user = anna();
    fake.user_writes(TOKEN, &user, "hi").await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            call(
                &http,
                format!("{api}/sendMessage"),
                json!({"chat_id": user.id, "text": "x"})
            )
            .await
            .0,
            200
        );
    }
    let reply = call(
        &http,
        format!("{api}/sendMessage"),
        json!({"chat_id": user.id, "text": "x"}),
    )
    .await;
    assert_error(&reply, 429, "Too Many Requests: retry after 7");
    assert_eq!(reply.1["parameters"], json!({"retry_after": 7}));
    assert_eq!(reply.2.as_deref(), Some("7"));
    assert_eq!(fake.sent_messages().len(), 2);
    running.stop().await;
}

#[tokio::test]
async fn get_updates_confirms_by_offset_and_long_polls() {
    let (fake, running, http, api) = setup().await;
    let user = anna();
    let first = fake.user_writes(TOKEN, &user, "one").await.unwrap();
    assert!(matches!(first, Delivery::Queued { .. }));
    let first = first.update_id();
    fake.user_writes(TOKEN, &user, "two").await.unwrap();

    let (_, body, _) = call(&http, format!("{api}/getUpdates"), json!({})).await;
    let updates = body["result"].as_array().unwrap().clone();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["update_id"], json!(first));
    assert_eq!(updates[1]["update_id"], json!(first + 1));
    assert_eq!(updates[0]["message"]["text"], json!("one"));
    assert_eq!(updates[0]["message"]["from"]["id"], json!(user.id));

    // Unconfirmed updates come again; offset confirms.
    let (_, body, _) = call(
        &http,
        format!("{api}/getUpdates"),
        json!({"offset": first + 1}),
    )
    .await;
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
    assert_eq!(fake.pending_count(TOKEN).unwrap(), 1);

    // A long poll returns as soon as a user writes.
    let poll = {
        let http = http.clone();
        let url = format!("{api}/getUpdates");
        tokio::spawn(
            async move { call(&http, url, json!({"offset": first + 2, "timeout": 10})).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    fake.user_writes(TOKEN, &user, "three").await.unwrap();
    let (_, body, _) = poll.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(body["result"][0]["message"]["text"], json!("three"));

    // An empty long poll ends after its timeout with [].
    let offset = first + 3;
    let started = std::time::Instant::now();
    let (_, body, _) = call(
        &http,
        format!("{api}/getUpdates"),
        json!({"offset": offset, "timeout": 1}),
    )
    .await;
    assert_eq!(body["result"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));
    running.stop().await;
}

#[tokio::test]
async fn a_second_poller_terminates_the_first() {
    let (_fake, running, http, api) = setup().await;
    let first = {
        let http = http.clone();
        let url = format!("{api}/getUpdates");
        tokio::spawn(async move { call(&http, url, json!({"timeout": 10})).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _, _) = call(&http, format!("{api}/getUpdates"), json!({"timeout": 0})).await;
    assert_eq!(status, 200);
    assert_error(
        &first.await.unwrap(),
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    );
    running.stop().await;
}

#[tokio::test]
async fn webhook_setup_validation_and_conflict() {
    let (fake, running, http, api) = setup().await;
    let set = |body: Value| call(&http, format!("{api}/setWebhook"), body);
    assert_error(
        &set(json!({"url": "https://x.example/h", "secret_token": "a".repeat(257)})).await,
        400,
        "Bad Request: secret token is too long",
    );
    assert_error(
        &set(json!({"url": "https://x.example/h", "secret_token": "with space"})).await,
        400,
        "Bad Request: secret token contains unallowed characters",
    );
    let (status, body, _) =
        set(json!({"url": "https://x.example/h", "secret_token": "Ab_-9"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ok": true, "result": true, "description": "Webhook was set"})
    );
    assert_eq!(
        set(json!({"url": "https://x.example/h", "secret_token": "Ab_-9"}))
            .await
            .1["description"],
        json!("Webhook is already set")
    );
    assert_eq!(
        fake.webhook_url(TOKEN).unwrap().as_deref(),
        Some("https://x.example/h")
    );

    assert_error(
        &call(&http, format!("{api}/getUpdates"), json!({})).await,
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    );
    let (_, info, _) = call(&http, format!("{api}/getWebhookInfo"), json!({})).await;
    assert_eq!(info["result"]["url"], json!("https://x.example/h"));
    assert_eq!(info["result"]["pending_update_count"], json!(0));

    let (_, body, _) = call(&http, format!("{api}/deleteWebhook"), json!({})).await;
    assert_eq!(body["description"], json!("Webhook was deleted"));
    let (_, body, _) = call(&http, format!("{api}/deleteWebhook"), json!({})).await;
    assert_eq!(body["description"], json!("Webhook is already deleted"));
    let (_, info, _) = call(&http, format!("{api}/getWebhookInfo"), json!({})).await;
    assert_eq!(info["result"]["url"], json!(""));
    assert_eq!(
        call(&http, format!("{api}/getUpdates"), json!({})).await.0,
        200
    );
    running.stop().await;
}

#[tokio::test]
async fn webhook_delivery_with_secret_retries_and_duplicates() {
    let (fake, running, http, api) = setup().await;
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let hook = format!("{}/tg/hook", sink_running.base_url());
    call(
        &http,
        format!("{api}/setWebhook"),
        json!({"url": hook, "secret_token": "s3cr3t"}),
    )
    .await;
    let user = anna();

    let delivery = fake.user_writes(TOKEN, &user, "hi").await.unwrap();
    let Delivery::Delivered {
        update_id,
        attempts: 1,
        status: 200,
    } = delivery
    else {
        panic!("{delivery:?}");
    };
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("x-telegram-bot-api-secret-token"),
        Some("s3cr3t")
    );
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let update = got[0].json().unwrap();
    assert_eq!(update["update_id"], json!(update_id));
    assert_eq!(update["message"]["text"], json!("hi"));

    // Non-2xx answers are retried, honouring (capped) Retry-After.
    sink.respond_next(500, None);
    sink.respond_next(429, Some(1));
    let delivery = fake.user_writes(TOKEN, &user, "again").await.unwrap();
    assert!(
        matches!(delivery, Delivery::Delivered { attempts: 3, .. }),
        "{delivery:?}"
    );

    // Exhausted attempts leave the update pending and show up in getWebhookInfo.
    fake.set_webhook_retry(WebhookRetry {
        attempts: 2,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
    });
    sink.respond_next(502, None);
    sink.respond_next(502, None);
    let delivery = fake.user_writes(TOKEN, &user, "stuck").await.unwrap();
    assert!(
        matches!(&delivery, Delivery::Failed { attempts: 2, last_error, .. } if last_error.contains("502")),
        "{delivery:?}"
    );
    let (_, info, _) = call(&http, format!("{api}/getWebhookInfo"), json!({})).await;
    assert_eq!(info["result"]["pending_update_count"], json!(1));
    assert!(
        info["result"]["last_error_message"]
            .as_str()
            .unwrap()
            .contains("Wrong response from the webhook: 502")
    );
    let outcomes = fake.deliver_pending(TOKEN).await.unwrap();
    assert!(matches!(outcomes.as_slice(), [Delivery::Delivered { .. }]));
    assert_eq!(fake.pending_count(TOKEN).unwrap(), 0);

    // A duplicate carries the same update_id and body.
    let before = sink.received().len();
    let dup = fake.redeliver(TOKEN, update_id).await.unwrap().unwrap();
    assert!(matches!(dup, Delivery::Delivered { .. }));
    let got = sink.received();
    assert_eq!(got.len(), before + 1);
    assert_eq!(
        got[before].json().unwrap(),
        fake.update(TOKEN, update_id).unwrap().unwrap()
    );
    assert!(fake.redeliver(TOKEN, 1).await.unwrap().is_none());
    sink_running.stop().await;
    running.stop().await;
}

#[tokio::test]
async fn other_update_kinds_and_contacts() {
    let (fake, running, http, api) = setup().await;
    let user = anna();
    fake.user_shares_contact(TOKEN, &user, "+79991234567")
        .await
        .unwrap();
    fake.user_presses_button(TOKEN, &user, "yes").await.unwrap();
    fake.user_blocks_bot(TOKEN, &user).await.unwrap();
    fake.push_update(TOKEN, json!({"edited_message": {"message_id": 1, "date": 1, "text": "e", "chat": {"id": user.id, "type": "private"}}}))
        .await
        .unwrap();
    let (_, body, _) = call(&http, format!("{api}/getUpdates"), json!({})).await;
    let updates = body["result"].as_array().unwrap();
    assert_eq!(updates.len(), 4);
    assert_eq!(
        updates[0]["message"]["contact"]["phone_number"],
        json!("+79991234567")
    );
    assert_eq!(updates[0]["message"]["contact"]["user_id"], json!(user.id));
    assert_eq!(updates[1]["callback_query"]["data"], json!("yes"));
    assert_eq!(
        updates[2]["my_chat_member"]["new_chat_member"]["status"],
        json!("kicked")
    );
    assert!(updates[3]["edited_message"].is_object());
    assert!(fake.user_writes("1:nope", &user, "x").await.is_err());
    running.stop().await;
}

#[tokio::test]
async fn control_endpoints_drive_the_standalone_fake() {
    let (fake, running, http, api) = setup().await;
    let base = running.base_url();
    let (status, body, _) = call(
        &http,
        format!("{base}/_fake/bot{TOKEN}/write"),
        json!({"user_id": 5000000001i64, "first_name": "Anna", "text": "hello"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.pending_count(TOKEN).unwrap(), 1);
    call(
        &http,
        format!("{api}/sendMessage"),
        json!({"chat_id": 5000000001i64, "text": "answer"}),
    )
    .await;
    let r: Value = http
        .get(format!("{base}/_fake/bot{TOKEN}/sent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"][0]["text"], json!("answer"));
    running.stop().await;
}
