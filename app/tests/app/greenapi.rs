//! WhatsApp through Green-API: the provider checked and registered on save, webhooks refused
//! without its Authorization token, both guide flows, redelivered notifications counted once,
//! and a send whose answer was lost found in the chat history instead of sent twice.

use std::time::Duration;

use serde_json::json;
use svyazka_testkit::greenapi::FakeGreenApi;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(30);
pub(crate) const INSTANCE: &str = "1101000001";
pub(crate) const TOKEN: &str = "d75b3a66374942c5b3c019c698abc2067e151558acbd412345";

pub(crate) struct Green {
    pub(crate) fake: FakeGreenApi,
    base: String,
    _running: svyazka_testkit::server::Running,
}

pub(crate) fn green() -> Green {
    let (fake, running) = FakeGreenApi::start().expect("green-api fake");
    fake.add_instance(INSTANCE, TOKEN);
    Green {
        fake,
        base: running.base_url(),
        _running: running,
    }
}

pub(crate) async fn add_green(app: &TestApp, g: &Green) -> i64 {
    app.add_provider(
        "greenapi",
        &[
            ("name", "WhatsApp Green-API"),
            ("api_url", &g.base),
            ("instance_id", INSTANCE),
            ("token", TOKEN),
        ],
    )
    .await
}

both_backends!(
    saving_checks_the_account_and_registers_the_webhook,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let g = green();
        // Not linked yet: refused with Green-API's own state and what to do.
        g.fake.set_state(INSTANCE, "notAuthorized");
        let fields = [
            ("name", "WhatsApp Green-API"),
            ("api_url", g.base.as_str()),
            ("instance_id", INSTANCE),
            ("token", TOKEN),
        ];
        let path = "/providers/new/greenapi";
        let r = app.submit(path, path, &fields).await;
        assert_eq!(r.status(), 422);
        let html = unescape(&r.text().await.unwrap());
        assert!(html.contains("notAuthorized"), "upstream's state shown");
        assert!(html.contains("QR"), "says what to do");
        // A wrong token: refused next to the token field, nothing stored.
        g.fake.set_state(INSTANCE, "authorized");
        let mut wrong = fields;
        wrong[3] = ("token", "wrong-token-123456");
        let r = app.submit(path, path, &wrong).await;
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("err-token"));
        assert!(
            app.core()
                .db(svyazka_core::providers::list)
                .await
                .unwrap()
                .is_empty()
        );

        let id = add_green(&app, &g).await;
        let settings = g.fake.settings(INSTANCE).unwrap();
        assert_eq!(settings["webhookUrl"], json!(app.hook_url(id).await));
        assert_eq!(settings["incomingWebhook"], json!("yes"));
        assert_eq!(settings["outgoingWebhook"], json!("yes"));
        let hook_token = settings["webhookUrlToken"].as_str().unwrap().to_string();
        assert!(hook_token.len() >= 20, "a token was generated");
        let (status, html) = app.get_html(&format!("/providers/{id}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("authorized"));
        assert!(!html.contains(TOKEN), "the API token is masked");
        assert!(!html.contains(&hook_token), "the webhook token is masked");
        // Stored encrypted.
        let p = app.provider(id).await;
        assert!(matches!(
            p.secrets(&app.core().crypto),
            Ok(svyazka_core::providers::Secrets::Greenapi { .. })
        ));
        app.stop().await;
    }
);

both_backends!(
    webhooks_without_the_token_are_refused,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let g = green();
        let id = add_green(&app, &g).await;
        let url = app.hook_url(id).await;
        let body = json!({"typeWebhook": "incomingMessageReceived", "instanceData": {"idInstance": 1101000001_i64, "wid": "79990000001@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700218861, "idMessage": "6E112CC05BA05DD9DF",
            "senderData": {"chatId": "79991234567@c.us", "chatName": "Иван", "sender": "79991234567@c.us", "senderName": "Иван", "senderContactName": ""},
            "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Привет"}}});
        for token in [None, Some("wrong-token")] {
            let status = g.fake.post_raw(&url, token, &body).await.unwrap();
            assert_eq!(status, 401, "token {token:?}");
        }
        let wrong_path = url.replace(&app.provider(id).await.webhook_secret, "nope");
        let status = g
            .fake
            .post_raw(&wrong_path, Some("x"), &body)
            .await
            .unwrap();
        assert_eq!(status, 404);
        assert_eq!(app.inbox_count().await, 0, "nothing stored");
        // With the token it is taken.
        let token = g.fake.settings(INSTANCE).unwrap()["webhookUrlToken"]
            .as_str()
            .unwrap()
            .to_string();
        let status = g.fake.post_raw(&url, Some(&token), &body).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

