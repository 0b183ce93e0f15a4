//! A faithful double of a RetailCRM account (API v5) and its Message Gateway transport API.
//!
//! One HTTP server on loopback serves both: API v5 under `/api/...` and MG under
//! `/mg/api/transport/v1/...` (the integration-module edit hands out `<base>/mg` as the MG
//! endpoint). State lives in memory behind the [`FakeRetailCrm`] handle, which tests use to
//! seed data, inject faults, inspect what the code under test did and drive RetailCRM-initiated
//! calls (trigger HTTP actions, operator messages sent through MG webhooks).
//!
//! What it reproduces is section 9 of `shared/reference/retailcrm-api.md`. Where that reference
//! marks the real behaviour UNCONFIRMED, the choice made here is noted at the place it is made.

mod api;
mod mg;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{App, web};
use serde_json::{Value, json};

use crate::server::{Running, spawn};
use state::State;

/// Every scope the fake knows; `ApiKey::full`/`selective` grant all of them.
pub const ALL_SCOPES: &[&str] = &[
    "order_read",
    "order_write",
    "customer_read",
    "customer_write",
    "reference_read",
    "reference_write",
    "integration_read",
    "integration_write",
    "store_read",
    "store_write",
    "user_read",
    "user_write",
    "analytics_read",
    "cost_read",
    "cost_write",
    "payments_read",
    "payments_write",
    "telephony_read",
    "telephony_write",
    "delivery_read",
    "delivery_write",
];

/// Key and store of the account `serve_standalone` seeds.
pub const DEMO_KEY: &str = "demo-key";
pub const DEMO_SITE: &str = "shop";

/// Which stores a key reaches (`siteAccess` in `/api/credentials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteAccess {
    /// `access_full`: every store of the account.
    Full,
    /// `access_selective`: only `ApiKey::sites`.
    Selective,
}

/// An API key of the fake account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub scopes: Vec<String>,
    pub site_access: SiteAccess,
    /// Stores of a selective key (ignored for `Full`, which reaches all stores).
    pub sites: Vec<String>,
    /// False models an account whose plan has no API access: every call is refused.
    pub api_enabled: bool,
    /// False models an account without chats: registering an MG transport fails.
    pub chats_enabled: bool,
}

impl ApiKey {
    /// A key with every scope and access to every store.
    pub fn full(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            site_access: SiteAccess::Full,
            sites: Vec::new(),
            api_enabled: true,
            chats_enabled: true,
        }
    }

    /// A key with every scope, bound to `sites`.
    pub fn selective(key: &str, sites: &[&str]) -> Self {
        Self {
            site_access: SiteAccess::Selective,
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::full(key)
        }
    }

    /// Replaces the scopes.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn with_api_enabled(mut self, enabled: bool) -> Self {
        self.api_enabled = enabled;
        self
    }

    pub fn with_chats_enabled(mut self, enabled: bool) -> Self {
        self.chats_enabled = enabled;
        self
    }
}

/// Request counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Every HTTP request the server received (API v5, MG, unknown paths).
    pub total_requests: u64,
    /// Answers refused by the rate limiter (503 on API v5, 429 on MG).
    pub rate_limited: u64,
    /// Per API key (only requests that carried a known key).
    pub per_key: BTreeMap<String, KeyStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyStats {
    pub requests: u64,
    /// Most requests that arrived within any one-second window.
    pub max_per_second: u32,
}

