//! Two-way chat: an operator answers in RetailCRM's chat, MG posts the reply to our transport
//! webhook, and the customer receives it in the messenger they wrote from — once, whatever
//! MG repeats or the messenger fails.

use std::time::Duration;

use serde_json::{Value, json};
use svyazka_testkit::retailcrm::{DriverReply, MgMessageRecord};
use svyazka_testkit::telegram::TgUser;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);
const CUSTOMER_PHONE: &str = "79991234567";

async fn chats(app: &TestApp, fakes: &Fakes) -> (i64, i64, i64) {
    app.chat_bundles(fakes).await
}

/// The customer's message as it reached RetailCRM's chat.
fn chat_message(fakes: &Fakes, text: &str) -> MgMessageRecord {
    fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.text == text && m.originator == "customer")
        .unwrap_or_else(|| panic!("no chat message {text:?}"))
}

/// A WhatsApp customer writes; answers the chat message (channel and customer id in MG).
async fn whatsapp_customer_writes(app: &TestApp, fakes: &Fakes, wa: i64) -> MgMessageRecord {
    fakes
        .wa
        .post_incoming(
            &app.hook_url(wa).await,
            CUSTOMER_PHONE,
            "Иван",
            "Где мой заказ?",
        )
        .await
        .unwrap();
    let runs = app.settled_runs(1, SETTLE).await;
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
    chat_message(fakes, "Где мой заказ?")
}

/// Fresh fakes, the chat bundles, and a Telegram customer's message in RetailCRM's chat.
async fn telegram_chat(app: &TestApp, user: &TgUser, text: &str) -> (Fakes, MgMessageRecord) {
    let fakes = Fakes::start();
    chats(app, &fakes).await;
    fakes.tg.user_writes(TG_TOKEN, user, text).await.unwrap();
    let runs = app.settled_runs(1, SETTLE).await;
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
    let incoming = chat_message(&fakes, text);
    (fakes, incoming)
}

/// Fresh fakes, the chat bundles, and a WhatsApp customer's message in RetailCRM's chat.
async fn whatsapp_chat(app: &TestApp) -> (Fakes, MgMessageRecord) {
    let fakes = Fakes::start();
    let (_, wa, _) = chats(app, &fakes).await;
    let incoming = whatsapp_customer_writes(app, &fakes, wa).await;
    (fakes, incoming)
}

/// The operator answers the customer of `incoming`, addressed as MG does (empty chat id).
async fn answer(fakes: &Fakes, incoming: &MgMessageRecord, text: &str) -> (DriverReply, i64) {
    let customer = incoming.customer_external_id.as_deref().unwrap();
    fakes
        .crm
        .operator_reply(incoming.channel_id, customer, text)
        .await
        .unwrap()
}

fn operator_message(fakes: &Fakes, id: i64) -> MgMessageRecord {
    fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.id == id)
        .expect("operator message")
}

async fn settled_status(fakes: &Fakes, id: i64) -> MgMessageRecord {
    eventually(SETTLE, || async {
        let m = operator_message(fakes, id);
        (m.status != "sending").then_some(m)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "message {id} still sending: {:?}",
            operator_message(fakes, id)
        )
    })
}

fn sent_texts(fakes: &Fakes, text: &str) -> usize {
    fakes
        .wa
        .sent_messages()
        .iter()
        .filter(|m| m.body == text)
        .count()
}

