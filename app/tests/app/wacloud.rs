//! WhatsApp Cloud API: the number checked on save, Meta's handshake, webhooks refused without
//! the app secret's signature, both guide flows (flow 2 with an approved template), free text
//! refused at once outside the 24-hour window, and Meta's 131026 / 130429 answers.

use std::time::Duration;

use serde_json::json;
use svyazka_testkit::wacloud::{FakeCloudApi, WABA_ID};

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(30);
pub(crate) const PHONE_ID: &str = "106540352242922";
pub(crate) const TOKEN: &str = "EAAJB0xyzTestAccessToken0123456789";
pub(crate) const APP_SECRET: &str = "0f9e8d7c6b5a49382716ab";

pub(crate) struct Cloud {
    pub(crate) fake: FakeCloudApi,
    base: String,
    _running: svyazka_testkit::server::Running,
}

pub(crate) fn cloud() -> Cloud {
    let (fake, running) = FakeCloudApi::start().expect("cloud api fake");
    fake.add_number(PHONE_ID, TOKEN, "+7 495 123-45-67", "Мой магазин");
    fake.add_template(
        "order_ready",
        "ru",
        "Здравствуйте, {{1}}! Заказ №{{2}} передан в доставку.",
    );
    fake.add_pending_template("promo_draft");
    Cloud {
        base: format!("{}/v23.0", running.base_url()),
        fake,
        _running: running,
    }
}

fn fields(c: &Cloud) -> Vec<(&'static str, String)> {
    vec![
        ("name", "WhatsApp Cloud".into()),
        ("api_url", c.base.clone()),
        ("phone_number_id", PHONE_ID.into()),
        ("token", TOKEN.into()),
        ("app_secret", APP_SECRET.into()),
        ("waba_id", WABA_ID.into()),
    ]
}

pub(crate) async fn add_cloud(app: &TestApp, c: &Cloud) -> i64 {
    let f = fields(c);
    let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.add_provider("wacloud", &refs).await
}

fn verify_token(app: &TestApp, p: &svyazka_core::providers::Provider) -> String {
    match p.secrets(&app.core().crypto) {
        Ok(svyazka_core::providers::Secrets::Wacloud { verify_token, .. }) => verify_token,
        other => panic!("{other:?}"),
    }
}

both_backends!(
    saving_checks_the_number_and_answers_the_handshake,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let c = cloud();
        let path = "/providers/new/wacloud";
        for (field, value, err) in [
            ("token", "wrong-token", "err-token"),
            ("phone_number_id", "999", "err-phone_number_id"),
        ] {
            let mut f = fields(&c);
            f.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value.into();
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = app.submit(path, path, &refs).await;
            assert_eq!(r.status(), 422, "{field}");
            assert!(r.text().await.unwrap().contains(err), "{field}");
        }
        assert!(
            app.core()
                .db(svyazka_core::providers::list)
                .await
                .unwrap()
                .is_empty()
        );

        let id = add_cloud(&app, &c).await;
        let (status, html) = app.get_html(&format!("/providers/{id}")).await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert!(html.contains("+7 495 123-45-67 (Мой магазин)"));
        assert!(
            !html.contains(TOKEN) && !html.contains(APP_SECRET),
            "secrets masked"
        );
        let url = app.hook_url(id).await;
        assert!(html.contains(&url), "callback URL to copy");
        let p = app.provider(id).await;
        let vt = verify_token(&app, &p);
        assert!(html.contains(&vt), "verify token to copy");
        // Meta's subscription check.
        assert_eq!(
            c.fake.verify(&url, &vt, "1158201444").await.unwrap(),
            (200, "1158201444".into())
        );
        assert_eq!(
            c.fake.verify(&url, "wrong", "1158201444").await.unwrap().0,
            403
        );
        // Approved templates, read live; one in review is not offered.
        let (status, html) = app.get_html(&format!("/providers/{id}/templates")).await;
        assert_eq!(status, 200);
        assert!(html.contains("order_ready"));
        assert!(!html.contains("promo_draft"));
        app.stop().await;
    }
);