/// A message that went through the fake MG (from a customer via the transport API, or from an
/// operator via [`FakeRetailCrm::operator_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgMessageRecord {
    pub id: i64,
    pub channel_id: i64,
    /// The channel's messenger type ("whatsapp", "telegram", …) as it was registered.
    pub channel_type: String,
    pub external_chat_id: String,
    pub customer_external_id: Option<String>,
    /// The transport's id for the message (customer messages: `message.external_id`;
    /// operator messages: the `external_message_id` the webhook answered).
    pub external_id: Option<String>,
    /// "customer" or "user" (an operator).
    pub originator: String,
    pub text: String,
    /// RFC 3339.
    pub time: String,
    /// As MG shows it: "received" (a customer's), "sending", "sent" or "failed" (an
    /// operator's, after the transport's answer or acknowledgement), "seen" once the
    /// transport reports the customer read it.
    pub status: String,
    /// The transport's error for a failed operator message (`{"code","message",…}`).
    pub error: Option<Value>,
    /// text, image, file or audio.
    pub kind: String,
    /// Files of a media message: `{"id", "caption"?}` as sent (customer) or posted (operator).
    pub items: Vec<Value>,
}

/// A file MG stores (`POST /files/upload*`), served back at `{base}/mg/files/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgFileRecord {
    pub id: String,
    /// none, image, video, file or audio, from the bytes.
    pub kind: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
    /// Where MG downloaded it from, for `upload_by_url`.
    pub source_url: Option<String>,
}

/// Event of a trigger's "Send HTTP request" action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerEvent {
    New,
    Status,
}

impl TriggerEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Status => "status",
        }
    }
}

/// How the trigger's parameters travel; RetailCRM's UI offers query string, urlencoded body and
/// a custom body (we use JSON for the latter); `Empty` is a trigger configured without
/// parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerEncoding {
    Form,
    Query,
    Json,
    Empty,
}

/// What the code under test answered to a driven call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverReply {
    pub status: u16,
    pub body: String,
}

impl DriverReply {
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a driver could not make its call.
#[derive(Debug)]
pub enum DriverError {
    UnknownOrder(i64),
    UnknownChannel(i64),
    /// The fake refused the seeded data (same texts as its API validation).
    Invalid(String),
    Http(reqwest::Error),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOrder(id) => write!(f, "the fake has no order {id}"),
            Self::UnknownChannel(id) => write!(f, "the fake has no MG channel {id} with a webhook"),
            Self::Invalid(why) => write!(f, "the fake refused the data: {why}"),
            Self::Http(e) => write!(f, "request failed: {e}"),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Http(e) => Some(e),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for DriverError {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e)
    }
}