both_backends!(
    whatsapp_round_trip_customer_operator_customer,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let (fakes, incoming) = whatsapp_chat(&app).await;
        assert_eq!(incoming.channel_type, "whatsapp");

        let (reply, id) = answer(&fakes, &incoming, "Заказ уже в пути").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = fakes.wa.sent_messages();
        let out = sent
            .iter()
            .find(|m| m.body == "Заказ уже в пути")
            .expect("the customer got the reply");
        assert_eq!(out.chat_id, format!("{CUSTOMER_PHONE}@c.us"));
        assert_eq!(
            reply.json(),
            json!({"external_message_id": out.id, "async": false})
        );
        let m = operator_message(&fakes, id);
        assert_eq!(m.status, "sent");
        assert_eq!(m.external_id.as_deref(), Some(out.id.as_str()));

        // The customer reads it: RetailCRM's chat shows it seen.
        let providers = app.core().db(svyazka_core::providers::list).await.unwrap();
        let wa = providers
            .iter()
            .find(|p| p.kind == svyazka_core::providers::ProviderKind::Chatapi)
            .unwrap();
        let hook = app.hook_url(wa.id).await;
        let chat = format!("{CUSTOMER_PHONE}@c.us");
        for status in ["delivered", "viewed", "viewed"] {
            let r = fakes
                .wa
                .post_ack(&hook, &out.id, &chat, status)
                .await
                .unwrap();
            assert_eq!(r.as_u16(), 200);
        }
        assert_eq!(operator_message(&fakes, id).status, "seen");
        app.stop().await;
    }
);

both_backends!(
    telegram_round_trip_customer_operator_customer,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let anna = TgUser::new(5_000_000_001, "Анна");
        let (fakes, incoming) = telegram_chat(&app, &anna, "Можно оплатить картой?").await;
        assert_eq!(incoming.channel_type, "telegram");

        let (reply, id) = answer(&fakes, &incoming, "Да, картой при получении").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let got = fakes.tg.sent_to(anna.id);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].text, "Да, картой при получении");
        assert_eq!(
            reply.json()["external_message_id"],
            json!(got[0].message_id.to_string())
        );
        assert_eq!(operator_message(&fakes, id).status, "sent");
        app.stop().await;
    }
);

both_backends!(
    repeated_webhook_delivers_the_reply_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let (fakes, incoming) = whatsapp_chat(&app).await;
        let customer = incoming.customer_external_id.clone().unwrap();
        // The gateway is slow: MG gives up waiting and repeats the webhook meanwhile.
        fakes.wa.set_latency(Duration::from_millis(700));
        let first = fakes
            .crm
            .operator_reply(incoming.channel_id, &customer, "Один раз");
        let repeats = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let id = fakes
                .crm
                .mg_messages()
                .iter()
                .rev()
                .find(|m| m.originator == "user")
                .map(|m| m.id)
                .expect("operator message");
            let a = fakes.crm.repeat_operator_webhook(id).await.unwrap();
            let b = fakes.crm.repeat_operator_webhook(id).await.unwrap();
            (a, b)
        };
        let ((first, id), (a, b)) = tokio::join!(async { first.await.unwrap() }, repeats);
        fakes.wa.set_latency(Duration::ZERO);
        for r in [&first, &a, &b] {
            assert_eq!(r.status, 200, "{}", r.body);
        }
        let m = settled_status(&fakes, id).await;
        assert_eq!(m.status, "sent");
        // Once more after it settled: the same answer, nothing sent.
        let again = fakes.crm.repeat_operator_webhook(id).await.unwrap();
        assert_eq!(
            again.json()["external_message_id"],
            json!(m.external_id.clone().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(sent_texts(&fakes, "Один раз"), 1);
        app.stop().await;
    }
);

both_backends!(
    messenger_outage_is_retried_then_acknowledged,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let (fakes, incoming) = whatsapp_chat(&app).await;
        fakes.wa.fail_next(2);
        let (reply, id) = answer(&fakes, &incoming, "После сбоя").await;
        // The first attempt met a 500: MG hears the outcome later.
        assert_eq!((reply.status, reply.json()), (200, json!({"async": true})));
        let m = settled_status(&fakes, id).await;
        assert_eq!(m.status, "sent", "{:?}", m.error);
        assert_eq!(sent_texts(&fakes, "После сбоя"), 1);
        let acks = fakes.crm.mg_acks();
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert_eq!(acks[0]["message"]["id"], json!(id));
        assert_eq!(acks[0]["channel"], json!(incoming.channel_id));
        assert_eq!(
            acks[0]["transport_message_id"].as_str(),
            m.external_id.as_deref()
        );
        app.stop().await;
    }
);

