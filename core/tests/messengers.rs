//! The messenger clients against the testkit fakes over real HTTP, and the fakes' webhook
//! bodies through our parsers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use svyazka_core::messengers::chatapi::{self, AccountState, ChatApi, ChatApiError};
use svyazka_core::messengers::incoming::{IncomingMessage, Parsed};
use svyazka_core::messengers::phone::WaRecipient;
use svyazka_core::messengers::telegram::{self, SECRET_TOKEN_HEADER, Telegram, TelegramError};
use svyazka_core::upstream::{HttpClient, OutboundPolicy, Retry, UpstreamFailure};
use svyazka_testkit::chatapi::{FakeChatApi, WebhookSink};
use svyazka_testkit::server::Running;
use svyazka_testkit::telegram::{Delivery, FakeTelegram, FloodLimit, TgUser};

const WA_TOKEN: &str = "wa-secret-token";
const TG_TOKEN: &str = "5000000000:AAsecret-bot-token";

/// The fakes listen on loopback over http, which only the development policy allows.
fn http_client(timeout: Duration) -> HttpClient {
    HttpClient::new(timeout, OutboundPolicy::DEVELOPMENT)
}

fn wa(running: &Running) -> ChatApi {
    wa_with_timeout(running, Duration::from_secs(5))
}

fn wa_with_timeout(running: &Running, timeout: Duration) -> ChatApi {
    ChatApi::with_client(
        http_client(timeout),
        &format!("{}/instance1101", running.base_url()),
        WA_TOKEN,
    )
    .unwrap()
}

fn wa_fake() -> (FakeChatApi, Running) {
    let (fake, running) = FakeChatApi::start().unwrap();
    fake.add_instance("1101", WA_TOKEN);
    (fake, running)
}

fn tg_fake() -> (FakeTelegram, Running, Telegram) {
    let (fake, running) = FakeTelegram::start().unwrap();
    fake.add_bot(TG_TOKEN, "shop_bot");
    let client = Telegram::with_client(
        http_client(Duration::from_secs(5)),
        &running.base_url(),
        TG_TOKEN,
    )
    .unwrap();
    (fake, running, client)
}

fn messages(parsed: Parsed) -> Vec<IncomingMessage> {
    match parsed {
        Parsed::Messages(m) => m,
        other => panic!("expected messages, got {other:?}"),
    }
}

fn customer() -> TgUser {
    TgUser::new(5_000_000_123, "Анна")
        .with_last_name("Петрова")
        .with_username("anna")
}

// ---------------------------------------------------------------- ChatAPI