/// Handle of a fake account; clones share the state.
#[derive(Clone)]
pub struct FakeRetailCrm {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl Default for FakeRetailCrm {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRetailCrm {
    /// An account with the default status references, no stores and no keys; API rate limit
    /// 10 rps per key, MG dedupe on, no faults.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new())),
            http: reqwest::Client::builder()
                // Below the app's 5 s keep-alive: reusing a connection the app is closing fails with
                // "incomplete message" (a client race, not an app fault).
                .pool_idle_timeout(std::time::Duration::from_secs(3))
                .timeout(Duration::from_secs(10))
                .build()
                // Only fails when the TLS backend cannot initialise: a broken test binary.
                .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}")),
        }
    }

    /// A fresh fake on a free loopback port.
    pub fn start() -> io::Result<(Self, Running)> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// A fresh fake on `addr`.
    pub fn start_on(addr: SocketAddr) -> io::Result<(Self, Running)> {
        let fake = Self::new();
        let running = fake.serve(addr)?;
        Ok((fake, running))
    }

    /// Serves this handle's state on `addr` (must be called inside a tokio runtime).
    pub fn serve(&self, addr: SocketAddr) -> io::Result<Running> {
        let data = web::Data::new(self.clone());
        spawn(addr, move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(24 * 1024 * 1024))
                .default_service(web::to(api::entry))
        })
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // State is only mutated by short synchronous sections; a panic in one of them is
        // already a failed test, so keep serving what is there.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    // ---- setup -------------------------------------------------------------------------

    /// Adds (or replaces) a store.
    pub fn add_site(&self, code: &str, name: &str) {
        self.with(|s| s.add_site(code, name));
    }

    /// Adds (or replaces) an API key.
    pub fn add_key(&self, key: ApiKey) {
        self.with(|s| s.add_key(key));
    }

    /// Switches an existing key's plan API access.
    pub fn set_api_enabled(&self, key: &str, enabled: bool) {
        self.with(|s| {
            if let Some(k) = s.keys.get_mut(key) {
                k.spec.api_enabled = enabled;
            }
        });
    }

    /// Switches whether chats are activated for an existing key's account.
    pub fn set_chats_enabled(&self, key: &str, enabled: bool) {
        self.with(|s| {
            if let Some(k) = s.keys.get_mut(key) {
                k.spec.chats_enabled = enabled;
            }
        });
    }

    /// Adds an order status (codes may look numeric, e.g. "3") to a status group.
    pub fn add_status(&self, code: &str, name: &str, group: &str) {
        self.with(|s| s.add_status(code, name, group));
    }

    /// API v5 token bucket per key, `None` = unlimited. Default 10 rps (burst of `rps`).
    pub fn set_rate_limit(&self, rps: Option<f64>) {
        self.with(|s| s.cfg.rps = rps);
    }

    /// Answer rate-limited requests with an nginx HTML page instead of the JSON body
    /// (the real 503 body is UNCONFIRMED; clients must not need JSON).
    pub fn set_rate_limit_html(&self, html: bool) {
        self.with(|s| s.cfg.rate_limit_html = html);
    }

    /// MG token bucket per transport token, `None` (default) = unlimited; excess → 429.
    pub fn set_mg_rate_limit(&self, rps: Option<f64>) {
        self.with(|s| s.cfg.mg_rps = rps);
    }

    /// The next `count` requests (any path) fail with `status` (503/429 with the rate-limit
    /// body, others with a server-error body) before anything else is checked.
    pub fn fail_next(&self, count: u32, status: u16) {
        self.fail_after(0, count, status);
    }

    /// Lets `skip` requests through, then fails the next `count` with `status`: a failure in
    /// the middle of a multi-step run.
    pub fn fail_after(&self, skip: u32, count: u32, status: u16) {
        self.with(|s| {
            s.cfg.fault_skip = skip;
            s.cfg.fault = (count > 0).then_some((status, count));
        });
    }

    /// The next `count` POST requests (creates, MG sends) are carried out but answered only
    /// after `delay`: a client with a shorter timeout does not learn that they went through.
    pub fn stall_next(&self, count: u32, delay: Duration) {
        self.with(|s| s.cfg.stall = (count, delay));
    }

    /// Delay every answer by `latency` (for client timeouts).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.with(|s| s.cfg.latency = latency);
    }

    /// `false`: the account "does not exist" and every API v5 path answers an HTML page.
    pub fn set_account_exists(&self, exists: bool) {
        self.with(|s| s.cfg.account_exists = exists);
    }

    /// Render validation `errors` as a list of "field: message" strings instead of an object
    /// (RetailCRM uses both shapes).
    pub fn set_errors_as_list(&self, list: bool) {
        self.with(|s| s.cfg.errors_as_list = list);
    }

    /// MG answers a repeated `message.external_id` in the same channel with the first
    /// message's id instead of storing it again (default on; real behaviour UNCONFIRMED).
    pub fn set_mg_dedupe(&self, dedupe: bool) {
        self.with(|s| s.cfg.mg_dedupe = dedupe);
    }

    /// Stores a customer directly (no HTTP, no rate limit) and returns its id. `customer` is
    /// RetailCRM's customer JSON (`firstName`, `phones`, `externalId`, …).
    pub fn insert_customer(&self, site: &str, customer: Value) -> Result<i64, DriverError> {
        self.with(|s| s.create_customer(site, &customer))
            .map_err(|errors| DriverError::Invalid(state::join_errors(&errors)))
    }

    /// Stores an order directly (no HTTP, no rate limit) and returns its id. `order` is
    /// RetailCRM's order JSON, e.g. `{"firstName":"Ivan","customer":{"id":4001}}`.
    pub fn insert_order(&self, site: &str, order: Value) -> Result<i64, DriverError> {
        self.with(|s| s.create_order(site, &order))
            .map_err(|errors| DriverError::Invalid(state::join_errors(&errors)))
    }

    /// Changes an order's status as a manager would; false when the order or status is unknown.
    pub fn set_order_status(&self, order_id: i64, status: &str) -> bool {
        self.with(|s| s.set_order_status(order_id, status))
    }

    /// Forgets request counters (not data).
    pub fn reset_stats(&self) {
        self.with(|s| s.reset_stats());
    }

    // ---- inspection --------------------------------------------------------------------

    pub fn customers(&self) -> Vec<Value> {
        self.with(|s| s.customers.values().cloned().collect())
    }

    pub fn customer(&self, id: i64) -> Option<Value> {
        self.with(|s| s.customers.get(&id).cloned())
    }

    /// Orders as `GET /orders/{id}` renders them.
    pub fn orders(&self) -> Vec<Value> {
        self.with(|s| s.orders.values().map(state::render_order).collect())
    }

    pub fn order(&self, id: i64) -> Option<Value> {
        self.with(|s| s.orders.get(&id).map(state::render_order))
    }

    pub fn integration_modules(&self) -> Vec<Value> {
        self.with(|s| s.modules.values().map(|m| m.value.clone()).collect())
    }

    pub fn mg_channels(&self) -> Vec<Value> {
        self.with(|s| s.channels.values().map(|c| c.value.clone()).collect())
    }

    pub fn mg_messages(&self) -> Vec<MgMessageRecord> {
        self.with(|s| s.messages.clone())
    }

    /// A file MG holds, by its id.
    pub fn mg_file(&self, id: &str) -> Option<MgFileRecord> {
        self.with(|s| s.files.get(id).cloned())
    }

    /// Stores a file as MG does when an operator attaches one; answers its id.
    pub fn add_mg_file(&self, bytes: &[u8]) -> String {
        self.with(|s| s.store_file(bytes.to_vec(), None))
    }

    pub fn stats(&self) -> Stats {
        self.with(|s| s.stats())
    }

    /// Most requests of `key` seen within any one-second window (0 for an unknown key).
    pub fn max_requests_per_second(&self, key: &str) -> u32 {
        self.with(|s| s.keys.get(key).map_or(0, |k| k.max_per_second))
    }

    // ---- drivers: calls RetailCRM makes to the integration ------------------------------

    /// Does what a trigger's "Send HTTP request" action does for `order_id`: POST
    /// `type=order&status=<code>&id=<id>&event=<event>` form-urlencoded to `url`.
    pub async fn fire_trigger(
        &self,
        url: &str,
        order_id: i64,
        event: TriggerEvent,
    ) -> Result<DriverReply, DriverError> {
        self.fire_trigger_as(url, order_id, event, TriggerEncoding::Form)
            .await
    }

    /// Like [`Self::fire_trigger`] with the parameters in the query string, a JSON body, or not
    /// sent at all (`Empty`, a trigger saved without parameters).
    pub async fn fire_trigger_as(
        &self,
        url: &str,
        order_id: i64,
        event: TriggerEvent,
        encoding: TriggerEncoding,
    ) -> Result<DriverReply, DriverError> {
        let status = self
            .with(|s| {
                s.orders
                    .get(&order_id)
                    .and_then(|o| o.get("status"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or(DriverError::UnknownOrder(order_id))?;
        let id = order_id.to_string();
        let params = [
            ("type", "order"),
            ("status", status.as_str()),
            ("id", id.as_str()),
            ("event", event.as_str()),
        ];
        let request = self.http.post(url);
        let request = match encoding {
            TriggerEncoding::Form => request.form(&params),
            TriggerEncoding::Query => request.query(&params),
            TriggerEncoding::Json => request.json(&json!({
                "type": "order", "status": status, "id": order_id, "event": event.as_str()
            })),
            TriggerEncoding::Empty => request,
        };
        let response = request.send().await?;
        Ok(DriverReply {
            status: response.status().as_u16(),
            body: response.text().await?,
        })
    }

    /// Fires the extended trigger body (Svyazka's trigger card) for `order_id`: the guide's four
    /// parameters and the order's `number`, `first_name`, `last_name`, `phone`, `email`,
    /// `total`, `site`, form-urlencoded as `|url_encode` renders them; a value the order lacks
    /// renders empty, as Twig renders a null.
    pub async fn fire_extended_trigger(
        &self,
        url: &str,
        order_id: i64,
        event: TriggerEvent,
    ) -> Result<DriverReply, DriverError> {
        let order = self
            .order(order_id)
            .ok_or(DriverError::UnknownOrder(order_id))?;
        let text = |key: &str| match order.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let params = [
            ("type", "order".to_string()),
            ("status", text("status")),
            ("id", order_id.to_string()),
            ("event", event.as_str().to_string()),
            ("number", text("number")),
            ("first_name", text("firstName")),
            ("last_name", text("lastName")),
            ("phone", text("phone")),
            ("email", text("email")),
            ("total", text("totalSumm")),
            ("site", text("site")),
        ];
        let response = self.http.post(url).form(&params).send().await?;
        Ok(DriverReply {
            status: response.status().as_u16(),
            body: response.text().await?,
        })
    }

    /// Creates an order in `site` (as a manager would in the UI) and fires the "new" trigger.
    pub async fn create_order_and_fire(
        &self,
        url: &str,
        site: &str,
        order: Value,
    ) -> Result<(i64, DriverReply), DriverError> {
        let id = self.insert_order(site, order)?;
        let reply = self.fire_trigger(url, id, TriggerEvent::New).await?;
        Ok((id, reply))
    }

    /// Changes the order's status and fires the "status" trigger.
    pub async fn change_status_and_fire(
        &self,
        url: &str,
        order_id: i64,
        status: &str,
    ) -> Result<DriverReply, DriverError> {
        if !self.set_order_status(order_id, status) {
            return Err(DriverError::Invalid(format!(
                "no order {order_id} or no status \"{status}\""
            )));
        }
        self.fire_trigger(url, order_id, TriggerEvent::Status).await
    }

    /// An operator answers in a chat: MG stores the message and POSTs a `message_sent`
    /// webhook (header `Clientid` = the module's clientId) to the webhook URL registered with
    /// the channel's module. The message's status follows the answer (see
    /// [`MgMessageRecord::status`]).
    pub async fn operator_message(
        &self,
        channel_id: i64,
        external_chat_id: &str,
        text: &str,
    ) -> Result<DriverReply, DriverError> {
        let call = self
            .with(|s| s.operator_webhook(channel_id, external_chat_id, None, text))
            .ok_or(DriverError::UnknownChannel(channel_id))?;
        self.post_operator_webhook(call).await
    }

    /// An operator sends a file (`kind` image or file) with a text: MG posts `message_sent`
    /// with the file as an item (`{id, size, caption}`: the file's name, as MG's items name
    /// files) and the text as `content`. Answers the reply and the MG message id.
    pub async fn operator_file(
        &self,
        channel_id: i64,
        customer_external_id: &str,
        kind: &str,
        file_id: &str,
        file_name: &str,
        caption: &str,
    ) -> Result<(DriverReply, i64), DriverError> {
        let call = self
            .with(|s| {
                let size = s.files.get(file_id).map_or(0, |f| f.bytes.len());
                let item = json!({"id": file_id, "size": size, "caption": file_name});
                s.operator_webhook_of(
                    channel_id,
                    "",
                    Some(customer_external_id),
                    kind,
                    caption,
                    vec![item],
                )
            })
            .ok_or(DriverError::UnknownChannel(channel_id))?;
        let id = call.3;
        Ok((self.post_operator_webhook(call).await?, id))
    }

    /// Like [`Self::operator_message`], addressed as MG's own fixture does: by our customer id
    /// in the channel, with an empty `external_chat_id`. Answers the reply and the MG message id.
    pub async fn operator_reply(
        &self,
        channel_id: i64,
        customer_external_id: &str,
        text: &str,
    ) -> Result<(DriverReply, i64), DriverError> {
        let call = self
            .with(|s| s.operator_webhook(channel_id, "", Some(customer_external_id), text))
            .ok_or(DriverError::UnknownChannel(channel_id))?;
        let id = call.3;
        Ok((self.post_operator_webhook(call).await?, id))
    }

    /// MG delivers the webhook of message `message_id` again (its answer was lost or late).
    pub async fn repeat_operator_webhook(
        &self,
        message_id: i64,
    ) -> Result<DriverReply, DriverError> {
        let (url, client_id, payload) = self
            .with(|s| s.webhooks.get(&message_id).cloned())
            .ok_or(DriverError::UnknownChannel(message_id))?;
        self.post_operator_webhook((url, client_id, payload, message_id))
            .await
    }

    async fn post_operator_webhook(
        &self,
        (webhook, client_id, payload, message_id): (String, String, Value, i64),
    ) -> Result<DriverReply, DriverError> {
        let reply = self.post_webhook(&webhook, &client_id, &payload).await?;
        let json = reply.json();
        self.with(|s| s.answer_operator_message(message_id, reply.status, &json));
        Ok(reply)
    }

    async fn post_webhook(
        &self,
        url: &str,
        client_id: &str,
        payload: &Value,
    ) -> Result<DriverReply, DriverError> {
        let response = self
            .http
            .post(url)
            .header("Clientid", client_id)
            .json(payload)
            .send()
            .await?;
        Ok(DriverReply {
            status: response.status().as_u16(),
            body: response.text().await?,
        })
    }

    /// Any other webhook MG sends for the channel (`message_read`, `message_deleted`,
    /// `reaction_add`, `template_create`, …): `{"type", "meta": {"timestamp"}, "data"}`.
    pub async fn mg_webhook(
        &self,
        channel_id: i64,
        kind: &str,
        data: Value,
    ) -> Result<DriverReply, DriverError> {
        let target = self.with(|s| {
            let channel = s.channels.get(&channel_id)?;
            let module = s.modules.get(&channel.module)?;
            Some((
                module.webhook_url.clone()?,
                module.client_id.clone().unwrap_or_default(),
            ))
        });
        let (url, client_id) = target.ok_or(DriverError::UnknownChannel(channel_id))?;
        let payload = json!({
            "type": kind,
            "meta": {"timestamp": chrono::Utc::now().timestamp()},
            "data": data,
        });
        self.post_webhook(&url, &client_id, &payload).await
    }

    /// Bodies of `POST /messages/ack` the transport sent, in order.
    pub fn mg_acks(&self) -> Vec<Value> {
        self.with(|s| s.acks.clone())
    }

    /// The webhook address the transport registered, with the channel's module.
    pub fn mg_webhook_url(&self, channel_id: i64) -> Option<String> {
        self.with(|s| {
            let channel = s.channels.get(&channel_id)?;
            s.modules.get(&channel.module)?.webhook_url.clone()
        })
    }
}

/// Runs a fake on `127.0.0.1:port` with a demo account (store "shop", selective key
/// "demo-key" with every scope, chats on) until Ctrl-C; prints the base URL and key.
pub async fn serve_standalone(port: u16) -> io::Result<()> {
    let fake = FakeRetailCrm::new();
    fake.add_site(DEMO_SITE, "Demo shop");
    fake.add_key(ApiKey::selective(DEMO_KEY, &[DEMO_SITE]));
    let running = fake.serve(SocketAddr::from(([127, 0, 0, 1], port)))?;
    println!("fake RetailCRM listening on {}", running.base_url());
    println!("account URL: {}", running.base_url());
    println!("API key:     {DEMO_KEY} (store \"{DEMO_SITE}\")");
    println!(
        "MG endpoint: {}/mg (after registering the integration module)",
        running.base_url()
    );
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests;
