//! The RetailCRM and MG clients against the testkit fake, over real HTTP on loopback.
//!
//! Every test starts its own fake on its own port, so the process-wide rate limiters (keyed by
//! account URL + key) never couple tests.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::json;
use svyazka_core::retailcrm::{
    Channel, CustomerRef, DomainError, InboundMessage, IntegrationModule, Integrations, MgCustomer,
    MgError, MgMessage, MgTransport, MgTransportConfig, NewCustomer, NewOrder, NewOrderItem, Phone,
    RetailCrm, RetailCrmError, SiteAccess,
};
use svyazka_core::upstream::{HttpClient, OutboundPolicy, Retry, UpstreamFailure};
use svyazka_testkit::retailcrm::{ApiKey, FakeRetailCrm};
use svyazka_testkit::server::Running;

const KEY: &str = "key-shop";

/// The fakes listen on loopback over http, which only the development policy allows.
fn dev_http() -> HttpClient {
    HttpClient::new(Duration::from_secs(30), OutboundPolicy::DEVELOPMENT)
}

fn loopback_client(base: &str, key: &str) -> RetailCrm {
    RetailCrm::with_client(dev_http(), base, key).expect("loopback URL is accepted")
}

/// A fake with store "shop" and a key bound to it, plus a client for that key.
fn setup() -> (FakeRetailCrm, Running, RetailCrm) {
    let (fake, running) = FakeRetailCrm::start().expect("fake starts");
    fake.add_site("shop", "Shop");
    fake.add_key(ApiKey::selective(KEY, &["shop"]));
    let client = loopback_client(&running.base_url(), KEY);
    (fake, running, client)
}

fn client(running: &Running, key: &str) -> RetailCrm {
    loopback_client(&running.base_url(), key)
}

fn ivan() -> NewCustomer {
    NewCustomer {
        first_name: Some("Иван".into()),
        last_name: Some("Петров".into()),
        email: Some("ivan@example.com".into()),
        phones: vec![Phone::new("+7 (999) 123-45-67")],
        ..NewCustomer::default()
    }
}

fn module(webhook: &str) -> IntegrationModule {
    IntegrationModule {
        code: "svyazka".into(),
        integration_code: "svyazka".into(),
        active: true,
        name: "Svyazka".into(),
        client_id: "client-42".into(),
        base_url: Some("https://svyazka.example".into()),
        integrations: Integrations {
            mg_transport: Some(MgTransportConfig {
                webhook_url: webhook.into(),
                refresh_token: false,
            }),
        },
        ..IntegrationModule::default()
    }
}

fn inbound(channel: i64, message_id: &str, text: &str) -> InboundMessage {
    InboundMessage {
        channel,
        external_chat_id: "wa_79991234567".into(),
        customer: MgCustomer {
            external_id: "79991234567".into(),
            nickname: "Иван".into(),
            first_name: Some("Иван".into()),
            phone: Some("+79991234567".into()),
        },
        message: MgMessage::text(message_id, text),
    }
}

#[tokio::test]
async fn versions_and_credentials_of_single_and_multi_store_keys() {
    let (fake, running, shop) = setup();
    fake.add_site("second", "Second");
    fake.add_key(ApiKey::full("multi"));

    assert_eq!(shop.api_versions().await.unwrap(), ["3.0", "4.0", "5.0"]);

    let single = shop.credentials().await.unwrap();
    assert_eq!(single.site_access, SiteAccess::Selective);
    assert_eq!(single.single_site(), Some("shop"));
    assert!(single.has_scope("integration_write"));

    let multi = client(&running, "multi").credentials().await.unwrap();
    assert_eq!(multi.site_access, SiteAccess::Full);
    assert_eq!(multi.sites_available, ["second", "shop"]);
    assert_eq!(multi.single_site(), None);
    assert!(
        multi
            .credentials
            .iter()
            .any(|p| p == "/api/v5/orders/create")
    );
}

