//! Media both ways between messengers and RetailCRM's chats. Customers' photos, files, voice
//! messages, videos, stickers and places — 13 real bodies replayed into the webhooks — reach
//! the chat as MG images, files, audio or map links, with the caption as text; operators'
//! images and files reach the customer as media.

use std::time::Duration;

use serde_json::Value;
use svyazka_testkit::files::FileHost;
use svyazka_testkit::retailcrm::MgMessageRecord;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(30);

/// The first bytes of each format: what MG and the messengers tell file types by.
pub(crate) const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x01\x03\0\0\0%\xdbV\xca";
pub(crate) const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
const WEBP: &[u8] = b"RIFF\x1a\0\0\0WEBPVP8 \x0e\0\0\0";
pub(crate) const OGG: &[u8] = b"OggS\0\x02\0\0\0\0\0\0\0\0";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
pub(crate) const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";

fn fixture(name: &str) -> Value {
    let text = match name {
        "tg_photo" => include_str!("fixtures/media/tg_photo.json"),
        "tg_photo_caption" => include_str!("fixtures/media/tg_photo_caption.json"),
        "tg_document" => include_str!("fixtures/media/tg_document.json"),
        "tg_voice" => include_str!("fixtures/media/tg_voice.json"),
        "tg_video" => include_str!("fixtures/media/tg_video.json"),
        "tg_sticker" => include_str!("fixtures/media/tg_sticker.json"),
        "tg_location" => include_str!("fixtures/media/tg_location.json"),
        "wa_image_caption" => include_str!("fixtures/media/wa_image_caption.json"),
        "wa_image" => include_str!("fixtures/media/wa_image.json"),
        "wa_document" => include_str!("fixtures/media/wa_document.json"),
        "wa_ptt" => include_str!("fixtures/media/wa_ptt.json"),
        "wa_video" => include_str!("fixtures/media/wa_video.json"),
        "wa_location" => include_str!("fixtures/media/wa_location.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture JSON")
}

/// What one replayed body must become in RetailCRM's chat.
struct Expect {
    fixture: &'static str,
    /// MG message type.
    kind: &'static str,
    /// The message's text: the caption, a map link, or empty.
    text: &'static str,
    /// The file's bytes MG must hold, for media.
    bytes: Option<&'static [u8]>,
    /// A document's name as the item's caption.
    item_caption: Option<&'static str>,
    /// The bundle's `text` field for this message.
    event_text: &'static str,
    event_media: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn exp(
    fixture: &'static str,
    kind: &'static str,
    text: &'static str,
    bytes: Option<&'static [u8]>,
    item_caption: Option<&'static str>,
    event_text: &'static str,
    event_media: &'static str,
) -> Expect {
    Expect {
        fixture,
        kind,
        text,
        bytes,
        item_caption,
        event_text,
        event_media,
    }
}

const OSM_MOSCOW: &str =
    "https://www.openstreetmap.org/?mlat=55.755800&mlon=37.617300#map=17/55.755800/37.617300";
const OSM_KUTANA: &str =
    "https://www.openstreetmap.org/?mlat=20.659324&mlon=-11.406255#map=17/20.659324/-11.406255";

#[rustfmt::skip]
const TELEGRAM: &[Expect] = &[
    exp("tg_photo", "image", "", Some(JPEG), None, "[photo]", "photo"),
    exp("tg_photo_caption", "image", "Вот такой шкаф нужен, есть в наличии?", Some(JPEG), None, "Вот такой шкаф нужен, есть в наличии?", "photo"),
    exp("tg_document", "file", "", Some(PDF), Some("ir_2_kitchen_03.2021_ukr_compressed.pdf"), "[document: ir_2_kitchen_03.2021_ukr_compressed.pdf]", "document"),
    exp("tg_voice", "audio", "", Some(OGG), None, "[voice]", "voice"),
    exp("tg_video", "file", "", Some(MP4), None, "[video]", "video"),
    exp("tg_sticker", "image", "", Some(WEBP), None, "❤", "sticker"),
    exp("tg_location", "text", OSM_KUTANA, None, None, OSM_KUTANA, "location"),
];

#[rustfmt::skip]
const WHATSAPP: &[Expect] = &[
    exp("wa_image_caption", "image", "Вот такой диван нужен", Some(JPEG), None, "Вот такой диван нужен", "photo"),
    exp("wa_image", "image", "", Some(PNG), None, "[photo]", "photo"),
    exp("wa_document", "file", "", Some(PDF), Some("Schet_1547.pdf"), "[document: Schet_1547.pdf]", "document"),
    exp("wa_ptt", "audio", "", Some(OGG), None, "[voice]", "voice"),
    exp("wa_video", "file", "", Some(MP4), None, "[video]", "video"),
    exp("wa_location", "text", OSM_MOSCOW, None, None, OSM_MOSCOW, "location"),
];

/// The bytes behind each Telegram fixture's file: what the customer's app uploaded.
fn telegram_files(fakes: &Fakes) {
    let files: &[(&str, &str, &[u8])] = &[
        // tg_photo: its largest size.
        (
            "AgACAgIAAxkBAAMEZCiCg7A1qAABECDXqbjnqtId777bAAIFyDEbLKhISVFwzRK8kZMNAQADAgADeQADLwQ",
            "photos/file_4.jpg",
            JPEG,
        ),
        (
            "AgACAgIAAxkBAAN0YGcNFhTg9v2fpl5DHsgz0Nw_ElkAAiSzMRv9YTFLzjcXgUKkVQEg0CybLgADAQADAgADeQADiLgFAAEeBA",
            "photos/file_116.jpg",
            JPEG,
        ),
        (
            "BQACAgIAAxkBAAN2YGcNHPupviOv5YmiZyq1pUNOYZEAAjIKAALuqDhLa648Y7Okgg0eBA",
            "documents/file_118.pdf",
            PDF,
        ),
        (
            "AwADAgADAQUAAsJniUgtcRENnfvbrRYE",
            "voice/file_924.oga",
            OGG,
        ),
        (
            "BAACAgIAAxkBAAMCZCh-D8QVRB7fOwjAjzmb0mSkLIkAAnopAAIgQEBJ8HF86bDwCy8vBA",
            "videos/file_2.mp4",
            MP4,
        ),
        (
            "CAADBAADugIAAlI5kwYl_EvbjRwMIhYE",
            "stickers/file_925.webp",
            WEBP,
        ),
    ];
    for (id, path, bytes) in files {
        fakes.tg.add_file(TG_TOKEN, id, path, bytes).unwrap();
    }
}

/// ChatAPI's storage links of the fixtures point at the file host instead, same file names.
fn whatsapp_body(name: &str, host: &FileHost) -> Value {
    let mut body = fixture(name);
    let message = &mut body["messages"][0];
    let Some(url) = message["body"].as_str().map(str::to_owned) else {
        return body;
    };
    if let Some(file) =
        url.strip_prefix("https://s3.eu-central-1.wasabisys.com/incoming-chat-api/2021/3/9/229607/")
    {
        let (mime, bytes): (&str, &[u8]) = match name {
            "wa_image_caption" => ("image/jpeg", JPEG),
            "wa_image" => ("image/png", PNG),
            "wa_document" => ("application/pdf", PDF),
            "wa_ptt" => ("audio/ogg", OGG),
            "wa_video" => ("video/mp4", MP4),
            other => panic!("no bytes for {other}"),
        };
        message["body"] = Value::from(host.put(file, mime, bytes));
    }
    body
}

fn customer_messages(fakes: &Fakes) -> Vec<MgMessageRecord> {
    fakes
        .crm
        .mg_messages()
        .into_iter()
        .filter(|m| m.originator == "customer")
        .collect()
}

/// The chat message the `n`-th replayed body became, checked against `e`.
fn check(fakes: &Fakes, m: &MgMessageRecord, e: &Expect) {
    assert_eq!(m.kind, e.kind, "{}: {m:?}", e.fixture);
    assert_eq!(m.text, e.text, "{}", e.fixture);
    match e.bytes {
        None => assert!(m.items.is_empty(), "{}: {m:?}", e.fixture),
        Some(bytes) => {
            assert_eq!(m.items.len(), 1, "{}", e.fixture);
            let id = m.items[0]["id"].as_str().expect("item id");
            let file = fakes.crm.mg_file(id).expect("the file is in MG");
            assert_eq!(file.bytes, bytes, "{}", e.fixture);
            assert_eq!(
                m.items[0].get("caption").and_then(Value::as_str),
                e.item_caption,
                "{}",
                e.fixture
            );
        }
    }
}

async fn check_runs(app: &TestApp, expected: &[Expect]) {
    let runs = app.settled_runs(expected.len(), SETTLE).await;
    assert_eq!(runs.len(), expected.len());
    for run in &runs {
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
    }
    // Runs list newest first; the bodies went in the order of `expected`.
    for (run, e) in runs.iter().rev().zip(expected) {
        let event: Value = serde_json::from_str(&run.event).expect("event JSON");
        assert_eq!(event["text"], e.event_text, "{}", e.fixture);
        assert_eq!(event["media"], e.event_media, "{}", e.fixture);
    }
}

both_backends!(
    telegram_customer_media_reaches_the_chat,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        app.chat_bundles(&fakes).await;
        telegram_files(&fakes);
        for (i, e) in TELEGRAM.iter().enumerate() {
            fakes
                .tg
                .push_update(TG_TOKEN, fixture(e.fixture))
                .await
                .unwrap();
            // One at a time, so the chat's order is the fixtures' order.
            app.settled_runs(i + 1, SETTLE).await;
        }
        check_runs(&app, TELEGRAM).await;
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), TELEGRAM.len(), "{chat:?}");
        for (m, e) in chat.iter().zip(TELEGRAM) {
            assert_eq!(m.channel_type, "telegram");
            check(&fakes, m, e);
        }
    }
);

