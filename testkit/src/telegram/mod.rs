//! A fake Telegram Bot API server.
//!
//! `/bot<token>/<method>` with case-insensitive method names and parameters from the query
//! string, a urlencoded form or JSON. Every reply is `{"ok":…}` and the HTTP status equals
//! `error_code`. Implemented: getMe, sendMessage (with Telegram's validation errors and
//! per-chat flood control), setWebhook / deleteWebhook / getWebhookInfo, getUpdates (offset
//! confirmation, long poll up to 50 s, 409 while a webhook is set or when a newer poller
//! arrives).
//!
//! The driver side plays the users: `user_writes` queues an Update and, when a webhook is set,
//! POSTs it there with `X-Telegram-Bot-Api-Secret-Token`, retrying non-2xx answers a bounded
//! number of times with a growing delay (short, so tests stay fast).
//!
//! Deliberate differences from the real server: webhook URLs may be plain `http://` on any
//! port (tests listen on loopback), and pending updates are pushed to a webhook when a driver
//! method runs (`user_writes`, `deliver_pending`), not by a background task, so tests are
//! deterministic.
//!
//! Control endpoints for the standalone binary (no auth): `POST /_fake/bot<token>/write`
//! `{"user_id", "first_name", "text"}` and `GET /_fake/bot<token>/sent`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, http::StatusCode, web};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

pub use crate::chatapi::sink::{Received, WebhookSink};
use crate::server::{Running, spawn};

pub const SECRET_TOKEN_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
const MAX_TEXT_CHARS: usize = 4096;
const LONG_POLL_MAX: u64 = 50;
/// First `update_id` of a bot; real ids are large and sequential.
const FIRST_UPDATE_ID: i64 = 734_000_001;
/// Real bot ids are the token's numeric prefix; short demo prefixes are lifted above 2^31 so
/// that clients always meet 64-bit ids.
const BOT_ID_FLOOR: i64 = 1 << 31;

/// A Telegram user who talks to a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

impl TgUser {
    pub fn new(id: i64, first_name: &str) -> Self {
        Self {
            id,
            first_name: first_name.to_owned(),
            last_name: None,
            username: None,
        }
    }

    pub fn with_last_name(mut self, last_name: &str) -> Self {
        self.last_name = Some(last_name.to_owned());
        self
    }

    pub fn with_username(mut self, username: &str) -> Self {
        self.username = Some(username.to_owned());
        self
    }

    fn user_json(&self) -> Value {
        let mut v = json!({ "id": self.id, "is_bot": false, "first_name": self.first_name, "language_code": "ru" });
        if let Some(last) = &self.last_name {
            v["last_name"] = json!(last);
        }
        if let Some(username) = &self.username {
            v["username"] = json!(username);
        }
        v
    }

    fn chat_json(&self) -> Value {
        let mut v = json!({ "id": self.id, "type": "private", "first_name": self.first_name });
        if let Some(last) = &self.last_name {
            v["last_name"] = json!(last);
        }
        if let Some(username) = &self.username {
            v["username"] = json!(username);
        }
        v
    }
}

/// A message a bot sent through the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct TgSent {
    pub bot_token: String,
    pub chat_id: i64,
    pub message_id: i64,
    /// The current text: `editMessageText` replaces it.
    pub text: String,
    /// All request parameters, for checks on parse_mode, reply_markup, …
    pub params: Map<String, Value>,
    /// How many times the bot edited it.
    pub edits: u32,
    /// Deleted by the bot (`deleteMessage`).
    pub deleted: bool,
    /// `photo` or `document` for a media message (the caption is then `text`).
    pub media: Option<String>,
    /// An uploaded document: its name and bytes.
    pub file: Option<(String, Vec<u8>)>,
}

/// Per-chat flood control: more than `per_chat_per_sec` messages to one chat within a second
/// answer 429 `retry after {retry_after_secs}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimit {
    pub per_chat_per_sec: u32,
    pub retry_after_secs: u64,
}

/// How the fake retries webhook deliveries that did not get a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookRetry {
    /// Total POSTs per update before it is left pending.
    pub attempts: u32,
    /// Delay after the first failure; doubled after each further one.
    pub initial_delay: Duration,
    /// Cap for the delay, also for a `Retry-After` the webhook answers with.
    pub max_delay: Duration,
}

impl Default for WebhookRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        }
    }
}

/// What happened to an update a driver created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// No webhook: waiting for getUpdates (or an earlier update is stuck before it).
    Queued { update_id: i64 },
    Delivered {
        update_id: i64,
        attempts: u32,
        status: u16,
    },
    /// Every attempt failed; the update stays pending.
    Failed {
        update_id: i64,
        attempts: u32,
        last_error: String,
    },
}