#[tokio::test]
async fn chatapi_send_reaches_one_chat_whatever_the_number_format() {
    let (fake, running) = wa_fake();
    let api = wa(&running);
    for input in [
        "+7 (999) 123-45-67",
        "89991234567",
        "79991234567",
        "79991234567@c.us",
    ] {
        let to = WaRecipient::parse(input).unwrap();
        let sent = api.send_text(&to, &format!("from {input}")).await.unwrap();
        assert!(sent.id.starts_with("true_79991234567@c.us_"), "{sent:?}");
        assert_eq!(sent.message.as_deref(), Some("ok"));
    }
    let group = WaRecipient::parse("79991234567-1479621234@g.us").unwrap();
    api.send_text(&group, "to the group").await.unwrap();

    let sent = fake.sent_messages();
    assert_eq!(sent.len(), 5);
    assert!(sent[..4].iter().all(|s| s.chat_id == "79991234567@c.us"));
    assert_eq!(sent[4].chat_id, "79991234567-1479621234@g.us");
    assert_eq!(sent[0].body, "from +7 (999) 123-45-67");
    assert_eq!(
        sent.iter().map(|s| s.queue_number).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    running.stop().await;
}

#[tokio::test]
async fn chatapi_other_base_url_forms() {
    let (fake, running) = wa_fake();
    let to = WaRecipient::parse("79991234567").unwrap();
    for base in [
        format!("{}/1101", running.base_url()),
        format!("{}/?instanceId=1101", running.base_url()),
        format!("{}/instance1101/", running.base_url()),
    ] {
        let api =
            ChatApi::with_client(http_client(Duration::from_secs(5)), &base, WA_TOKEN).unwrap();
        api.send_text(&to, "x")
            .await
            .unwrap_or_else(|e| panic!("{base}: {e}"));
    }
    assert_eq!(fake.sent_count(), 3);
    running.stop().await;
}

#[tokio::test]
async fn chatapi_status_and_live_check() {
    let (fake, running) = wa_fake();
    let api = wa(&running);
    let status = api.status().await.unwrap();
    assert_eq!(status.account_status, "authenticated");
    assert_eq!(
        api.check().await.unwrap().state(),
        AccountState::Authenticated
    );

    let cases = [
        ("got qr code", "scan the QR code", Retry::Permanent),
        (
            "loading",
            "try again in a minute",
            Retry::Transient {
                after: Some(Duration::from_secs(60)),
            },
        ),
        (
            "init",
            "try again in a minute",
            Retry::Transient {
                after: Some(Duration::from_secs(60)),
            },
        ),
        ("not_paid", "not paid", Retry::Permanent),
    ];
    for (status, advice, retry) in cases {
        fake.set_account_status("1101", status).unwrap();
        assert_eq!(api.status().await.unwrap().account_status, status);
        let err = api.check().await.unwrap_err();
        assert!(matches!(&err, ChatApiError::NotReady { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.contains(advice) && shown.contains(status), "{shown}");
        assert_eq!(err.retry(), retry, "{status}");
    }
    fake.set_account_status("1101", "got qr code").unwrap();
    assert!(api.status().await.unwrap().qr_code.is_some());
    running.stop().await;
}

#[tokio::test]
async fn chatapi_webhook_registration() {
    let (fake, running) = wa_fake();
    let api = wa(&running);
    assert_eq!(api.webhook_url().await.unwrap(), None);
    api.set_webhook("https://svyazka.example/hooks/wa/abc123")
        .await
        .unwrap();
    assert_eq!(
        fake.webhook_url("1101").as_deref(),
        Some("https://svyazka.example/hooks/wa/abc123")
    );
    assert_eq!(
        api.webhook_url().await.unwrap().as_deref(),
        Some("https://svyazka.example/hooks/wa/abc123")
    );
    let err = api.set_webhook("not-a-url").await.unwrap_err();
    assert!(matches!(&err, ChatApiError::Rejected { .. }), "{err:?}");
    assert_eq!(err.upstream_error(), Some("Invalid webhook URL"));
    api.set_webhook("").await.unwrap();
    assert_eq!(fake.webhook_url("1101"), None);
    running.stop().await;
}

#[tokio::test]
async fn chatapi_error_classes() {
    let (fake, running) = wa_fake();
    let api = wa(&running);
    let to = WaRecipient::parse("79991234567").unwrap();

    // Wrong token: permanent, with the gateway's words.
    let wrong = ChatApi::with_client(
        http_client(Duration::from_secs(5)),
        &format!("{}/instance1101", running.base_url()),
        "nope",
    )
    .unwrap();
    let err = wrong.send_text(&to, "x").await.unwrap_err();
    assert!(
        matches!(err, ChatApiError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.upstream_error(),
        Some(
            "Wrong token \"nope\" for instance \"1101\". Please provide token as a GET parameter."
        )
    );
    assert_eq!(err.retry(), Retry::Permanent);
    assert!(wrong.check().await.is_err());

    // sent:false carries the gateway's message.
    fake.refuse_sends("1101", Some("Recipient is not a WhatsApp user"))
        .unwrap();
    let err = api.send_text(&to, "x").await.unwrap_err();
    assert!(matches!(err, ChatApiError::Rejected { .. }), "{err:?}");
    assert_eq!(
        err.upstream_error(),
        Some("Recipient is not a WhatsApp user")
    );
    assert!(err.to_string().contains("Recipient is not a WhatsApp user"));
    assert_eq!(err.retry(), Retry::Permanent);
    fake.refuse_sends("1101", None).unwrap();

    // 500 is transient; the retry then succeeds.
    fake.fail_next(1);
    let err = api.send_text(&to, "x").await.unwrap_err();
    assert!(
        matches!(err, ChatApiError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry(), Retry::Transient { after: None });
    api.send_text(&to, "x").await.unwrap();

    // Unpaid instance: permanent, recognised by the text whatever the status code.
    fake.set_not_paid("1101").unwrap();
    let err = api.send_text(&to, "x").await.unwrap_err();
    assert!(matches!(err, ChatApiError::NotPaid { .. }), "{err:?}");
    assert_eq!(err.retry(), Retry::Permanent);
    let err = api
        .set_webhook("https://svyazka.example/h")
        .await
        .unwrap_err();
    assert!(matches!(err, ChatApiError::NotPaid { .. }), "{err:?}");
    fake.set_account_status("1101", "authenticated").unwrap();

    // Timeout: transient, and the token stays out of the message.
    fake.set_latency(Duration::from_millis(800));
    let slow = wa_with_timeout(&running, Duration::from_millis(200));
    let err = slow.send_text(&to, "x").await.unwrap_err();
    assert!(matches!(err, ChatApiError::Network(_)), "{err:?}");
    assert_eq!(err.retry(), Retry::Transient { after: None });
    assert!(!err.to_string().contains(WA_TOKEN), "{err}");
    assert!(!format!("{err:?}").contains(WA_TOKEN), "{err:?}");
    fake.set_latency(Duration::ZERO);

    assert_eq!(fake.sent_count(), 1);
    let base = running.base_url();
    running.stop().await;

    // Nothing listening: transient.
    let gone = ChatApi::with_client(
        http_client(Duration::from_secs(5)),
        &format!("{base}/instance1101"),
        WA_TOKEN,
    )
    .unwrap();
    let err = gone.status().await.unwrap_err();
    assert!(matches!(err, ChatApiError::Network(_)), "{err:?}");
    assert_eq!(err.retry(), Retry::Transient { after: None });
}

#[tokio::test]
async fn chatapi_webhook_bodies_parse() {
    let (fake, running) = wa_fake();
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let hook = format!("{}/hooks/wa/abc123", sink_running.base_url());
    wa(&running).set_webhook(&hook).await.unwrap();

    fake.post_incoming(&hook, "+7 999 123-45-67", "Иван", "Где мой заказ?")
        .await
        .unwrap();
    let posted_id = fake.last_message_id().unwrap();
    fake.redeliver_last().await.unwrap().unwrap();
    fake.post_echo(&hook, "79991234567", "Ваш заказ в пути")
        .await
        .unwrap();
    fake.post_media(
        &hook,
        "79991234567",
        "Иван",
        "image",
        "https://files.example/a.jpg",
    )
    .await
    .unwrap();
    let sent = wa(&running)
        .send_text(&WaRecipient::parse("79991234567").unwrap(), "hi")
        .await
        .unwrap();
    fake.post_ack(&hook, &sent.id, "79991234567@c.us", "delivered")
        .await
        .unwrap();
    fake.post_ack(&hook, &sent.id, "79991234567@c.us", "viewed")
        .await
        .unwrap();

    let got = sink.wait_for(6, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 6);
    let parsed: Vec<Parsed> = got
        .iter()
        .map(|r| chatapi::webhook::parse(&r.body).unwrap())
        .collect();

    let first = messages(parsed[0].clone());
    assert_eq!(first.len(), 1);
    let m = &first[0];
    assert_eq!(m.sender_id, "79991234567");
    assert_eq!(m.sender_phone.as_deref(), Some("79991234567"));
    assert_eq!(m.chat_id, "79991234567@c.us");
    assert_eq!(m.sender_name, "Иван");
    assert_eq!(m.text, "Где мой заказ?");
    assert_eq!(m.message_id, posted_id);
    // The redelivered duplicate has the same dedup key.
    assert_eq!(messages(parsed[1].clone()), first);
    assert_eq!(parsed[2], Parsed::Ignored("own messages (fromMe)"));
    assert_eq!(parsed[3], Parsed::Ignored("no customer text messages"));
    assert_eq!(parsed[4], Parsed::Ignored("ack"));
    assert_eq!(parsed[5], Parsed::Ignored("ack"));

    // The chat id of an incoming message is a valid recipient for the answer.
    let reply_to = WaRecipient::parse(&m.chat_id).unwrap();
    wa(&running).send_text(&reply_to, "answer").await.unwrap();
    assert_eq!(fake.sent_messages().last().unwrap().chat_id, m.chat_id);
    sink_running.stop().await;
    running.stop().await;
}

// ---------------------------------------------------------------- Telegram

#[tokio::test]
async fn telegram_get_me_send_and_poll_with_offsets() {
    let (fake, running, tg) = tg_fake();
    let me = tg.get_me().await.unwrap();
    assert!(me.is_bot);
    assert_eq!(me.id, 5_000_000_000);
    assert_eq!(tg.bot_id(), Some(me.id));

    let user = customer();
    fake.user_writes(TG_TOKEN, &user, "Где мой заказ?")
        .await
        .unwrap();
    fake.user_writes(TG_TOKEN, &user, "Алло?").await.unwrap();
    let updates = tg.get_updates(None, 0).await.unwrap();
    assert_eq!(updates.len(), 2);
    let incoming = messages(telegram::webhook::parse_update(&updates[0]));
    assert_eq!(
        incoming,
        vec![IncomingMessage {
            message_id: format!("{}:1", user.id),
            sender_id: user.id.to_string(),
            sender_phone: None,
            sender_name: "Анна Петрова".into(),
            chat_id: user.id.to_string(),
            text: "Где мой заказ?".into(),
            time: incoming[0].time,
        }]
    );

    // Answer to the stored chat id (text) and to the numeric one.
    let sent = tg
        .send_message(incoming[0].chat_id.as_str(), "Заказ в пути")
        .await
        .unwrap();
    assert_eq!(sent.chat.id, user.id);
    assert_eq!(sent.message_id, 3);
    tg.send_message(user.id, "Ещё что-нибудь?").await.unwrap();
    let texts: Vec<String> = fake.sent_to(user.id).into_iter().map(|s| s.text).collect();
    assert_eq!(texts, ["Заказ в пути", "Ещё что-нибудь?"]);

    // Without confirming, the same updates come again; offset = last + 1 confirms them.
    let again = tg.get_updates(None, 0).await.unwrap();
    assert_eq!(
        again.iter().map(|u| u.update_id).collect::<Vec<_>>(),
        updates.iter().map(|u| u.update_id).collect::<Vec<_>>()
    );
    let next = updates[1].update_id + 1;
    assert!(tg.get_updates(Some(next), 0).await.unwrap().is_empty());
    assert_eq!(fake.pending_count(TG_TOKEN).unwrap(), 0);

    // A long poll wakes up when the user writes.
    let poller = {
        let tg = tg.clone();
        tokio::spawn(async move { tg.get_updates(Some(next), 20).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.user_writes(TG_TOKEN, &user, "Ау").await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(woke.len(), 1);
    assert_eq!(woke[0].update_id, next);
    running.stop().await;
}

#[tokio::test]
async fn telegram_error_classes() {
    let (fake, running, tg) = tg_fake();
    let user = customer();

    let wrong = Telegram::with_client(
        http_client(Duration::from_secs(5)),
        &running.base_url(),
        "5000000000:wrong",
    )
    .unwrap();
    let err = wrong.get_me().await.unwrap_err();
    assert_eq!(err.description(), Some("Unauthorized"));
    assert_eq!(err.error_code(), Some(401));
    assert_eq!(err.retry(), Retry::Permanent);

    let err = tg.send_message(user.id, "x").await.unwrap_err();
    assert_eq!(err.description(), Some("Bad Request: chat not found"));
    assert_eq!(err.retry(), Retry::Permanent);
    assert_eq!(err.to_string(), "Telegram: Bad Request: chat not found");

    fake.user_writes(TG_TOKEN, &user, "hi").await.unwrap();
    let err = tg.send_message(user.id, "").await.unwrap_err();
    assert_eq!(
        err.description(),
        Some("Bad Request: message text is empty")
    );
    let err = tg
        .send_message(user.id, &"ж".repeat(4097))
        .await
        .unwrap_err();
    assert_eq!(err.description(), Some("Bad Request: message is too long"));
    assert_eq!(err.retry(), Retry::Permanent);

    fake.set_flood_limit(Some(FloodLimit {
        per_chat_per_sec: 1,
        retry_after_secs: 7,
    }));
    tg.send_message(user.id, "one").await.unwrap();
    let err = tg.send_message(user.id, "two").await.unwrap_err();
    assert_eq!(err.error_code(), Some(429));
    assert_eq!(err.description(), Some("Too Many Requests: retry after 7"));
    assert_eq!(
        err.retry(),
        Retry::Transient {
            after: Some(Duration::from_secs(7))
        }
    );
    fake.set_flood_limit(None);

    fake.user_blocks_bot(TG_TOKEN, &user).await.unwrap();
    let err = tg.send_message(user.id, "x").await.unwrap_err();
    assert_eq!(
        err.description(),
        Some("Forbidden: bot was blocked by the user")
    );
    assert_eq!(err.error_code(), Some(403));
    assert_eq!(err.retry(), Retry::Permanent);

    let err = tg
        .set_webhook("https://svyazka.example/tg", "not allowed!")
        .await
        .unwrap_err();
    assert_eq!(
        err.description(),
        Some("Bad Request: secret token contains unallowed characters")
    );
    let err = tg
        .set_webhook("https://svyazka.example/tg", &"a".repeat(257))
        .await
        .unwrap_err();
    assert_eq!(
        err.description(),
        Some("Bad Request: secret token is too long")
    );
    let base = running.base_url();
    running.stop().await;

    // Nothing listening: transient, and the token is not in the message.
    let gone = Telegram::with_client(http_client(Duration::from_secs(5)), &base, TG_TOKEN).unwrap();
    let err = gone.get_me().await.unwrap_err();
    assert!(matches!(err, TelegramError::Network(_)), "{err:?}");
    assert_eq!(err.retry(), Retry::Transient { after: None });
    assert!(!err.to_string().contains("secret-bot-token"), "{err}");
}

#[tokio::test]
async fn telegram_5xx_and_retry_after_header_from_a_proxy_are_transient() {
    // A proxy in front of a self-hosted Bot API server: not the Bot API's JSON.
    let (sink, running) = WebhookSink::start().unwrap();
    let tg = Telegram::with_client(
        http_client(Duration::from_secs(5)),
        &running.base_url(),
        TG_TOKEN,
    )
    .unwrap();
    sink.respond_next(502, None);
    let err = tg.get_me().await.unwrap_err();
    assert!(
        matches!(err, TelegramError::BadResponse { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry(), Retry::Transient { after: None });
    sink.respond_next(503, Some(4));
    assert!(matches!(
        tg.get_me().await.unwrap_err().retry(),
        Retry::Transient { .. }
    ));
    // The request went to /bot<token>/getMe as JSON.
    let got = sink.received();
    assert_eq!(got[0].path, format!("/bot{TG_TOKEN}/getMe"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    running.stop().await;
}

#[tokio::test]
async fn telegram_webhook_mode_end_to_end() {
    let (fake, running, tg) = tg_fake();
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let hook = format!("{}/hooks/tg/1", sink_running.base_url());
    let secret = telegram::generate_secret_token();
    tg.set_webhook(&hook, &secret).await.unwrap();
    let info = tg.get_webhook_info().await.unwrap();
    assert_eq!(info.url, hook);
    assert_eq!(info.pending_update_count, 0);

    let err = tg.get_updates(None, 0).await.unwrap_err();
    assert_eq!(err.error_code(), Some(409));
    assert!(
        err.description()
            .unwrap()
            .starts_with("Conflict: can't use getUpdates method while webhook is active")
    );
    assert_eq!(err.retry(), Retry::Permanent);

    let user = customer();
    let delivery = fake
        .user_writes(TG_TOKEN, &user, "Здравствуйте")
        .await
        .unwrap();
    let Delivery::Delivered { update_id, .. } = delivery else {
        panic!("{delivery:?}");
    };
    fake.redeliver(TG_TOKEN, update_id).await.unwrap().unwrap();
    fake.user_shares_contact(TG_TOKEN, &user, "+7 999 123-45-67")
        .await
        .unwrap();
    fake.user_presses_button(TG_TOKEN, &user, "yes")
        .await
        .unwrap();
    fake.user_blocks_bot(TG_TOKEN, &user).await.unwrap();

    let got = sink.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 5);
    for r in &got {
        assert!(telegram::secret_token_matches(
            &secret,
            r.header(SECRET_TOKEN_HEADER)
        ));
    }
    let parsed: Vec<Parsed> = got
        .iter()
        .map(|r| telegram::webhook::parse(&r.body).unwrap())
        .collect();
    let first = messages(parsed[0].clone());
    assert_eq!(first[0].text, "Здравствуйте");
    assert_eq!(first[0].sender_id, "5000000123");
    // The duplicate yields the same dedup key.
    assert_eq!(messages(parsed[1].clone()), first);
    let contact = messages(parsed[2].clone());
    assert_eq!(contact[0].sender_phone.as_deref(), Some("79991234567"));
    assert_eq!(contact[0].text, "+79991234567");
    assert_eq!(parsed[3], Parsed::Ignored("callback_query"));
    assert_eq!(parsed[4], Parsed::Ignored("my_chat_member"));

    // A wrong or missing secret is told apart.
    assert!(!telegram::secret_token_matches(&secret, Some("guess")));
    assert!(!telegram::secret_token_matches(&secret, None));

    tg.delete_webhook().await.unwrap();
    assert_eq!(tg.get_webhook_info().await.unwrap().url, "");
    assert!(tg.get_updates(None, 0).await.unwrap().is_empty());
    sink_running.stop().await;
    running.stop().await;
}

#[tokio::test]
async fn telegram_failed_webhook_deliveries_stay_pending() {
    let (fake, running, tg) = tg_fake();
    let (sink, sink_running) = WebhookSink::start().unwrap();
    let hook = format!("{}/hooks/tg/2", sink_running.base_url());
    tg.set_webhook(&hook, "s3cr3t").await.unwrap();
    for _ in 0..4 {
        sink.respond_next(500, None);
    }
    let delivery = fake
        .user_writes(TG_TOKEN, &customer(), "hello?")
        .await
        .unwrap();
    assert!(matches!(delivery, Delivery::Failed { .. }), "{delivery:?}");
    let info = tg.get_webhook_info().await.unwrap();
    assert_eq!(info.pending_update_count, 1);
    assert!(info.last_error_message.unwrap().contains("500"));
    // Switching to polling picks the pending update up.
    tg.delete_webhook().await.unwrap();
    let updates = tg.get_updates(None, 0).await.unwrap();
    assert_eq!(updates.len(), 1);
    let m = messages(telegram::webhook::parse_update(&updates[0]));
    assert_eq!(m[0].text, "hello?");
    sink_running.stop().await;
    running.stop().await;
}
