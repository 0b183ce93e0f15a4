//! The fake's own behaviour, exercised over HTTP with a plain reqwest client (the production
//! client is tested against the fake in `core/tests/retailcrm_client.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::*;
use crate::server::{Running, spawn};

const KEY: &str = "key-1";

fn started() -> (FakeRetailCrm, Running, String) {
    let (fake, running) = FakeRetailCrm::start().expect("fake starts");
    fake.add_site("shop", "Shop");
    fake.add_key(ApiKey::selective(KEY, &["shop"]));
    let base = running.base_url();
    (fake, running, base)
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(base: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(key) = key {
        request = request.header("X-API-KEY", key);
    }
    answer(request.send().await.expect("request")).await
}

async fn post_form(base: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-api-key", KEY)
        .form(form)
        .send()
        .await
        .expect("request");
    answer(response).await
}

#[tokio::test]
async fn routing_and_authentication() {
    let (_fake, _running, base) = started();

    let (status, body) = get(&base, "/api/v5/nothing-here", Some(KEY)).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (404, Some("API method not found"))
    );

    let (status, body) = get(&base, "/api/v5/reference/sites", None).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (403, Some("\"apiKey\" is missing."))
    );

    let (status, body) = get(&base, "/api/v5/reference/sites", Some("nope")).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (403, Some("Wrong \"apiKey\" value."))
    );

    // Key as a query parameter works as well as the header.
    let (status, body) = get(
        &base,
        &format!("/api/v5/reference/sites?apiKey={KEY}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["sites"]["shop"]["code"], "shop");

    let (status, body) = get(&base, "/api/credentials", Some(KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(body["siteAccess"], "access_selective");
    assert_eq!(body["sitesAvailable"], json!(["shop"]));
    assert!(
        body["scopes"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("order_read")))
    );

    let (status, body) = get(&base, "/api/api-versions", Some(KEY)).await;
    assert_eq!((status, body["versions"][2].as_str()), (200, Some("5.0")));
    let (status, body) = get(&base, "/api/system-info", Some(KEY)).await;
    assert_eq!(
        (status, body["publicUrl"].as_str()),
        (200, Some(base.as_str()))
    );

    let (status, _) = get(&base, "/api/v5/orders/create", Some(KEY)).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn scopes_plan_and_php_quirks() {
    let (fake, _running, base) = started();
    fake.add_key(ApiKey::selective("reader", &["shop"]).with_scopes(&["order_read"]));
    fake.add_key(ApiKey::full("free").with_api_enabled(false));

    let (status, body) = get(&base, "/api/v5/reference/statuses", Some("reader")).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (403, Some("Access denied."))
    );
    let (status, body) = get(&base, "/api/credentials", Some("free")).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["errorMsg"],
        "API is not available on your current plan"
    );

    let (_, statuses) = get(&base, "/api/v5/reference/statuses", Some(KEY)).await;
    assert_eq!(statuses["statuses"]["new"]["name"], "Новый");
    assert_eq!(statuses["statuses"]["cancel-other"]["group"], "cancel");
    let (_, groups) = get(&base, "/api/v5/reference/status-groups", Some(KEY)).await;
    assert_eq!(groups["statusGroups"]["delivery"]["process"], true);
    assert!(
        groups["statusGroups"]["delivery"]["statuses"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("delivering")))
    );

    // An empty reference map comes as `[]`.
    fake.add_key(ApiKey::selective("nowhere", &[]));
    let (_, sites) = get(&base, "/api/v5/reference/sites", Some("nowhere")).await;
    assert_eq!(sites["sites"], json!([]));
}