impl Delivery {
    pub fn update_id(&self) -> i64 {
        match self {
            Self::Queued { update_id }
            | Self::Delivered { update_id, .. }
            | Self::Failed { update_id, .. } => *update_id,
        }
    }
}

/// A driver call named a bot token the fake does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBot(pub String);

impl fmt::Display for UnknownBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the fake has no bot with token {:?}", self.0)
    }
}

impl std::error::Error for UnknownBot {}

struct KnownChat {
    user: TgUser,
    blocked: bool,
    next_message_id: i64,
    recent_sends: VecDeque<Instant>,
}

struct Webhook {
    url: String,
    secret: Option<String>,
    max_connections: i64,
}

struct Bot {
    id: i64,
    username: String,
    chats: HashMap<i64, KnownChat>,
    webhook: Option<Webhook>,
    pending: VecDeque<(i64, Value)>,
    /// Every update ever queued, for redelivering duplicates.
    history: HashMap<i64, Value>,
    next_update_id: i64,
    /// Identifies the newest getUpdates call; an older one still waiting is terminated.
    poll_generation: u64,
    /// Bumped on every new update or poller so waiting long polls re-check.
    wake: watch::Sender<u64>,
    last_error: Option<(i64, String)>,
    /// Files users sent, by `file_id`: (file_path, bytes), for `getFile` and downloads.
    files: HashMap<String, (String, Vec<u8>)>,
}

impl Bot {
    fn user_json(&self) -> Value {
        json!({
            "id": self.id,
            "is_bot": true,
            "first_name": "Svyazka demo",
            "username": self.username,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })
    }

    fn wake_pollers(&self) {
        self.wake.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn chat(&mut self, user: &TgUser) -> &mut KnownChat {
        let chat = self.chats.entry(user.id).or_insert_with(|| KnownChat {
            user: user.clone(),
            blocked: false,
            next_message_id: 1,
            recent_sends: VecDeque::new(),
        });
        chat.user = user.clone();
        chat
    }

    fn push_update(&mut self, mut update: Value) -> i64 {
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        update["update_id"] = json!(update_id);
        self.history.insert(update_id, update.clone());
        self.pending.push_back((update_id, update));
        self.wake_pollers();
        update_id
    }
}

#[derive(Default)]
struct State {
    bots: HashMap<String, Bot>,
    sent: Vec<TgSent>,
    flood: Option<FloodLimit>,
    retry: WebhookRetry,
}

struct Inner {
    state: Mutex<State>,
    http: reqwest::Client,
    /// One webhook delivery run at a time keeps updates in order, like max_connections = 1.
    delivery: tokio::sync::Mutex<()>,
}

/// Handle to a running fake: bots, users' actions, inspection of what bots sent.
#[derive(Clone)]
pub struct FakeTelegram {
    inner: Arc<Inner>,
}

impl Default for FakeTelegram {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl FakeTelegram {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                http: reqwest::Client::builder()
                    // Below the app's 5 s keep-alive: reusing a connection the app is closing fails with
                    // "incomplete message" (a client race, not an app fault).
                    .pool_idle_timeout(std::time::Duration::from_secs(3))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap_or_default(),
                delivery: tokio::sync::Mutex::new(()),
            }),
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
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_bot<T>(&self, token: &str, f: impl FnOnce(&mut Bot) -> T) -> Result<T, UnknownBot> {
        let mut state = self.lock();
        let bot = state
            .bots
            .get_mut(token)
            .ok_or_else(|| UnknownBot(token.to_owned()))?;
        Ok(f(bot))
    }

    /// Register a bot; returns its user id (> 2^31).
    pub fn add_bot(&self, token: &str, username: &str) -> i64 {
        let prefix = token
            .split(':')
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .unwrap_or(0);
        let id = if prefix >= BOT_ID_FLOOR {
            prefix
        } else {
            BOT_ID_FLOOR * 2 + prefix
        };
        self.lock().bots.insert(
            token.to_owned(),
            Bot {
                id,
                username: username.to_owned(),
                chats: HashMap::new(),
                webhook: None,
                pending: VecDeque::new(),
                history: HashMap::new(),
                next_update_id: FIRST_UPDATE_ID,
                poll_generation: 0,
                wake: watch::Sender::new(0),
                last_error: None,
                files: HashMap::new(),
            },
        );
        id
    }

    /// `None` switches flood control off (the default).
    pub fn set_flood_limit(&self, limit: Option<FloodLimit>) {
        self.lock().flood = limit;
    }

    pub fn set_webhook_retry(&self, retry: WebhookRetry) {
        self.lock().retry = retry;
    }