both_backends!(
    webhooks_without_a_valid_signature_are_refused,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let c = cloud();
        let id = add_cloud(&app, &c).await;
        let url = app.hook_url(id).await;
        let wrong = c
            .fake
            .post_incoming(
                &url,
                "not-the-secret",
                PHONE_ID,
                "79991234567",
                "Иван",
                "Привет",
            )
            .await
            .unwrap();
        assert_eq!(wrong, 401);
        let raw = br#"{"object":"whatsapp_business_account","entry":[]}"#.to_vec();
        assert_eq!(c.fake.post_raw(&url, "", raw).await.unwrap(), 401);
        assert_eq!(app.inbox_count().await, 0, "nothing stored");
        let ok = c
            .fake
            .post_incoming(&url, APP_SECRET, PHONE_ID, "79991234567", "Иван", "Привет")
            .await
            .unwrap();
        assert_eq!(ok, 200);
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

both_backends!(
    flow1_cloud_message_lands_in_retailcrm_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let url = app.hook_url(wa).await;
        let status = c
            .fake
            .post_incoming(
                &url,
                APP_SECRET,
                PHONE_ID,
                "79991234567",
                "Иван",
                "Хочу заказать диван",
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        // Delivery is at least once: the same wamid again is the same message.
        assert_eq!(c.fake.redeliver_last().await.unwrap().unwrap(), 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let customers = fakes.crm.customers();
        assert_eq!(customers.len(), 1);
        assert_eq!(customers[0]["phones"][0]["number"], "+79991234567");
        assert_eq!(fakes.crm.orders().len(), 1);
        let chat = fakes.crm.mg_messages();
        assert_eq!(chat.len(), 1);
        assert_eq!(chat[0].text, "Хочу заказать диван");
        // A status with conversation/pricing objects is acknowledged, nothing imported.
        let s = c
            .fake
            .post_status(&url, APP_SECRET, PHONE_ID, "wamid.X", "delivered", None)
            .await
            .unwrap();
        assert_eq!(s, 200);
        assert_eq!(app.inbox_count().await, 1);
        app.stop().await;
    }
);

fn template_steps() -> Vec<svyazka_core::bundles::Step> {
    vec![step(
        "send_template",
        vec![
            ("recipient", event_field("phone")),
            ("template", template("order_ready")),
            ("language", template("ru")),
            ("param1", event_field("first_name")),
            ("param2", event_field("number")),
        ],
    )]
}

both_backends!(
    flow2_order_sends_an_approved_template,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(crm, "new_deal", &["send-to-delivery"], wa, template_steps())
            .await;
        let url = app.hook_url(crm).await;
        let (order, reply) = fakes
            .crm
            .create_order_and_fire(&url, "shop", json!({"status": "send-to-delivery", "firstName": "Анна", "phone": "8 (999) 111-22-33"}))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let number = fakes.crm.order(order).unwrap()["number"]
            .as_str()
            .unwrap()
            .to_string();
        let sent = c.fake.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, "template");
        assert_eq!(sent[0].body, "order_ready");
        assert_eq!(sent[0].to, "79991112233", "8 → 7, digits only");
        assert_eq!(sent[0].params, vec!["Анна".to_string(), number]);
        // Meta accepted it, then reports it failed (an `errors` array): the run says so.
        let hook = app.hook_url(wa).await;
        let status = c
            .fake
            .post_status(
                &hook,
                APP_SECRET,
                PHONE_ID,
                &sent[0].id,
                "failed",
                Some((131026, "Message Undeliverable.", "Message Undeliverable.")),
            )
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
        assert!(failed.error.unwrap().contains("no_whatsapp"));
        app.stop().await;
    }
);

both_backends!(
    free_text_outside_the_window_fails_at_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
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
        assert_eq!(runs[0].attempts, 1, "not retried");
        assert_eq!(c.fake.sent_count(), 0, "Meta was not even asked");
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[0].id)).await.1);
        assert!(html.contains("24"), "the window is named");
        // The customer writes: within the window free text goes out.
        let hook = app.hook_url(wa).await;
        c.fake
            .post_incoming(
                &hook,
                APP_SECRET,
                PHONE_ID,
                "79991234567",
                "Анна",
                "Где заказ?",
            )
            .await
            .unwrap();
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+7 999 123-45-67"}),
            )
            .await
            .unwrap();
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(runs.iter().any(|r| r.status == "succeeded"), "{runs:?}");
        let sent = c.fake.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].body, "Здравствуйте, Анна!");
        app.stop().await;
    }
);

const QUICK_RETRIES: [(&str, &str); 3] = [
    ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "2000"),
    ("SVYAZKA_BACKOFF_MS", "200"),
    ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
];

both_backends!(
    no_whatsapp_is_permanent_and_rate_limits_are_retried,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &QUICK_RETRIES).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(crm, "new_deal", &[], wa, template_steps()).await;
        let url = app.hook_url(crm).await;
        c.fake.mark_no_whatsapp("79990000099");
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Олег", "phone": "+79990000099"}),
            )
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].attempts, 1, "not retried");
        use svyazka_core::reason::{Reason, Stored, Upstream, read_stored};
        match read_stored::<Reason>(runs[0].error.as_deref().unwrap()) {
            Stored::Typed(Reason::Upstream(u)) => {
                assert!(matches!(u.failure, Upstream::NoWhatsapp { .. }), "{u:?}")
            }
            other => panic!("{other:?}"),
        }
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[0].id)).await.1);
        assert!(
            html.contains("нет WhatsApp") || html.contains("no WhatsApp"),
            "worded"
        );

        // Meta's throughput limit: HTTP 400 with code 130429, retried by its code.
        c.fake.rate_limit_next(1);
        fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            )
            .await
            .unwrap();
        let runs = app.settled_runs(2, SETTLE).await;
        let ok: Vec<_> = runs.iter().filter(|r| r.status == "succeeded").collect();
        assert_eq!(ok.len(), 1, "{runs:?}");
        assert!(ok[0].attempts >= 2, "retried after the rate limit");
        assert_eq!(c.fake.sent_count(), 1);
        app.stop().await;
    }
);