#[tokio::test]
async fn post_bodies_by_and_sites() {
    let (fake, _running, base) = started();
    fake.add_site("second", "Second");
    fake.add_key(ApiKey::full("all"));

    // A JSON body is not what RetailCRM reads.
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v5/orders/create"))
        .header("x-api-key", KEY)
        .json(&json!({"order": {"firstName": "Ivan"}}))
        .send()
        .await
        .expect("request");
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (400, Some("Parameter 'order' is missing"))
    );

    let order = json!({"externalId": "ext-1", "firstName": "Ivan", "phone": "+79990001122",
                       "payments": [{"type": "cash", "amount": 10}]})
    .to_string();
    let (status, body) = post_form(&base, "/api/v5/orders/create", &[("order", &order)]).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    assert!(body["order"]["payments"].is_array());
    assert_eq!(body["order"]["customFields"], json!([]));
    assert_eq!(
        body["order"]["customer"]["phones"][0]["number"],
        "+79990001122"
    );

    // `by` defaults to externalId.
    let (status, _) = get(&base, &format!("/api/v5/orders/{id}"), Some(KEY)).await;
    assert_eq!(status, 404);
    let (status, body) = get(&base, &format!("/api/v5/orders/{id}?by=id"), Some(KEY)).await;
    assert_eq!(status, 200);
    assert!(body["order"]["payments"].is_object());
    let (status, _) = get(&base, "/api/v5/orders/ext-1", Some(KEY)).await;
    assert_eq!(status, 200);

    // A key reaching two stores must say which one for site-dependent methods.
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/api/v5/customers/create"))
        .header("x-api-key", "all")
        .form(&[("customer", r#"{"firstName":"A"}"#)])
        .send()
        .await
        .expect("request");
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (400, Some("Parameter 'site' is missing"))
    );
    let (status, body) = get(&base, "/api/v5/orders/ext-1", Some("all")).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (400, Some("Parameter 'site' is missing"))
    );
    let (status, _) = get(&base, "/api/v5/orders/ext-1?site=shop", Some("all")).await;
    assert_eq!(status, 200);
    // A selective key cannot name a store it does not reach.
    let (status, body) = get(&base, "/api/v5/orders?site=second", Some(KEY)).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (403, Some("Access denied."))
    );

    // Validation errors: object by default, list when switched.
    let bad = json!({"customer": {}, "status": "nope"}).to_string();
    let (status, body) = post_form(&base, "/api/v5/orders/create", &[("order", &bad)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["errorMsg"], "Errors in the entity format");
    assert_eq!(
        body["errors"]["customer"],
        "Set one of the following fields: id, externalId"
    );
    fake.set_errors_as_list(true);
    let (_, body) = post_form(&base, "/api/v5/orders/create", &[("order", &bad)]).await;
    assert!(body["errors"].is_array());

    // Edit changes the status.
    let edit = json!({"status": "complete"}).to_string();
    let (status, body) = post_form(
        &base,
        &format!("/api/v5/orders/{id}/edit"),
        &[("by", "id"), ("order", &edit)],
    )
    .await;
    assert_eq!(
        (status, body["order"]["status"].as_str()),
        (200, Some("complete"))
    );
}

#[tokio::test]
async fn lists_filters_and_pagination() {
    let (fake, _running, base) = started();
    for i in 0..25 {
        fake.insert_customer(
            "shop",
            json!({"firstName": format!("C{i}"), "phones": [{"number": format!("+7 (999) 000-00-{i:02}")}]}),
        )
        .expect("customer");
    }
    let (status, body) = get(&base, "/api/v5/customers?limit=30", Some(KEY)).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (400, Some("Errors in the input parameters"))
    );

    let (_, page1) = get(&base, "/api/v5/customers", Some(KEY)).await;
    assert_eq!(
        page1["pagination"],
        json!({"limit": 20, "totalCount": 25, "currentPage": 1, "totalPageCount": 2})
    );
    let (_, page2) = get(&base, "/api/v5/customers?limit=20&page=2", Some(KEY)).await;
    assert_eq!(page2["customers"].as_array().map(Vec::len), Some(5));

    let (_, found) = get(
        &base,
        "/api/v5/customers?filter%5Bname%5D=79990000007",
        Some(KEY),
    )
    .await;
    assert_eq!(found["customers"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["customers"][0]["firstName"], "C7");

    let customer = found["customers"][0]["id"].as_i64().expect("id");
    let other = fake.customers()[0]["id"].as_i64().expect("id");
    fake.insert_order("shop", json!({"customer": {"id": customer}}))
        .expect("order");
    fake.insert_order("shop", json!({"customer": {"id": other}}))
        .expect("order");
    let (_, orders) = get(
        &base,
        &format!("/api/v5/orders?filter[customerId]={customer}"),
        Some(KEY),
    )
    .await;
    assert_eq!(orders["orders"].as_array().map(Vec::len), Some(1));
    let (_, none) = get(&base, "/api/v5/orders?filter[customerId]=1", Some(KEY)).await;
    assert_eq!(none["orders"], json!([]));
    assert_eq!(none["pagination"]["totalPageCount"], 0);
}

