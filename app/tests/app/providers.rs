use crate::both_backends;
use crate::support::*;
use svyazka_testkit::retailcrm::ApiKey;

both_backends!(
    retailcrm_provider_is_checked_live_and_shows_the_trigger_setup,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let id = app.add_retailcrm(&fakes).await;
        let (status, html) = app.get_html(&format!("/providers/{id}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("Мой магазин (shop)"), "detected store shown");
        assert!(html.contains(&fakes.crm_base), "base URL shown");
        let hook = app.hook_url(id).await;
        assert!(html.contains(&hook), "webhook address ready to paste");
        assert!(unescape(&html).contains(r#"type=order&status={{ changeSet.getNewValue("status").getCode() }}&id={{ order.id }}&event={% if changeSet.isCreate() %}new{% else %}status{% endif %}"#));
        assert!(html.contains("Указать тело запроса самостоятельно") && html.contains("POST"));
        // The key is masked on the page and encrypted at rest.
        assert!(!html.contains(CRM_KEY));
        let p = app.provider(id).await;
        assert!(
            matches!(p.secrets(&app.core().crypto).unwrap(), svyazka_core::providers::Secrets::Retailcrm { api_key, .. } if api_key == CRM_KEY)
        );
        let raw: String = {
            use diesel::prelude::*;
            use svyazka_core::db::schema::providers;
            app.core()
                .db(move |c| {
                    providers::table
                        .find(id)
                        .select(providers::secrets)
                        .first::<String>(c)
                        .map_err(svyazka_core::db::DbError::from)
                })
                .await
                .unwrap()
        };
        assert!(
            !raw.contains(CRM_KEY),
            "stored column must not contain the key"
        );
        // Our chat transport was registered with a channel per messenger type.
        assert_eq!(fakes.crm.integration_modules().len(), 1);
        assert_eq!(fakes.crm.mg_channels().len(), 2);
        let (_, list) = app.get_html("/providers").await;
        assert!(list.contains("Мой RetailCRM") && list.contains("работает"));
        app.stop().await;
    }
);

async fn refused(app: &TestApp, fields: &[(&str, &str)], field: &str, needle: &str) {
    let r = app
        .submit(
            "/providers/new/retailcrm",
            "/providers/new/retailcrm",
            fields,
        )
        .await;
    assert_eq!(r.status().as_u16(), 422, "{fields:?}");
    let html = unescape(&r.text().await.unwrap());
    let marker = format!(r#"id="err-{field}">"#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no error next to {field} for {fields:?}:\n{html}"));
    let msg: String = html[at..].chars().take(600).collect();
    assert!(
        msg.contains(needle),
        "error next to {field} should mention {needle:?}: {msg}"
    );
}

both_backends!(
    retailcrm_provider_refusals_name_the_field_and_store_nothing,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let base = fakes.crm_base.clone();
        fakes.crm.add_key(ApiKey::full("all-stores-key"));
        fakes.crm.add_site("second", "Второй магазин");
        fakes
            .crm
            .add_key(ApiKey::selective("two-stores-key", &["shop", "second"]));
        fakes
            .crm
            .add_key(ApiKey::selective("no-api-key", &["shop"]).with_api_enabled(false));
        fakes
            .crm
            .add_key(ApiKey::selective("no-chats-key", &["shop"]).with_chats_enabled(false));
        fakes.crm.add_key(
            ApiKey::selective("few-scopes-key", &["shop"]).with_scopes(&[
                "order_read",
                "customer_read",
                "reference_read",
            ]),
        );

        refused(
            &app,
            &[("name", "Shop"), ("domain", &base), ("api_key", CRM_KEY)],
            "name",
            "5",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "wrong"),
            ],
            "api_key",
            "Wrong \"apiKey\" value.",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "no-api-key"),
            ],
            "api_key",
            "API is not available on your current plan",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "all-stores-key"),
            ],
            "api_key",
            "создайте отдельный ключ",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "two-stores-key"),
            ],
            "api_key",
            "shop, second",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "few-scopes-key"),
            ],
            "api_key",
            "order_write",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", "no-chats-key"),
            ],
            "api_key",
            "Чаты",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", "http://127.0.0.1:9"),
                ("api_key", CRM_KEY),
            ],
            "domain",
            "не отвечает RetailCRM",
        )
        .await;
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", "shop with spaces"),
                ("api_key", CRM_KEY),
            ],
            "domain",
            "",
        )
        .await;
        fakes.crm.set_account_exists(false);
        refused(
            &app,
            &[
                ("name", "Мой RetailCRM"),
                ("domain", &base),
                ("api_key", CRM_KEY),
            ],
            "domain",
            "не отвечает RetailCRM",
        )
        .await;
        let providers = app.core().db(svyazka_core::providers::list).await.unwrap();
        assert!(providers.is_empty(), "nothing stored after refusals");
        app.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_is_normalised_live() {
    let app = TestApp::signed_in(Backend::Sqlite).await.unwrap();
    for (input, shown) in [
        ("shop", "→ https://shop.retailcrm.ru"),
        ("shop.retailcrm.ru", "→ https://shop.retailcrm.ru"),
        ("https://shop.retailcrm.ru/", "→ https://shop.retailcrm.ru"),
        ("crm.myshop.ru", "→ https://crm.myshop.ru"),
    ] {
        let r = app
            .client
            .get(app.url("/providers/normalize"))
            .query(&[("domain", input)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), shown, "{input}");
    }
    app.stop().await;
}

