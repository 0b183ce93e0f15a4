//! A fake Green-API (green-api.com) WhatsApp instance host.
//!
//! Routes: `/waInstance{idInstance}/{method}/{apiTokenInstance}` (method names are
//! case-insensitive, as the real host's docs use both `GetStateInstance` and
//! `getStateInstance`). A wrong token is 401, an unknown instance 403, both with an empty body.
//! Methods: `getStateInstance`, `getSettings`, `setSettings`, `sendMessage`, `sendFileByUrl`
//! (the file's type told by the extension of `fileName`, as Green-API does), `getChatHistory`
//! (files with `typeMessage`, `downloadUrl`, `fileName`, `caption`), `lastOutgoingMessages`,
//! `downloadFile` (`{chatId, idMessage}` → `{downloadUrl}` of a file message, else 400 "File
//! message encrypted url not found by chatId … and idMessage …").
//! Failure modes on demand: the next N requests answered with a status (429, 466 — see
//! `plan_limit_next`, 500, …),
//! sends that go out but are answered late, an account state.
//!
//! The driver side POSTs notifications like the real host: one JSON object per request,
//! `Authorization: Bearer <webhookUrlToken>` when a token was set, integer `timestamp`s,
//! `instanceData`, `sendByApi` on statuses, files as `fileMessageData` (`downloadUrl` on the
//! storage, `caption`, `fileName`, `mimeType`, `jpegThumbnail`, …), `stateInstanceChanged`,
//! and it can redeliver the last one (Green-API repeats a notification until it gets a 200 and
//! is known to send some twice).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, http::StatusCode, web};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::server::{Running, spawn};

/// The phone number the fake's instances are linked to.
pub const OWN_PHONE: &str = "79990000001";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub id_instance: String,
    pub chat_id: String,
    /// The text; a file's caption.
    pub message: String,
    pub id_message: String,
    pub timestamp: i64,
    /// `textMessage`, or the file's: `imageMessage`, `videoMessage`, `audioMessage`,
    /// `documentMessage`.
    pub type_message: String,
    /// `sendFileByUrl`'s `urlFile` and `fileName`.
    pub url_file: Option<String>,
    pub file_name: Option<String>,
}

/// A file a customer sends (see [`FakeGreenApi::post_incoming_file`]).
#[derive(Debug, Clone, Copy)]
pub struct IncomingFile<'a> {
    /// `imageMessage`, `videoMessage`, `documentMessage`, `audioMessage`.
    pub type_message: &'a str,
    /// Where Green-API's storage keeps it.
    pub download_url: &'a str,
    pub caption: &'a str,
    pub file_name: &'a str,
    pub mime_type: &'a str,
}

struct Instance {
    token: String,
    state: String,
    settings: Map<String, Value>,
}

#[derive(Default)]
struct State {
    instances: HashMap<String, Instance>,
    sent: Vec<SentMessage>,
    /// The next `.0` API requests are answered with status `.1` and body `.2`.
    fail_next: (u32, u16, String),
    /// The next `.0` accepted sends answer only after `.1`.
    stall_sends: (u32, Duration),
    last_posted: Option<(String, Option<String>, Value)>,
    /// `(idInstance, chatId, idMessage)` → the storage link of a customer's file.
    files: HashMap<(String, String, String), String>,
}