#[tokio::test]
async fn rate_limit_faults_latency_and_missing_account() {
    let (fake, _running, base) = started();
    // A bucket of one token refilled once a second: a quick burst of 8 mostly bounces.
    fake.set_rate_limit(Some(1.0));
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = client
            .get(format!("{base}/api/credentials"))
            .header("x-api-key", KEY)
            .send()
            .await
            .expect("request");
        statuses.push(response.status().as_u16());
    }
    let rejected = statuses.iter().filter(|s| **s == 503).count();
    assert!(rejected >= 6, "{statuses:?}");
    assert_eq!(statuses[0], 200);
    let stats = fake.stats();
    assert_eq!(stats.rate_limited, rejected as u64);
    assert!(stats.per_key[KEY].max_per_second >= 6);
    let (status, body) = get(&base, "/api/credentials", Some(KEY)).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (503, Some("Rate limit exceeded"))
    );
    fake.set_rate_limit_html(true);
    let (_, body) = get(&base, "/api/credentials", Some(KEY)).await;
    assert!(
        body.as_str()
            .is_some_and(|b| b.starts_with("<!DOCTYPE html>"))
    );
    fake.set_rate_limit(None);

    fake.fail_next(2, 500);
    assert_eq!(get(&base, "/api/credentials", Some(KEY)).await.0, 500);
    assert_eq!(get(&base, "/api/credentials", Some(KEY)).await.0, 500);
    assert_eq!(get(&base, "/api/credentials", Some(KEY)).await.0, 200);

    fake.set_latency(Some(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(get(&base, "/api/credentials", Some(KEY)).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.set_latency(None);

    fake.set_account_exists(false);
    let (status, body) = get(&base, "/api/credentials", Some(KEY)).await;
    assert_eq!(status, 404);
    assert!(body.as_str().is_some_and(|b| b.contains("<html>")));
    let (status, _) = post_form(&base, "/api/v5/orders/create", &[("order", "{}")]).await;
    assert_eq!(status, 405);
}

/// What a receiver saw: (method, content type, query, body, Clientid header).
type Seen = Arc<Mutex<Vec<(String, String, String, String, String)>>>;

fn receiver(reply: Value) -> (Running, Seen) {
    let seen: Seen = Arc::default();
    let store = seen.clone();
    let running = spawn(SocketAddr::from(([127, 0, 0, 1], 0)), move || {
        let store = store.clone();
        let reply = reply.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            let reply = reply.clone();
            async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                store.lock().expect("lock").push((
                    req.method().to_string(),
                    header("content-type"),
                    req.query_string().to_owned(),
                    String::from_utf8_lossy(&body).into_owned(),
                    header("clientid"),
                ));
                HttpResponse::Ok().json(reply)
            }
        }))
    })
    .expect("receiver starts");
    (running, seen)
}

#[tokio::test]
async fn trigger_driver_posts_like_retailcrm() {
    let (fake, _running, _base) = started();
    let (receiver, seen) = receiver(json!({"ok": true}));
    let url = format!("{}/hooks/retailcrm/secret", receiver.base_url());

    let (id, reply) = fake
        .create_order_and_fire(&url, "shop", json!({"firstName": "Ivan"}))
        .await
        .expect("trigger");
    assert_eq!(reply.status, 200);
    let reply = fake
        .change_status_and_fire(&url, id, "send-to-delivery")
        .await
        .expect("trigger");
    assert_eq!(reply.json(), json!({"ok": true}));
    for encoding in [
        TriggerEncoding::Query,
        TriggerEncoding::Json,
        TriggerEncoding::Empty,
    ] {
        fake.fire_trigger_as(&url, id, TriggerEvent::Status, encoding)
            .await
            .expect("trigger");
    }
    assert!(matches!(
        fake.fire_trigger(&url, 1, TriggerEvent::New).await,
        Err(DriverError::UnknownOrder(1))
    ));

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].0, "POST");
    assert_eq!(seen[0].1, "application/x-www-form-urlencoded");
    assert_eq!(
        seen[0].3,
        format!("type=order&status=new&id={id}&event=new")
    );
    assert_eq!(
        seen[1].3,
        format!("type=order&status=send-to-delivery&id={id}&event=status")
    );
    assert_eq!(
        seen[2].2,
        format!("type=order&status=send-to-delivery&id={id}&event=status")
    );
    assert_eq!(seen[2].3, "");
    assert!(seen[3].1.starts_with("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&seen[3].3).expect("json"),
        json!({"type": "order", "status": "send-to-delivery", "id": id, "event": "status"})
    );
    assert_eq!((seen[4].2.as_str(), seen[4].3.as_str()), ("", ""));
}