both_backends!(two_way_chat_through_the_cloud_api, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let fakes = Fakes::start();
    let c = cloud();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = add_cloud(&app, &c).await;
    app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
        .await;
    let hook = app.hook_url(wa).await;
    c.fake
        .post_incoming(
            &hook,
            APP_SECRET,
            PHONE_ID,
            "79991234567",
            "Иван",
            "Где мой заказ?",
        )
        .await
        .unwrap();
    app.settled_runs(1, SETTLE).await;
    let incoming = fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.text == "Где мой заказ?")
        .expect("in RetailCRM's chat");
    let customer = incoming.customer_external_id.clone().unwrap();
    let (reply, id) = fakes
        .crm
        .operator_reply(incoming.channel_id, &customer, "Заказ уже в пути")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = c.fake.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, "Заказ уже в пути");
    assert_eq!(sent[0].to, "79991234567");
    assert_eq!(reply.json()["external_message_id"], json!(sent[0].id));
    c.fake
        .post_status(&hook, APP_SECRET, PHONE_ID, &sent[0].id, "read", None)
        .await
        .unwrap();
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
    the_editor_offers_approved_templates_and_warns_about_the_window,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        let mut steps = template_steps();
        steps.extend(flow2_steps());
        let id = app.bundle(crm, "new_deal", &[], wa, steps).await;
        let (status, html) = app.get_html(&format!("/bundles/{id}")).await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        // A saved «Отправить шаблон» step reads as «Отправить сообщение» in template mode.
        assert!(
            html.contains(r#"<option value="order_ready|ru||" selected>"#),
            "the approved template is chosen in the card's select"
        );
        assert!(
            !html.contains("promo_draft"),
            "a template in review is not offered"
        );
        assert!(
            html.contains("24 часов"),
            "free text: the window is explained"
        );
        app.stop().await;
    }
);

/// A short client timeout, so a send answered late is a lost answer.
const SHORT_TIMEOUT: [(&str, &str); 3] = [
    ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "400"),
    ("SVYAZKA_BACKOFF_MS", "200"),
    ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
];

both_backends!(
    a_send_whose_answer_was_lost_is_not_repeated,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &SHORT_TIMEOUT).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(crm, "new_deal", &[], wa, template_steps()).await;
        // Meta takes the message but answers after our timeout; with no history to look it
        // up in, the run stops instead of sending it again.
        c.fake.stall_sends(1, Duration::from_millis(1500));
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
        assert_eq!(runs[0].attempts, 1, "not retried");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(c.fake.sent_count(), 1, "the customer got it once");
        use svyazka_core::reason::{Reason, Stored, read_stored};
        assert_eq!(
            read_stored::<Reason>(runs[0].error.as_deref().unwrap()),
            Stored::Typed(Reason::InterruptedSend)
        );
        app.stop().await;
    }
);

both_backends!(
    free_text_meta_fails_later_with_131047_fails_the_run,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        let hook = app.hook_url(wa).await;
        c.fake
            .post_incoming(
                &hook,
                APP_SECRET,
                PHONE_ID,
                "79991234567",
                "Анна",
                "Где заказ?",
            )
            .await
            .unwrap();
        // Our estimate says the window is open; Meta's clock says it has closed. Meta takes the
        // free text, then fails it in a status with 131047.
        c.fake.close_window("79991234567");
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
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert_eq!(c.fake.sent_count(), 1, "Meta accepted the send");
        assert_eq!(
            c.fake
                .post_pending_failures(&hook, APP_SECRET)
                .await
                .unwrap(),
            1
        );
        let run = runs[0].id;
        let failed = eventually(SETTLE, || async {
            let r = app.runs().await.into_iter().find(|r| r.id == run)?;
            (r.status == "failed").then_some(r)
        })
        .await
        .expect("the run is marked failed");
        use svyazka_core::reason::{Reason, Stored, read_stored};
        assert!(
            matches!(
                read_stored::<Reason>(failed.error.as_deref().unwrap()),
                Stored::Typed(Reason::ReplyWindowClosed { .. })
            ),
            "{:?}",
            failed.error
        );
        let html = unescape(&app.get_html(&format!("/runs/{run}")).await.1);
        assert!(
            html.contains("24 часов"),
            "the window is named on the run page"
        );
        app.stop().await;
    }
);