    pub fn sent_messages(&self) -> Vec<TgSent> {
        self.lock().sent.clone()
    }

    pub fn sent_to(&self, chat_id: i64) -> Vec<TgSent> {
        self.lock()
            .sent
            .iter()
            .filter(|s| s.chat_id == chat_id)
            .cloned()
            .collect()
    }

    pub fn pending_count(&self, token: &str) -> Result<usize, UnknownBot> {
        self.with_bot(token, |bot| bot.pending.len())
    }

    /// The webhook URL set by the bot's owner, if any.
    pub fn webhook_url(&self, token: &str) -> Result<Option<String>, UnknownBot> {
        self.with_bot(token, |bot| bot.webhook.as_ref().map(|w| w.url.clone()))
    }

    // ---- driver: users acting ----

    /// `user` sends `text` to the bot; their chat becomes known (and unblocked).
    pub async fn user_writes(
        &self,
        token: &str,
        user: &TgUser,
        text: &str,
    ) -> Result<Delivery, UnknownBot> {
        self.user_message(token, user, |m| m["text"] = json!(text))
            .await
    }

    /// `user` shares their own contact (the answer to a `request_contact` button).
    pub async fn user_shares_contact(
        &self,
        token: &str,
        user: &TgUser,
        phone: &str,
    ) -> Result<Delivery, UnknownBot> {
        let contact =
            json!({ "phone_number": phone, "first_name": user.first_name, "user_id": user.id });
        self.user_message(token, user, |m| m["contact"] = contact)
            .await
    }

    async fn user_message(
        &self,
        token: &str,
        user: &TgUser,
        fill: impl FnOnce(&mut Value),
    ) -> Result<Delivery, UnknownBot> {
        let update_id = self.with_bot(token, |bot| {
            let chat = bot.chat(user);
            chat.blocked = false;
            let message_id = chat.next_message_id;
            chat.next_message_id += 1;
            let mut message = json!({
                "message_id": message_id,
                "from": user.user_json(),
                "chat": user.chat_json(),
                "date": now(),
            });
            fill(&mut message);
            bot.push_update(json!({ "message": message }))
        })?;
        self.deliver_new(token, update_id).await
    }

    /// Puts a file on Telegram's servers as a user's upload does: `getFile` of `file_id` then
    /// answers `file_path` (e.g. "photos/file_7.jpg"), downloadable at
    /// `/file/bot<token>/<file_path>`.
    pub fn add_file(
        &self,
        token: &str,
        file_id: &str,
        file_path: &str,
        bytes: &[u8],
    ) -> Result<(), UnknownBot> {
        self.with_bot(token, |bot| {
            bot.files
                .insert(file_id.to_owned(), (file_path.to_owned(), bytes.to_vec()));
        })
    }

    /// `user` presses an inline button carrying `data`.
    pub async fn user_presses_button(
        &self,
        token: &str,
        user: &TgUser,
        data: &str,
    ) -> Result<Delivery, UnknownBot> {
        let update_id = self.with_bot(token, |bot| {
            bot.chat(user);
            bot.push_update(json!({ "callback_query": {
                "id": format!("{}", rand::random::<u64>()),
                "from": user.user_json(),
                "chat_instance": format!("{}", user.id.wrapping_mul(31)),
                "data": data,
            }}))
        })?;
        self.deliver_new(token, update_id).await
    }

    /// `user` blocks the bot: sends then fail with 403, and a `my_chat_member` update is queued.
    pub async fn user_blocks_bot(
        &self,
        token: &str,
        user: &TgUser,
    ) -> Result<Delivery, UnknownBot> {
        let update_id = self.with_bot(token, |bot| {
            bot.chat(user).blocked = true;
            let bot_user = bot.user_json();
            bot.push_update(json!({ "my_chat_member": {
                "chat": user.chat_json(),
                "from": user.user_json(),
                "date": now(),
                "old_chat_member": { "user": bot_user, "status": "member" },
                "new_chat_member": { "user": bot_user, "status": "kicked", "until_date": 0 },
            }}))
        })?;
        self.deliver_new(token, update_id).await
    }

    /// Queue any update body (its `update_id` is assigned here), e.g. an `edited_message`.
    pub async fn push_update(&self, token: &str, update: Value) -> Result<Delivery, UnknownBot> {
        let update_id = self.with_bot(token, |bot| bot.push_update(update))?;
        self.deliver_new(token, update_id).await
    }

    async fn deliver_new(&self, token: &str, update_id: i64) -> Result<Delivery, UnknownBot> {
        let outcomes = self.deliver_pending(token).await?;
        Ok(outcomes
            .into_iter()
            .find(|d| d.update_id() == update_id)
            .unwrap_or(Delivery::Queued { update_id }))
    }