both_backends!(
    flow1_green_message_lands_in_retailcrm_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let status = g
            .fake
            .post_incoming(INSTANCE, "79991234567", "Иван", "Хочу заказать диван")
            .await
            .unwrap();
        assert_eq!(status, 200);
        // Green-API repeats notifications: the same idMessage is one message.
        assert_eq!(g.fake.redeliver_last().await.unwrap().unwrap(), 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let customers = fakes.crm.customers();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0]["phones"][0]["number"], "+79991234567");
        assert_eq!(fakes.crm.orders().len(), 1);
        let chat = fakes.crm.mg_messages();
        assert_eq!(chat.len(), 1);
        assert_eq!(chat[0].text, "Хочу заказать диван");
        // Statuses and our own messages are acknowledged, nothing imported.
        assert_eq!(
            g.fake
                .post_status(INSTANCE, "3EB0608D6A2901063D63", "noAccount")
                .await
                .unwrap(),
            200
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.runs().await.len(), 1);
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

both_backends!(
    flow2_order_sends_templated_text_through_green,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(
            crm,
            "new_deal",
            &["send-to-delivery"],
            wa,
            vec![step(
                "send_message",
                vec![
                    ("recipient", event_field("phone")),
                    ("text", template("Здравствуйте, {{ first_name }}! Заказ №{{ number }} передан в доставку.")),
                ],
            )],
        )
        .await;
        let url = app.hook_url(crm).await;
        // A Russian number written with the trunk prefix 8.
        let (order, reply) = fakes
            .crm
            .create_order_and_fire(&url, "shop", json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "8 (999) 111-22-33"}))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let sent = g.fake.sent_messages();
        assert_eq!(sent.len(), 1);
        let number = fakes.crm.order(order).unwrap()["number"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            sent[0].message,
            format!("Здравствуйте, Анна! Заказ №{number} передан в доставку.")
        );
        assert_eq!(sent[0].chat_id, "79991112233@c.us");
        // A yellow card suspends sending, the message stays queued: the run is not failed.
        assert_eq!(
            g.fake
                .post_status(INSTANCE, &sent[0].id_message, "yellowCard")
                .await
                .unwrap(),
            200
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let run = app
            .runs()
            .await
            .into_iter()
            .find(|r| r.id == runs[0].id)
            .unwrap();
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        // Later Green-API says the number has no WhatsApp: the run shows it failed, and why.
        let status = g
            .fake
            .post_status(INSTANCE, &sent[0].id_message, "noAccount")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let run = runs[0].id;
        let failed = eventually(SETTLE, || async {
            let r = app.runs().await.into_iter().find(|r| r.id == run)?;
            (r.status == "failed").then_some(r)
        })
        .await
        .expect("the run is marked failed");
        use svyazka_core::reason::{Reason, Stored, Upstream, read_stored};
        assert!(matches!(
            read_stored::<Reason>(failed.error.as_deref().unwrap()),
            Stored::Typed(Reason::Upstream(u)) if matches!(u.failure, Upstream::NoWhatsapp { .. })
        ));
        let html = unescape(&app.get_html(&format!("/runs/{run}")).await.1);
        assert!(html.contains("нет WhatsApp") || html.contains("no WhatsApp"));
        // Green-API's own words (the status's `description`) are shown too.
        assert!(
            html.contains("Recipient does not have a WhatsApp account"),
            "the upstream's description"
        );
        app.stop().await;
    }
);

/// Short timeouts and backoff so a few failed attempts fit in seconds.
const QUICK_RETRIES: [(&str, &str); 3] = [
    ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "400"),
    ("SVYAZKA_BACKOFF_MS", "200"),
    ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
];

both_backends!(
    a_send_answered_too_late_is_found_in_the_history,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &QUICK_RETRIES).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        // Rate-limited once (429, retried), then a send Green-API takes but answers after our
        // timeout: the retry reads getChatHistory and does not send again.
        g.fake.fail_next(1, 429, "Too Many Requests");
        g.fake.stall_sends(1, Duration::from_millis(1500));
        let url = app.hook_url(crm).await;
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert!(runs[0].attempts >= 3, "attempts: {}", runs[0].attempts);
        let sent = g.fake.sent_messages();
        assert_eq!(sent.len(), 1, "the customer got the message once");
        let steps = app
            .core()
            .db({
                let id = runs[0].id;
                move |c| svyazka_core::runs::steps(c, id)
            })
            .await
            .unwrap();
        assert!(
            steps[0]
                .outputs
                .clone()
                .unwrap_or_default()
                .contains(&sent[0].id_message)
        );
        app.stop().await;
    }
);

both_backends!(
    plan_limit_466_fails_at_once_with_green_words,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &QUICK_RETRIES).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        g.fake.plan_limit_next(1);
        let url = app.hook_url(crm).await;
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            )
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].attempts, 1, "a plan limit is not retried");
        assert_eq!(g.fake.sent_count(), 0);
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[0].id)).await.1);
        assert!(
            html.contains("Correspondents status limit exceeded"),
            "Green-API's words"
        );
        assert!(html.contains("466"));
        app.stop().await;
    }
);

