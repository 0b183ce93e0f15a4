//! RetailCRM's chats show each conversation under the messenger it came from.

use std::time::Duration;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

both_backends!(
    chats_show_each_conversation_under_its_messenger,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        // One channel per messenger type the provider serves.
        let mut types: Vec<String> = fakes
            .crm
            .mg_channels()
            .iter()
            .filter_map(|c| c["type"].as_str().map(str::to_string))
            .collect();
        types.sort();
        assert_eq!(types, ["telegram", "whatsapp"]);

        let wa = app.add_chatapi(&fakes).await;
        let tg = app.add_telegram(&fakes).await;
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        app.bundle(tg, "incoming_message", &[], crm, tg_chat_steps())
            .await;
        fakes
            .wa
            .post_incoming(
                &app.hook_url(wa).await,
                "79991234567",
                "Иван",
                "Пишу из WhatsApp",
            )
            .await
            .unwrap();
        app.settled_runs(1, SETTLE).await;
        let anna = svyazka_testkit::telegram::TgUser::new(5_000_000_001, "Анна");
        fakes
            .tg
            .user_writes(TG_TOKEN, &anna, "Пишу из Telegram")
            .await
            .unwrap();
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(
            runs.iter().all(|r| r.status == "succeeded"),
            "{:?}",
            runs.iter().map(|r| &r.error).collect::<Vec<_>>()
        );
        let chat = fakes.crm.mg_messages();
        let by_text = |t: &str| {
            chat.iter()
                .find(|m| m.text == t)
                .unwrap_or_else(|| panic!("no chat message {t:?} in {chat:?}"))
                .channel_type
                .clone()
        };
        assert_eq!(by_text("Пишу из WhatsApp"), "whatsapp");
        assert_eq!(by_text("Пишу из Telegram"), "telegram");
        app.stop().await;
    }
);
