//! Media through the two newer WhatsApp kinds, Green-API and the Cloud API: customers'
//! pictures, documents and voice notes reach RetailCRM's chat through flow 1 (a redelivered
//! notification counted once), operators' files reach the customer in two-way chat (Cloud API:
//! uploaded to Meta and sent by media id, by link when Meta will not take the upload), and
//! Green-API's account-state notifications are shown on the provider page instead of being
//! refused.

use std::time::Duration;

use serde_json::{Value, json};
use svyazka_testkit::files::FileHost;
use svyazka_testkit::greenapi::{FakeGreenApi, IncomingFile};
use svyazka_testkit::retailcrm::MgMessageRecord;
use svyazka_testkit::wacloud::{FakeCloudApi, IncomingMedia, WABA_ID};

use crate::both_backends;
use crate::media::{JPEG, OGG, PDF, PNG};
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(30);

const INSTANCE: &str = "1101000002";
const GREEN_TOKEN: &str = "a75b3a66374942c5b3c019c698abc2067e151558acbd4123aa";

const PHONE_ID: &str = "106540352242933";
const CLOUD_TOKEN: &str = "EAAJB0xyzMediaAccessToken0123456789";
const APP_SECRET: &str = "1f9e8d7c6b5a49382716cd";

struct Upstream<F> {
    fake: F,
    base: String,
    _running: svyazka_testkit::server::Running,
}

fn green() -> Upstream<FakeGreenApi> {
    let (fake, running) = FakeGreenApi::start().expect("green-api fake");
    fake.add_instance(INSTANCE, GREEN_TOKEN);
    Upstream {
        fake,
        base: running.base_url(),
        _running: running,
    }
}

async fn add_green(app: &TestApp, g: &Upstream<FakeGreenApi>) -> i64 {
    app.add_provider(
        "greenapi",
        &[
            ("name", "WhatsApp Green-API"),
            ("api_url", &g.base),
            ("instance_id", INSTANCE),
            ("token", GREEN_TOKEN),
        ],
    )
    .await
}

fn cloud() -> Upstream<FakeCloudApi> {
    let (fake, running) = FakeCloudApi::start().expect("cloud api fake");
    fake.add_number(PHONE_ID, CLOUD_TOKEN, "+7 495 123-45-67", "Мой магазин");
    Upstream {
        base: format!("{}/v23.0", running.base_url()),
        fake,
        _running: running,
    }
}

async fn add_cloud(app: &TestApp, c: &Upstream<FakeCloudApi>) -> i64 {
    app.add_provider(
        "wacloud",
        &[
            ("name", "WhatsApp Cloud"),
            ("api_url", &c.base),
            ("phone_number_id", PHONE_ID),
            ("token", CLOUD_TOKEN),
            ("app_secret", APP_SECRET),
            ("waba_id", WABA_ID),
        ],
    )
    .await
}

fn customer_messages(fakes: &Fakes) -> Vec<MgMessageRecord> {
    fakes
        .crm
        .mg_messages()
        .into_iter()
        .filter(|m| m.originator == "customer")
        .collect()
}

/// One customer message in RetailCRM's chat: its MG type, text, file bytes and item caption.
fn check_chat(
    fakes: &Fakes,
    m: &MgMessageRecord,
    (kind, text, bytes, item_caption): (&str, &str, Option<&[u8]>, Option<&str>),
) {
    assert_eq!((m.kind.as_str(), m.text.as_str()), (kind, text), "{m:?}");
    assert_eq!(m.channel_type, "whatsapp");
    match bytes {
        None => assert!(m.items.is_empty(), "{m:?}"),
        Some(bytes) => {
            assert_eq!(m.items.len(), 1, "{m:?}");
            let id = m.items[0]["id"].as_str().expect("item id");
            let file = fakes.crm.mg_file(id).expect("the file is in MG");
            assert_eq!(file.bytes, bytes, "{m:?}");
            assert_eq!(
                m.items[0].get("caption").and_then(Value::as_str),
                item_caption,
                "{m:?}"
            );
        }
    }
}