    /// Push pending updates to the webhook in order; stops at the first that cannot be
    /// delivered (it stays pending, as on the real server). Empty when no webhook is set.
    pub async fn deliver_pending(&self, token: &str) -> Result<Vec<Delivery>, UnknownBot> {
        let _one_at_a_time = self.inner.delivery.lock().await;
        let mut outcomes = Vec::new();
        loop {
            let next = self.with_bot(token, |bot| {
                let webhook = bot.webhook.as_ref()?;
                let (update_id, update) = bot.pending.front()?.clone();
                Some((
                    update_id,
                    update,
                    webhook.url.clone(),
                    webhook.secret.clone(),
                ))
            })?;
            let Some((update_id, update, url, secret)) = next else {
                break;
            };
            let delivery = self
                .post_update(update_id, &update, &url, secret.as_deref())
                .await;
            let delivered = matches!(delivery, Delivery::Delivered { .. });
            self.with_bot(token, |bot| {
                if delivered {
                    bot.pending.retain(|(id, _)| *id != update_id);
                } else if let Delivery::Failed { last_error, .. } = &delivery {
                    bot.last_error = Some((now(), last_error.clone()));
                }
            })?;
            outcomes.push(delivery);
            if !delivered {
                break;
            }
        }
        Ok(outcomes)
    }

    /// Deliver an update again with the same `update_id` (a duplicate, as after a 200 the
    /// server never saw). Without a webhook it goes back into the getUpdates queue.
    /// `Ok(None)` when the bot never had that update.
    pub async fn redeliver(
        &self,
        token: &str,
        update_id: i64,
    ) -> Result<Option<Delivery>, UnknownBot> {
        let found = self.with_bot(token, |bot| {
            let update = bot.history.get(&update_id)?.clone();
            let webhook = bot
                .webhook
                .as_ref()
                .map(|w| (w.url.clone(), w.secret.clone()));
            if webhook.is_none() && !bot.pending.iter().any(|(id, _)| *id == update_id) {
                let at = bot
                    .pending
                    .iter()
                    .position(|(id, _)| *id > update_id)
                    .unwrap_or(bot.pending.len());
                bot.pending.insert(at, (update_id, update.clone()));
                bot.wake_pollers();
            }
            Some((update, webhook))
        })?;
        let Some((update, webhook)) = found else {
            return Ok(None);
        };
        Ok(Some(match webhook {
            Some((url, secret)) => {
                let _one_at_a_time = self.inner.delivery.lock().await;
                self.post_update(update_id, &update, &url, secret.as_deref())
                    .await
            }
            None => Delivery::Queued { update_id },
        }))
    }

    /// The body of any update the bot ever had.
    pub fn update(&self, token: &str, update_id: i64) -> Result<Option<Value>, UnknownBot> {
        self.with_bot(token, |bot| bot.history.get(&update_id).cloned())
    }

    /// The update bodies still waiting (for building redeliveries and assertions).
    pub fn pending_updates(&self, token: &str) -> Result<Vec<Value>, UnknownBot> {
        self.with_bot(token, |bot| {
            bot.pending.iter().map(|(_, u)| u.clone()).collect()
        })
    }

    async fn post_update(
        &self,
        update_id: i64,
        update: &Value,
        url: &str,
        secret: Option<&str>,
    ) -> Delivery {
        let retry = self.lock().retry;
        let attempts = retry.attempts.max(1);
        let mut delay = retry.initial_delay;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            let mut request = self.inner.http.post(url).json(update);
            if let Some(secret) = secret {
                request = request.header(SECRET_TOKEN_HEADER, secret);
            }
            let mut wait = delay;
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return Delivery::Delivered {
                        update_id,
                        attempts: attempt,
                        status: response.status().as_u16(),
                    };
                }
                Ok(response) => {
                    let status = response.status();
                    last_error = format!(
                        "Wrong response from the webhook: {} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    )
                    .trim_end()
                    .to_owned();
                    // The real server honours our Retry-After; capped so tests stay fast.
                    if let Some(secs) = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        wait = Duration::from_secs(secs);
                    }
                }
                Err(e) => last_error = format!("Connection failed: {}", e.without_url()),
            }
            if attempt < attempts {
                tokio::time::sleep(wait.min(retry.max_delay)).await;
                delay = (delay * 2).min(retry.max_delay);
            }
        }
        Delivery::Failed {
            update_id,
            attempts,
            last_error,
        }
    }
}

// ---- HTTP side ----

fn ok(result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ok": true, "result": result }))
}

fn ok_described(result: Value, description: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "ok": true, "result": result, "description": description }))
}