both_backends!(
    edit_keeps_masked_key_and_delete_is_refused_while_used,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let (_, form) = app.get_html(&format!("/providers/{crm}/edit")).await;
        assert!(!form.contains(CRM_KEY), "edit form must not show the key");
        let masked = svyazka_core::providers::settings::mask(CRM_KEY);
        assert!(form.contains(&masked));
        let path = format!("/providers/{crm}/edit");
        let r = app
            .submit(
                &path,
                &path,
                &[
                    ("name", "Переименованный CRM"),
                    ("domain", &fakes.crm_base),
                    ("api_key", &masked),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);
        let p = app.provider(crm).await;
        assert_eq!(p.name, "Переименованный CRM");
        assert!(
            matches!(p.secrets(&app.core().crypto).unwrap(), svyazka_core::providers::Secrets::Retailcrm { api_key, .. } if api_key == CRM_KEY)
        );

        app.bundle(wa, "incoming_message", &[], crm, vec![]).await;
        let r = app
            .submit(
                &format!("/providers/{crm}"),
                &format!("/providers/{crm}/delete"),
                &[],
            )
            .await;
        assert_eq!(r.status().as_u16(), 409);
        assert!(r.text().await.unwrap().contains("«Test bundle»"));
        assert!(
            app.core()
                .db(move |c| svyazka_core::providers::get(c, crm))
                .await
                .is_ok()
        );
        app.stop().await;
    }
);

both_backends!(
    chatapi_provider_sets_the_gateway_webhook,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let id = app.add_chatapi(&fakes).await;
        assert_eq!(
            fakes.wa.webhook_url(WA_INSTANCE),
            Some(app.hook_url(id).await)
        );
        let (_, html) = app.get_html(&format!("/providers/{id}")).await;
        assert!(html.contains("установлен в шлюзе автоматически") && !html.contains(WA_TOKEN));
        // A wrong token is refused next to the token field with the gateway's own words.
        let r = app
            .submit(
                "/providers/new/chatapi",
                "/providers/new/chatapi",
                &[
                    ("name", "WhatsApp два"),
                    ("api_url", &fakes.wa_base),
                    ("token", "bad"),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        let html = r.text().await.unwrap();
        assert!(
            html.contains(r#"id="err-token""#) && html.contains("Wrong token"),
            "{html}"
        );
        app.stop().await;
    }
);

both_backends!(
    telegram_provider_checks_the_bot_and_says_polling_mode,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let id = app.add_telegram(&fakes).await;
        let (_, html) = app.get_html(&format!("/providers/{id}")).await;
        assert!(html.contains("@svyazka_test_bot") && html.contains("getUpdates"));
        let r = app
            .submit(
                "/providers/new/telegram",
                "/providers/new/telegram",
                &[
                    ("name", "Telegram два"),
                    ("api_url", &fakes.tg_base),
                    ("token", "999:nope"),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        assert!(r.text().await.unwrap().contains("Unauthorized"));
        app.stop().await;
    }
);
