//! A fake ChatAPI-family WhatsApp gateway (chat-api.com / 1msg.io request style).
//!
//! Routes: `/instance{ID}/{method}`, `/{ID}/{method}` (1msg.io) and `/{method}?instanceId=ID`;
//! auth only by `?token=`. Methods: `sendMessage` (JSON or form), `status`, `webhook` (GET/POST),
//! `settings` (GET/POST), `me`, and 1msg.io's templates: `GET templates` (`{"total",
//! "templates":[…]}`, each as the WhatsApp Business Account lists it plus its `namespace`) and
//! `POST sendTemplate` (`{template, namespace?, language{policy:"deterministic", code},
//! params:[Cloud API components], chatId|phone}`, validated like Meta: an unknown or unapproved
//! template is `(#132001)`, a wrong header or body variable count `(#132000)`, a media header
//! without its file `(#132012)`, a URL button without its variable `(#131008)`, each as HTTP 400
//! `{"error": …}`). The shape of the template items and of sendTemplate's answer (taken to be
//! sendMessage's) are UNCONFIRMED: 1msg's SDK types them as free maps. Failure modes on demand: unpaid instance, `sent:false`, the next
//! N requests answered 500, added latency (for client timeouts). The driver side POSTs webhook
//! bodies exactly like the gateway: `{"messages":[…],"instanceId":"<string>"}` and `{"ack":[…]}`,
//! without any signature.
//!
//! Control endpoints for the standalone binary (no auth): `POST /_fake/incoming`
//! `{"instanceId"?, "from", "name"?, "text"}` posts a customer message to the instance's webhook;
//! `GET /_fake/sent` lists the messages sent through the fake.

pub mod sink;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, http::Method, http::StatusCode, web};
use rand::Rng;
use serde_json::{Map, Value, json};

pub use sink::{Received, WebhookSink};

use crate::server::{Running, spawn};
use crate::wa_template::{self, Header, SentHeader};

/// The phone number the fake's instances pretend to be linked to (author of `fromMe` echoes).
pub const OWN_PHONE: &str = "79990000000";

/// A message accepted by `sendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub instance_id: String,
    /// As addressed: the `chatId` given, or `<phone>@c.us` when sent by `phone`.
    pub chat_id: String,
    /// Set when the request used `phone` instead of `chatId`.
    pub phone: Option<String>,
    pub body: String,
    pub id: String,
    pub queue_number: u64,
    /// Unix seconds, as the gateway stamps `time`.
    pub time: i64,
    /// `sendFile`: the file's name and caption (`body` is its URL).
    pub filename: Option<String>,
    pub caption: Option<String>,
    /// `sendTemplate`: the template's name and language (`body` is its text as the customer
    /// reads it) and its body variables.
    pub template: Option<(String, String)>,
    pub params: Vec<String>,
    /// `sendTemplate`: its header value and URL button variables (`(index, text)`).
    pub header: Option<SentHeader>,
    pub buttons: Vec<(String, String)>,
}

impl SentMessage {
    /// A text to be queued (`queue` gives it its id and number).
    fn text(instance_id: &str, chat_id: String, phone: Option<String>, body: String) -> Self {
        Self {
            instance_id: instance_id.to_owned(),
            chat_id,
            phone,
            body,
            id: String::new(),
            queue_number: 0,
            time: now(),
            filename: None,
            caption: None,
            template: None,
            params: Vec::new(),
            header: None,
            buttons: Vec::new(),
        }
    }
}

/// The namespace the fake's WhatsApp Business Account gives its templates.
pub const NAMESPACE: &str = "b8a5c7f2_1d3e_4f60_9a2b_7c4d5e6f7a8b";

/// A driver call named an instance the fake does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownInstance(pub String);

impl fmt::Display for UnknownInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the fake has no instance {:?}", self.0)
    }
}

impl std::error::Error for UnknownInstance {}