#[tokio::test]
async fn references_are_maps_keyed_by_code() {
    let (fake, running, client_) = setup();
    fake.add_status("3", "Третий", "approval");

    let sites = client_.sites().await.unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites["shop"].name, "Shop");
    assert_eq!(sites["shop"].currency.as_deref(), Some("RUB"));

    let statuses = client_.statuses().await.unwrap();
    assert_eq!(statuses["new"].name, "Новый");
    assert_eq!(statuses["complete"].group, "complete");
    assert_eq!(statuses["3"].code, "3");

    let groups = client_.status_groups().await.unwrap();
    let codes: Vec<&str> = groups.keys().map(String::as_str).collect();
    for code in [
        "new",
        "approval",
        "assembling",
        "delivery",
        "complete",
        "cancel",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    assert!(groups["delivery"].process);
    assert!(groups["approval"].statuses.contains(&"3".to_owned()));

    // PHP sends an empty map as `[]`.
    fake.add_key(ApiKey::selective("nowhere", &[]));
    assert!(
        client(&running, "nowhere")
            .sites()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn wrong_key_is_a_permanent_invalid_key() {
    let (_fake, running, _) = setup();
    let error = client(&running, "not-a-key")
        .credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(error, RetailCrmError::InvalidKey { .. }),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(error.upstream_message(), Some("Wrong \"apiKey\" value."));
}

#[tokio::test]
async fn missing_scope_and_missing_api_are_access_denied() {
    let (fake, running, _) = setup();
    fake.add_key(ApiKey::selective("refs-only", &["shop"]).with_scopes(&["reference_read"]));
    fake.add_key(ApiKey::selective("reader", &["shop"]).with_scopes(&["integration_read"]));
    fake.add_key(ApiKey::selective("free-plan", &["shop"]).with_api_enabled(false));

    let refs_only = client(&running, "refs-only");
    assert_eq!(refs_only.statuses().await.unwrap().len(), 18);
    let error = refs_only.order_get(1, None).await.unwrap_err();
    assert!(
        matches!(error, RetailCrmError::AccessDenied { .. }),
        "{error:?}"
    );
    assert_eq!(error.upstream_message(), Some("Access denied."));
    assert_eq!(error.retry(), Retry::Permanent);

    // Registering a transport needs integration_write too.
    let error = client(&running, "reader")
        .integration_module_edit(&module("http://127.0.0.1:9/hook"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RetailCrmError::AccessDenied { .. }),
        "{error:?}"
    );

    let error = client(&running, "free-plan")
        .credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(error, RetailCrmError::AccessDenied { .. }),
        "{error:?}"
    );
    assert!(
        error
            .upstream_message()
            .is_some_and(|m| m.contains("API is not available on your current plan"))
    );
}

#[tokio::test]
async fn html_answer_means_no_such_account() {
    let (fake, _running, client_) = setup();
    fake.set_account_exists(false);
    let get = client_.credentials().await.unwrap_err();
    assert!(
        matches!(get, RetailCrmError::AccountNotFound { .. }),
        "{get:?}"
    );
    assert_eq!(get.retry(), Retry::Permanent);
    let post = client_.customer_create(&ivan(), None).await.unwrap_err();
    assert!(
        matches!(post, RetailCrmError::AccountNotFound { .. }),
        "{post:?}"
    );
}

#[tokio::test]
async fn missing_entities() {
    let (_fake, _running, client_) = setup();
    let error = client_.order_get(123_456, Some("shop")).await.unwrap_err();
    assert!(
        matches!(error, RetailCrmError::NotFound { .. }),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(error.upstream_message(), Some("Not found"));
    assert!(
        client_
            .order_get_by_external_id("nope", None)
            .await
            .unwrap()
            .is_none()
    );
    let error = client_.customer_get(1, None).await.unwrap_err();
    assert!(
        matches!(error, RetailCrmError::NotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn validation_errors_as_object_and_as_list() {
    let (fake, _running, client_) = setup();
    let unlinked = NewOrder {
        first_name: Some("Иван".into()),
        customer: Some(CustomerRef::default()),
        ..NewOrder::default()
    };

    let error = client_.order_create(&unlinked, None).await.unwrap_err();
    let RetailCrmError::Validation {
        status,
        message,
        errors,
    } = &error
    else {
        panic!("expected a validation error, got {error:?}");
    };
    assert_eq!(
        (*status, message.as_str()),
        (400, "Errors in the entity format")
    );
    assert_eq!(errors[0].field.as_deref(), Some("customer"));
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(
        error.to_string(),
        "RetailCRM: Errors in the entity format — customer: Set one of the following fields: id, externalId"
    );

    fake.set_errors_as_list(true);
    let error = client_.order_create(&unlinked, None).await.unwrap_err();
    assert_eq!(error.field_errors().len(), 1);
    assert_eq!(error.field_errors()[0].field, None);
    assert_eq!(
        error.to_string(),
        "RetailCRM: Errors in the entity format — customer: Set one of the following fields: id, externalId"
    );

    let bad_email = NewCustomer {
        email: Some("not-an-email".into()),
        ..ivan()
    };
    fake.set_errors_as_list(false);
    let error = client_.customer_create(&bad_email, None).await.unwrap_err();
    assert_eq!(error.field_errors()[0].field.as_deref(), Some("email"));
}

#[tokio::test]
async fn multi_store_key_must_name_the_store() {
    let (fake, running, _) = setup();
    fake.add_site("second", "Second");
    fake.add_key(ApiKey::full("multi"));
    let multi = client(&running, "multi");

    let error = multi.customer_create(&ivan(), None).await.unwrap_err();
    assert!(
        matches!(error, RetailCrmError::Validation { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "RetailCRM: Parameter 'site' is missing");

    let id = multi
        .customer_create(&ivan(), Some("second"))
        .await
        .unwrap();
    let customer = multi.customer_get(id, Some("second")).await.unwrap();
    assert_eq!(customer.site.as_deref(), Some("second"));
    // The same customer is not in the other store.
    assert!(matches!(
        multi.customer_get(id, Some("shop")).await,
        Err(RetailCrmError::NotFound { .. })
    ));
}

#[tokio::test]
async fn rate_limit_answers_are_retried_transparently() {
    let (fake, _running, client_) = setup();

    fake.fail_next(2, 503);
    client_.credentials().await.unwrap();
    assert_eq!(fake.stats().total_requests, 3);

    fake.fail_next(1, 429);
    client_.credentials().await.unwrap();
    assert_eq!(fake.stats().total_requests, 5);

    // Four refusals in a row exhaust the three retries (100 + 200 + 400 ms of backoff).
    fake.set_rate_limit_html(true);
    fake.fail_next(4, 503);
    let started = Instant::now();
    let error = client_.credentials().await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(
        matches!(error, RetailCrmError::RateLimited { status: 503, .. }),
        "{error:?}"
    );
    assert!(matches!(error.retry(), Retry::Transient { after: Some(_) }));
    assert_eq!(fake.stats().total_requests, 9);
    assert_eq!(fake.stats().rate_limited, 7);
}

#[tokio::test]
async fn limiter_keeps_all_clients_of_a_key_within_ten_per_second() {
    let (fake, running, first) = setup();
    // A second client object of the same account and key shares the budget.
    let second = client(&running, KEY);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let client_ = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.spawn(async move { client_.credentials().await.map(|_| ()) });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("no request may fail");
    }
    // 23 gaps of 105 ms after the first request.
    assert!(
        started.elapsed() >= Duration::from_millis(2400),
        "{:?}",
        started.elapsed()
    );
    let stats = fake.stats();
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(stats.per_key[KEY].requests, 24);
    let peak = fake.max_requests_per_second(KEY);
    assert!(
        (9..=10).contains(&peak),
        "peak {peak} requests within one second"
    );
}

#[tokio::test]
async fn server_errors_timeouts_and_network_errors_are_transient() {
    let (fake, running, client_) = setup();

    fake.fail_next(1, 500);
    let error = client_.credentials().await.unwrap_err();
    assert!(
        matches!(error, RetailCrmError::Server { status: 500, .. }),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Transient { after: None });
    // A 500 is not retried by the client itself: the engine decides.
    assert_eq!(fake.stats().total_requests, 1);

    fake.set_latency(Some(Duration::from_millis(800)));
    let impatient = client(&running, KEY).with_timeout(Duration::from_millis(150));
    let error = impatient.credentials().await.unwrap_err();
    assert!(matches!(error, RetailCrmError::Timeout), "{error:?}");
    assert_eq!(error.retry(), Retry::Transient { after: None });
    fake.set_latency(None);

    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let nowhere = loopback_client(&format!("http://127.0.0.1:{closed}"), KEY);
    let error = nowhere.credentials().await.unwrap_err();
    assert!(matches!(error, RetailCrmError::Network(_)), "{error:?}");
    assert_eq!(error.retry(), Retry::Transient { after: None });
}

#[tokio::test]
async fn account_address_is_validated() {
    assert_eq!(
        RetailCrm::new("http://shop.retailcrm.ru", KEY).unwrap_err(),
        DomainError::NotHttps
    );
    assert_eq!(
        RetailCrm::new("shop", KEY).unwrap().base_url(),
        "https://shop.retailcrm.ru"
    );
    // Production refuses the loopback fakes that the development setting allows.
    assert!(RetailCrm::new("http://127.0.0.1:9101", KEY).is_err());
    assert!(RetailCrm::with_client(dev_http(), "http://127.0.0.1:9101", KEY).is_ok());
}

#[tokio::test]
async fn customers_are_found_by_phone_in_any_format() {
    let (_fake, _running, client_) = setup();
    let id = client_.customer_create(&ivan(), None).await.unwrap();
    // Its digits contain Ivan's number, so RetailCRM's free-text search returns it too.
    let longer = NewCustomer {
        first_name: Some("Other".into()),
        phones: vec![Phone::new("+7 (999) 123-45-670")],
        ..NewCustomer::default()
    };
    let other = client_.customer_create(&longer, None).await.unwrap();
    assert_ne!(id, other);

    for query in ["79991234567", "+7 (999) 123-45-67", "+7 999 123 45 67"] {
        let found = client_.customers_find_by_phone(query, None).await.unwrap();
        let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
        assert_eq!(ids, [id], "query {query}");
    }
    assert!(
        client_
            .customers_find_by_phone("79990000000", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client_
            .customers_find_by_phone("no digits", None)
            .await
            .unwrap()
            .is_empty()
    );

    let customer = client_.customer_get(id, Some("shop")).await.unwrap();
    assert_eq!(customer.first_name.as_deref(), Some("Иван"));
    assert_eq!(customer.phones, [Phone::new("+7 (999) 123-45-67")]);
    assert_eq!(customer.raw["contragent"]["contragentType"], "individual");
}

#[tokio::test]
async fn order_create_get_and_list_by_customer() {
    let (fake, _running, client_) = setup();
    let customer_id = client_.customer_create(&ivan(), None).await.unwrap();

    let mut new_order = NewOrder {
        external_id: Some("wa-1".into()),
        status: Some("new".into()),
        first_name: Some("Иван".into()),
        phone: Some("+79991234567".into()),
        customer: Some(CustomerRef {
            id: Some(customer_id),
            external_id: None,
        }),
        customer_comment: Some("из WhatsApp".into()),
        items: vec![NewOrderItem {
            product_name: Some("Чайник".into()),
            quantity: 2.0,
            initial_price: Some(1500.0),
            ..NewOrderItem::default()
        }],
        ..NewOrder::default()
    };
    new_order
        .extra
        .insert("payments".into(), json!([{"type": "cash", "amount": 3000}]));

    let (id, created) = client_.order_create(&new_order, None).await.unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.status, "new");
    assert_eq!(created.site, "shop");
    assert_eq!(created.total_summ, 3000.0);
    assert_eq!(
        created.customer.as_ref().and_then(|c| c.id),
        Some(customer_id)
    );
    assert_eq!(created.payments.len(), 1);
    assert!(created.created_at.is_some());

    let fetched = client_.order_get(id, None).await.unwrap();
    assert_eq!(fetched.number, created.number);
    assert_eq!(fetched.email.as_deref(), Some("ivan@example.com"));
    // GET sends payments as a map keyed by id; the typed view is the same.
    assert!(fetched.raw["payments"].is_object());
    assert_eq!(fetched.payments, created.payments);
    assert_eq!(
        fetched.customer.as_ref().map(|c| c.phones.clone()),
        Some(vec![Phone::new("+7 (999) 123-45-67")])
    );

    let by_ext = client_
        .order_get_by_external_id("wa-1", Some("shop"))
        .await
        .unwrap();
    assert_eq!(by_ext.map(|o| o.id), Some(id));

    // 120 more orders of the same customer and one of someone else: two pages of 100.
    for _ in 0..120 {
        fake.insert_order("shop", json!({"customer": {"id": customer_id}}))
            .unwrap();
    }
    fake.insert_order("shop", json!({"firstName": "Someone else"}))
        .unwrap();
    let orders = client_.orders_by_customer(customer_id, None).await.unwrap();
    assert_eq!(orders.len(), 121);
    assert!(
        orders
            .iter()
            .all(|o| o.customer.as_ref().and_then(|c| c.id) == Some(customer_id))
    );
    assert!(
        client_
            .orders_by_customer(1, Some("shop"))
            .await
            .unwrap()
            .is_empty()
    );

    // A status changed in the CRM shows up on the next read.
    assert!(fake.set_order_status(id, "send-to-delivery"));
    assert_eq!(
        client_.order_get(id, None).await.unwrap().status,
        "send-to-delivery"
    );
}

#[tokio::test]
async fn mg_transport_registration_channel_and_messages() {
    let (fake, running, client_) = setup();

    fake.set_chats_enabled(KEY, false);
    let error = client_
        .integration_module_edit(&module("https://svyazka.example/mg/webhook"))
        .await
        .unwrap_err();
    assert_eq!(error.upstream_message(), Some("Chats are not activated"));
    assert_eq!(error.retry(), Retry::Permanent);
    fake.set_chats_enabled(KEY, true);

    let info = client_
        .integration_module_edit(&module("https://svyazka.example/mg/webhook"))
        .await
        .unwrap();
    assert_eq!(info.endpoint_url, format!("{}/mg", running.base_url()));
    assert!(!info.token.is_empty());
    assert_eq!(fake.integration_modules()[0]["clientId"], "client-42");

    let mg = MgTransport::from_info(dev_http(), &info).unwrap();
    assert_eq!(
        mg.base_url(),
        format!("{}/mg/api/transport/v1", running.base_url())
    );
    let channel = mg
        .create_channel(&Channel::text_only("whatsapp", "Магазин WhatsApp", 4096))
        .await
        .unwrap();
    assert_eq!(fake.mg_channels()[0]["type"], "whatsapp");

    let first = mg
        .send_message(&inbound(channel, "wamid.1", "Здравствуйте"))
        .await
        .unwrap();
    let again = mg
        .send_message(&inbound(channel, "wamid.1", "Здравствуйте"))
        .await
        .unwrap();
    assert_eq!(first, again, "a re-sent message keeps its id");
    let second = mg
        .send_message(&inbound(channel, "wamid.2", "Есть в наличии?"))
        .await
        .unwrap();
    assert_ne!(first, second);
    let messages = fake.mg_messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].customer_external_id.as_deref(),
        Some("79991234567")
    );
    assert_eq!(messages[1].text, "Есть в наличии?");

    fake.set_mg_dedupe(false);
    let third = mg
        .send_message(&inbound(channel, "wamid.1", "Здравствуйте"))
        .await
        .unwrap();
    assert_ne!(third, first);

    let mut anonymous = inbound(channel, "wamid.3", "?");
    anonymous.external_chat_id = "wa_new".into();
    anonymous.customer.nickname = String::new();
    let error = mg.send_message(&anonymous).await.unwrap_err();
    assert!(
        matches!(error, MgError::Rejected { status: 400, .. }),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Permanent);
    assert_eq!(
        error.to_string(),
        "MG refused the request (HTTP 400): customer.nickname: this field is required"
    );

    let stranger = MgTransport::with_client(dev_http(), &info.endpoint_url, "wrong-token").unwrap();
    let error = stranger
        .create_channel(&Channel::text_only("telegram", "x", 10))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MgError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );

    fake.fail_next(2, 429);
    mg.send_message(&inbound(channel, "wamid.4", "retried"))
        .await
        .unwrap();
    fake.fail_next(1, 502);
    let error = mg
        .send_message(&inbound(channel, "wamid.5", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MgError::Server { status: 502, .. }),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Transient { after: None });
}
