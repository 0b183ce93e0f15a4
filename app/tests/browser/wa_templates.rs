//! «Отправить сообщение» in template mode, as an admin builds it: the approved templates of a
//! 1msg.io channel listed in the card, one chosen, its variables mapped with the same pickers
//! as any parameter, the preview read, the bundle started; the order's status change sends the
//! template with the order's values. Embedded (SQLite) and in queue mode (PostgreSQL + Redis
//! with separate workers, when those services are configured).

use std::time::Duration;

use serde_json::json;

use super::browser::Browser;
use super::support::{Backend, Fakes};
use super::{
    CRM_OPTION, WA_OPTION, add_chatapi, add_retailcrm, deploy, new_bundle, save_step, setup_admin,
    start_bundle, stored_bundle,
};
use svyazka_testkit::wa_template::{Header, SentHeader};

const ORDER_READY: &str = "Здравствуйте, {{1}}! Заказ №{{2}} передан в доставку.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_template_is_chosen_and_mapped() {
    approved_template_chosen_and_mapped(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_template_is_chosen_and_mapped_queue_mode() {
    approved_template_chosen_and_mapped(Backend::Postgres).await;
}

async fn approved_template_chosen_and_mapped(backend: Backend) {
    let fakes = Fakes::start();
    fakes.wa.add_template("order_ready", "ru", ORDER_READY);
    fakes.wa.add_pending_template("promo_draft");
    let Some(deployment) = deploy(backend).await else {
        return;
    };
    let app = &deployment.app;
    let Some(mut b) = Browser::start(&app.base).await else {
        return;
    };
    setup_admin(&mut b, &app.setup_code()).await;
    let (_, hook) = add_retailcrm(&mut b, &fakes).await;
    add_chatapi(&mut b, &fakes).await;
    let id = new_bundle(&mut b, CRM_OPTION, WA_OPTION, "Новая сделка", None).await;
    b.find("#statuses fieldset.status-group").await;
    b.click_text_in("#statuses", "Согласовано с клиентом").await;
    b.click("#save-statuses").await;
    b.wait_text("#statuses-status", "Сохранено").await;
    b.choose(
        "#s1-recipient-src",
        Some("RetailCRM · Новая сделка"),
        "RetailCRM: Телефон контакта",
    )
    .await;
    let note = b.text("#step-1-note").await;
    assert!(note.contains("24 часов"), "{note}");

    // «Одобренный шаблон»: the card lists the channel's approved templates, read live.
    b.click("#s1-mode-template").await;
    let listed = b.wait_text("#s1-template-choice", "order_ready").await;
    assert!(!listed.contains("promo_draft"), "{listed}");
    b.choose(
        "#s1-template-choice",
        None,
        &format!("order_ready (ru) — {ORDER_READY}"),
    )
    .await;
    b.wait_text("#s1-template-body", "Заказ №{{2}}").await;
    // Its two variables, with the pickers every parameter has.
    b.choose(
        "#s1-param1-src",
        Some("RetailCRM · Новая сделка"),
        "RetailCRM: Имя",
    )
    .await;
    b.choose(
        "#s1-param2-src",
        Some("RetailCRM · Новая сделка"),
        "RetailCRM: Номер сделки",
    )
    .await;
    save_step(&mut b, 1).await;
    b.wait_text(
        "#s1-template-preview",
        "Здравствуйте, Анна! Заказ №7146C передан в доставку.",
    )
    .await;
    let stored = stored_bundle(app, id).await;
    assert_eq!(stored.steps[0].mode(), Some("template"));
    b.screenshot("template-mode-editor").await;
    start_bundle(&mut b).await;

    let (order, reply) = fakes
        .crm
        .create_order_and_fire(
            &hook,
            "shop",
            json!({"status": "new", "firstName": "Анна", "phone": "+7 (999) 765-43-21"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = fakes
        .crm
        .change_status_and_fire(&hook, order, "client-confirmed")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let runs = app.settled_runs(1, Duration::from_secs(30)).await;
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0]);
    let number = fakes.crm.order(order).unwrap()["number"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = fakes.wa.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].template,
        Some(("order_ready".to_string(), "ru".to_string()))
    );
    assert_eq!(sent[0].params, vec!["Анна".to_string(), number]);
    b.close().await;
    deployment.app.stop().await;
}

/// A template whose header and URL button take variables: once chosen, the card offers them
/// with the same pickers, the preview reads header, body and button, and the send fills all
/// three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_and_button_variables_are_mapped_like_body_ones() {
    let fakes = Fakes::start();
    fakes.wa.add_template_with(
        "order_shipped",
        "ru",
        "{{1}}, заказ в пути.",
        Header::Text("Заказ {{1}}"),
        &[("Отследить", "https://shop.example/track/{{1}}")],
    );
    let Some(deployment) = deploy(Backend::Sqlite).await else {
        return;
    };
    let app = &deployment.app;
    let Some(mut b) = Browser::start(&app.base).await else {
        return;
    };
    setup_admin(&mut b, &app.setup_code()).await;
    let (_, hook) = add_retailcrm(&mut b, &fakes).await;
    add_chatapi(&mut b, &fakes).await;
    new_bundle(&mut b, CRM_OPTION, WA_OPTION, "Новая сделка", None).await;
    b.find("#statuses fieldset.status-group").await;
    b.click_text_in("#statuses", "Согласовано с клиентом").await;
    b.click("#save-statuses").await;
    b.wait_text("#statuses-status", "Сохранено").await;
    let event = Some("RetailCRM · Новая сделка");
    b.choose("#s1-recipient-src", event, "RetailCRM: Телефон контакта")
        .await;
    b.click("#s1-mode-template").await;
    b.wait_text("#s1-template-choice", "order_shipped").await;
    b.choose(
        "#s1-template-choice",
        None,
        "order_shipped (ru) — {{1}}, заказ в пути.",
    )
    .await;
    b.wait_text("#s1-template-header", "Заказ {{1}}").await;
    let label = b.text("#s1-button1 label").await;
    assert!(label.contains("Кнопка «Отследить»"), "{label}");
    b.choose("#s1-header_param-src", event, "RetailCRM: Номер сделки")
        .await;
    b.choose("#s1-param1-src", event, "RetailCRM: Имя").await;
    b.choose("#s1-button1-src", event, "RetailCRM: Номер сделки")
        .await;
    save_step(&mut b, 1).await;
    let preview = b.wait_text("#s1-template-preview", "Заказ 7146C").await;
    assert!(preview.contains("Анна, заказ в пути."), "{preview}");
    assert!(
        preview.contains("https://shop.example/track/7146C"),
        "{preview}"
    );
    b.screenshot("template-header-and-button").await;
    start_bundle(&mut b).await;

    let (order, reply) = fakes
        .crm
        .create_order_and_fire(
            &hook,
            "shop",
            json!({"status": "new", "firstName": "Анна", "phone": "+7 (999) 765-43-21"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = fakes
        .crm
        .change_status_and_fire(&hook, order, "client-confirmed")
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let runs = app.settled_runs(1, Duration::from_secs(30)).await;
    assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0]);
    let number = fakes.crm.order(order).unwrap()["number"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = fakes.wa.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].header, Some(SentHeader::Text(number.clone())));
    assert_eq!(sent[0].params, vec!["Анна".to_string()]);
    assert_eq!(sent[0].buttons, vec![("1".to_string(), number)]);
    b.close().await;
    deployment.app.stop().await;
}