struct Instance {
    token: String,
    account_status: String,
    webhook_url: Option<String>,
    settings: Map<String, Value>,
    queue_number: u64,
    /// When set, sendMessage answers 200 `{"sent":false,"message":…}`.
    refusal: Option<String>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, Instance>,
    /// Creation order, so drivers have a default instance.
    order: Vec<String>,
    sent: Vec<SentMessage>,
    fail_next: u32,
    latency: Duration,
    /// The next `.0` accepted sends answer only after `.1` (sent, but the answer is late).
    stall_sends: (u32, Duration),
    message_number: u64,
    /// Last webhook body posted by a driver, for redelivery.
    last_posted: Option<(String, Value)>,
    /// `messageId`s the client marked read (`readMessage`), in order.
    read: Vec<String>,
    /// The account's message templates, as `GET /templates` lists them.
    templates: Vec<Value>,
    /// The next `.0` API requests answer HTTP `.1` with `{"error": .2}`.
    refuse_next: (u32, u16, String),
}

/// Handle to a running fake: configure instances and failure modes, inspect sends, drive webhooks.
#[derive(Clone)]
pub struct FakeChatApi {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl Default for FakeChatApi {
    fn default() -> Self {
        Self::new()
    }
}

fn default_settings() -> Map<String, Value> {
    let settings = json!({
        "webhookUrl": null,
        "ackNotificationsOn": false,
        "chatUpdateOn": false,
        "videoUploadOn": false,
        "statusNotificationsOn": false,
        "sendDelay": 0,
        "guaranteedHooks": false,
        "ignoreOldMessages": false,
        "processArchive": false,
        "instanceStatuses": false,
        "webhookStatuses": false,
        "parallelHooks": false,
        "proxy": "",
    });
    match settings {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn random_hex(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16)]))
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn digits_of(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

impl FakeChatApi {
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            http: reqwest::Client::builder()
                // Below the app's 5 s keep-alive: reusing a connection the app is closing fails with
                // "incomplete message" (a client race, not an app fault).
                .pool_idle_timeout(std::time::Duration::from_secs(3))
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Start on a free loopback port.
    pub fn start() -> std::io::Result<(Self, Running)> {
        let fake = Self::new();
        let running = fake.serve("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
        Ok((fake, running))
    }

    fn serve(&self, addr: std::net::SocketAddr) -> std::io::Result<Running> {
        let data = web::Data::new(self.clone());
        spawn(addr, move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(dispatch))
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the fake down for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add (or reset) an authenticated, paid instance.
    pub fn add_instance(&self, id: &str, token: &str) {
        let mut state = self.lock();
        if !state.order.iter().any(|i| i == id) {
            state.order.push(id.to_owned());
        }
        state.instances.insert(
            id.to_owned(),
            Instance {
                token: token.to_owned(),
                account_status: "authenticated".into(),
                webhook_url: None,
                settings: default_settings(),
                queue_number: 0,
                refusal: None,
            },
        );
    }

    fn with_instance<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Instance) -> T,
    ) -> Result<T, UnknownInstance> {
        let mut state = self.lock();
        let instance = state
            .instances
            .get_mut(id)
            .ok_or_else(|| UnknownInstance(id.to_owned()))?;
        Ok(f(instance))
    }

    /// `authenticated`, `got qr code`, `loading`, `init` or `not_paid` (which also makes
    /// sends and settings fail with a "not paid" error, as the real gateway did).
    pub fn set_account_status(&self, id: &str, status: &str) -> Result<(), UnknownInstance> {
        self.with_instance(id, |i| i.account_status = status.to_owned())
    }

    pub fn set_not_paid(&self, id: &str) -> Result<(), UnknownInstance> {
        self.set_account_status(id, "not_paid")
    }

    /// While `Some`, sendMessage answers HTTP 200 `{"sent":false,"message":<text>}`.
    pub fn refuse_sends(&self, id: &str, message: Option<&str>) -> Result<(), UnknownInstance> {
        self.with_instance(id, |i| i.refusal = message.map(str::to_owned))
    }

    /// The next `n` API requests (any instance, any method) answer HTTP 500.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// The next `n` API requests answer HTTP `status` with `{"error": message}` (e.g. 429, or a
    /// Meta error passed on).
    pub fn refuse_next(&self, n: u32, status: u16, message: &str) {
        self.lock().refuse_next = (n, status, message.to_owned());
    }

    /// An approved template (`{{1}}`-style body), in the WhatsApp Business Account's shape.
    pub fn add_template(&self, name: &str, language: &str, body: &str) {
        let example: Vec<String> = (1..=body.matches("{{").count())
            .map(|n| format!("example {n}"))
            .collect();
        self.lock().templates.push(json!({
            "name": name,
            "namespace": NAMESPACE,
            "language": language,
            "status": "approved",
            "category": "UTILITY",
            "id": random_hex(15),
            "components": [
                { "type": "HEADER", "format": "TEXT", "text": "Demo shop" },
                { "type": "BODY", "text": body, "example": { "body_text": [example] } },
                { "type": "FOOTER", "text": "Reply STOP to unsubscribe" },
            ],
        }));
    }

    /// An approved template with a header (text with `{{1}}`, or media linked at send time)
    /// and URL buttons `(caption, address)` after a quick reply; `sendTemplate` checks the
    /// `params` against it as Meta does (see [`wa_template::check`]).
    pub fn add_template_with(
        &self,
        name: &str,
        language: &str,
        body: &str,
        header: Header<'_>,
        url_buttons: &[(&str, &str)],
    ) {
        self.lock().templates.push(json!({
            "name": name,
            "namespace": NAMESPACE,
            "language": language,
            "status": "approved",
            "category": "UTILITY",
            "id": random_hex(15),
            "components": wa_template::components(body, header, url_buttons),
        }));
    }

    /// A template still in review: listed, never sendable.
    pub fn add_pending_template(&self, name: &str) {
        self.lock().templates.push(json!({
            "name": name, "namespace": NAMESPACE, "language": "ru", "status": "submitted",
            "category": "MARKETING", "id": random_hex(15),
            "components": [{ "type": "BODY", "text": "x" }],
        }));
    }

    /// The next `n` sends are accepted (the message goes out) but answered only after `delay`:
    /// a client with a shorter timeout never learns that they were sent.
    pub fn stall_sends(&self, n: u32, delay: Duration) {
        self.lock().stall_sends = (n, delay);
    }

    /// Delay every API answer, e.g. beyond a client's timeout.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn webhook_url(&self, id: &str) -> Option<String> {
        self.lock()
            .instances
            .get(id)
            .and_then(|i| i.webhook_url.clone())
    }

    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Incoming messages the client marked read (`readMessage`), in order.
    pub fn read_messages(&self) -> Vec<String> {
        self.lock().read.clone()
    }

    pub fn sent_count(&self) -> usize {
        self.lock().sent.len()
    }

    pub fn clear_sent(&self) {
        self.lock().sent.clear();
    }

    // ---- driver: what the gateway POSTs to our webhook ----

    /// Which `instanceId` a webhook to `url` carries: the instance subscribed to it, else the first.
    fn instance_for(&self, url: &str) -> String {
        let state = self.lock();
        state
            .order
            .iter()
            .find(|id| {
                state
                    .instances
                    .get(*id)
                    .and_then(|i| i.webhook_url.as_deref())
                    == Some(url)
            })
            .or_else(|| state.order.first())
            .cloned()
            .unwrap_or_else(|| "0".into())
    }

    fn next_message_number(&self) -> u64 {
        let mut state = self.lock();
        state.message_number += 1;
        state.message_number
    }

    /// A message object exactly as the gateway puts it in `messages[]`.
    pub fn message_json(
        &self,
        from_me: bool,
        phone: &str,
        name: &str,
        kind: &str,
        body: &str,
    ) -> Value {
        let chat_id = format!("{}@c.us", digits_of(phone));
        let author = if from_me {
            format!("{OWN_PHONE}@c.us")
        } else {
            chat_id.clone()
        };
        json!({
            "id": format!("{from_me}_{chat_id}_{}", random_hex(20)),
            "body": body,
            "type": kind,
            "senderName": name,
            "fromMe": from_me,
            "self": i32::from(from_me),
            "isForwarded": 0,
            "author": author,
            "time": now(),
            "chatId": chat_id,
            "messageNumber": self.next_message_number(),
            "chatName": name,
            "caption": null,
            "quotedMsgId": null,
            "quotedMsgBody": null,
            "quotedMsgType": null,
        })
    }

    /// A customer writes `text`: POST `{"messages":[…],"instanceId":"…"}` to `url`.
    pub async fn post_incoming(
        &self,
        url: &str,
        from_phone: &str,
        name: &str,
        text: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let message = self.message_json(false, from_phone, name, "chat", text);
        self.post_messages(url, vec![message]).await
    }

    /// Our own message coming back (`fromMe: true`), as the gateway echoes API and phone sends.
    pub async fn post_echo(
        &self,
        url: &str,
        to_phone: &str,
        text: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let message = self.message_json(true, to_phone, "Demo shop", "chat", text);
        self.post_messages(url, vec![message]).await
    }

    /// A non-text message (`image`, `ptt`, `document`, …): `body` is the file URL.
    pub async fn post_media(
        &self,
        url: &str,
        from_phone: &str,
        name: &str,
        kind: &str,
        file_url: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let message = self.message_json(false, from_phone, name, kind, file_url);
        self.post_messages(url, vec![message]).await
    }

    /// Several message objects in one body, as the gateway batches them.
    pub async fn post_messages(
        &self,
        url: &str,
        messages: Vec<Value>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let body = json!({ "messages": messages, "instanceId": self.instance_for(url) });
        self.post_raw(url, &body).await
    }

    /// A delivery receipt: `{"ack":[{"id","queueNumber","chatId","status"}],"instanceId":…}`.
    pub async fn post_ack(
        &self,
        url: &str,
        message_id: &str,
        chat_id: &str,
        status: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let queue_number = self
            .lock()
            .sent
            .iter()
            .find(|s| s.id == message_id)
            .map_or(0, |s| s.queue_number);
        let body = json!({
            "ack": [{ "id": message_id, "queueNumber": queue_number, "chatId": chat_id, "status": status }],
            "instanceId": self.instance_for(url),
        });
        self.post_raw(url, &body).await
    }

    /// POST any JSON body; it becomes the one `redeliver_last` repeats.
    pub async fn post_raw(
        &self,
        url: &str,
        body: &Value,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.lock().last_posted = Some((url.to_owned(), body.clone()));
        let response = self.http.post(url).json(body).send().await?;
        Ok(response.status())
    }

    /// Send the last posted body again, as `guaranteedHooks` does until it gets a 200.
    /// `None` when nothing was posted yet.
    pub async fn redeliver_last(&self) -> Option<Result<reqwest::StatusCode, reqwest::Error>> {
        let (url, body) = self.lock().last_posted.clone()?;
        Some(
            self.http
                .post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status()),
        )
    }

    /// The last posted body (to read the generated message id).
    pub fn last_posted(&self) -> Option<Value> {
        self.lock()
            .last_posted
            .as_ref()
            .map(|(_, body)| body.clone())
    }

    /// `id` of the first message of the last posted body.
    pub fn last_message_id(&self) -> Option<String> {
        self.last_posted()?
            .get("messages")?
            .get(0)?
            .get("id")?
            .as_str()
            .map(str::to_owned)
    }
}