#[derive(Clone)]
pub struct FakeGreenApi {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl Default for FakeGreenApi {
    fn default() -> Self {
        Self::new()
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

fn default_settings() -> Map<String, Value> {
    let v = json!({
        "wid": format!("{OWN_PHONE}@c.us"),
        "countryInstance": "",
        "typeAccount": "",
        "webhookUrl": "",
        "webhookUrlToken": "",
        "delaySendMessagesMilliseconds": 5000,
        "markIncomingMessagesReaded": "no",
        "markIncomingMessagesReadedOnReply": "no",
        "outgoingWebhook": "no",
        "outgoingMessageWebhook": "no",
        "outgoingAPIMessageWebhook": "no",
        "incomingWebhook": "no",
        "stateWebhook": "no",
        "keepOnlineStatus": "no",
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl FakeGreenApi {
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

    pub fn start() -> std::io::Result<(Self, Running)> {
        let fake = Self::new();
        let data = web::Data::new(fake.clone());
        let addr = "127.0.0.1:0".parse().map_err(std::io::Error::other)?;
        let running = spawn(addr, move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(dispatch))
        })?;
        Ok((fake, running))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add (or reset) an authorized instance.
    pub fn add_instance(&self, id: &str, token: &str) {
        self.lock().instances.insert(
            id.to_owned(),
            Instance {
                token: token.to_owned(),
                state: "authorized".into(),
                settings: default_settings(),
            },
        );
    }

    /// `notAuthorized`, `authorized`, `blocked`, `sleepMode`, `starting`, `yellowCard`.
    pub fn set_state(&self, id: &str, state: &str) {
        if let Some(i) = self.lock().instances.get_mut(id) {
            i.state = state.to_owned();
        }
    }

    /// The settings as `setSettings` left them (`webhookUrl`, `webhookUrlToken`, …).
    pub fn settings(&self, id: &str) -> Option<Map<String, Value>> {
        self.lock().instances.get(id).map(|i| i.settings.clone())
    }

    fn setting(&self, id: &str, key: &str) -> Option<String> {
        self.settings(id)?
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The next `n` API requests hit the plan's limit of correspondents: HTTP 466.
    pub fn plan_limit_next(&self, n: u32) {
        // Unconfirmed: the body's exact shape and words; Green-API's common-errors page says
        // only "correspondents status limit exceeded, details in body".
        self.fail_next(
            n,
            466,
            r#"{"message":"Correspondents status limit exceeded"}"#,
        );
    }

    /// The next `n` API requests answer `status` with `body` (e.g. 429, 466, 500).
    pub fn fail_next(&self, n: u32, status: u16, body: &str) {
        self.lock().fail_next = (n, status, body.to_owned());
    }

    pub fn stall_sends(&self, n: u32, delay: Duration) {
        self.lock().stall_sends = (n, delay);
    }

    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    pub fn sent_count(&self) -> usize {
        self.lock().sent.len()
    }

    // ---- driver ----

    fn instance_data(id: &str) -> Value {
        json!({
            "idInstance": id.parse::<i64>().unwrap_or_default(),
            "wid": format!("{OWN_PHONE}@c.us"),
            "typeInstance": "whatsapp",
        })
    }

    /// `incomingMessageReceived` from a private chat with `messageData`.
    fn incoming(id: &str, from_phone: &str, name: &str, message_data: Value) -> Value {
        let chat_id = format!("{}@c.us", from_phone.trim_start_matches('+'));
        json!({
            "typeWebhook": "incomingMessageReceived",
            "instanceData": Self::instance_data(id),
            "timestamp": now(),
            "idMessage": random_hex(32),
            "senderData": {
                "chatId": chat_id,
                "chatName": name,
                "sender": chat_id,
                "senderName": name,
                "senderContactName": "",
            },
            "messageData": message_data,
        })
    }

    /// A customer writes `text` to instance `id`: `incomingMessageReceived` with a
    /// `textMessage`, to the instance's webhook with its token.
    pub async fn post_incoming(
        &self,
        id: &str,
        from_phone: &str,
        name: &str,
        text: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let data = json!({
            "typeMessage": "textMessage",
            "textMessageData": { "textMessage": text },
        });
        self.post_notification(id, &Self::incoming(id, from_phone, name, data))
            .await
    }

    /// A customer sends a file: `incomingMessageReceived` with `fileMessageData`, shaped on
    /// Green-API's docs example; `downloadFile` answers its link afterwards.
    pub async fn post_incoming_file(
        &self,
        id: &str,
        from_phone: &str,
        name: &str,
        file: &IncomingFile<'_>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.post_file(id, from_phone, name, file, file.download_url)
            .await
    }

    /// A customer's file whose notification comes with an empty `downloadUrl` (Green-API had
    /// not stored it yet): only `downloadFile` gives its link, `file.download_url`.
    pub async fn post_incoming_file_without_link(
        &self,
        id: &str,
        from_phone: &str,
        name: &str,
        file: &IncomingFile<'_>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.post_file(id, from_phone, name, file, "").await
    }

    async fn post_file(
        &self,
        id: &str,
        from_phone: &str,
        name: &str,
        file: &IncomingFile<'_>,
        link_in_notification: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let mut data = json!({
            "downloadUrl": link_in_notification,
            "caption": file.caption,
            "fileName": file.file_name,
            "jpegThumbnail": "",
            "mimeType": file.mime_type,
            "forwardingScore": 0,
            "isForwarded": false,
        });
        if file.type_message == "imageMessage" {
            data["jpegThumbnail"] =
                json!("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U");
            data["isAnimated"] = json!(false);
        }
        let data = json!({
            "typeMessage": file.type_message,
            "fileMessageData": data,
        });
        let body = Self::incoming(id, from_phone, name, data);
        let key = (
            id.to_owned(),
            body["senderData"]["chatId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["idMessage"].as_str().unwrap_or_default().to_owned(),
        );
        // An empty link: a file Green-API never got (`downloadFile` finds none).
        if !file.download_url.is_empty() {
            self.lock().files.insert(key, file.download_url.to_owned());
        }
        self.post_notification(id, &body).await
    }

    /// The account's state changes (the phone unlinked it: `notAuthorized`, …):
    /// `stateInstanceChanged`, after which `getStateInstance` answers it too.
    pub async fn post_state(
        &self,
        id: &str,
        state: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.set_state(id, state);
        let body = json!({
            "typeWebhook": "stateInstanceChanged",
            "instanceData": Self::instance_data(id),
            "timestamp": now(),
            "stateInstance": state,
        });
        self.post_notification(id, &body).await
    }

    /// `outgoingMessageStatus` for one of our messages (`sent`, `delivered`, `read`, `failed`,
    /// `noAccount`, `yellowCard`, …); `failed` and `noAccount` carry a `description`.
    pub async fn post_status(
        &self,
        id: &str,
        id_message: &str,
        status: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let chat_id = self
            .lock()
            .sent
            .iter()
            .find(|m| m.id_message == id_message)
            .map(|m| m.chat_id.clone())
            .unwrap_or_default();
        let mut body = json!({
            "typeWebhook": "outgoingMessageStatus",
            "chatId": chat_id,
            "instanceData": Self::instance_data(id),
            "timestamp": now(),
            "idMessage": id_message,
            "status": status,
            "sendByApi": true,
        });
        // `failed` and `noAccount` carry a `description` (Green-API's types: `description?`).
        // Unconfirmed: the words Green-API writes there.
        let description = match status {
            "failed" => Some("Message sending failed: recipient is unreachable"),
            "noAccount" => Some("Recipient does not have a WhatsApp account"),
            _ => None,
        };
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        self.post_notification(id, &body).await
    }

    /// POST a notification to the instance's webhook with its `Authorization` header.
    pub async fn post_notification(
        &self,
        id: &str,
        body: &Value,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let url = self.setting(id, "webhookUrl").unwrap_or_default();
        let token = self.setting(id, "webhookUrlToken");
        self.post_raw(&url, token.as_deref(), body).await
    }

    /// POST `body` to `url` with `Authorization: Bearer <token>` when a token is given.
    pub async fn post_raw(
        &self,
        url: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.lock().last_posted = Some((url.to_owned(), token.map(str::to_owned), body.clone()));
        let mut request = self.http.post(url).json(body);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Ok(request.send().await?.status())
    }

    /// The last notification again, exactly as first posted.
    pub async fn redeliver_last(&self) -> Option<Result<reqwest::StatusCode, reqwest::Error>> {
        let (url, token, body) = self.lock().last_posted.clone()?;
        Some(self.post_raw(&url, token.as_deref(), &body).await)
    }
}

// ---- HTTP side ----

/// `(idInstance, method, token)` from `/waInstance{id}/{method}/{token}`.
fn route(path: &str) -> Option<(String, String, String)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let [instance, method, token] = segments.as_slice() else {
        return None;
    };
    let id = instance.strip_prefix("waInstance")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| {
        (
            id.to_owned(),
            method.to_ascii_lowercase(),
            (*token).to_owned(),
        )
    })
}

fn bad_request(text: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "message": text }))
}

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeGreenApi>,
) -> HttpResponse {
    let Some((id, method, token)) = route(req.path()) else {
        return HttpResponse::NotFound().finish();
    };
    let mut stall = None;
    let answer = {
        let mut guard = fake.lock();
        let state = &mut *guard;
        if state.fail_next.0 > 0 {
            state.fail_next.0 -= 1;
            let status = StatusCode::from_u16(state.fail_next.1)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return HttpResponse::build(status).body(state.fail_next.2.clone());
        }
        let Some(instance) = state.instances.get_mut(&id) else {
            return HttpResponse::Forbidden().finish();
        };
        if instance.token != token {
            return HttpResponse::Unauthorized().finish();
        }
        let params: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice(&body) {
                Ok(Value::Object(m)) => m,
                _ => return bad_request("bad request data"),
            }
        };
        let post = req.method() == actix_web::http::Method::POST;
        match method.as_str() {
            "getstateinstance" => {
                HttpResponse::Ok().json(json!({ "stateInstance": instance.state }))
            }
            "getsettings" => HttpResponse::Ok().json(&instance.settings),
            "setsettings" if post => {
                for (k, v) in params {
                    instance.settings.insert(k, v);
                }
                HttpResponse::Ok().json(json!({ "saveSettings": true }))
            }
            "sendmessage" | "sendfilebyurl" if post => {
                let answer = if method == "sendmessage" {
                    send_message(&id, &mut state.sent, &params)
                } else {
                    send_file_by_url(&id, &mut state.sent, &params)
                };
                if answer.status().is_success() && state.stall_sends.0 > 0 {
                    state.stall_sends.0 -= 1;
                    stall = Some(state.stall_sends.1);
                }
                answer
            }
            "getchathistory" if post => {
                let Some(chat_id) = params.get("chatId").and_then(Value::as_str) else {
                    return bad_request("Validation failed. Details: 'chatId' is required");
                };
                let count = params
                    .get("count")
                    .and_then(Value::as_u64)
                    .map_or(100, |c| c as usize);
                let items: Vec<Value> = state
                    .sent
                    .iter()
                    .rev()
                    .filter(|m| m.id_instance == id && m.chat_id == chat_id)
                    .take(count)
                    .map(history_item)
                    .collect();
                HttpResponse::Ok().json(items)
            }
            "downloadfile" if post => {
                let text = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or_default();
                let (chat_id, id_message) = (text("chatId"), text("idMessage"));
                if chat_id.is_empty() || id_message.is_empty() {
                    return bad_request(
                        "Validation failed. Details: 'value' must have at least 2 keys",
                    );
                }
                let key = (id.clone(), chat_id.to_owned(), id_message.to_owned());
                match state.files.get(&key) {
                    Some(url) => HttpResponse::Ok().json(json!({ "downloadUrl": url })),
                    None => bad_request(&format!(
                        "File message encrypted url not found by chatId {chat_id} and idMessage {id_message}"
                    )),
                }
            }
            "lastoutgoingmessages" => {
                let minutes = req
                    .query_string()
                    .split('&')
                    .find_map(|p| p.strip_prefix("minutes="))
                    .and_then(|m| m.parse::<i64>().ok())
                    .unwrap_or(1440);
                let since = now() - minutes * 60;
                let items: Vec<Value> = state
                    .sent
                    .iter()
                    .rev()
                    .filter(|m| m.id_instance == id && m.timestamp >= since)
                    .map(history_item)
                    .collect();
                HttpResponse::Ok().json(items)
            }
            _ => HttpResponse::NotFound().finish(),
        }
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    answer
}

fn history_item(m: &SentMessage) -> Value {
    let mut item = json!({
        "type": "outgoing",
        "idMessage": m.id_message,
        "timestamp": m.timestamp,
        "typeMessage": m.type_message,
        "chatId": m.chat_id,
        "statusMessage": "sent",
        "sendByApi": true,
        "isForwarded": false,
        "forwardingScore": 0,
    });
    match (&m.url_file, &m.file_name) {
        (Some(url), Some(name)) => {
            item["downloadUrl"] = json!(url);
            item["fileName"] = json!(name);
            item["caption"] = json!(m.message);
        }
        _ => item["textMessage"] = json!(m.message),
    }
    item
}

/// A chat id Green-API accepts: digits (and a dash, for old groups) `@c.us` or `@g.us`.
fn valid_chat_id(chat_id: &str) -> bool {
    ["@c.us", "@g.us"].iter().any(|suffix| {
        chat_id.strip_suffix(suffix).is_some_and(|local| {
            !local.is_empty() && local.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        })
    })
}

/// What a file is sent as, by its name's extension.
fn type_of_file(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "webp" | "gif" => "imageMessage",
        "mp4" | "3gp" | "mov" => "videoMessage",
        "ogg" | "oga" | "opus" | "mp3" | "m4a" | "aac" => "audioMessage",
        _ => "documentMessage",
    }
}

