//! «Отправить сообщение» of official WhatsApp (the Cloud API, 1msg.io / ChatAPI) in its two
//! modes: approved templates listed live (Graph's paged `message_templates`, 1msg's
//! `/templates`), chosen and mapped in the editor with a preview, sent with their variables;
//! free text refused at once outside the 24-hour window; template errors (132000, 132001)
//! permanent, rate limits (130429 on HTTP 400, HTTP 429) retried. Templates with a header variable, a
//! media header or a URL button with a variable: their fields in the editor, their components
//! at send time, checked by the fakes as Meta checks them.

use std::time::Duration;

use serde_json::json;
use svyazka_core::bundles::{Step, Value};
use svyazka_core::reason::{Reason, Stored, read_stored};
use svyazka_testkit::wa_template::{Header, SentHeader};

use crate::both_backends;
use crate::support::*;
use crate::wacloud::{add_cloud, cloud};

const SETTLE: Duration = Duration::from_secs(30);
const ORDER_READY: &str = "Здравствуйте, {{1}}! Заказ №{{2}} передан в доставку.";

const QUICK_RETRIES: [(&str, &str); 3] = [
    ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "2000"),
    ("SVYAZKA_BACKOFF_MS", "200"),
    ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
];

fn lit(v: &str) -> Value {
    Value::Literal { value: v.into() }
}