/// The bundles' events, oldest first: `(text, media)`.
async fn events(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let runs = app.settled_runs(n, SETTLE).await;
    assert_eq!(runs.len(), n);
    runs.iter()
        .rev()
        .map(|run| {
            assert_eq!(run.status, "succeeded", "{:?}", run.error);
            let event: Value = serde_json::from_str(&run.event).expect("event JSON");
            (
                event["text"].as_str().unwrap_or_default().to_owned(),
                event["media"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn mg_file_url(fakes: &Fakes, id: &str) -> String {
    format!("{}/mg/files/{id}", fakes.crm_base)
}

/// The operator answers the customer of `to` with a file of MG's: answers the file's URL,
/// what the webhook was answered (checked to be 200) and the MG message id.
async fn operator_sends(
    fakes: &Fakes,
    to: &MgMessageRecord,
    (kind, bytes, name, caption): (&str, &[u8], &str, &str),
) -> (String, svyazka_testkit::retailcrm::DriverReply, i64) {
    let file = fakes.crm.add_mg_file(bytes);
    let customer = to.customer_external_id.clone().unwrap();
    let (reply, id) = fakes
        .crm
        .operator_file(to.channel_id, &customer, kind, &file, name, caption)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    (mg_file_url(fakes, &file), reply, id)
}

fn mg_status(fakes: &Fakes, id: i64) -> String {
    let m = fakes.crm.mg_messages().into_iter().find(|m| m.id == id);
    m.map(|m| m.status).unwrap_or_default()
}

both_backends!(
    green_files_both_ways_through_flow1_and_two_way_chat,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        // Green-API's storage: links that need no credentials.
        let (storage, _files) = FileHost::start().unwrap();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let photo = storage.put(
            "1101000002/c1aabd48-c1c2-49b1-8f2d-f575a41777be.jpg",
            "image/jpeg",
            JPEG,
        );
        let invoice = storage.put(
            "1101000002/7f0a3c2e-9a43-4a8e-a0a4-0c2f4c9e7d11.pdf",
            "application/pdf",
            PDF,
        );
        let voice = storage.put(
            "1101000002/3b8e0f0e-2d55-4f4a-8d6c-1f4b6a7e9c21.oga",
            "audio/ogg",
            OGG,
        );
        let sent = [
            IncomingFile {
                type_message: "imageMessage",
                download_url: &photo,
                caption: "Вот такой диван нужен",
                file_name: "c1aabd48-c1c2-49b1-8f2d-f575a41777be.jpg",
                mime_type: "image/jpeg",
            },
            IncomingFile {
                type_message: "documentMessage",
                download_url: &invoice,
                caption: "",
                file_name: "Schet_1547.pdf",
                mime_type: "application/pdf",
            },
            IncomingFile {
                type_message: "audioMessage",
                download_url: &voice,
                caption: "",
                file_name: "3b8e0f0e-2d55-4f4a-8d6c-1f4b6a7e9c21.oga",
                mime_type: "audio/ogg; codecs=opus",
            },
            // No link, and Green-API has no file for the message either (`downloadFile` finds
            // none): the words still reach the chat.
            IncomingFile {
                type_message: "videoMessage",
                download_url: "",
                caption: "Как собрать?",
                file_name: "",
                mime_type: "video/mp4",
            },
        ];
        for (i, file) in sent.iter().enumerate() {
            let status = g
                .fake
                .post_incoming_file(INSTANCE, "79991234567", "Иван", file)
                .await
                .unwrap();
            assert_eq!(status, 200, "{}", file.type_message);
            // One at a time, so the chat's order is the files' order.
            app.settled_runs(i + 1, SETTLE).await;
        }
        // Green-API delivers a notification again: the same idMessage is one message.
        assert_eq!(g.fake.redeliver_last().await.unwrap().unwrap(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            events(&app, 4).await,
            vec![
                ("Вот такой диван нужен".to_owned(), "photo".to_owned()),
                (
                    "[document: Schet_1547.pdf]".to_owned(),
                    "document".to_owned()
                ),
                ("[voice]".to_owned(), "voice".to_owned()),
                ("Как собрать?".to_owned(), "video".to_owned()),
            ]
        );
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), 4, "{chat:?}");
        check_chat(
            &fakes,
            &chat[0],
            ("image", "Вот такой диван нужен", Some(JPEG), None),
        );
        check_chat(
            &fakes,
            &chat[1],
            ("file", "", Some(PDF), Some("Schet_1547.pdf")),
        );
        check_chat(&fakes, &chat[2], ("audio", "", Some(OGG), None));
        check_chat(&fakes, &chat[3], ("text", "Как собрать?", None, None));

        // The operator answers in the same conversation with a picture, then a document
        // whose name has no extension (Green-API tells a file's type by it).
        let picture = ("image", PNG, "photo.png", "Вот так он выглядит");
        let (url, reply, id) = operator_sends(&fakes, &chat[2], picture).await;
        let out = g.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(out.chat_id, "79991234567@c.us");
        assert_eq!(out.type_message, "imageMessage");
        assert_eq!(out.url_file, Some(url));
        assert_eq!(out.file_name.as_deref(), Some("photo.png"));
        assert_eq!(out.message, "Вот так он выглядит");
        assert_eq!(reply.json()["external_message_id"], json!(out.id_message));
        assert_eq!(mg_status(&fakes, id), "sent");

        operator_sends(&fakes, &chat[2], ("file", PDF, "Счёт №1547", "")).await;
        let out = g.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(out.type_message, "documentMessage");
        assert_eq!(out.file_name.as_deref(), Some("Счёт №1547.pdf"));
        assert_eq!(out.message, "");
        assert_eq!(g.fake.sent_count(), 2, "nothing sent twice");
        app.stop().await;
    }
);

both_backends!(
    a_green_file_without_a_link_is_asked_for_by_its_message,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (storage, _files) = FileHost::start().unwrap();
        let g = green();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_green(&app, &g).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        let video = storage.put(
            "1101000002/5d2c9a61-0b7e-4c0e-9f51-2a6f0c3d8e44.mp4",
            "video/mp4",
            PNG,
        );
        // The notification's `downloadUrl` is empty; `downloadFile` knows the link.
        let status = g
            .fake
            .post_incoming_file_without_link(
                INSTANCE,
                "79991234567",
                "Иван",
                &IncomingFile {
                    type_message: "videoMessage",
                    download_url: &video,
                    caption: "Как собрать?",
                    file_name: "5d2c9a61-0b7e-4c0e-9f51-2a6f0c3d8e44.mp4",
                    mime_type: "video/mp4",
                },
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            events(&app, 1).await,
            vec![("Как собрать?".to_owned(), "video".to_owned())]
        );
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), 1, "{chat:?}");
        check_chat(&fakes, &chat[0], ("file", "Как собрать?", Some(PNG), None));
        app.stop().await;
    }
);