fn send_file_by_url(
    id: &str,
    sent: &mut Vec<SentMessage>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::trim);
    let Some(chat_id) = text("chatId") else {
        return bad_request("Validation failed. Details: 'chatId' is required");
    };
    if !valid_chat_id(chat_id) {
        return bad_request("Validation failed. Details: 'chatId' must be a valid chat id");
    }
    let Some(url_file) = text("urlFile").filter(|u| !u.is_empty()) else {
        return bad_request("Validation failed. Details: 'urlFile' is required");
    };
    if !(url_file.starts_with("https://") || url_file.starts_with("http://")) {
        return bad_request("Validation failed. Details: 'urlFile' must be a valid uri");
    }
    let Some(file_name) = text("fileName").filter(|n| !n.is_empty()) else {
        return bad_request("Validation failed. Details: 'fileName' is required");
    };
    let caption = text("caption").unwrap_or_default();
    let id_message = random_hex(20);
    sent.push(SentMessage {
        id_instance: id.to_owned(),
        chat_id: chat_id.to_owned(),
        message: caption.to_owned(),
        id_message: id_message.clone(),
        timestamp: now(),
        type_message: type_of_file(file_name).to_owned(),
        url_file: Some(url_file.to_owned()),
        file_name: Some(file_name.to_owned()),
    });
    HttpResponse::Ok().json(json!({ "idMessage": id_message }))
}