both_backends!(
    lasting_outage_fails_the_reply_with_the_reason,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &[("SVYAZKA_MAX_ATTEMPTS", "3")]).await else {
            return;
        };
        app.setup_admin().await;
        let (fakes, incoming) = whatsapp_chat(&app).await;
        fakes.wa.fail_next(1000);
        let (reply, id) = answer(&fakes, &incoming, "Не дойдёт").await;
        assert_eq!(reply.json(), json!({"async": true}));
        let m = settled_status(&fakes, id).await;
        fakes.wa.fail_next(0);
        assert_eq!(m.status, "failed");
        let error = m.error.clone().unwrap();
        assert_eq!(error["code"], "general");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("Internal server error"),
            "{error}"
        );
        assert_eq!(error["external_code"], "500");
        assert_eq!(sent_texts(&fakes, "Не дойдёт"), 0);
        // Our own history keeps it, with the reason, after 3 attempts. MG is told first, so
        // the record may settle a moment after MG shows the failure.
        let replies = eventually(SETTLE, || async {
            let replies = app
                .core()
                .db(|c| svyazka_core::replies::recent(c, 10))
                .await
                .unwrap();
            (replies.len() == 1 && replies[0].status.as_str() == "failed").then_some(replies)
        })
        .await
        .expect("the reply recorded as failed");
        assert_eq!(replies[0].status.as_str(), "failed");
        assert_eq!(replies[0].attempts, 3);
        assert!(replies[0].error.as_deref().unwrap().contains("500"));
        app.stop().await;
    }
);

both_backends!(
    messenger_refusal_is_answered_with_mg_code,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let anna = TgUser::new(5_000_000_002, "Анна");
        let (fakes, incoming) = telegram_chat(&app, &anna, "Привет").await;
        fakes.tg.user_blocks_bot(TG_TOKEN, &anna).await.unwrap();
        let (reply, id) = answer(&fakes, &incoming, "Вы здесь?").await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "access_restricted");
        assert_eq!(error["external_code"], "403");
        assert_eq!(operator_message(&fakes, id).status, "failed");
        // A customer we never heard from: nowhere to deliver.
        let (reply, _) = fakes
            .crm
            .operator_reply(incoming.channel_id, "crm_999999", "Кто вы?")
            .await
            .unwrap();
        assert_eq!(reply.status, 422);
        assert_eq!(reply.json()["error"]["code"], "customer_not_exists");
        app.stop().await;
    }
);

both_backends!(other_webhook_types_answer_empty, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let (fakes, incoming) = whatsapp_chat(&app).await;
    let data = json!({
        "channel_id": incoming.channel_id,
        "external_chat_id": "",
        "external_user_id": incoming.customer_external_id,
        "external_message_id": incoming.external_id,
    });
    for kind in [
        "message_read",
        "message_deleted",
        "reaction_add",
        "template_create",
        "something_new",
    ] {
        let r = fakes
            .crm
            .mg_webhook(incoming.channel_id, kind, data.clone())
            .await
            .unwrap();
        assert_eq!((r.status, r.json()), (200, json!({})), "{kind}");
    }
    assert!(fakes.wa.sent_messages().is_empty());
    app.stop().await;
});

