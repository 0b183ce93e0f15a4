//! The editor without JavaScript: every card is a plain form that redirects back (PRG), Start
//! refuses with the problems on the page, the status selector is a page of its own; htmx
//! requests to the same endpoints get fragments. Also the English labels. Over HTTP, no browser.

use svyazka_core::bundles::{self, Value};

use crate::support::{Backend, Fakes, TestApp};

async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
    let r = app.submit("/bundles", path, fields).await;
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

async fn htmx_post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let token = app.csrf("/bundles").await;
    let r = app
        .client
        .post(app.url(path))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", token)
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn stored(app: &TestApp, id: i64) -> bundles::Bundle {
    app.core()
        .db(move |c| bundles::get(c, id))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_works_as_plain_forms() {
    let fakes = Fakes::start();
    let app = TestApp::signed_in(Backend::Sqlite).await.unwrap();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;

    let (status, html) = app.get_html("/bundles").await;
    assert_eq!(status, 200);
    assert!(html.contains("Связок пока нет."), "{html}");

    // Step 1 refuses a missing provider next to the field; step 2 offers only what each kind has.
    let (status, html) = app
        .get_html(&format!("/bundles/new/type?source={crm}&target="))
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"err-target\""), "{html}");
    let (status, html) = app
        .get_html(&format!("/bundles/new/type?source={crm}&target={wa}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Смена статуса сделки") && html.contains("Отправить сообщение"),
        "{html}"
    );
    assert!(
        !html.contains("Новый контакт"),
        "ChatAPI cannot create contacts: {html}"
    );
    let (status, _, html) = post(
        &app,
        "/bundles/new",
        &[
            ("source", &crm.to_string()),
            ("target", &wa.to_string()),
            ("action", "x"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{html}");

    let (status, location, _) = post(
        &app,
        "/bundles/new",
        &[
            ("source", &crm.to_string()),
            ("target", &wa.to_string()),
            ("event", "new_deal"),
            ("action", "send_message"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let id: i64 = location.trim_start_matches("/bundles/").parse().unwrap();
    let editor = format!("/bundles/{id}");

    // Start refused: the page comes back with both unmapped parameters named.
    let (status, _, html) = post(&app, &format!("{editor}/start"), &[]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("Связку нельзя запустить")
            && html.contains("«Получатель»")
            && html.contains("«Текст сообщения»")
    );

    // A card saved as a plain form; a template with a typo is kept and flagged next to the field.
    let (status, location, _) = post(
        &app,
        &format!("{editor}/steps/0"),
        &[
            ("recipient.src", "event:phone"),
            ("text.src", "tpl"),
            ("text.tpl", "Здравствуйте, {{ firstname }}!"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{editor}#step-1").as_str())
    );
    let (_, html) = app.get_html(&editor).await;
    assert!(
        html.contains("неизвестный параметр {{ firstname }}"),
        "{html}"
    );
    let (status, _, html) = post(&app, &format!("{editor}/start"), &[]).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("«Текст сообщения»") && html.contains("firstname"),
        "{html}"
    );
    assert!(!html.contains("«Получатель»: обязательный"), "{html}");
    post(
        &app,
        &format!("{editor}/steps/0"),
        &[
            ("recipient.src", "event:phone"),
            ("text.src", "tpl"),
            ("text.tpl", "Здравствуйте, {{ first_name }}!"),
        ],
    )
    .await;

    // The status selector as a page of its own (read live from the account), saved as a form.
    let (status, html) = app.get_html(&format!("{editor}/statuses")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Согласование") && html.contains("value=\"client-confirmed\""),
        "{html}"
    );
    let (status, location, _) = post(
        &app,
        &format!("{editor}/statuses"),
        &[("status", "new"), ("status", "client-confirmed")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{editor}#event-card").as_str())
    );
    assert_eq!(
        stored(&app, id).await.status_filter,
        ["client-confirmed", "new"]
    );
    let (status, location, _) = post(&app, &format!("{editor}/statuses/refresh"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{editor}/statuses").as_str())
    );

    // Name: trimmed; an empty one is refused with a message.
    let (status, _, _) = post(
        &app,
        &format!("{editor}/name"),
        &[("name", "  Заказ   согласован ")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(stored(&app, id).await.name, "Заказ согласован");
    let (status, _, html) = post(&app, &format!("{editor}/name"), &[("name", "   ")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("Название: от 1 до 200 символов."));

    // Add, reorder, remove: the original card survives with its template.
    let (status, location, _) = post(
        &app,
        &format!("{editor}/steps"),
        &[("action", "send_message")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{editor}#step-2").as_str())
    );
    let (status, location, _) =
        post(&app, &format!("{editor}/steps/1/move"), &[("dir", "up")]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, format!("{editor}#step-1").as_str())
    );
    assert!(stored(&app, id).await.steps[0].params.is_empty());
    post(&app, &format!("{editor}/steps/0/delete"), &[]).await;
    let b = stored(&app, id).await;
    assert_eq!(b.steps.len(), 1);
    assert_eq!(
        b.steps[0].params["text"],
        Value::Template {
            text: "Здравствуйте, {{ first_name }}!".into()
        }
    );

    // htmx: the same endpoints answer with fragments.
    let (status, html) = htmx_post(
        &app,
        &format!("{editor}/steps/0/preview?param=text"),
        &[("text.tpl", "Привет, {{ first_name }}!")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Привет, Анна!"), "{html}");
    let (status, html) = htmx_post(&app, &format!("{editor}/start"), &[]).await;
    assert_eq!(status, 200);
    assert!(
        html.starts_with("<div id=\"runbar\"") && html.contains("Остановить связку"),
        "{html}"
    );
    assert!(stored(&app, id).await.is_running());
    let (status, html) = htmx_post(
        &app,
        &format!("{editor}/steps/0"),
        &[("recipient.src", "event:phone")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        html.contains("id=\"step-1\"") && html.contains("hx-swap-oob=\"true\""),
        "{html}"
    );
    assert!(
        html.contains("Связка запущена, но новые запуски завершатся ошибкой"),
        "{html}"
    );

    // No CSRF token, no change.
    let r = app.post_form(&format!("{editor}/stop"), &[]).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(stored(&app, id).await.is_running());

    // English.
    app.get("/lang/en").await;
    let (_, html) = app.get_html(&editor).await;
    assert!(
        html.contains("Stop bundle") && html.contains("Event: RetailCRM · New deal"),
        "{html}"
    );
    assert!(html.contains("RetailCRM: Contact phone"), "{html}");
    let (_, html) = app.get_html("/bundles").await;
    assert!(
        html.contains("Заказ согласован")
            && html.contains("Running")
            && html.contains("not run yet"),
        "{html}"
    );
    app.stop().await;
}