// ---- HTTP side ----

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

fn query_pairs(req: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Request parameters from a JSON or urlencoded body; `None` when the body is neither.
fn body_params(req: &HttpRequest, body: &[u8]) -> Option<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Map::new());
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let form = || {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            })
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        Ok(_) => None,
        Err(_) if content_type.starts_with("application/json") => None,
        Err(_) => form(),
    }
}

/// `(instance id, method)` from the three URL forms.
fn route(req: &HttpRequest, query: &HashMap<String, String>) -> Option<(String, String)> {
    let path = req.path().trim_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let is_id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match segments.as_slice() {
        [first, method] => {
            let id = first.strip_prefix("instance").unwrap_or(first);
            is_id(id).then(|| (id.to_owned(), (*method).to_owned()))
        }
        [method] if !method.is_empty() => query
            .get("instanceId")
            .map(|id| (id.clone(), (*method).to_owned())),
        _ => None,
    }
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeChatApi>,
) -> HttpResponse {
    if let Some(control) = req.path().strip_prefix("/_fake/") {
        return control_endpoint(&fake, control, &req, &body).await;
    }
    let latency = fake.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let query = query_pairs(&req);
    let Some((id, method)) = route(&req, &query) else {
        return error(
            StatusCode::NOT_FOUND,
            "Not found. Use /instance{ID}/{method}?token={TOKEN}",
        );
    };
    let mut stall = None;
    let answer = {
        let mut guard = fake.lock();
        let state = &mut *guard;
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
        if state.refuse_next.0 > 0 {
            state.refuse_next.0 -= 1;
            let status =
                StatusCode::from_u16(state.refuse_next.1).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, state.refuse_next.2.clone());
        }
        let token = query.get("token").map(String::as_str).unwrap_or("");
        let authorised = state.instances.get(&id).is_some_and(|i| i.token == token);
        if !authorised {
            return error(
                StatusCode::UNAUTHORIZED,
                format!(
                    "Wrong token \"{token}\" for instance \"{id}\". Please provide token as a GET parameter."
                ),
            );
        }
        let Some(params) = body_params(&req, &body) else {
            return error(
                StatusCode::BAD_REQUEST,
                "Request body must be JSON or x-www-form-urlencoded",
            );
        };
        let Some(instance) = state.instances.get_mut(&id) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "instance vanished");
        };
        let not_paid = instance.account_status == "not_paid";
        let unpaid = || {
            error(
                StatusCode::PAYMENT_REQUIRED,
                format!("Instance \"{id}\" is not paid. Please pay for it to continue."),
            )
        };
        let get = req.method() == Method::GET;
        match method.as_str() {
            "sendMessage" if get => {
                error(StatusCode::METHOD_NOT_ALLOWED, "Use POST for sendMessage")
            }
            "sendMessage" if not_paid => unpaid(),
            "sendMessage" => {
                let answer = send_message(&id, instance, &mut state.sent, &params);
                if answer.status().is_success() && state.stall_sends.0 > 0 {
                    state.stall_sends.0 -= 1;
                    stall = Some(state.stall_sends.1);
                }
                answer
            }
            "sendTemplate" if get => {
                error(StatusCode::METHOD_NOT_ALLOWED, "Use POST for sendTemplate")
            }
            "sendTemplate" if not_paid => unpaid(),
            "sendTemplate" => {
                let answer =
                    send_template(&id, instance, &state.templates, &mut state.sent, &params);
                if answer.status().is_success() && state.stall_sends.0 > 0 {
                    state.stall_sends.0 -= 1;
                    stall = Some(state.stall_sends.1);
                }
                answer
            }
            "templates" if get => HttpResponse::Ok().json(json!({
                "total": state.templates.len(),
                "templates": state.templates,
            })),
            "sendFile" if get => error(StatusCode::METHOD_NOT_ALLOWED, "Use POST for sendFile"),
            "sendFile" if not_paid => unpaid(),
            "sendFile" => {
                let answer = send_file(&id, instance, &mut state.sent, &params);
                if answer.status().is_success() && state.stall_sends.0 > 0 {
                    state.stall_sends.0 -= 1;
                    stall = Some(state.stall_sends.1);
                }
                answer
            }
            "readMessage" if get => {
                error(StatusCode::METHOD_NOT_ALLOWED, "Use POST for readMessage")
            }
            "readMessage" => {
                let message = params
                    .get("messageId")
                    .or_else(|| params.get("msgId"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty());
                match message {
                    Some(m) => {
                        state.read.push(m.to_owned());
                        // The success body is not documented (1msg's SDK reads none); ours.
                        HttpResponse::Ok().json(json!({ "read": true, "message": "ok" }))
                    }
                    None => error(StatusCode::BAD_REQUEST, "Parameter messageId is required"),
                }
            }
            "messages" if get => HttpResponse::Ok().json(history(&id, &state.sent, &query)),
            "status" => HttpResponse::Ok().json(status_body(instance, &query)),
            "webhook" if get => {
                HttpResponse::Ok().json(json!({ "webhookUrl": instance.webhook_url }))
            }
            "webhook" if not_paid => unpaid(),
            "webhook" => match params.get("webhookUrl") {
                Some(Value::String(url)) => set_webhook(instance, url),
                Some(Value::Null) => set_webhook(instance, ""),
                _ => error(StatusCode::BAD_REQUEST, "webhookUrl is required"),
            },
            "settings" if get => HttpResponse::Ok().json(settings_body(instance)),
            "settings" if not_paid => unpaid(),
            "settings" => update_settings(instance, params),
            "me" => HttpResponse::Ok().json(json!({
                "id": format!("{OWN_PHONE}@c.us"),
                "name": "Demo shop",
                "battery": 100,
                "locale": "ru_RU",
                "wa_version": "2.2306.7",
                "device": { "manufacturer": "Fake", "model": "testkit" },
            })),
            other => error(StatusCode::NOT_FOUND, format!("Method {other} not found")),
        }
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// `sendFile`: `body` is the file's URL (or a data URI), `filename` names it; the gateway
/// downloads and queues it like a text.
fn send_file(
    id: &str,
    instance: &mut Instance,
    sent: &mut Vec<SentMessage>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let body = params
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !(body.starts_with("http://") || body.starts_with("https://") || body.starts_with("data:")) {
        return error(
            StatusCode::BAD_REQUEST,
            "Parameter body must be a file URL or a data URI",
        );
    }
    let Some(filename) = params
        .get("filename")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "Parameter filename is required");
    };
    let before = sent.len();
    let answer = send_message(id, instance, sent, params);
    if sent.len() > before
        && let Some(m) = sent.last_mut()
    {
        m.filename = Some(filename.to_owned());
        m.caption = params
            .get("caption")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    answer
}

