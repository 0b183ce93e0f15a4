//! Reads both ways: an operator reading a customer's message in RetailCRM's chat marks it read
//! in WhatsApp (Telegram has no such call), and the WhatsApp gateway's read receipt of an
//! operator's reply shows it seen in the chat — `viewed` from chat-api, `read` from 1msg.io.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

both_backends!(
    operator_reading_marks_the_whatsapp_message_read,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        let hook = app.hook_url(wa).await;
        fakes
            .wa
            .post_incoming(&hook, "79991234567", "Иван", "Есть в наличии?")
            .await
            .unwrap();
        let wa_message_id = fakes.wa.last_message_id().unwrap();
        let user = svyazka_testkit::telegram::TgUser::new(5_000_000_001, "Анна");
        fakes
            .tg
            .user_writes(TG_TOKEN, &user, "А доставка?")
            .await
            .unwrap();
        app.settled_runs(2, SETTLE).await;
        let chat = fakes.crm.mg_messages();
        let of = |kind: &str| {
            chat.iter()
                .find(|m| m.originator == "customer" && m.channel_type == kind)
                .cloned()
                .unwrap_or_else(|| panic!("no {kind} message"))
        };
        for m in [of("whatsapp"), of("telegram")] {
            let reply = fakes
                .crm
                .mg_webhook(
                    m.channel_id,
                    "message_read",
                    json!({
                        "channel_id": m.channel_id,
                        "external_chat_id": m.external_chat_id,
                        "external_user_id": m.customer_external_id,
                        "external_message_id": m.external_id,
                    }),
                )
                .await
                .unwrap();
            assert_eq!((reply.status, reply.json()), (200, json!({})));
        }
        // WhatsApp shows the customer the message read; the bot could not, and sent nothing.
        assert_eq!(fakes.wa.read_messages(), vec![wa_message_id]);
        assert!(fakes.tg.sent_messages().is_empty());

        // A message we never posted, or a foreign id: still 200 {}, nothing marked.
        let w = of("whatsapp");
        let reply = fakes
            .crm
            .mg_webhook(
                w.channel_id,
                "message_read",
                json!({"channel_id": w.channel_id, "external_chat_id": "", "external_user_id": "x", "external_message_id": "svz-999999-1"}),
            )
            .await
            .unwrap();
        assert_eq!((reply.status, reply.json()), (200, json!({})));
        assert_eq!(fakes.wa.read_messages().len(), 1);
    }
);

both_backends!(
    a_1msg_read_receipt_shows_the_reply_seen,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let (_, wa, _) = app.chat_bundles(&fakes).await;
        let hook = app.hook_url(wa).await;
        fakes
            .wa
            .post_incoming(&hook, "79991234567", "Иван", "Где заказ?")
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let incoming = fakes
            .crm
            .mg_messages()
            .into_iter()
            .find(|m| m.originator == "customer")
            .unwrap();
        let (reply, id) = fakes
            .crm
            .operator_reply(
                incoming.channel_id,
                incoming.customer_external_id.as_deref().unwrap(),
                "В пути",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = fakes.wa.sent_messages().pop().unwrap();
        // Delivered first: MG has no such state, nothing changes.
        fakes
            .wa
            .post_ack(&hook, &sent.id, &sent.chat_id, "delivered")
            .await
            .unwrap();
        let status = |fakes: &Fakes| {
            fakes
                .crm
                .mg_messages()
                .into_iter()
                .find(|m| m.id == id)
                .unwrap()
                .status
        };
        assert_eq!(status(&fakes), "sent");
        // 1msg.io's word for it: read.
        fakes
            .wa
            .post_ack(&hook, &sent.id, &sent.chat_id, "read")
            .await
            .unwrap();
        let seen = eventually(SETTLE, || async {
            (status(&fakes) == "seen").then_some(())
        })
        .await;
        assert!(seen.is_some(), "the reply is not seen: {}", status(&fakes));
    }
);