both_backends!(
    cloud_files_both_ways_through_flow1_and_two_way_chat,
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
        let hook = app.hook_url(wa).await;
        let photo = c.fake.add_media(PHONE_ID, "image/jpeg", JPEG);
        let invoice = c.fake.add_media(PHONE_ID, "application/pdf", PDF);
        let voice = c.fake.add_media(PHONE_ID, "audio/ogg; codecs=opus", OGG);
        // Gone from Meta before we fetched it: the message still reaches the chat, as text.
        let gone = c.fake.add_media(PHONE_ID, "image/jpeg", JPEG);
        c.fake.expire_media(&gone);
        let sent = [
            IncomingMedia {
                kind: "image",
                media_id: &photo,
                caption: None,
                filename: None,
                voice: false,
            },
            IncomingMedia {
                kind: "document",
                media_id: &invoice,
                caption: Some("Вот счёт"),
                filename: Some("Schet_1547.pdf"),
                voice: false,
            },
            IncomingMedia {
                kind: "audio",
                media_id: &voice,
                caption: None,
                filename: None,
                voice: true,
            },
            IncomingMedia {
                kind: "image",
                media_id: &gone,
                caption: Some("Фото чека"),
                filename: None,
                voice: false,
            },
        ];
        for (i, media) in sent.iter().enumerate() {
            let status = c
                .fake
                .post_incoming_media(&hook, APP_SECRET, PHONE_ID, "79991234567", "Иван", media)
                .await
                .unwrap();
            assert_eq!(status, 200, "{}", media.kind);
            app.settled_runs(i + 1, SETTLE).await;
        }
        // At-least-once delivery: the same wamid again is a duplicate.
        assert_eq!(c.fake.redeliver_last().await.unwrap().unwrap(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            events(&app, 4).await,
            vec![
                ("[photo]".to_owned(), "photo".to_owned()),
                ("Вот счёт".to_owned(), "document".to_owned()),
                ("[voice]".to_owned(), "voice".to_owned()),
                ("Фото чека".to_owned(), "photo".to_owned()),
            ]
        );
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), 4, "{chat:?}");
        check_chat(&fakes, &chat[0], ("image", "", Some(JPEG), None));
        check_chat(
            &fakes,
            &chat[1],
            ("file", "Вот счёт", Some(PDF), Some("Schet_1547.pdf")),
        );
        check_chat(&fakes, &chat[2], ("audio", "", Some(OGG), None));
        check_chat(&fakes, &chat[3], ("text", "Фото чека", None, None));

        // The operator answers with a picture and a document: each is uploaded to Meta and
        // sent by its media id.
        let picture = ("image", PNG, "photo.png", "Вот так он выглядит");
        let (url, reply, id) = operator_sends(&fakes, &chat[0], picture).await;
        let out = c.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(
            (out.kind.as_str(), out.to.as_str()),
            ("image", "79991234567")
        );
        let media_id = out.link.clone().expect("sent by media id");
        assert_ne!(media_id, url, "not by MG's link");
        assert_eq!(
            c.fake.media(&media_id),
            Some(("image/png".to_owned(), PNG.to_vec())),
            "the upload is MG's file"
        );
        assert_eq!(out.caption.as_deref(), Some("Вот так он выглядит"));
        assert_eq!(out.filename, None);
        assert_eq!(reply.json()["external_message_id"], json!(out.id));
        assert_eq!(mg_status(&fakes, id), "sent");

        operator_sends(&fakes, &chat[0], ("file", PDF, "Schet_1547.pdf", "")).await;
        let out = c.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(out.kind, "document");
        assert_eq!(out.filename.as_deref(), Some("Schet_1547.pdf"));
        assert_eq!(out.caption, None, "no empty caption");
        let media_id = out.link.clone().expect("sent by media id");
        assert_eq!(
            c.fake.media(&media_id),
            Some(("application/pdf".to_owned(), PDF.to_vec()))
        );
        assert_eq!(c.fake.upload_count(), 2);
        assert_eq!(c.fake.sent_count(), 2, "nothing sent twice");
        // Nothing Meta would fail later (the window is open).
        assert_eq!(
            c.fake
                .post_pending_failures(&hook, APP_SECRET)
                .await
                .unwrap(),
            0
        );
        app.stop().await;
    }
);