both_backends!(two_way_chat_through_green, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let fakes = Fakes::start();
    let g = green();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = add_green(&app, &g).await;
    app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
        .await;
    g.fake
        .post_incoming(INSTANCE, "79991234567", "Иван", "Где мой заказ?")
        .await
        .unwrap();
    app.settled_runs(1, SETTLE).await;
    let incoming = fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.text == "Где мой заказ?")
        .expect("in RetailCRM's chat");
    assert_eq!(incoming.channel_type, "whatsapp");
    let customer = incoming.customer_external_id.clone().unwrap();
    let (reply, id) = fakes
        .crm
        .operator_reply(incoming.channel_id, &customer, "Заказ уже в пути")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = g.fake.sent_messages();
    let out = sent
        .iter()
        .find(|m| m.message == "Заказ уже в пути")
        .expect("the customer got the reply");
    assert_eq!(out.chat_id, "79991234567@c.us");
    assert_eq!(reply.json()["external_message_id"], json!(out.id_message));
    // The customer reads it: RetailCRM's chat shows it seen.
    for status in ["delivered", "read", "read"] {
        assert_eq!(
            g.fake
                .post_status(INSTANCE, &out.id_message, status)
                .await
                .unwrap(),
            200
        );
    }
    let seen = fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.id == id)
        .unwrap();
    assert_eq!(seen.status, "seen");
    app.stop().await;
});

both_backends!(
    a_chat_reply_whose_answer_was_lost_is_found_in_the_history,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &QUICK_RETRIES).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        g.fake
            .post_incoming(INSTANCE, "79991234567", "Иван", "Где мой заказ?")
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let incoming = fakes
            .crm
            .mg_messages()
            .into_iter()
            .find(|m| m.text == "Где мой заказ?")
            .expect("in RetailCRM's chat");
        // Green-API takes the reply but answers after our timeout: the retry reads the
        // outgoing history, finds it, and does not send it again.
        g.fake.stall_sends(1, Duration::from_millis(1500));
        let customer = incoming.customer_external_id.clone().unwrap();
        let (reply, id) = fakes
            .crm
            .operator_reply(incoming.channel_id, &customer, "Заказ уже в пути")
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let m = eventually(SETTLE, || async {
            let m = fakes.crm.mg_messages().into_iter().find(|m| m.id == id)?;
            (m.status != "sending").then_some(m)
        })
        .await
        .expect("the reply settles");
        assert_eq!(m.status, "sent", "{m:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sent: Vec<_> = g
            .fake
            .sent_messages()
            .into_iter()
            .filter(|s| s.message == "Заказ уже в пути")
            .collect();
        assert_eq!(sent.len(), 1, "the customer got it once");
        assert_eq!(
            m.external_id.as_deref(),
            Some(sent[0].id_message.as_str()),
            "MG knows the message Green-API sent"
        );
        app.stop().await;
    }
);

async fn provider_page(app: &TestApp, id: i64) -> String {
    let (status, html) = app.get_html(&format!("/providers/{id}")).await;
    assert_eq!(status, 200);
    unescape(&html)
}

both_backends!(
    starting_blocked_and_yellow_card_states_are_worded,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let g = green();
        let id = add_green(&app, &g).await;
        // Green-API tells the state (stateInstanceChanged): the page shows it in Green-API's
        // word and says what it means.
        for (state, words) in [
            ("starting", "инстанс запускается"),
            ("blocked", "аккаунт заблокирован WhatsApp"),
            (
                "yellowCard",
                "отправка приостановлена за подозрение в спаме",
            ),
        ] {
            assert_eq!(g.fake.post_state(INSTANCE, state).await.unwrap(), 200);
            let html = provider_page(&app, id).await;
            assert!(
                html.contains(&format!(r#"<td id="account-state">{state}</td>"#)),
                "{state} shown"
            );
            assert!(html.contains(words), "{state}: {words}");
            assert!(html.contains(r#"class="badge error""#), "{state}: failing");
        }
        app.get("/lang/en").await;
        let html = provider_page(&app, id).await;
        assert!(html.contains("sending is suspended for suspected spam"));

        // The same states read by a re-check (getStateInstance).
        g.fake.post_state(INSTANCE, "authorized").await.unwrap();
        assert!(
            provider_page(&app, id)
                .await
                .contains(r#"class="badge ok""#)
        );
        for (state, words) in [
            ("blocked", "WhatsApp has blocked the account"),
            ("starting", "the instance is starting"),
            ("yellowCard", "sending is suspended for suspected spam"),
        ] {
            g.fake.set_state(INSTANCE, state);
            let page = format!("/providers/{id}");
            let r = app
                .submit(&page, &format!("/providers/{id}/check"), &[])
                .await;
            assert!(r.status().is_success() || r.status().is_redirection());
            let html = provider_page(&app, id).await;
            assert!(html.contains(state), "{state} named");
            assert!(html.contains(words), "{state}: {words}");
            assert!(html.contains(r#"class="badge error""#), "{state}: failing");
        }
        app.stop().await;
    }
);