/// The HTTP status always equals `error_code`, as on the real server.
fn fail(code: u16, description: &str) -> HttpResponse {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .json(json!({ "ok": false, "error_code": code, "description": description }))
}

fn flood(retry_after: u64) -> HttpResponse {
    HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
        .insert_header(("Retry-After", retry_after.to_string()))
        .json(json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": { "retry_after": retry_after },
        }))
}

/// Query string, then the body (form or JSON object) on top, like the Bot API server.
/// The error is a 400 description.
fn params(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let mut params: Map<String, Value> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => params.extend(map),
            _ => return Err("Bad Request: can't parse JSON object"),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded")
        || content_type.is_empty()
    {
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|_| "Bad Request: can't parse parameters")?;
        params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    } else if content_type.starts_with("multipart/form-data") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_owned())
            .ok_or("Bad Request: can't parse multipart/form-data")?;
        let parts = crate::multipart::parse(body, &boundary)
            .ok_or("Bad Request: can't parse multipart/form-data")?;
        for (name, file_name, bytes) in parts {
            let value = match file_name {
                // An uploaded file: its name and bytes, for checks on what the bot sent.
                Some(file_name) => json!({ "file_name": file_name, "bytes": bytes }),
                None => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            };
            params.insert(name, value);
        }
    } else {
        return Err("Bad Request: unsupported Content-Type");
    }
    Ok(params)
}

fn param_str(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn param_i64(params: &Map<String, Value>, key: &str) -> Option<i64> {
    match params.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn param_bool(params: &Map<String, Value>, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1"),
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

fn token_well_formed(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, secret)) => {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !secret.is_empty()
        }
        None => false,
    }
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeTelegram>,
) -> HttpResponse {
    let path = req.path().to_owned();
    if let Some(control) = path.strip_prefix("/_fake/") {
        return control_endpoint(&fake, control, &req, &body).await;
    }
    if let Some(rest) = path.strip_prefix("/file/bot") {
        return download(&fake, rest);
    }
    let Some((token, method)) = path
        .trim_start_matches('/')
        .strip_prefix("bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return fail(404, "Not Found");
    };
    if !token_well_formed(token) {
        return fail(401, "Unauthorized: invalid token specified");
    }
    if !fake.lock().bots.contains_key(token) {
        return fail(401, "Unauthorized");
    }
    let params = match params(&req, &body) {
        Ok(p) => p,
        Err(description) => return fail(400, description),
    };
    match method.to_ascii_lowercase().as_str() {
        "getme" => fake
            .with_bot(token, |bot| ok(bot.user_json()))
            .unwrap_or_else(|_| fail(401, "Unauthorized")),
        "sendmessage" => send_message(&fake, token, params),
        "sendphoto" => send_media(&fake, token, params, "photo"),
        "senddocument" => send_media(&fake, token, params, "document"),
        "editmessagetext" => edit_message_text(&fake, token, &params),
        "deletemessage" => delete_message(&fake, token, &params),
        "setwebhook" => set_webhook(&fake, token, &params),
        "deletewebhook" => delete_webhook(&fake, token, &params),
        "getwebhookinfo" => webhook_info(&fake, token),
        "getupdates" => get_updates(&fake, token, &params).await,
        "getfile" => get_file(&fake, token, &params),
        _ => fail(404, "Not Found: method not found"),
    }
}

/// `getFile`: the file's path for a download; an unknown id is the server's "invalid file_id".
fn get_file(fake: &FakeTelegram, token: &str, params: &Map<String, Value>) -> HttpResponse {
    let Some(file_id) = param_str(params, "file_id").filter(|f| !f.is_empty()) else {
        return fail(400, "Bad Request: file_id not specified");
    };
    let found = fake
        .with_bot(token, |bot| bot.files.get(&file_id).cloned())
        .ok()
        .flatten();
    match found {
        Some((path, bytes)) => ok(json!({
            "file_id": file_id,
            "file_unique_id": format!("u{}", file_id.len()),
            "file_size": bytes.len(),
            "file_path": path,
        })),
        None => fail(400, "Bad Request: invalid file_id"),
    }
}

/// `GET /file/bot<token>/<file_path>`: the bytes (Bot API file download).
fn download(fake: &FakeTelegram, rest: &str) -> HttpResponse {
    let Some((token, path)) = rest.split_once('/') else {
        return fail(404, "Not Found");
    };
    let found = fake
        .with_bot(token, |bot| {
            bot.files
                .values()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.clone())
        })
        .ok()
        .flatten();
    match found {
        Some(bytes) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(bytes),
        None => fail(404, "Not Found"),
    }
}