fn send_message(
    id: &str,
    instance: &mut Instance,
    sent: &mut Vec<SentMessage>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let text = match params.get("body") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Parameter body is required and must be a non-empty string",
            );
        }
    };
    let (chat_id, phone) = match recipient(params) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    if let Some(message) = &instance.refusal {
        return HttpResponse::Ok().json(json!({ "sent": false, "message": message }));
    }
    // The real gateway queues even while the phone is offline or unlinked, so only an unpaid
    // instance (handled by the caller) refuses here.
    queue(instance, sent, SentMessage::text(id, chat_id, phone, text))
}

/// Queues an accepted message under a new id and queue number, answering as the gateway does.
fn queue(instance: &mut Instance, sent: &mut Vec<SentMessage>, mut m: SentMessage) -> HttpResponse {
    instance.queue_number += 1;
    m.id = format!("true_{}_{}", m.chat_id, random_hex(20));
    m.queue_number = instance.queue_number;
    let answer = json!({
        "sent": true,
        "message": "ok",
        "id": m.id,
        "queueNumber": instance.queue_number,
    });
    sent.push(m);
    HttpResponse::Ok().json(answer)
}

/// The addressee of a send: `chatId`, or `phone` (number or digit string), exactly one; or
/// the gateway's words for HTTP 400.
fn recipient(params: &Map<String, Value>) -> Result<(String, Option<String>), &'static str> {
    let bad = Err;
    let phone = params.get("phone").filter(|v| !v.is_null());
    let chat_id = params.get("chatId").filter(|v| !v.is_null());
    match (phone, chat_id) {
        (Some(phone), None) => {
            // The spec types phone as an integer; clients send strings too.
            let digits = match phone {
                Value::Number(n) => n.as_u64().map(|n| n.to_string()),
                Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(s.clone())
                }
                _ => None,
            };
            match digits {
                Some(digits) => Ok((format!("{digits}@c.us"), Some(digits))),
                None => bad("phone must be digits with the country code, without +"),
            }
        }
        (None, Some(Value::String(chat_id))) => {
            let valid = ["@c.us", "@g.us"].iter().any(|suffix| {
                chat_id.strip_suffix(suffix).is_some_and(|local| {
                    !local.is_empty() && local.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                })
            });
            if valid {
                Ok((chat_id.clone(), None))
            } else {
                bad("chatId must look like 79991234567@c.us or 79991234567-1600000000@g.us")
            }
        }
        (None, Some(_)) => bad("chatId must be a string"),
        _ => bad("Provide exactly one of phone or chatId"),
    }
}