fn send_message(
    id: &str,
    sent: &mut Vec<SentMessage>,
    params: &Map<String, Value>,
) -> HttpResponse {
    let Some(chat_id) = params.get("chatId").and_then(Value::as_str) else {
        return bad_request("Validation failed. Details: 'chatId' is required");
    };
    if !valid_chat_id(chat_id) {
        return bad_request("Validation failed. Details: 'chatId' must be a valid chat id");
    }
    let Some(message) = params.get("message").and_then(Value::as_str) else {
        return bad_request("Validation failed. Details: 'message' is required");
    };
    if message.chars().count() > 20_000 {
        return bad_request(
            "Validation failed. Details: 'message' length must be less than or equal to 20000 characters long",
        );
    }
    let id_message = random_hex(20);
    // Queued even while the account is not authorized (sent once it is, within 24 hours).
    sent.push(SentMessage {
        id_instance: id.to_owned(),
        chat_id: chat_id.to_owned(),
        message: message.to_owned(),
        id_message: id_message.clone(),
        timestamp: now(),
        type_message: "textMessage".to_owned(),
        url_file: None,
        file_name: None,
    });
    HttpResponse::Ok().json(json!({ "idMessage": id_message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_instance_method_and_token() {
        assert_eq!(
            route("/waInstance1101/GetStateInstance/tok"),
            Some(("1101".into(), "getstateinstance".into(), "tok".into()))
        );
        assert_eq!(route("/waInstanceX/getStateInstance/tok"), None);
        assert_eq!(route("/waInstance1/sendMessage"), None);
    }
}