/// `sendPhoto` (a URL or file_id in `photo`) or `sendDocument` (an upload or a URL in
/// `document`), with an optional caption of at most 1024 characters.
fn send_media(
    fake: &FakeTelegram,
    token: &str,
    params: Map<String, Value>,
    kind: &str,
) -> HttpResponse {
    let caption = param_str(&params, "caption").unwrap_or_default();
    if caption.chars().count() > 1024 {
        return fail(400, "Bad Request: message caption is too long");
    }
    let content = match params.get(kind) {
        Some(Value::String(s)) if !s.trim().is_empty() => Media::Reference(s.clone()),
        Some(Value::Object(upload)) => Media::Upload(
            upload
                .get("file_name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            serde_json::from_value(upload.get("bytes").cloned().unwrap_or_default())
                .unwrap_or_default(),
        ),
        _ => {
            return fail(
                400,
                &format!("Bad Request: there is no {kind} in the request"),
            );
        }
    };
    if let Media::Reference(url) = &content
        && kind == "document"
        && !url.contains("://")
        && url.contains('/')
    {
        return fail(400, "Bad Request: wrong remote file identifier specified");
    }
    deliver(fake, token, params, caption, Some((kind, content)))
}

enum Media {
    /// A URL Telegram downloads, or a file_id.
    Reference(String),
    Upload(String, Vec<u8>),
}

fn send_message(fake: &FakeTelegram, token: &str, params: Map<String, Value>) -> HttpResponse {
    let text = param_str(&params, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return fail(400, "Bad Request: message text is empty");
    }
    deliver(fake, token, params, text, None)
}

/// A message the bot sends to a chat: checks of the chat, blocking, length and flood control.
fn deliver(
    fake: &FakeTelegram,
    token: &str,
    params: Map<String, Value>,
    text: String,
    media: Option<(&str, Media)>,
) -> HttpResponse {
    let Some(chat_ref) = param_str(&params, "chat_id").filter(|c| !c.trim().is_empty()) else {
        return fail(400, "Bad Request: chat_id is empty");
    };
    let mut state = fake.lock();
    let flood_limit = state.flood;
    let Some(bot) = state.bots.get_mut(token) else {
        return fail(401, "Unauthorized");
    };
    let bot_json = bot.user_json();
    let chat_id = match chat_ref.trim().parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => chat_ref.strip_prefix('@').and_then(|name| {
            bot.chats
                .iter()
                .find(|(_, c)| c.user.username.as_deref() == Some(name))
                .map(|(id, _)| *id)
        }),
    };
    let Some(chat) = chat_id.and_then(|id| bot.chats.get_mut(&id)) else {
        return fail(400, "Bad Request: chat not found");
    };
    if chat.blocked {
        return fail(403, "Forbidden: bot was blocked by the user");
    }
    if media.is_none() && text.chars().count() > MAX_TEXT_CHARS {
        return fail(400, "Bad Request: message is too long");
    }
    if let Some(limit) = flood_limit {
        let now = Instant::now();
        while chat
            .recent_sends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            chat.recent_sends.pop_front();
        }
        if chat.recent_sends.len() >= limit.per_chat_per_sec as usize {
            return flood(limit.retry_after_secs);
        }
        chat.recent_sends.push_back(now);
    }
    let message_id = chat.next_message_id;
    chat.next_message_id += 1;
    let chat_json = chat.user.chat_json();
    let chat_id = chat.user.id;
    let mut message = json!({
        "message_id": message_id,
        "from": bot_json,
        "chat": chat_json,
        "date": now(),
    });
    let (kind, file) = match media {
        None => {
            message["text"] = json!(text);
            (None, None)
        }
        Some((kind, content)) => {
            let file_id = format!("sent-{kind}-{message_id}");
            let (name, upload) = match content {
                Media::Reference(_) => (None, None),
                Media::Upload(name, bytes) => (Some(name.clone()), Some((name, bytes))),
            };
            message[kind] = if kind == "photo" {
                json!([{ "file_id": file_id, "file_unique_id": file_id, "width": 1, "height": 1 }])
            } else {
                json!({ "file_id": file_id, "file_unique_id": file_id, "file_name": name })
            };
            if !text.is_empty() {
                message["caption"] = json!(text);
            }
            (Some(kind.to_owned()), upload)
        }
    };
    state.sent.push(TgSent {
        bot_token: token.to_owned(),
        chat_id,
        message_id,
        text,
        params,
        edits: 0,
        deleted: false,
        media: kind,
        file,
    });
    ok(message)
}