/// `sendTemplate`: the template must be approved in that language (else Meta's 132001), its
/// namespace the account's when given, `params` Cloud API components (never strings) checked
/// against the template as Meta checks them (132000 for a variable count, 132012 for a media
/// header without its file, 131008 for a URL button without its variable). The sent message's
/// `body` is the template's text as the customer reads it, so the history shows it.
fn send_template(
    id: &str,
    instance: &mut Instance,
    templates: &[Value],
    sent: &mut Vec<SentMessage>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, m);
    let Some(name) = params
        .get("template")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return bad("Parameter template is required");
    };
    let language = params.get("language");
    if language
        .and_then(|l| l.get("policy"))
        .and_then(Value::as_str)
        != Some("deterministic")
    {
        return bad("language.policy must be \"deterministic\"");
    }
    let Some(code) = language
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    else {
        return bad("language.code is required");
    };
    if let Some(ns) = params.get("namespace").filter(|n| !n.is_null())
        && ns.as_str() != Some(NAMESPACE)
    {
        return bad("namespace does not belong to this channel's account");
    }
    let components = match params.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => items.clone(),
        Some(_) => return bad("params must be a list of template components, never of strings"),
    };
    let (chat_id, phone) = match recipient(params) {
        Ok(r) => r,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let Some(definition) = templates
        .iter()
        .find(|t| {
            t["name"] == name
                && t["language"] == code
                && t["status"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("approved"))
        })
        .and_then(|t| t["components"].as_array())
    else {
        return bad(&format!(
            "(#132001) Template name does not exist in the translation: template name ({name}) does not exist in {code}"
        ));
    };
    let body = definition
        .iter()
        .find(|c| c["type"] == "BODY")
        .and_then(|c| c["text"].as_str())
        .unwrap_or_default();
    let filled = match wa_template::check(definition, &components) {
        Ok(f) if !f.body.iter().any(String::is_empty) => f,
        Ok(f) => {
            let n = f.body.len();
            return bad(&format!(
                "(#132000) Number of parameters does not match the expected number of params: body: number of localizable_params ({n}) does not match the expected number of params ({n})"
            ));
        }
        Err(r) => return bad(&format!("{}: {}", r.message, r.details)),
    };
    let wanted = wa_template::placeholders(body);
    let mut text = body.to_owned();
    for (name, value) in wanted.iter().zip(&filled.body) {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    let mut message = SentMessage::text(id, chat_id, phone, text);
    message.template = Some((name.to_owned(), code.to_owned()));
    message.params = filled.body;
    message.header = filled.header;
    message.buttons = filled.buttons;
    queue(instance, sent, message)
}

/// `GET /messages?chatId=&min_time=&limit=`: the instance's messages, oldest first. The fake
/// knows only what was sent through it (`fromMe: true`).
fn history(id: &str, sent: &[SentMessage], query: &HashMap<String, String>) -> Value {
    let min_time = query
        .get("min_time")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(i64::MIN);
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100);
    let chat = query.get("chatId");
    let mine: Vec<&SentMessage> = sent
        .iter()
        .filter(|m| m.instance_id == id && m.time >= min_time)
        .filter(|m| chat.is_none_or(|c| *c == m.chat_id))
        .collect();
    let skip = mine.len().saturating_sub(limit);
    let messages: Vec<Value> = mine[skip..]
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "body": m.body,
                "fromMe": true,
                "self": 1,
                "isForwarded": 0,
                "author": format!("{OWN_PHONE}@c.us"),
                "time": m.time,
                "chatId": m.chat_id,
                "messageNumber": m.queue_number,
                "type": "chat",
                "senderName": "Demo shop",
                "caption": null,
                "quotedMsgBody": null,
                "quotedMsgId": null,
                "chatName": m.chat_id,
            })
        })
        .collect();
    let last = mine.last().map_or(0, |m| m.queue_number);
    json!({ "messages": messages, "lastMessageNumber": last })
}