both_backends!(
    cloud_files_meta_will_not_take_as_uploads_go_by_link,
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
        let hook = app.hook_url(wa).await;
        let status = c
            .fake
            .post_incoming(
                &hook,
                APP_SECRET,
                PHONE_ID,
                "79991234567",
                "Иван",
                "Пришлите прайс",
            )
            .await
            .unwrap();
        assert_eq!(status, 200);
        app.settled_runs(1, SETTLE).await;
        let chat = customer_messages(&fakes);
        // A zip archive: a type Meta does not take as an upload; nothing was sent, so the file
        // goes by MG's link.
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00price-list";
        let (url, reply, id) =
            operator_sends(&fakes, &chat[0], ("file", zip, "Прайс.zip", "Прайс")).await;
        let out = c.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(out.link, Some(url), "by link");
        assert_eq!(out.filename.as_deref(), Some("Прайс.zip"));
        assert_eq!(reply.json()["external_message_id"], json!(out.id));
        assert_eq!(mg_status(&fakes, id), "sent");
        // Over the 20 MiB the bridge passes through: not read whole, sent by link.
        let mut big = PDF.to_vec();
        big.resize(20 * 1024 * 1024 + 1, b' ');
        let (url, _, _) = operator_sends(&fakes, &chat[0], ("file", &big, "Каталог.pdf", "")).await;
        let out = c.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(out.link, Some(url), "by link");
        assert_eq!(c.fake.upload_count(), 0);
        assert_eq!(c.fake.sent_count(), 2, "each once");
        // Meta is briefly unavailable for the upload: nothing went out yet, so the reply is
        // tried again (not "interrupted") and the picture goes once, by id.
        c.fake
            .fail_next(1, 503, 2, "(#2) Service temporarily unavailable");
        let (_, _, id) = operator_sends(&fakes, &chat[0], ("image", PNG, "photo.png", "")).await;
        let deadline = std::time::Instant::now() + SETTLE;
        while mg_status(&fakes, id) != "sent" && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(mg_status(&fakes, id), "sent");
        let out = c.fake.sent_messages().pop().expect("the customer got it");
        assert_eq!(
            c.fake
                .media(out.link.as_deref().unwrap_or_default())
                .map(|m| m.1),
            Some(PNG.to_vec())
        );
        assert_eq!((c.fake.sent_count(), c.fake.upload_count()), (3, 1));
        app.stop().await;
    }
);