/// The bot's own message named by `chat_id` and `message_id`, for editing or deleting.
fn own_message<'s>(
    sent: &'s mut [TgSent],
    token: &str,
    params: &Map<String, Value>,
) -> Option<&'s mut TgSent> {
    let chat_id = param_i64(params, "chat_id")?;
    let message_id = param_i64(params, "message_id")?;
    sent.iter_mut().find(|s| {
        s.bot_token == token && s.chat_id == chat_id && s.message_id == message_id && !s.deleted
    })
}

/// `editMessageText` of a text message the bot sent (Bot API wording of the refusals).
fn edit_message_text(
    fake: &FakeTelegram,
    token: &str,
    params: &Map<String, Value>,
) -> HttpResponse {
    let text = param_str(params, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return fail(400, "Bad Request: message text is empty");
    }
    let mut state = fake.lock();
    let Some(message) = own_message(&mut state.sent, token, params) else {
        return fail(400, "Bad Request: message to edit not found");
    };
    if message.text == text {
        return fail(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        );
    }
    message.text = text.clone();
    message.edits += 1;
    ok(json!({
        "message_id": message.message_id,
        "chat": {"id": message.chat_id, "type": "private"},
        "date": now(),
        "edit_date": now(),
        "text": text,
    }))
}

/// `deleteMessage` of a message the bot sent.
fn delete_message(fake: &FakeTelegram, token: &str, params: &Map<String, Value>) -> HttpResponse {
    let mut state = fake.lock();
    let Some(message) = own_message(&mut state.sent, token, params) else {
        return fail(400, "Bad Request: message to delete not found");
    };
    message.deleted = true;
    ok(json!(true))
}

fn set_webhook(fake: &FakeTelegram, token: &str, params: &Map<String, Value>) -> HttpResponse {
    let url = param_str(params, "url")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let secret = param_str(params, "secret_token").filter(|s| !s.is_empty());
    if let Some(secret) = &secret {
        if secret.len() > 256 {
            return fail(400, "Bad Request: secret token is too long");
        }
        if !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return fail(
                400,
                "Bad Request: secret token contains unallowed characters",
            );
        }
    }
    if !url.is_empty() {
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => {
                return fail(
                    400,
                    "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                );
            }
            Err(_) => return fail(400, "Bad Request: bad webhook: Wrong HTTP URL specified"),
        }
    }
    let max_connections = param_i64(params, "max_connections")
        .unwrap_or(40)
        .clamp(1, 100);
    let drop_pending = param_bool(params, "drop_pending_updates");
    fake.with_bot(token, |bot| {
        if drop_pending {
            bot.pending.clear();
        }
        if url.is_empty() {
            let had = bot.webhook.take().is_some();
            return ok_described(
                json!(true),
                if had {
                    "Webhook was deleted"
                } else {
                    "Webhook is already deleted"
                },
            );
        }
        let same = bot
            .webhook
            .as_ref()
            .is_some_and(|w| w.url == url && w.secret == secret);
        bot.webhook = Some(Webhook {
            url: url.clone(),
            secret: secret.clone(),
            max_connections,
        });
        bot.last_error = None;
        // A waiting getUpdates must now end with a conflict.
        bot.wake_pollers();
        ok_described(
            json!(true),
            if same {
                "Webhook is already set"
            } else {
                "Webhook was set"
            },
        )
    })
    .unwrap_or_else(|_| fail(401, "Unauthorized"))
}

fn delete_webhook(fake: &FakeTelegram, token: &str, params: &Map<String, Value>) -> HttpResponse {
    let drop_pending = param_bool(params, "drop_pending_updates");
    fake.with_bot(token, |bot| {
        if drop_pending {
            bot.pending.clear();
        }
        let had = bot.webhook.take().is_some();
        ok_described(
            json!(true),
            if had {
                "Webhook was deleted"
            } else {
                "Webhook is already deleted"
            },
        )
    })
    .unwrap_or_else(|_| fail(401, "Unauthorized"))
}

fn webhook_info(fake: &FakeTelegram, token: &str) -> HttpResponse {
    fake.with_bot(token, |bot| {
        let mut info = json!({
            "url": bot.webhook.as_ref().map_or("", |w| w.url.as_str()),
            "has_custom_certificate": false,
            "pending_update_count": bot.pending.len(),
        });
        if let Some(webhook) = &bot.webhook {
            info["max_connections"] = json!(webhook.max_connections);
            info["ip_address"] = json!("127.0.0.1");
            if let Some((date, message)) = &bot.last_error {
                info["last_error_date"] = json!(date);
                info["last_error_message"] = json!(message);
            }
        }
        ok(info)
    })
    .unwrap_or_else(|_| fail(401, "Unauthorized"))
}

const WEBHOOK_CONFLICT: &str = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
const POLL_CONFLICT: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