fn status_body(instance: &Instance, query: &HashMap<String, String>) -> Value {
    let mut body = json!({ "accountStatus": instance.account_status });
    let status_data = match instance.account_status.as_str() {
        "got qr code" => {
            // A 1×1 PNG stands in for the QR code.
            body["qrCode"] = json!(
                "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
            );
            json!({ "substatus": "normal", "title": "Scan the QR code", "msg": "Open WhatsApp on the phone and scan the code" })
        }
        "loading" => {
            json!({ "substatus": "loading", "title": "Loading", "msg": "Try again in 1 minute" })
        }
        "init" => {
            json!({ "substatus": "init", "title": "Instance is starting", "msg": "Try again in 1 minute" })
        }
        "not_paid" => {
            json!({ "substatus": "not_paid", "title": "Not paid", "msg": "Pay for the instance" })
        }
        _ => json!({ "substatus": "normal" }),
    };
    if query.get("full").is_some_and(|v| v == "true") || instance.account_status != "authenticated"
    {
        body["statusData"] = status_data;
    }
    body
}

fn set_webhook(instance: &mut Instance, url: &str) -> HttpResponse {
    let url = url.trim();
    let is_http = url.starts_with("http://") || url.starts_with("https://");
    if !url.is_empty() && !is_http {
        return HttpResponse::Ok().json(json!({ "set": false, "message": "Invalid webhook URL" }));
    }
    instance.webhook_url = (!url.is_empty()).then(|| url.to_owned());
    instance
        .settings
        .insert("webhookUrl".into(), json!(instance.webhook_url));
    HttpResponse::Ok().json(json!({ "set": true, "message": url }))
}