async fn page(app: &TestApp, id: i64) -> String {
    let (status, html) = app.get_html(&format!("/providers/{id}")).await;
    assert_eq!(status, 200);
    unescape(&html)
}

both_backends!(
    green_account_state_changes_show_on_the_provider_page,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let g = green();
        let id = add_green(&app, &g).await;
        assert!(
            page(&app, id)
                .await
                .contains(r#"<td id="account-state">authorized</td>"#)
        );

        // The phone unlinked the account: recorded, not refused as a malformed webhook.
        let status = g.fake.post_state(INSTANCE, "notAuthorized").await.unwrap();
        assert_eq!(status, 200);
        let html = page(&app, id).await;
        assert!(
            html.contains(r#"<td id="account-state">notAuthorized</td>"#),
            "the state in Green-API's words"
        );
        assert!(
            html.contains(r#"class="badge error""#),
            "the provider is failing"
        );
        assert!(html.contains("QR"), "says what to do");
        let log = app
            .core()
            .db(move |c| svyazka_core::hook_log::get(c, id))
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(log.last_error, None, "nothing refused");
        assert_eq!(app.inbox_count().await, 0, "a state is no message");

        // A late notification of an older state does not undo the newer one.
        let token = g.fake.settings(INSTANCE).unwrap()["webhookUrlToken"]
            .as_str()
            .unwrap()
            .to_string();
        let stale = json!({
            "typeWebhook": "stateInstanceChanged",
            "instanceData": {"idInstance": 1101000002_i64, "wid": "79990000001@c.us", "typeInstance": "whatsapp"},
            "timestamp": chrono::Utc::now().timestamp() - 3600,
            "stateInstance": "authorized",
        });
        let url = app.hook_url(id).await;
        assert_eq!(
            g.fake.post_raw(&url, Some(&token), &stale).await.unwrap(),
            200
        );
        assert!(
            page(&app, id)
                .await
                .contains(r#"<td id="account-state">notAuthorized</td>"#)
        );

        // Scanned again: authorized, and the provider is fine again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            g.fake.post_state(INSTANCE, "authorized").await.unwrap(),
            200
        );
        let html = page(&app, id).await;
        assert!(html.contains(r#"<td id="account-state">authorized</td>"#));
        assert!(html.contains(r#"class="badge ok""#));
        app.stop().await;
    }
);