both_backends!(wrong_secret_is_404, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let (fakes, incoming) = whatsapp_chat(&app).await;
    let url = fakes.crm.mg_webhook_url(incoming.channel_id).unwrap();
    let (base, secret) = url.rsplit_once('/').unwrap();
    let body = json!({"type": "message_sent", "meta": {"timestamp": 1},
        "data": {"id": 77, "channel_id": incoming.channel_id, "external_user_id": incoming.customer_external_id,
                 "external_chat_id": "", "type": "text", "content": "Чужой"}});
    let wrong = format!("{base}/{}x", &secret[..secret.len() - 1]);
    for target in [wrong.as_str(), base] {
        let r = app.client.post(target).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{target}");
    }
    // The right address with a body MG would never send: refused, nothing stored.
    for bad in ["{", r#"{"type":"message_sent","data":{"channel_id":"x"}}"#] {
        let r = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "general");
    }
    // The right one works.
    let r = app.client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let sent = sent_texts(&fakes, "Чужой");
    assert_eq!(sent, 1);
    let replies = app
        .core()
        .db(|c| svyazka_core::replies::recent(c, 10))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    app.stop().await;
});

both_backends!(
    channels_declare_what_the_bridge_does,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        app.add_retailcrm(&fakes).await;
        let channels = fakes.crm.mg_channels();
        for kind in ["whatsapp", "telegram"] {
            let c = channels
                .iter()
                .find(|c| c["type"] == kind)
                .unwrap_or_else(|| panic!("no {kind} channel"));
            let text = &c["settings"]["text"];
            assert_eq!(text["creating"], "both", "{kind}");
            assert_eq!(text["quoting"], "none", "{kind}");
            // A Telegram bot may edit and delete its own messages; the WhatsApp gateway cannot.
            let change = if kind == "telegram" {
                "receive"
            } else {
                "none"
            };
            for op in ["editing", "deleting"] {
                assert_eq!(text[op], change, "{kind} {op}");
            }
            assert_eq!(text["max_chars_count"], 4096);
            // The WhatsApp gateway reports reads; a Telegram bot learns nothing of them.
            let read = if kind == "whatsapp" { "send" } else { "none" };
            assert_eq!(c["settings"]["status"]["read"], read, "{kind}");
            // Images and files both ways, one a message; voice messages only come in.
            for (media, creating) in [("image", "both"), ("file", "both"), ("audio", "send")] {
                let m = &c["settings"][media];
                assert_eq!(m["creating"], creating, "{kind} {media}");
                assert_eq!(m["max_items_count"], 1, "{kind} {media}");
                assert_eq!(m["editing"], "none", "{kind} {media}");
            }
        }
        let module = fakes.crm.integration_modules();
        let hook: &Value = &module[0]["integrations"]["mgTransport"]["webhookUrl"];
        assert!(
            hook.as_str()
                .unwrap()
                .starts_with(&format!("{}/hooks/mg/svyazka-", app.base)),
            "{hook}"
        );
        app.stop().await;
    }
);

both_backends!(
    older_registrations_get_the_reply_webhook,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let (fakes, incoming) = whatsapp_chat(&app).await;
        let new_url = fakes.crm.mg_webhook_url(incoming.channel_id).unwrap();
        let module = fakes.crm.integration_modules()[0].clone();
        let code = module["code"].as_str().unwrap().to_owned();
        // As an older version registered it: the webhook without a secret, which answers 404.
        let mut old = module.clone();
        let old_url = format!("{}/hooks/mg/{code}", app.base);
        old["integrations"] = json!({"mgTransport": {"webhookUrl": old_url}});
        let r = reqwest::Client::new()
            .post(format!(
                "{}/api/v5/integration-modules/{code}/edit",
                fakes.crm_base
            ))
            .header("X-API-KEY", CRM_KEY)
            .form(&[("integrationModule", old.to_string())])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let crm = app.core().clone();
        let providers = crm.db(svyazka_core::providers::list).await.unwrap();
        let p = providers
            .iter()
            .find(|p| p.kind == svyazka_core::providers::ProviderKind::Retailcrm)
            .unwrap();
        let mut settings = p.settings.clone();
        if let svyazka_core::providers::Settings::Retailcrm(s) = &mut settings {
            s.mg_webhook_url = String::new();
        }
        let id = p.id;
        crm.db(move |c| svyazka_core::providers::update_settings(c, id, &settings))
            .await
            .unwrap();
        crm.providers.forget(id);
        let (reply, _) = answer(&fakes, &incoming, "До обновления").await;
        assert_eq!(reply.status, 404);

        // What start-up does for such providers.
        svyazka_core::providers::transport::upgrade_registrations(&crm).await;
        assert_eq!(
            fakes.crm.mg_webhook_url(incoming.channel_id).as_deref(),
            Some(new_url.as_str())
        );
        let (reply, _) = answer(&fakes, &incoming, "После обновления").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(sent_texts(&fakes, "После обновления"), 1);
        // The same channels, not new ones.
        assert_eq!(fakes.crm.mg_channels().len(), 2);
        let p = app.provider(id).await;
        let svyazka_core::providers::Settings::Retailcrm(s) = p.settings else {
            panic!("settings");
        };
        assert_eq!(s.mg_webhook_url, new_url);
        app.stop().await;
    }
);