fn settings_body(instance: &Instance) -> Value {
    let mut settings = instance.settings.clone();
    settings.insert("webhookUrl".into(), json!(instance.webhook_url));
    Value::Object(settings)
}

fn update_settings(instance: &mut Instance, params: Map<String, Value>) -> HttpResponse {
    let mut update = Map::new();
    for (key, value) in params {
        if key == "webhookUrl" {
            let url = value.as_str().unwrap_or("").trim().to_owned();
            instance.webhook_url = (!url.is_empty()).then_some(url);
        }
        instance.settings.insert(key.clone(), value.clone());
        update.insert(key, value);
    }
    let mut body = settings_body(instance);
    body["update"] = Value::Object(update);
    HttpResponse::Ok().json(body)
}

async fn control_endpoint(
    fake: &FakeChatApi,
    path: &str,
    req: &HttpRequest,
    body: &[u8],
) -> HttpResponse {
    match (req.method().as_str(), path) {
        ("GET", "sent") => {
            let sent: Vec<Value> = fake
                .sent_messages()
                .into_iter()
                .map(|s| json!({ "instanceId": s.instance_id, "chatId": s.chat_id, "body": s.body, "id": s.id }))
                .collect();
            HttpResponse::Ok().json(sent)
        }
        ("POST", "incoming") => {
            let params = body_params(req, body).unwrap_or_default();
            let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(from), Some(message)) = (text("from"), text("text")) else {
                return error(StatusCode::BAD_REQUEST, "from and text are required");
            };
            let instance = text("instanceId")
                .or_else(|| fake.lock().order.first().cloned())
                .unwrap_or_default();
            let Some(url) = fake.webhook_url(&instance) else {
                return error(
                    StatusCode::CONFLICT,
                    format!("instance {instance:?} has no webhook URL set"),
                );
            };
            let name = text("name").unwrap_or_else(|| "Customer".into());
            match fake.post_incoming(&url, &from, &name, &message).await {
                Ok(status) => HttpResponse::Ok().json(
                    json!({ "webhookStatus": status.as_u16(), "id": fake.last_message_id() }),
                ),
                Err(e) => error(StatusCode::BAD_GATEWAY, format!("webhook failed: {e}")),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "unknown control endpoint"),
    }
}

/// Run the fake for the `testkit` binary with a demo instance until Ctrl-C.
pub async fn serve_standalone(port: u16) -> std::io::Result<()> {
    let fake = FakeChatApi::new();
    fake.add_instance("1101", "demo-token");
    let running = fake.serve(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    let base = running.base_url();
    println!("Fake ChatAPI listening on {base}");
    println!("  instance URL: {base}/instance1101   token: demo-token   (status: authenticated)");
    println!("  also 1msg.io style: {base}/1101");
    println!(
        "  a customer writes: curl -X POST {base}/_fake/incoming -H 'Content-Type: application/json' \\"
    );
    println!("      -d '{{\"from\":\"79991234567\",\"name\":\"Ivan\",\"text\":\"Hello\"}}'");
    println!("  messages sent by the app: curl {base}/_fake/sent");
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests;