/// «Отправить сообщение» in template mode: `order_ready` with the customer's name and the
/// order's number.
fn template_mode_steps(name: &str, vars: Vec<(&'static str, Value)>) -> Vec<Step> {
    let mut params = vec![
        ("recipient", event_field("phone")),
        ("mode", lit("template")),
        ("template", lit(name)),
        ("language", lit("ru")),
        // Kept while in template mode, unused.
        ("text", template("Свободный текст")),
    ];
    params.extend(vars);
    vec![step("send_message", params)]
}

fn order_vars() -> Vec<(&'static str, Value)> {
    vec![
        ("param1", event_field("first_name")),
        ("param2", template("{{ number }}")),
    ]
}

/// The 1msg.io fake with an approved template and one in review.
fn onemsg_templates(fakes: &Fakes) {
    fakes.wa.add_template("order_ready", "ru", ORDER_READY);
    fakes.wa.add_pending_template("promo_draft");
}

async fn fire_order(app: &TestApp, fakes: &Fakes, crm: i64, first_name: &str) -> i64 {
    let url = app.hook_url(crm).await;
    let (order, reply) = fakes
        .crm
        .create_order_and_fire(
            &url,
            "shop",
            json!({"status": "new", "firstName": first_name, "phone": "8 (999) 111-22-33"}),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    order
}

fn order_number(fakes: &Fakes, order: i64) -> String {
    fakes.crm.order(order).unwrap()["number"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stored_reason(run: &svyazka_core::runs::Run) -> Reason {
    match read_stored::<Reason>(run.error.as_deref().unwrap()) {
        Stored::Typed(r) => r,
        other => panic!("{other:?}"),
    }
}

both_backends!(
    approved_templates_are_listed_live_from_both_routes,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        onemsg_templates(&fakes);
        let c = cloud();
        // More than one Graph page (100 a page): the last one is listed too.
        for n in 0..120 {
            c.fake
                .add_template(&format!("notice_{n:03}"), "ru", "Уведомление {{1}}");
        }
        let cloud_id = add_cloud(&app, &c).await;
        let onemsg = app.add_chatapi(&fakes).await;
        for (id, last) in [(cloud_id, "notice_119"), (onemsg, "order_ready")] {
            let (status, html) = app.get_html(&format!("/providers/{id}/templates")).await;
            assert_eq!(status, 200, "{id}");
            let html = unescape(&html);
            assert!(html.contains("order_ready"), "{id}");
            assert!(html.contains(last), "{id}: every page read");
            assert!(
                !html.contains("promo_draft"),
                "{id}: in review, not offered"
            );
        }
        // The provider page links to them.
        let (_, html) = app.get_html(&format!("/providers/{onemsg}")).await;
        assert!(html.contains(&format!("/providers/{onemsg}/templates")));
        // A card in template mode offers them in its select.
        let crm = app.add_retailcrm(&fakes).await;
        for target in [cloud_id, onemsg] {
            let id = app
                .bundle(
                    crm,
                    "new_deal",
                    &[],
                    target,
                    template_mode_steps("order_ready", order_vars()),
                )
                .await;
            let html = unescape(&app.get_html(&format!("/bundles/{id}")).await.1);
            assert!(html.contains(r#"id="s1-template-choice""#), "{target}");
            let namespace = if target == onemsg {
                svyazka_testkit::chatapi::NAMESPACE
            } else {
                ""
            };
            assert!(
                html.contains(&format!(
                    r#"<option value="order_ready|ru|{namespace}|" selected>"#
                )),
                "{target}: the chosen template is selected"
            );
            assert!(!html.contains("promo_draft"), "{target}");
            // Its body filled with sample values.
            assert!(
                html.contains("Здравствуйте, Анна! Заказ №7146C передан в доставку."),
                "{target}: preview"
            );
            assert!(
                html.contains("24 часов"),
                "{target}: the window is explained"
            );
        }
        app.stop().await;
    }
);

both_backends!(
    a_template_is_chosen_and_its_variables_mapped_in_the_editor,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        onemsg_templates(&fakes);
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let id = app.bundle(crm, "new_deal", &[], wa, mailing_steps()).await;
        let page = format!("/bundles/{id}");
        let html = unescape(&app.get_html(&page).await.1);
        assert!(
            html.contains(r#"value="text" data-mode-switch id="s1-mode-text" checked"#),
            "free text by default"
        );
        assert!(html.contains("24 часов"), "the window is explained");
        let choice = format!("order_ready|ru|{}", svyazka_testkit::chatapi::NAMESPACE);
        let r = app
            .submit(
                &page,
                &format!("/bundles/{id}/steps/0"),
                &[
                    ("recipient.src", "event:phone"),
                    ("mode.src", "lit"),
                    ("mode.lit", "template"),
                    ("template.choice", &choice),
                    ("param1.src", "event:first_name"),
                    ("param2.src", "tpl"),
                    ("param2.tpl", "{{ number }}"),
                    ("text.src", "tpl"),
                    ("text.tpl", "Заказ №{{ number }}: {{ status }}"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let bundle = app
            .core()
            .db(move |c| svyazka_core::bundles::get(c, id))
            .await
            .unwrap()
            .unwrap();
        let s = &bundle.steps[0];
        assert_eq!(s.action, "send_message");
        assert_eq!(s.mode(), Some("template"));
        assert_eq!(s.params["template"], lit("order_ready"));
        assert_eq!(s.params["language"], lit("ru"));
        assert_eq!(
            s.params["namespace"],
            lit(svyazka_testkit::chatapi::NAMESPACE)
        );
        assert_eq!(s.params["param1"], event_field("first_name"));
        assert_eq!(
            s.params["text"],
            template("Заказ №{{ number }}: {{ status }}"),
            "the free text is kept for switching back"
        );
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains(r#"id="s1-mode-template" checked"#));
        assert!(html.contains("Здравствуйте, Анна! Заказ №7146C передан в доставку."));
        // The template has two variables: the third is not offered.
        assert!(!html.contains(r#"id="s1-param2" data-mode="template" hidden"#));
        assert!(html.contains(r#"id="s1-param3" data-mode="template" hidden"#));
        // Without a template, template mode cannot start.
        let r = app
            .submit(
                &page,
                &format!("/bundles/{id}/steps/0"),
                &[
                    ("recipient.src", "event:phone"),
                    ("mode.src", "lit"),
                    ("mode.lit", "template"),
                    ("template.choice", ""),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        app.core()
            .db(move |c| {
                svyazka_core::bundles::set_state(c, id, svyazka_core::bundles::BundleState::Stopped)
            })
            .await
            .unwrap();
        let r = app
            .submit(&page, &format!("/bundles/{id}/start"), &[])
            .await;
        assert_eq!(r.status(), 422);
        let html = unescape(&r.text().await.unwrap());
        assert!(html.contains("«Шаблон»"), "the missing template is named");
        app.stop().await;
    }
);

both_backends!(
    a_template_goes_out_through_the_cloud_api_with_its_variables,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(
            crm,
            "new_deal",
            &[],
            wa,
            template_mode_steps("order_ready", order_vars()),
        )
        .await;
        // The customer never wrote: a template goes out all the same.
        let order = fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let sent = c.fake.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].kind, "template");
        assert_eq!(sent[0].body, "order_ready");
        assert_eq!(sent[0].language.as_deref(), Some("ru"));
        assert_eq!(sent[0].to, "79991112233");
        assert_eq!(
            sent[0].params,
            vec!["Анна".to_string(), order_number(&fakes, order)]
        );
        app.stop().await;
    }
);

both_backends!(
    a_template_goes_out_through_1msg_with_its_variables,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        onemsg_templates(&fakes);
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let mut steps = template_mode_steps("order_ready", order_vars());
        steps[0]
            .params
            .insert("namespace".into(), lit(svyazka_testkit::chatapi::NAMESPACE));
        app.bundle(crm, "new_deal", &[], wa, steps).await;
        let order = fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        let number = order_number(&fakes, order);
        let sent = fakes.wa.sent_messages();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].template,
            Some(("order_ready".to_string(), "ru".to_string()))
        );
        assert_eq!(sent[0].params, vec!["Анна".to_string(), number.clone()]);
        assert_eq!(sent[0].chat_id, "79991112233@c.us");
        assert_eq!(
            sent[0].body,
            format!("Здравствуйте, Анна! Заказ №{number} передан в доставку.")
        );
        let outputs = app
            .core()
            .db({
                let run = runs[0].id;
                move |c| svyazka_core::runs::steps(c, run)
            })
            .await
            .unwrap();
        assert!(
            outputs[0].outputs.as_deref().unwrap().contains(&sent[0].id),
            "the message id is the step's output"
        );
        app.stop().await;
    }
);

both_backends!(
    free_text_through_1msg_outside_the_window_fails_at_once,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        // The provider is an official (1msg.io) channel.
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
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].attempts, 1, "not retried");
        assert_eq!(
            stored_reason(&runs[0]),
            Reason::ReplyWindowClosed {
                last_customer_message: String::new()
            }
        );
        assert!(fakes.wa.sent_messages().is_empty(), "1msg was not asked");
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[0].id)).await.1);
        assert!(html.contains("24 часов"), "the window is named");
        app.stop().await;
    }
);

both_backends!(
    template_errors_are_permanent_and_rate_limits_are_retried,
    |backend| async move {
        let Some(app) = TestApp::spawn_with(backend, &QUICK_RETRIES).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        onemsg_templates(&fakes);
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let cloud_id = add_cloud(&app, &c).await;
        let onemsg = app.add_chatapi(&fakes).await;
        let one_var = vec![("param1", event_field("first_name"))];
        // Wrong variable count (132000) and no such approved template (132001), per route.
        let cases = [
            (cloud_id, "order_ready", 132000),
            (cloud_id, "promo_draft", 132001),
            (onemsg, "order_ready", 132000),
            (onemsg, "no_such_template", 132001),
        ];
        for (n, (target, name, code)) in cases.iter().enumerate() {
            let id = app
                .bundle(
                    crm,
                    "new_deal",
                    &[],
                    *target,
                    template_mode_steps(name, one_var.clone()),
                )
                .await;
            fire_order(&app, &fakes, crm, "Олег").await;
            let runs = app.settled_runs(n + 1, SETTLE).await;
            let run = runs.iter().find(|r| r.bundle_id == id).expect("its run");
            assert_eq!(run.status, "failed", "{name} via {target}");
            assert_eq!(run.attempts, 1, "{name} via {target}: not retried");
            assert!(
                run.error.as_deref().unwrap().contains(&code.to_string()),
                "{name} via {target}: {:?}",
                run.error
            );
            app.core()
                .db(move |c| {
                    svyazka_core::bundles::set_state(
                        c,
                        id,
                        svyazka_core::bundles::BundleState::Stopped,
                    )
                })
                .await
                .unwrap();
        }
        assert_eq!(c.fake.sent_count() + fakes.wa.sent_count(), 0);

        // Rate limits clear: Meta's 130429 (HTTP 400) and 1msg's HTTP 429 are retried.
        c.fake.rate_limit_next(1);
        fakes.wa.refuse_next(1, 429, "Too many requests");
        for target in [cloud_id, onemsg] {
            let mut steps = template_mode_steps("order_ready", order_vars());
            if target == onemsg {
                steps[0]
                    .params
                    .insert("namespace".into(), lit(svyazka_testkit::chatapi::NAMESPACE));
            }
            app.bundle(crm, "new_deal", &[], target, steps).await;
        }
        fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(cases.len() + 2, SETTLE).await;
        let ok: Vec<_> = runs.iter().filter(|r| r.status == "succeeded").collect();
        assert_eq!(ok.len(), 2, "{runs:?}");
        assert!(ok.iter().all(|r| r.attempts >= 2), "retried: {runs:?}");
        assert_eq!(c.fake.sent_count(), 1);
        assert_eq!(fakes.wa.sent_count(), 1);
        app.stop().await;
    }
);

both_backends!(
    an_empty_variable_is_named_instead_of_sent,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = add_cloud(&app, &c).await;
        app.bundle(
            crm,
            "new_deal",
            &[],
            wa,
            template_mode_steps(
                "order_ready",
                vec![
                    ("param1", event_field("last_name")),
                    ("param2", template("{{ number }}")),
                ],
            ),
        )
        .await;
        // The order has no last name: the variable mapped to it is empty.
        fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].attempts, 1);
        assert_eq!(
            stored_reason(&runs[0]),
            Reason::EmptyParam {
                param: "param1".into()
            }
        );
        assert_eq!(c.fake.sent_count(), 0);
        app.stop().await;
    }
);