both_backends!(
    operator_edits_and_deletes_where_the_messenger_allows,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let anna = TgUser::new(5_000_000_003, "Анна");
        let (fakes, incoming) = telegram_chat(&app, &anna, "Когда доставка?").await;
        let (reply, _) = answer(&fakes, &incoming, "Завтра").await;
        let ours = reply.json()["external_message_id"].clone();
        let data = |content: &str| {
            json!({
                "channel_id": incoming.channel_id,
                "external_chat_id": "",
                "external_user_id": incoming.customer_external_id,
                "external_message_id": ours,
                "type": "text",
                "content": content,
            })
        };
        let r = fakes
            .crm
            .mg_webhook(incoming.channel_id, "message_updated", data("Послезавтра"))
            .await
            .unwrap();
        assert_eq!((r.status, r.json()), (200, json!({})), "{}", r.body);
        let got = fakes.tg.sent_to(anna.id);
        assert_eq!((got[0].text.as_str(), got[0].edits), ("Послезавтра", 1));
        let r = fakes
            .crm
            .mg_webhook(incoming.channel_id, "message_deleted", data(""))
            .await
            .unwrap();
        assert_eq!((r.status, r.json()), (200, json!({})), "{}", r.body);
        assert!(fakes.tg.sent_to(anna.id)[0].deleted);
        // Deleting it again: Telegram's refusal, in MG's shape.
        let r = fakes
            .crm
            .mg_webhook(incoming.channel_id, "message_deleted", data(""))
            .await
            .unwrap();
        assert_eq!(r.status, 422);
        assert_eq!(r.json()["error"]["code"], "general");
        assert_eq!(
            r.json()["error"]["message"],
            "Bad Request: message to delete not found"
        );
        app.stop().await;
    }
);

both_backends!(
    official_whatsapp_refuses_free_text_after_24_hours,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (_, wa, _) = chats(&app, &fakes).await;
        // The customer wrote 25 hours ago (the gateway's timestamp).
        let mut message =
            fakes
                .wa
                .message_json(false, CUSTOMER_PHONE, "Иван", "chat", "Вчерашний вопрос");
        message["time"] = json!(chrono::Utc::now().timestamp() - 25 * 3600);
        fakes
            .wa
            .post_messages(&app.hook_url(wa).await, vec![message])
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let incoming = chat_message(&fakes, "Вчерашний вопрос");
        // The WhatsApp provider is an official (1msg.io) gateway.
        let p = app.provider(wa).await;
        let mut settings = p.settings.clone();
        if let svyazka_core::providers::Settings::Chatapi(s) = &mut settings {
            s.api_url = format!("https://api.1msg.io/{WA_INSTANCE}");
        }
        let core = app.core().clone();
        core.db(move |c| svyazka_core::providers::update_settings(c, wa, &settings))
            .await
            .unwrap();
        core.providers.forget(wa);

        let (reply, id) = answer(&fakes, &incoming, "Ответ через сутки").await;
        assert_eq!(reply.status, 422, "{}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "reply_timed_out");
        assert!(
            error["message"].as_str().unwrap().contains("24 hours"),
            "{error}"
        );
        assert_eq!(operator_message(&fakes, id).status, "failed");
        assert!(fakes.wa.sent_messages().is_empty());

        // The history says why, in the admin's language.
        let (status, html) = app.get_html("/replies").await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert!(html.contains("Ответ через сутки"), "{html}");
        assert!(html.contains("Не доставлен"));
        assert!(html.contains("больше 24 часов назад"), "{html}");
        app.get("/lang/en").await;
        let (_, html) = app.get_html("/replies").await;
        let html = unescape(&html);
        assert!(html.contains("Not delivered"));
        assert!(html.contains("more than 24 hours ago"), "{html}");
        app.stop().await;
    }
);