/// Two-way chat through the Cloud API: the customer's message in RetailCRM's chat.
async fn cloud_chat(
    app: &TestApp,
    fakes: &Fakes,
    c: &Cloud,
    written_at: i64,
) -> svyazka_testkit::retailcrm::MgMessageRecord {
    let crm = app.add_retailcrm(fakes).await;
    let wa = add_cloud(app, c).await;
    app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
        .await;
    c.fake
        .post_incoming_at(
            &app.hook_url(wa).await,
            APP_SECRET,
            PHONE_ID,
            "79991234567",
            "Иван",
            "Где мой заказ?",
            written_at,
        )
        .await
        .unwrap();
    let runs = app.settled_runs(1, SETTLE).await;
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
    fakes
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.text == "Где мой заказ?")
        .expect("in RetailCRM's chat")
}

/// MG's record of the operator's message once it is no longer `sending`.
async fn settled_reply(fakes: &Fakes, id: i64) -> svyazka_testkit::retailcrm::MgMessageRecord {
    eventually(SETTLE, || async {
        let m = fakes.crm.mg_messages().into_iter().find(|m| m.id == id)?;
        (m.status != "sending").then_some(m)
    })
    .await
    .expect("the reply settles")
}

both_backends!(
    a_chat_reply_whose_answer_was_lost_is_not_repeated,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &SHORT_TIMEOUT).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let c = cloud();
        let incoming = cloud_chat(&app, &fakes, &c, chrono::Utc::now().timestamp()).await;
        // Meta takes the reply but answers after our timeout; with no history to look it up
        // in, the reply is not sent again.
        c.fake.stall_sends(1, Duration::from_millis(1500));
        let customer = incoming.customer_external_id.clone().unwrap();
        let (reply, id) = fakes
            .crm
            .operator_reply(incoming.channel_id, &customer, "Заказ уже в пути")
            .await
            .unwrap();
        // Decided within the webhook's time: MG hears at once that it is not sent again.
        assert_eq!(reply.status, 422, "{}", reply.body);
        assert!(
            reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not sent again"),
            "{}",
            reply.body
        );
        let m = settled_reply(&fakes, id).await;
        assert_eq!(m.status, "failed", "{m:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sent: Vec<_> = c
            .fake
            .sent_messages()
            .into_iter()
            .filter(|m| m.body == "Заказ уже в пути")
            .collect();
        assert_eq!(sent.len(), 1, "the customer got it once");
        let replies = app
            .core()
            .db(|c| svyazka_core::replies::recent(c, 10))
            .await
            .unwrap();
        use svyazka_core::reason::{Reason, Stored, read_stored};
        assert_eq!(
            read_stored::<Reason>(replies[0].error.as_deref().unwrap()),
            Stored::Typed(Reason::InterruptedSend)
        );
        app.stop().await;
    }
);

both_backends!(
    a_chat_reply_after_24_hours_is_refused_at_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        // The customer wrote 25 hours ago (Meta's timestamp).
        let written = chrono::Utc::now().timestamp() - 25 * 3600;
        let incoming = cloud_chat(&app, &fakes, &c, written).await;
        let customer = incoming.customer_external_id.clone().unwrap();
        let (reply, id) = fakes
            .crm
            .operator_reply(incoming.channel_id, &customer, "Ответ через сутки")
            .await
            .unwrap();
        assert_eq!(reply.status, 422, "{}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "reply_timed_out");
        assert!(
            error["message"].as_str().unwrap().contains("24 hours"),
            "{error}"
        );
        let m = fakes
            .crm
            .mg_messages()
            .into_iter()
            .find(|m| m.id == id)
            .unwrap();
        assert_eq!(m.status, "failed");
        assert_eq!(c.fake.sent_count(), 0, "Meta was not asked");
        let (status, html) = app.get_html("/replies").await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        assert!(html.contains("Ответ через сутки"), "{html}");
        assert!(html.contains("больше 24 часов назад"), "{html}");
        app.stop().await;
    }
);

both_backends!(
    unsupported_messages_and_reactions_are_acknowledged_and_not_imported,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let c = cloud();
        let id = add_cloud(&app, &c).await;
        let url = app.hook_url(id).await;
        let status = c
            .fake
            .post_unsupported_and_reaction(&url, APP_SECRET, PHONE_ID, "79001112233", "Анна")
            .await
            .unwrap();
        assert_eq!(status, 200, "acknowledged, so Meta does not redeliver");
        assert_eq!(app.inbox_count().await, 0, "nothing to pass on");
        let status = c
            .fake
            .post_incoming(
                &url,
                APP_SECRET,
                PHONE_ID,
                "79001112233",
                "Анна",
                "Добрый день",
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(app.inbox_count().await, 1, "the text that follows is taken");
        app.stop().await;
    }
);