async fn get_updates(
    fake: &FakeTelegram,
    token: &str,
    params: &Map<String, Value>,
) -> HttpResponse {
    let offset = param_i64(params, "offset").unwrap_or(0);
    let limit = param_i64(params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = param_i64(params, "timeout")
        .unwrap_or(0)
        .clamp(0, LONG_POLL_MAX as i64) as u64;
    let started = fake.with_bot(token, |bot| {
        if bot.webhook.is_some() {
            return Err(WEBHOOK_CONFLICT);
        }
        // Confirm: everything below a positive offset is forgotten; a negative one keeps
        // only the last -offset updates.
        if offset > 0 {
            bot.pending.retain(|(id, _)| *id >= offset);
        } else if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while bot.pending.len() > keep {
                bot.pending.pop_front();
            }
        }
        bot.poll_generation += 1;
        bot.wake_pollers();
        Ok((bot.poll_generation, bot.wake.subscribe()))
    });
    let (generation, mut wake) = match started {
        Ok(Ok(started)) => started,
        Ok(Err(conflict)) => return fail(409, conflict),
        Err(_) => return fail(401, "Unauthorized"),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let ready = fake.with_bot(token, |bot| {
            if bot.poll_generation != generation {
                return Some(fail(409, POLL_CONFLICT));
            }
            if bot.webhook.is_some() {
                return Some(fail(409, WEBHOOK_CONFLICT));
            }
            let updates: Vec<Value> = bot
                .pending
                .iter()
                .take(limit)
                .map(|(_, u)| u.clone())
                .collect();
            (!updates.is_empty() || timeout == 0).then(|| ok(Value::Array(updates)))
        });
        match ready {
            Ok(Some(response)) => return response,
            Ok(None) => {}
            Err(_) => return fail(401, "Unauthorized"),
        }
        match tokio::time::timeout_at(deadline, wake.changed()).await {
            Ok(Ok(())) => continue,
            // Timed out (or the bot was replaced): an empty answer, as Telegram gives.
            Ok(Err(_)) | Err(_) => return ok(json!([])),
        }
    }
}

async fn control_endpoint(
    fake: &FakeTelegram,
    path: &str,
    req: &HttpRequest,
    body: &[u8],
) -> HttpResponse {
    let Some((token, action)) = path
        .strip_prefix("bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return fail(
            404,
            "Not Found: use /_fake/bot<token>/write or /_fake/bot<token>/sent",
        );
    };
    match (req.method().as_str(), action) {
        ("GET", "sent") => {
            let sent: Vec<Value> = fake
                .sent_messages()
                .into_iter()
                .filter(|s| s.bot_token == token)
                .map(
                    |s| json!({ "chat_id": s.chat_id, "message_id": s.message_id, "text": s.text }),
                )
                .collect();
            ok(Value::Array(sent))
        }
        ("POST", "write") => {
            let params = match params(req, body) {
                Ok(p) => p,
                Err(description) => return fail(400, description),
            };
            let (Some(user_id), Some(text)) =
                (param_i64(&params, "user_id"), param_str(&params, "text"))
            else {
                return fail(400, "Bad Request: user_id and text are required");
            };
            let first_name = param_str(&params, "first_name").unwrap_or_else(|| "Customer".into());
            let mut user = TgUser::new(user_id, &first_name);
            user.username = param_str(&params, "username");
            match fake.user_writes(token, &user, &text).await {
                Ok(delivery) => ok(
                    json!({ "delivery": format!("{delivery:?}"), "update_id": delivery.update_id() }),
                ),
                Err(e) => fail(404, &format!("Not Found: {e}")),
            }
        }
        _ => fail(404, "Not Found: unknown control endpoint"),
    }
}

/// Run the fake for the `testkit` binary with a demo bot until Ctrl-C.
pub async fn serve_standalone(port: u16) -> std::io::Result<()> {
    let fake = FakeTelegram::new();
    let token = "123456:demo-token";
    let bot_id = fake.add_bot(token, "svyazka_demo_bot");
    let running = fake.serve(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    let base = running.base_url();
    println!("Fake Telegram Bot API listening on {base}");
    println!("  bot token: {token}   (bot id {bot_id}, @svyazka_demo_bot)");
    println!("  Bot API base URL: {base}   e.g. curl {base}/bot{token}/getMe");
    println!(
        "  a user writes: curl -X POST {base}/_fake/bot{token}/write -H 'Content-Type: application/json' \\"
    );
    println!("      -d '{{\"user_id\":5000000001,\"first_name\":\"Anna\",\"text\":\"Hello\"}}'");
    println!("  messages sent by the bot: curl {base}/_fake/bot{token}/sent");
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests;