both_backends!(
    a_chatapi_reply_whose_answer_was_lost_is_found_in_the_history,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(
            backend,
            &[
                ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "400"),
                ("SVYAZKA_BACKOFF_MS", "200"),
                ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
            ],
        )
        .await
        else {
            return;
        };
        app.setup_admin().await;
        let (fakes, incoming) = whatsapp_chat(&app).await;
        // An earlier reply with the same text is the operator's, not this one's.
        let (first, first_id) = answer(&fakes, &incoming, "Хорошо").await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(settled_status(&fakes, first_id).await.status, "sent");
        // ChatAPI takes the reply but answers after our timeout: the retry reads the chat's
        // history, finds it, and does not send it again.
        fakes.wa.stall_sends(1, Duration::from_millis(1500));
        let (reply, id) = answer(&fakes, &incoming, "Хорошо").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let m = settled_status(&fakes, id).await;
        assert_eq!(m.status, "sent", "{m:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sent: Vec<_> = fakes
            .wa
            .sent_messages()
            .into_iter()
            .filter(|s| s.body == "Хорошо")
            .collect();
        assert_eq!(sent.len(), 2, "the customer got each reply once: {sent:?}");
        assert_eq!(
            operator_message(&fakes, first_id).external_id.as_deref(),
            Some(sent[0].id.as_str())
        );
        assert_eq!(
            m.external_id.as_deref(),
            Some(sent[1].id.as_str()),
            "MG knows the message ChatAPI sent"
        );
        app.stop().await;
    }
);

both_backends!(
    a_lost_chatapi_reply_is_not_taken_for_an_earlier_one,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(
            backend,
            &[
                ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "400"),
                ("SVYAZKA_BACKOFF_MS", "200"),
                ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
            ],
        )
        .await
        else {
            return;
        };
        app.setup_admin().await;
        let (fakes, incoming) = whatsapp_chat(&app).await;
        let (first, first_id) = answer(&fakes, &incoming, "Хорошо").await;
        assert_eq!(first.status, 200, "{}", first.body);
        let first = settled_status(&fakes, first_id).await;
        assert_eq!(first.status, "sent");
        // The second "Хорошо" is held up on its way to the gateway past our timeout: when the
        // retry reads the history, the message there is the first reply's, not this one's.
        // (The fake still takes the held-up request later, as a gateway behind a slow network
        // may; that second copy is beyond what a history can tell.)
        fakes.wa.set_latency(Duration::from_secs(5));
        let (reply, id) = answer(&fakes, &incoming, "Хорошо").await;
        fakes.wa.set_latency(Duration::ZERO);
        assert_eq!(reply.json(), json!({"async": true}));
        let m = settled_status(&fakes, id).await;
        assert_eq!(m.status, "sent", "{m:?}");
        assert_ne!(
            m.external_id, first.external_id,
            "MG is not told the first reply's message is this one"
        );
        let sent = fakes.wa.sent_messages();
        assert!(
            sent.iter()
                .any(|s| s.body == "Хорошо" && Some(s.id.as_str()) == m.external_id.as_deref()),
            "{sent:?}"
        );
        app.stop().await;
    }
);
