//! Provider screens in the browser: a RetailCRM provider against the fake (detected store,
//! trigger set-up, copy the address) and a Telegram bot (polling mode on a plain-http install).

use std::time::Duration;

use crate::browser::Browser;
use crate::support::{Backend, CRM_KEY, Fakes, TG_TOKEN, TestApp};
use crate::{add_retailcrm, setup_admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retailcrm_provider_shows_store_and_trigger_setup_and_copies_the_address() {
    let fakes = Fakes::start();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(mut b) = Browser::start(&app.base).await else {
        return;
    };
    setup_admin(&mut b, &app.setup_code()).await;
    let (id, hook) = add_retailcrm(&mut b, &fakes).await;
    assert_eq!(
        hook,
        app.hook_url(id).await,
        "the page shows this provider's webhook address"
    );
    assert!(
        b.text("#store").await.contains("Мой магазин (shop)"),
        "detected store shown"
    );
    assert!(b.text("#base-url").await.contains(&fakes.crm_base));
    let body = b.text("#hook-body").await;
    assert!(
        body.contains(
            r#"type=order&status={{ changeSet.getNewValue("status").getCode() }}&id={{ order.id }}"#
        ),
        "{body}"
    );
    let page = b.text("main").await;
    assert!(page.contains("Указать тело запроса самостоятельно") && page.contains("POST"));
    assert!(!page.contains(CRM_KEY), "the key is masked");

    b.click("#copy-url").await;
    b.wait_text("#copy-url", "✓").await;
    let copied = b
        .client
        .execute("return window.__lastCopied;", vec![])
        .await
        .unwrap();
    assert_eq!(
        copied.as_str().map(str::trim),
        Some(hook.as_str()),
        "the copy button copied the address"
    );
    b.screenshot("providers_retailcrm_added").await;
    b.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_provider_added_against_the_fake() {
    let fakes = Fakes::start();
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(mut b) = Browser::start(&app.base).await else {
        return;
    };
    setup_admin(&mut b, &app.setup_code()).await;
    b.click_text("Добавить").await;
    b.find_xpath("//a[contains(@href, '/providers/new/telegram')]")
        .await
        .click()
        .await
        .unwrap();
    b.fill("input[name=name]", "Бот магазина").await;
    b.fill("input[name=token]", TG_TOKEN).await;
    b.fill("input[name=api_url]", &fakes.tg_base).await;
    b.click_text("Сохранить (ключ будет проверен)").await;
    b.wait_id("/providers/").await;
    b.wait_text("h1", "Бот магазина").await;
    assert!(b.text("main").await.contains("@svyazka_test_bot"));
    assert!(
        b.text("#telegram-mode").await.contains("getUpdates"),
        "a plain-http install polls"
    );
    assert!(!b.text("main").await.contains(TG_TOKEN));
    // A user writing to the bot reaches the inbox through polling.
    let user = svyazka_testkit::telegram::TgUser::new(5_123_456_789, "Анна");
    fakes
        .tg
        .user_writes(TG_TOKEN, &user, "Здравствуйте")
        .await
        .unwrap();
    let stored = crate::support::eventually(Duration::from_secs(30), || async {
        (app.inbox_count().await == 1).then_some(())
    })
    .await;
    assert!(stored.is_some(), "polled message stored");
    b.screenshot("providers_telegram_added").await;
    b.close().await;
    app.stop().await;
}