async fn mg_post(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("X-Transport-Token", token)
        .json(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

#[tokio::test]
async fn mg_transport_registration_channels_messages_and_webhooks() {
    let (fake, _running, base) = started();
    let (receiver, seen) = receiver(json!({"external_message_id": "wamid.out", "async": false}));
    let webhook = format!("{}/mg/webhook", receiver.base_url());
    let module = json!({"code": "svyazka", "name": "Svyazka", "clientId": "client-1",
                        "integrations": {"mgTransport": {"webhookUrl": webhook}}})
    .to_string();

    fake.set_chats_enabled(KEY, false);
    let path = "/api/v5/integration-modules/svyazka/edit";
    let (status, body) = post_form(&base, path, &[("integrationModule", &module)]).await;
    assert_eq!(
        (status, body["errorMsg"].as_str()),
        (400, Some("Chats are not activated"))
    );
    fake.set_chats_enabled(KEY, true);

    let (status, body) = post_form(&base, path, &[("integrationModule", &module)]).await;
    assert_eq!(status, 200, "{body}");
    let endpoint = body["info"]["mgTransport"]["endpointUrl"]
        .as_str()
        .expect("endpoint");
    assert_eq!(endpoint, format!("{base}/mg"));
    let token = body["info"]["mgTransport"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // Re-registering keeps the token unless a refresh is asked for.
    let (_, again) = post_form(&base, path, &[("integrationModule", &module)]).await;
    assert_eq!(again["info"]["mgTransport"]["token"], token.as_str());
    let (_, shown) = get(&base, "/api/v5/integration-modules/svyazka", Some(KEY)).await;
    assert_eq!(
        shown["integrationModule"]["integrations"]["mgTransport"]["isActive"],
        true
    );
    let plain = json!({"code": "other", "name": "Other"}).to_string();
    let (_, plain) = post_form(
        &base,
        "/api/v5/integration-modules/other/edit",
        &[("integrationModule", &plain)],
    )
    .await;
    assert_eq!(plain["info"], json!([]));

    let api = format!("{endpoint}/api/transport/v1");
    let (status, body) = mg_post(&format!("{api}/channels"), "wrong", &json!({})).await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (401, Some("Invalid transport token"))
    );
    let (status, body) = mg_post(
        &format!("{api}/channels"),
        &token,
        &json!({"type": "whatsapp", "name": "Shop WA", "settings": {"text": {"creating": "both"}}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let channel = body["id"].as_i64().expect("channel id");

    let message = |text: &str, ext: &str| {
        json!({"channel": channel, "external_chat_id": "wa_79991234567",
               "customer": {"external_id": "79991234567", "nickname": "Ivan"},
               "message": {"external_id": ext, "type": "text", "text": text}})
    };
    let (status, first) = mg_post(
        &format!("{api}/messages"),
        &token,
        &message("Hello", "wamid.1"),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (_, repeat) = mg_post(
        &format!("{api}/messages"),
        &token,
        &message("Hello", "wamid.1"),
    )
    .await;
    assert_eq!(repeat["message_id"], first["message_id"]);
    assert_eq!(fake.mg_messages().len(), 1);

    let no_nick = json!({"channel": channel, "external_chat_id": "wa_new",
                         "customer": {"external_id": "1"}, "message": {"type": "text", "text": "x"}});
    let (status, body) = mg_post(&format!("{api}/messages"), &token, &no_nick).await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (400, Some("customer.nickname: this field is required"))
    );
    let long = "я".repeat(65_536);
    let (status, _) = mg_post(
        &format!("{api}/messages"),
        &token,
        &message(&long, "wamid.2"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = mg_post(
        &format!("{api}/messages"),
        &token,
        &json!({"channel": 999, "message": {"type": "text", "text": "x"}}),
    )
    .await;
    assert_eq!(status, 404);

    let reply = fake
        .operator_message(channel, "wa_79991234567", "Ваш заказ готов")
        .await
        .expect("webhook");
    assert_eq!(reply.json()["external_message_id"], "wamid.out");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].4, "client-1");
    let event: Value = serde_json::from_str(&seen[0].3).expect("json");
    assert_eq!(event["type"], "message_sent");
    assert_eq!(event["data"]["external_user_id"], "79991234567");
    assert_eq!(event["data"]["content"], "Ваш заказ готов");
    let messages = fake.mg_messages();
    assert_eq!(messages[1].originator, "user");
    assert_eq!(messages[1].external_id.as_deref(), Some("wamid.out"));
}