both_backends!(
    whatsapp_customer_media_reaches_the_chat,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (host, _files) = FileHost::start().unwrap();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        let hook = app.hook_url(wa).await;
        for (i, e) in WHATSAPP.iter().enumerate() {
            let status = fakes
                .wa
                .post_raw(&hook, &whatsapp_body(e.fixture, &host))
                .await
                .unwrap();
            assert_eq!(status, 200, "{}", e.fixture);
            app.settled_runs(i + 1, SETTLE).await;
        }
        check_runs(&app, WHATSAPP).await;
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), WHATSAPP.len(), "{chat:?}");
        for (m, e) in chat.iter().zip(WHATSAPP) {
            assert_eq!(m.channel_type, "whatsapp");
            check(&fakes, m, e);
        }
    }
);

/// The customer's text message in RetailCRM's chat: where the operator answers.
fn chat_of(fakes: &Fakes) -> (i64, String) {
    let m = customer_messages(fakes)
        .pop()
        .expect("the customer's message is in the chat");
    (m.channel_id, m.customer_external_id.expect("customer id"))
}

/// The URL MG hands out for a file.
fn mg_file_url(fakes: &Fakes, id: &str) -> String {
    format!("{}/mg/files/{id}", fakes.crm_base)
}

both_backends!(
    operator_files_reach_a_telegram_customer,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        app.chat_bundles(&fakes).await;
        let user = svyazka_testkit::telegram::TgUser::new(5_000_000_001, "Анна");
        fakes
            .tg
            .user_writes(TG_TOKEN, &user, "Пришлите фото")
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let (channel, customer) = chat_of(&fakes);

        // A picture goes as a photo Telegram downloads from MG's link, the text its caption.
        let photo = fakes.crm.add_mg_file(PNG);
        let (reply, id) = fakes
            .crm
            .operator_file(
                channel,
                &customer,
                "image",
                &photo,
                "photo.png",
                "Вот так он выглядит",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = fakes.tg.sent_to(user.id);
        let out = sent.last().expect("the customer got the photo");
        assert_eq!(out.media.as_deref(), Some("photo"));
        assert_eq!(out.params["photo"], mg_file_url(&fakes, &photo));
        assert_eq!(out.text, "Вот так он выглядит");
        assert_eq!(
            reply.json()["external_message_id"],
            out.message_id.to_string()
        );
        let m = fakes
            .crm
            .mg_messages()
            .into_iter()
            .find(|m| m.id == id)
            .unwrap();
        assert_eq!(m.status, "sent");

        // A document is uploaded with its name: Telegram takes only PDF, ZIP and GIF by URL.
        let doc = fakes.crm.add_mg_file(PDF);
        let (reply, _) = fakes
            .crm
            .operator_file(channel, &customer, "file", &doc, "Счёт №1547.pdf", "")
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = fakes.tg.sent_to(user.id);
        let out = sent.last().expect("the customer got the document");
        assert_eq!(out.media.as_deref(), Some("document"));
        assert_eq!(out.file, Some(("Счёт №1547.pdf".to_owned(), PDF.to_vec())));
        assert_eq!(out.text, "");
        assert_eq!(fakes.tg.sent_to(user.id).len(), 2, "nothing sent twice");
    }
);