both_backends!(
    a_1msg_template_whose_answer_was_lost_is_not_sent_twice,
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
        onemsg_templates(&fakes);
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(
            crm,
            "new_deal",
            &[],
            wa,
            template_mode_steps("order_ready", order_vars()),
        )
        .await;
        // 1msg takes the template but answers after our timeout: the retry finds it in the
        // channel's history and does not send it again.
        fakes.wa.stall_sends(1, Duration::from_millis(1500));
        fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert!(runs[0].attempts >= 2, "{:?}", runs[0]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(fakes.wa.sent_count(), 1, "the customer got it once");
        app.stop().await;
    }
);

const SHIPPED: &str = "{{1}}, заказ в пути.";
const TRACK_URL: &str = "https://shop.example/track/{{1}}";

/// `order_shipped`: a text header with a variable, one body variable and a URL button with a
/// variable (at index 1, after a quick reply); `invoice`: a document header.
fn rich_templates(add: impl Fn(&str, &str, &str, Header<'_>, &[(&str, &str)])) {
    add(
        "order_shipped",
        "ru",
        SHIPPED,
        Header::Text("Заказ {{1}}"),
        &[("Отследить", TRACK_URL)],
    );
    add(
        "invoice",
        "ru",
        "Счёт к заказу готов.",
        Header::Document,
        &[],
    );
}

fn shipped_steps(shape: Option<&str>) -> Vec<Step> {
    let mut vars = vec![
        ("header_param", template("{{ number }}")),
        ("param1", event_field("first_name")),
        ("button1", template("{{ number }}")),
    ];
    if let Some(s) = shape {
        vars.push(("shape", lit(s)));
    }
    template_mode_steps("order_shipped", vars)
}

fn invoice_steps(link: &str, shape: Option<&str>) -> Vec<Step> {
    let mut vars = vec![("header_media", template(link))];
    if let Some(s) = shape {
        vars.push(("shape", lit(s)));
    }
    template_mode_steps("invoice", vars)
}

both_backends!(
    header_and_button_fields_follow_the_chosen_template,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        rich_templates(|n, l, b, h, u| fakes.wa.add_template_with(n, l, b, h, u));
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let id = app.bundle(crm, "new_deal", &[], wa, mailing_steps()).await;
        let page = format!("/bundles/{id}");
        let ns = svyazka_testkit::chatapi::NAMESPACE;
        // The select carries what each template needs beyond its body.
        let r = app
            .submit(
                &page,
                &format!("/bundles/{id}/steps/0"),
                &[
                    ("recipient.src", "event:phone"),
                    ("mode.src", "lit"),
                    ("mode.lit", "template"),
                    ("template.choice", &format!("order_shipped|ru|{ns}|text;1")),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let html = unescape(&app.get_html(&page).await.1);
        assert!(
            html.contains(&format!(r#"<option value="invoice|ru|{ns}|document;" >"#)),
            "the media header is in the choice"
        );
        assert!(html.contains(&format!(
            r#"<option value="order_shipped|ru|{ns}|text;1" selected>"#
        )));
        // The header variable and the button's variable are offered, named after the template,
        // and required; the media link is not (this template has a text header).
        assert!(html.contains(r#"id="s1-header_param" data-mode="template" >"#));
        assert!(html.contains(r#"id="s1-button1" data-mode="template" >"#));
        assert!(html.contains(r#"<label for="s1-button1-src">Кнопка «Отследить»: окончание адреса https://shop.example/track/{{1}} <span class="req""#));
        assert!(html.contains(r#"id="s1-header_media" data-mode="template" hidden"#));
        assert!(html.contains(r#"id="s1-button2" data-mode="template" hidden"#));
        assert!(
            html.contains("Заголовок: переменная {{1}} в «Заказ {{1}}»"),
            "header label"
        );
        assert!(
            html.contains(&format!("Кнопка «Отследить»: окончание адреса {TRACK_URL}")),
            "button label"
        );
        assert!(html.contains(r#"id="s1-template-header""#));
        // Starting without them names what is missing.
        app.core()
            .db(move |c| {
                svyazka_core::bundles::set_state(c, id, svyazka_core::bundles::BundleState::Stopped)
            })
            .await
            .unwrap();
        let r = app
            .submit(&page, &format!("/bundles/{id}/start"), &[])
            .await;
        assert_eq!(r.status(), 422);
        let refused = unescape(&r.text().await.unwrap());
        assert!(
            refused.contains("«Заголовок: переменная {{1}}»"),
            "{refused}"
        );
        assert!(
            refused.contains("«Кнопка-ссылка 1: окончание адреса»"),
            "{refused}"
        );
        // Mapped with the same pickers as body variables.
        let r = app
            .submit(
                &page,
                &format!("/bundles/{id}/steps/0"),
                &[
                    ("recipient.src", "event:phone"),
                    ("mode.src", "lit"),
                    ("mode.lit", "template"),
                    ("template.choice", &format!("order_shipped|ru|{ns}|text;1")),
                    ("header_param.src", "tpl"),
                    ("header_param.tpl", "{{ number }}"),
                    ("param1.src", "event:first_name"),
                    ("button1.src", "tpl"),
                    ("button1.tpl", "{{ number }}"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let bundle = app
            .core()
            .db(move |c| svyazka_core::bundles::get(c, id))
            .await
            .unwrap()
            .unwrap();
        let s = &bundle.steps[0];
        assert_eq!(s.params["shape"], lit("text;1"));
        assert_eq!(s.params["header_param"], template("{{ number }}"));
        assert_eq!(s.params["button1"], template("{{ number }}"));
        // The preview reads as the customer will: header, body, button.
        let html = unescape(&app.get_html(&page).await.1);
        assert!(
            html.contains("Заказ 7146C\nАнна, заказ в пути.\n[кнопка «Отследить»: https://shop.example/track/7146C]"),
            "preview"
        );
        // Only the statuses (never chosen here) stand in the way now.
        let r = app
            .submit(&page, &format!("/bundles/{id}/start"), &[])
            .await;
        let refused = unescape(&r.text().await.unwrap());
        assert!(!refused.contains("«Заголовок"), "{refused}");
        assert!(!refused.contains("«Кнопка"), "{refused}");

        // A document header asks for its file's link.
        let r = app
            .submit(
                &page,
                &format!("/bundles/{id}/steps/0"),
                &[
                    ("recipient.src", "event:phone"),
                    ("mode.src", "lit"),
                    ("mode.lit", "template"),
                    ("template.choice", &format!("invoice|ru|{ns}|document;")),
                    ("header_media.src", "tpl"),
                    (
                        "header_media.tpl",
                        "https://shop.example/i/{{ number }}.pdf",
                    ),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let html = unescape(&app.get_html(&page).await.1);
        assert!(html.contains(r#"id="s1-header_media" data-mode="template" >"#));
        assert!(html.contains(r#"id="s1-header_param" data-mode="template" hidden"#));
        assert!(html.contains("Заголовок: ссылка на документ (https)"));
        assert!(
            html.contains("[документ: https://shop.example/i/7146C.pdf]"),
            "preview"
        );
        app.stop().await;
    }
);

both_backends!(
    header_and_button_values_go_out_through_both_routes,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        rich_templates(|n, l, b, h, u| fakes.wa.add_template_with(n, l, b, h, u));
        rich_templates(|n, l, b, h, u| c.fake.add_template_with(n, l, b, h, u));
        let crm = app.add_retailcrm(&fakes).await;
        let cloud_id = add_cloud(&app, &c).await;
        let onemsg = app.add_chatapi(&fakes).await;
        let link = "https://shop.example/i/{{ number }}.pdf";
        for target in [cloud_id, onemsg] {
            app.bundle(crm, "new_deal", &[], target, shipped_steps(Some("text;1")))
                .await;
            app.bundle(
                crm,
                "new_deal",
                &[],
                target,
                invoice_steps(link, Some("document;")),
            )
            .await;
        }
        let order = fire_order(&app, &fakes, crm, "Анна").await;
        let runs = app.settled_runs(4, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        let number = order_number(&fakes, order);
        let pdf = format!("https://shop.example/i/{number}.pdf");
        let cloud_sent = c.fake.sent_messages();
        let onemsg_sent = fakes.wa.sent_messages();
        let shipped =
            |header: &Option<SentHeader>, params: &[String], buttons: &[(String, String)]| {
                assert_eq!(header, &Some(SentHeader::Text(number.clone())));
                assert_eq!(params, ["Анна".to_string()]);
                assert_eq!(buttons, [("1".to_string(), number.clone())]);
            };
        let invoice = |header: &Option<SentHeader>, buttons: &[(String, String)]| {
            assert_eq!(
                header,
                &Some(SentHeader::Media {
                    kind: "document".into(),
                    link: pdf.clone()
                })
            );
            assert!(buttons.is_empty());
        };
        assert_eq!(cloud_sent.len(), 2);
        for m in &cloud_sent {
            match m.body.as_str() {
                "order_shipped" => shipped(&m.header, &m.params, &m.buttons),
                "invoice" => invoice(&m.header, &m.buttons),
                other => panic!("{other}"),
            }
        }
        assert_eq!(onemsg_sent.len(), 2);
        for m in &onemsg_sent {
            match m.template.as_ref().map(|t| t.0.as_str()) {
                Some("order_shipped") => shipped(&m.header, &m.params, &m.buttons),
                Some("invoice") => invoice(&m.header, &m.buttons),
                other => panic!("{other:?}"),
            }
        }
        app.stop().await;
    }
);

both_backends!(
    missing_header_and_button_values_fail_for_good,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let c = cloud();
        rich_templates(|n, l, b, h, u| fakes.wa.add_template_with(n, l, b, h, u));
        rich_templates(|n, l, b, h, u| c.fake.add_template_with(n, l, b, h, u));
        let crm = app.add_retailcrm(&fakes).await;
        let cloud_id = add_cloud(&app, &c).await;
        let onemsg = app.add_chatapi(&fakes).await;
        let pdf = "https://shop.example/i/{{ number }}.pdf";
        let mut empty_header = shipped_steps(Some("text;1"));
        empty_header[0]
            .params
            .insert("header_param".into(), event_field("last_name"));
        // Each case: where, what, and the words Meta's refusal must carry.
        let cases: [(i64, Vec<Step>, [&str; 2]); 4] = [
            // Steps saved before shapes existed send the body only: Meta refuses as it does.
            (cloud_id, shipped_steps(None), ["132000", "header"]),
            (onemsg, invoice_steps(pdf, None), ["132012", "DOCUMENT"]),
            (
                cloud_id,
                invoice_steps(pdf, None),
                ["132012", "expected DOCUMENT"],
            ),
            // A shape that leaves the URL button out.
            (onemsg, shipped_steps(Some("text;")), ["131008", "index 1"]),
        ];
        let n = cases.len();
        for (target, steps, _) in &cases {
            app.bundle(crm, "new_deal", &[], *target, steps.clone())
                .await;
        }
        // The order has no last name: the header variable mapped to it is empty.
        app.bundle(crm, "new_deal", &[], cloud_id, empty_header)
            .await;
        // A header file over plain http.
        app.bundle(
            crm,
            "new_deal",
            &[],
            onemsg,
            invoice_steps("http://shop.example/i/{{ number }}.pdf", Some("document;")),
        )
        .await;
        fire_order(&app, &fakes, crm, "Анна").await;
        let mut runs = app.settled_runs(n + 2, SETTLE).await;
        runs.sort_by_key(|r| r.bundle_id);
        assert!(
            runs.iter().all(|r| r.status == "failed" && r.attempts == 1),
            "{runs:?}"
        );
        for (run, (_, _, words)) in runs.iter().zip(&cases) {
            let error = run.error.as_deref().unwrap_or_default();
            assert!(
                words.iter().all(|w| error.contains(w)),
                "{words:?}: {error}"
            );
        }
        assert_eq!(
            stored_reason(&runs[n]),
            Reason::EmptyParam {
                param: "header_param".into()
            }
        );
        assert!(matches!(
            stored_reason(&runs[n + 1]),
            Reason::NotHttpsLink { ref param, .. } if param == "header_media"
        ));
        let html = unescape(&app.get_html(&format!("/runs/{}", runs[n + 1].id)).await.1);
        assert!(
            html.contains("«Заголовок: ссылка на файл (https)» — не ссылка https"),
            "the reason is worded"
        );
        assert_eq!(c.fake.sent_count() + fakes.wa.sent_count(), 0);
        app.stop().await;
    }
);