both_backends!(
    operator_files_reach_a_whatsapp_customer,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        fakes
            .wa
            .post_incoming(
                &app.hook_url(wa).await,
                "79991234567",
                "Иван",
                "Пришлите счёт",
            )
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let (channel, customer) = chat_of(&fakes);

        let doc = fakes.crm.add_mg_file(PDF);
        let (reply, id) = fakes
            .crm
            .operator_file(
                channel,
                &customer,
                "file",
                &doc,
                "Schet_1547.pdf",
                "Ваш счёт",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = fakes.wa.sent_messages();
        assert_eq!(sent.len(), 1);
        let out = &sent[0];
        assert_eq!(out.chat_id, "79991234567@c.us");
        assert_eq!(out.body, mg_file_url(&fakes, &doc));
        assert_eq!(out.filename.as_deref(), Some("Schet_1547.pdf"));
        assert_eq!(out.caption.as_deref(), Some("Ваш счёт"));
        assert_eq!(reply.json()["external_message_id"], out.id.as_str());
        let m = fakes
            .crm
            .mg_messages()
            .into_iter()
            .find(|m| m.id == id)
            .unwrap();
        assert_eq!(m.status, "sent");
    }
);

both_backends!(
    a_file_that_cannot_be_had_still_reaches_the_chat_as_text,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (_host, files) = FileHost::start().unwrap();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        // The gateway's link has expired: MG cannot download it.
        let mut body = fixture("wa_image_caption");
        body["messages"][0]["body"] = Value::from(format!("{}/expired.jpeg", files.base_url()));
        let status = fakes
            .wa
            .post_raw(&app.hook_url(wa).await, &body)
            .await
            .unwrap();
        assert_eq!(status, 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let chat = customer_messages(&fakes);
        assert_eq!(chat.len(), 1);
        assert_eq!(
            (chat[0].kind.as_str(), chat[0].text.as_str()),
            ("text", "Вот такой диван нужен")
        );
    }
);

both_backends!(
    a_whatsapp_file_whose_answer_was_lost_is_not_repeated,
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
        let fakes = Fakes::start();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        fakes
            .wa
            .post_incoming(
                &app.hook_url(wa).await,
                "79991234567",
                "Иван",
                "Пришлите счёт",
            )
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let (channel, customer) = chat_of(&fakes);
        // ChatAPI takes the file but answers after our timeout; its history cannot tell a
        // file of ours apart, so the file is not sent again.
        fakes.wa.stall_sends(1, Duration::from_millis(1500));
        let doc = fakes.crm.add_mg_file(PDF);
        let (reply, id) = fakes
            .crm
            .operator_file(
                channel,
                &customer,
                "file",
                &doc,
                "Schet_1547.pdf",
                "Ваш счёт",
            )
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
        let m = eventually(SETTLE, || async {
            let m = fakes.crm.mg_messages().into_iter().find(|m| m.id == id)?;
            (m.status != "sending").then_some(m)
        })
        .await
        .expect("the reply settles");
        assert_eq!(m.status, "failed", "{m:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            fakes.wa.sent_messages().len(),
            1,
            "the customer got it once"
        );
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
