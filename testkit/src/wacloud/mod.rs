//! A fake of Meta's WhatsApp Cloud API (Graph API) for one or more business phone numbers.
//!
//! Routes: `GET /{version}/{phone-number-id}` (the number), `POST
//! /{version}/{phone-number-id}/messages` (text, template, and `image`/`document`/`audio`/
//! `video` sends by `link` or media `id`), `POST /{version}/{phone-number-id}/media` (an
//! upload: multipart `messaging_product`, `type`, `file` → `{"id"}`; a type Meta does not
//! list is error 100), `GET /{version}/{waba-id}/message_templates`,
//! `GET /{version}/{media-id}` (a customer's file: `{messaging_product, url, mime_type,
//! sha256, file_size, id}` as Meta answers) and the `url` it names,
//! `GET /whatsapp_business/attachments/?mid=…&ext=…&hash=…` (the bytes, for the same bearer
//! token only; 404 once the media is gone). `Authorization: Bearer` is required; a wrong token
//! is 401 with Graph error 190, an unknown object 400 with error 100, in Graph's envelope
//! `{"error":{message, type, code, error_data?, fbtrace_id}}`. The 24-hour window is kept per
//! `wa_id` from the customer messages the driver posted: free text outside it is accepted and
//! then failed with 131047 in a status (as Meta does); a number marked as not on WhatsApp is
//! refused with 131026; `rate_limit_next` answers Meta's throughput error (HTTP 400 with
//! code 130429) and `fail_next` any Graph error.
//!
//! The driver side POSTs notifications shaped on pywa's fixtures (string timestamps,
//! `contacts[].profile.name`, `conversation`/`pricing` on statuses, `errors` arrays, media
//! objects with `mime_type`, base64 `sha256` and `id`, `voice` on audio), signed
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>`, and performs the
//! `hub.challenge` handshake.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, http::StatusCode, web};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::server::{Running, spawn};
use crate::wa_template::{self, Header, SentHeader};

pub const WABA_ID: &str = "102290129340398";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub phone_number_id: String,
    pub to: String,
    /// `text` or `template`.
    pub kind: String,
    /// The text, or the template's name.
    pub body: String,
    pub language: Option<String>,
    /// A template's body variables, its header value and URL button variables (`(index,
    /// text)`).
    pub params: Vec<String>,
    pub header: Option<SentHeader>,
    pub buttons: Vec<(String, String)>,
    pub id: String,
    pub timestamp: i64,
    /// A media send's `link` (or `id`), `caption` and document `filename`.
    pub link: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

/// A file a customer sent: Meta keeps it under a media id for the business's number.
struct Media {
    phone_number_id: String,
    mime_type: String,
    bytes: Vec<u8>,
    /// Gone (a webhook's media ids expire after 7 days): the download URL answers 404.
    expired: bool,
}

/// A media message a customer sends (see [`FakeCloudApi::post_incoming_media`]).
#[derive(Debug, Clone, Copy)]
pub struct IncomingMedia<'a> {
    /// `image`, `document`, `audio`, `video`, `sticker`.
    pub kind: &'a str,
    /// From [`FakeCloudApi::add_media`].
    pub media_id: &'a str,
    pub caption: Option<&'a str>,
    /// Documents only.
    pub filename: Option<&'a str>,
    /// Audio only: a recorded voice note.
    pub voice: bool,
}

struct Number {
    token: String,
    display: String,
    verified_name: String,
}

#[derive(Default)]
struct State {
    numbers: HashMap<String, Number>,
    templates: Vec<Value>,
    media: HashMap<String, Media>,
    /// wa_id → unix time of the customer's last message.
    last_inbound: HashMap<String, i64>,
    no_whatsapp: HashSet<String>,
    sent: Vec<SentMessage>,
    /// Statuses Meta would post later (e.g. 131047 for free text outside the window).
    pending_failures: Vec<(String, String, i64, String)>,
    /// Count, HTTP status, Graph code, message, `error_data.details`.
    fail_next: (u32, u16, i64, String, String),
    /// The next `.0` accepted sends answer only after `.1` (sent, but the answer is late).
    stall_sends: (u32, Duration),
    last_posted: Option<(String, String, Vec<u8>)>,
    uploads: usize,
}

#[derive(Clone)]
pub struct FakeCloudApi {
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl Default for FakeCloudApi {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hex_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16)]))
        .collect()
}

/// `sha256=<hex>` of `body` with `secret`, as Meta signs.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn graph_error(
    status: u16,
    code: i64,
    kind: &str,
    message: &str,
    details: Option<&str>,
) -> HttpResponse {
    let mut error = json!({
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": format!("A{}", hex_id(22)),
    });
    if let Some(d) = details {
        error["error_data"] = json!({ "messaging_product": "whatsapp", "details": d });
    }
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .json(json!({ "error": error }))
}

impl FakeCloudApi {
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

    pub fn add_number(&self, phone_number_id: &str, token: &str, display: &str, name: &str) {
        self.lock().numbers.insert(
            phone_number_id.to_owned(),
            Number {
                token: token.to_owned(),
                display: display.to_owned(),
                verified_name: name.to_owned(),
            },
        );
    }

    /// An approved template in the business account (`{{1}}`-style body), with the
    /// components Meta lists (a text header, the body with its example, a footer, a quick
    /// reply button): only the body takes variables here.
    pub fn add_template(&self, name: &str, language: &str, body: &str) {
        let example: Vec<String> = (1..=wa_template::placeholders(body).len())
            .map(|n| format!("example {n}"))
            .collect();
        self.lock().templates.push(json!({
            "name": name,
            "parameter_format": "POSITIONAL",
            "components": [
                { "type": "HEADER", "format": "TEXT", "text": "Demo shop" },
                { "type": "BODY", "text": body, "example": { "body_text": [example] } },
                { "type": "FOOTER", "text": "Reply STOP to unsubscribe" },
                { "type": "BUTTONS", "buttons": [{ "type": "QUICK_REPLY", "text": "OK" }] },
            ],
            "language": language,
            "status": "APPROVED",
            "category": "UTILITY",
            "id": hex_id(15),
        }));
    }

    /// An approved template with a header (a text one with `{{1}}`, or a media one whose file
    /// is linked at send time) and URL buttons `(caption, address)` after a quick reply, as
    /// Meta lists it; sends are checked against it (see [`wa_template::check`]).
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
            "parameter_format": "POSITIONAL",
            "components": wa_template::components(body, header, url_buttons),
            "language": language,
            "status": "APPROVED",
            "category": "UTILITY",
            "id": hex_id(15),
        }));
    }

    /// A template still in review: listed by Meta, never offered.
    pub fn add_pending_template(&self, name: &str) {
        self.lock().templates.push(json!({
            "name": name, "components": [{ "type": "BODY", "text": "x" }],
            "language": "ru", "status": "PENDING", "category": "MARKETING", "id": hex_id(15),
        }));
    }

    /// A file a customer uploads to WhatsApp, reachable with `phone_number_id`'s token;
    /// answers its media id.
    pub fn add_media(&self, phone_number_id: &str, mime_type: &str, bytes: &[u8]) -> String {
        let id = media_id();
        self.lock().media.insert(
            id.clone(),
            Media {
                phone_number_id: phone_number_id.to_owned(),
                mime_type: mime_type.to_owned(),
                bytes: bytes.to_vec(),
                expired: false,
            },
        );
        id
    }

    /// What was uploaded under `media_id` (`POST /{phone-number-id}/media`): its type and
    /// bytes.
    pub fn media(&self, media_id: &str) -> Option<(String, Vec<u8>)> {
        self.lock()
            .media
            .get(media_id)
            .map(|m| (m.mime_type.clone(), m.bytes.clone()))
    }

    /// How many files were uploaded to the fake.
    pub fn upload_count(&self) -> usize {
        self.lock().uploads
    }

    /// The media is gone from Meta: its download answers 404.
    pub fn expire_media(&self, media_id: &str) {
        if let Some(m) = self.lock().media.get_mut(media_id) {
            m.expired = true;
        }
    }

    /// Meta's window for `wa_id` closes now (its clock, not ours): free text it accepts from
    /// here on is failed later with 131047, whatever the sender estimated.
    pub fn close_window(&self, wa_id: &str) {
        if let Some(t) = self.lock().last_inbound.get_mut(wa_id) {
            *t = now() - 25 * 3600;
        }
    }

    pub fn mark_no_whatsapp(&self, wa_id: &str) {
        self.lock().no_whatsapp.insert(wa_id.to_owned());
    }

    /// The next `n` Graph calls hit the number's throughput limit: Meta answers HTTP 400
    /// (not 429) with error code 130429 in the Graph envelope — Meta's error-code table lists
    /// it as 400 Bad Request; reference/messengers-api.md's "429" comes from a provider (YCloud)
    /// that re-wraps Meta's answers.
    pub fn rate_limit_next(&self, n: u32) {
        self.lock().fail_next = (
            n,
            400,
            130429,
            "(#130429) Rate limit hit".to_owned(),
            "Cloud API message throughput has been reached.".to_owned(),
        );
    }

    /// The next `n` Graph calls answer this error (status and Graph code as given; the message
    /// doubles as `error_data.details`).
    pub fn fail_next(&self, n: u32, status: u16, code: i64, message: &str) {
        self.lock().fail_next = (n, status, code, message.to_owned(), message.to_owned());
    }

    /// The next `n` sends go out but are answered after `delay`: a client with a shorter
    /// timeout never learns that they were sent.
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

    fn envelope(value: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": WABA_ID, "changes": [{ "value": value, "field": "messages" }] }],
        })
    }

    /// Notifications name the number in digits only (pywa's fixtures: `"972123456789"`); only
    /// `GET /{phone-number-id}` answers the formatted form.
    fn metadata(&self, phone_number_id: &str) -> Value {
        let display: String = self
            .lock()
            .numbers
            .get(phone_number_id)
            .map(|n| n.display.chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default();
        json!({ "display_phone_number": display, "phone_number_id": phone_number_id })
    }

    /// A customer writes: a signed `messages` notification; opens the 24-hour window.
    pub async fn post_incoming(
        &self,
        url: &str,
        app_secret: &str,
        phone_number_id: &str,
        from: &str,
        name: &str,
        text: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.post_incoming_at(url, app_secret, phone_number_id, from, name, text, now())
            .await
    }

    /// A customer's message written at `at` (unix seconds) and notified now, as when Meta
    /// delivers a notification late; the window runs from `at`.
    #[allow(clippy::too_many_arguments)]
    pub async fn post_incoming_at(
        &self,
        url: &str,
        app_secret: &str,
        phone_number_id: &str,
        from: &str,
        name: &str,
        text: &str,
        at: i64,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.lock().last_inbound.insert(from.to_owned(), at);
        let body = Self::envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": self.metadata(phone_number_id),
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [{
                "from": from,
                "id": format!("wamid.{}", hex_id(40)),
                "timestamp": at.to_string(),
                "text": { "body": text },
                "type": "text",
            }],
        }));
        self.post_signed(url, app_secret, &body).await
    }

    /// What else a customer's phone makes Meta notify, as the real notifications carry it: a
    /// message type the Cloud API cannot show (`unsupported`, with its `errors` array, code
    /// 131051, as in pywa's fixtures), and a reaction to our message, whose emoji is empty when
    /// the customer takes the reaction back. Neither opens the window for free text.
    pub async fn post_unsupported_and_reaction(
        &self,
        url: &str,
        app_secret: &str,
        phone_number_id: &str,
        from: &str,
        name: &str,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let at = now().to_string();
        let body = Self::envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": self.metadata(phone_number_id),
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [
                {
                    "from": from,
                    "id": format!("wamid.{}", hex_id(40)),
                    "timestamp": at,
                    "errors": [{
                        "code": 131051,
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "error_data": { "details": "Message type is currently not supported." },
                    }],
                    "type": "unsupported",
                },
                {
                    "from": from,
                    "id": format!("wamid.{}", hex_id(40)),
                    "timestamp": at,
                    "reaction": { "message_id": format!("wamid.{}", hex_id(40)), "emoji": "" },
                    "type": "reaction",
                },
            ],
        }));
        self.post_signed(url, app_secret, &body).await
    }

    /// A customer sends a file (see [`FakeCloudApi::add_media`]): a signed `messages`
    /// notification with the media object as pywa's fixtures show it; opens the window.
    pub async fn post_incoming_media(
        &self,
        url: &str,
        app_secret: &str,
        phone_number_id: &str,
        from: &str,
        name: &str,
        media: &IncomingMedia<'_>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let at = now();
        let (mime_type, digest) = {
            let mut state = self.lock();
            state.last_inbound.insert(from.to_owned(), at);
            state
                .media
                .get(media.media_id)
                .map(|m| {
                    use base64::Engine;
                    use sha2::Digest;
                    let digest =
                        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&m.bytes));
                    (m.mime_type.clone(), digest)
                })
                .unwrap_or_default()
        };
        let mut object = json!({
            "mime_type": mime_type,
            "sha256": digest,
            "id": media.media_id,
        });
        if let Some(c) = media.caption {
            object["caption"] = json!(c);
        }
        if let Some(f) = media.filename {
            object["filename"] = json!(f);
        }
        match media.kind {
            "audio" => object["voice"] = json!(media.voice),
            "sticker" => object["animated"] = json!(false),
            _ => {}
        }
        let mut message = json!({
            "from": from,
            "id": format!("wamid.{}", hex_id(40)),
            "timestamp": at.to_string(),
            "type": media.kind,
        });
        message[media.kind] = object;
        let body = Self::envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": self.metadata(phone_number_id),
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [message],
        }));
        self.post_signed(url, app_secret, &body).await
    }

    /// A status of one of our messages; `failed` ones carry an `errors` array.
    pub async fn post_status(
        &self,
        url: &str,
        app_secret: &str,
        phone_number_id: &str,
        message_id: &str,
        status: &str,
        error: Option<(i64, &str, &str)>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let to = self
            .lock()
            .sent
            .iter()
            .find(|m| m.id == message_id)
            .map(|m| m.to.clone())
            .unwrap_or_default();
        let mut s = json!({
            "id": message_id,
            "status": status,
            "timestamp": now().to_string(),
            "recipient_id": to,
        });
        match error {
            Some((code, title, details)) => {
                s["errors"] = json!([{
                    "code": code, "title": title, "message": title,
                    "error_data": { "details": details },
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }]);
            }
            None => {
                s["conversation"] = json!({
                    "id": hex_id(30).to_lowercase(),
                    "expiration_timestamp": (now() + 86_400).to_string(),
                    "origin": { "type": "service" },
                });
                s["pricing"] =
                    json!({ "billable": true, "pricing_model": "CBP", "category": "service" });
            }
        }
        let body = Self::envelope(json!({
            "messaging_product": "whatsapp",
            "metadata": self.metadata(phone_number_id),
            "statuses": [s],
        }));
        self.post_signed(url, app_secret, &body).await
    }

    /// Statuses Meta owes for sends it accepted but could not deliver (131047 outside the
    /// window), posted now.
    pub async fn post_pending_failures(
        &self,
        url: &str,
        app_secret: &str,
    ) -> Result<usize, reqwest::Error> {
        let pending = std::mem::take(&mut self.lock().pending_failures);
        for (phone_number_id, id, code, details) in &pending {
            self.post_status(
                url,
                app_secret,
                phone_number_id,
                id,
                "failed",
                Some((*code, "Re-engagement message", details)),
            )
            .await?;
        }
        Ok(pending.len())
    }

    pub async fn post_signed(
        &self,
        url: &str,
        app_secret: &str,
        body: &Value,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let raw = serde_json::to_vec(body).unwrap_or_default();
        let signature = sign(app_secret, &raw);
        self.post_raw(url, &signature, raw).await
    }

    /// POST raw bytes with the given signature header (for refusal tests).
    pub async fn post_raw(
        &self,
        url: &str,
        signature: &str,
        raw: Vec<u8>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.lock().last_posted = Some((url.to_owned(), signature.to_owned(), raw.clone()));
        let r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(raw)
            .send()
            .await?;
        Ok(r.status())
    }

    /// At-least-once delivery: the last notification again, byte for byte.
    pub async fn redeliver_last(&self) -> Option<Result<reqwest::StatusCode, reqwest::Error>> {
        let (url, sig, raw) = self.lock().last_posted.clone()?;
        Some(self.post_raw(&url, &sig, raw).await)
    }

    /// Meta's subscription check: `(status, body)` of our answer.
    pub async fn verify(
        &self,
        url: &str,
        verify_token: &str,
        challenge: &str,
    ) -> Result<(u16, String), reqwest::Error> {
        let r = self
            .http
            .get(url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", verify_token),
                ("hub.challenge", challenge),
            ])
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }
}

// ---- HTTP side ----

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeCloudApi>,
) -> HttpResponse {
    let segments: Vec<String> = req
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    if let [a, b] = segments.as_slice()
        && a == "whatsapp_business"
        && b == "attachments"
    {
        return attachment(&req, &fake, &token);
    }
    let mut stall = None;
    let answer = {
        let mut guard = fake.lock();
        let state = &mut *guard;
        if state.fail_next.0 > 0 {
            state.fail_next.0 -= 1;
            let (_, status, code, message, details) = state.fail_next.clone();
            return graph_error(status, code, "OAuthException", &message, Some(&details));
        }
        if token.is_empty() || !state.numbers.values().any(|n| n.token == token) {
            return graph_error(
                401,
                190,
                "OAuthException",
                "Invalid OAuth access token - Cannot parse access token",
                None,
            );
        }
        let unknown = unknown_object;
        let post = req.method() == actix_web::http::Method::POST;
        match segments.as_slice() {
            [_version, id] if !post && state.media.contains_key(id) => {
                media_url(&req, state, id, &token)
            }
            [_version, id] if !post => match state.numbers.get(id) {
                Some(n) if n.token == token => HttpResponse::Ok().json(json!({
                    "verified_name": n.verified_name,
                    "code_verification_status": "VERIFIED",
                    "display_phone_number": n.display,
                    "quality_rating": "GREEN",
                    "platform_type": "CLOUD_API",
                    "throughput": { "level": "STANDARD" },
                    "id": id,
                })),
                _ => unknown(id),
            },
            [_version, id, m] if post && m == "messages" => {
                if state.numbers.get(id).is_none_or(|n| n.token != token) {
                    return unknown(id);
                }
                let answer = send(state, id, &body);
                if answer.status().is_success() && state.stall_sends.0 > 0 {
                    state.stall_sends.0 -= 1;
                    stall = Some(state.stall_sends.1);
                }
                answer
            }
            [_version, id, m] if post && m == "media" => {
                if state.numbers.get(id).is_none_or(|n| n.token != token) {
                    return unknown(id);
                }
                upload(&req, state, id, &body)
            }
            [_version, waba, m] if !post && m == "message_templates" => {
                if waba != WABA_ID {
                    return unknown(waba);
                }
                templates_page(&req, &state.templates)
            }
            _ => graph_error(400, 100, "OAuthException", "Unknown path components", None),
        }
    };
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// One page of `message_templates`, paged like Graph: `limit` (default 25), an `after`
/// cursor, `paging.cursors` always and `paging.next` only when more follow.
fn templates_page(req: &HttpRequest, templates: &[Value]) -> HttpResponse {
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(25);
    let start = match query.get("after") {
        None => 0,
        Some(cursor) => match cursor_offset(cursor) {
            Some(n) => n,
            None => {
                return graph_error(400, 100, "OAuthException", "(#100) Invalid cursor", None);
            }
        },
    };
    let end = (start + limit).min(templates.len());
    let data = templates.get(start..end).unwrap_or_default();
    let mut paging = json!({ "cursors": { "before": cursor(start), "after": cursor(end) } });
    if end < templates.len() {
        paging["next"] = json!(format!(
            "https://graph.facebook.com/v23.0/{WABA_ID}/message_templates?limit={limit}&after={}",
            cursor(end)
        ));
    }
    HttpResponse::Ok().json(json!({ "data": data, "paging": paging }))
}

/// Graph cursors are opaque; the fake's encode the offset.
fn cursor(offset: usize) -> String {
    format!("QVFI{offset:08X}")
}

fn cursor_offset(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix("QVFI")?, 16).ok()
}

fn send(state: &mut State, phone_number_id: &str, body: &[u8]) -> HttpResponse {
    let invalid = |m: &str| graph_error(400, 100, "OAuthException", &format!("(#100) {m}"), None);
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid parameter");
    };
    if req.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return invalid("The parameter messaging_product is required.");
    }
    let Some(to) = req.get("to").and_then(Value::as_str) else {
        return invalid("The parameter to is required.");
    };
    let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
    let kind = req.get("type").and_then(Value::as_str).unwrap_or("text");
    let mut media_send = None;
    let mut template_extras = None;
    let (body_text, language, params) = match kind {
        "text" => match req.pointer("/text/body").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && t.chars().count() <= 4096 => {
                (t.to_owned(), None, Vec::new())
            }
            _ => {
                return invalid(
                    "Param text['body'] must be a non-empty string of at most 4096 characters",
                );
            }
        },
        "template" => {
            let Some(name) = req.pointer("/template/name").and_then(Value::as_str) else {
                return invalid("Param template['name'] is required");
            };
            let language = req
                .pointer("/template/language/code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let Some(t) = state.templates.iter().find(|t| {
                t["name"] == name && t["language"] == language.as_str() && t["status"] == "APPROVED"
            }) else {
                return graph_error(
                    404,
                    132001,
                    "OAuthException",
                    "(#132001) Template name does not exist in the translation",
                    Some(&format!(
                        "template name ({name}) does not exist in {language}"
                    )),
                );
            };
            let definition = t["components"].as_array().cloned().unwrap_or_default();
            let sent: Vec<Value> = req
                .pointer("/template/components")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let filled = match wa_template::check(&definition, &sent) {
                Ok(f) => f,
                Err(r) => {
                    return graph_error(
                        400,
                        r.code,
                        "OAuthException",
                        &r.message,
                        Some(&r.details),
                    );
                }
            };
            let params = filled.body.clone();
            template_extras = Some((filled.header, filled.buttons));
            (name.to_owned(), Some(language), params)
        }
        "image" | "document" | "audio" | "video" => {
            let object = req.get(kind).cloned().unwrap_or(Value::Null);
            let link = object.get("link").and_then(Value::as_str);
            let id = object.get("id").and_then(Value::as_str);
            let source = match (link, id) {
                (Some(l), None) if l.starts_with("https://") || l.starts_with("http://") => l,
                (None, Some(id)) if !id.is_empty() => id,
                (Some(_), None) => {
                    return invalid(&format!("Param {kind}['link'] is not a valid URI"));
                }
                _ => {
                    return invalid(&format!(
                        "Param {kind} must contain exactly one of id or link"
                    ));
                }
            };
            let text = |k: &str| object.get(k).and_then(Value::as_str).map(str::to_owned);
            media_send = Some((source.to_owned(), text("caption"), text("filename")));
            (String::new(), None, Vec::new())
        }
        other => return invalid(&format!("Unsupported message type {other}")),
    };
    if state.no_whatsapp.contains(&wa_id) {
        return graph_error(
            400,
            131026,
            "OAuthException",
            "(#131026) Message Undeliverable.",
            Some("Message Undeliverable."),
        );
    }
    let id = format!("wamid.{}", hex_id(40));
    let open = state
        .last_inbound
        .get(&wa_id)
        .is_some_and(|t| now() - t < 24 * 3600);
    // Only templates may start a conversation: any other message outside the window fails.
    if kind != "template" && !open {
        state.pending_failures.push((
            phone_number_id.to_owned(),
            id.clone(),
            131047,
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into(),
        ));
    }
    state.sent.push(SentMessage {
        phone_number_id: phone_number_id.to_owned(),
        to: wa_id.clone(),
        kind: kind.to_owned(),
        body: body_text,
        language,
        params,
        header: template_extras.as_ref().and_then(|e| e.0.clone()),
        buttons: template_extras.map(|e| e.1).unwrap_or_default(),
        id: id.clone(),
        timestamp: now(),
        link: media_send.as_ref().map(|m| m.0.clone()),
        caption: media_send.as_ref().and_then(|m| m.1.clone()),
        filename: media_send.and_then(|m| m.2),
    });
    HttpResponse::Ok().json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": wa_id }],
        "messages": [{ "id": id }],
    }))
}

/// The types Meta takes as media uploads (its supported media list).
const UPLOAD_TYPES: [&str; 19] = [
    "audio/aac",
    "audio/mp4",
    "audio/mpeg",
    "audio/amr",
    "audio/ogg",
    "audio/opus",
    "application/vnd.ms-powerpoint",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/pdf",
    "text/plain",
    "image/jpeg",
    "image/png",
    "image/webp",
    "video/mp4",
    "video/3gpp",
];

/// `POST /{phone-number-id}/media`: a multipart upload of `file` with its `type` and
/// `messaging_product`; answers the new media id, which this number may send.
fn upload(
    req: &HttpRequest,
    state: &mut State,
    phone_number_id: &str,
    body: &[u8],
) -> HttpResponse {
    let invalid = |m: &str| graph_error(400, 100, "OAuthException", &format!("(#100) {m}"), None);
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) =
        crate::multipart::boundary(content_type).and_then(|b| crate::multipart::parse(body, &b))
    else {
        return invalid("The parameter file is required.");
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|(n, f, _)| n == name && f.is_none())
            .map(|(_, _, v)| String::from_utf8_lossy(v).trim().to_owned())
    };
    if field("messaging_product").as_deref() != Some("whatsapp") {
        return invalid("The parameter messaging_product is required.");
    }
    let Some(bytes) = parts
        .iter()
        .find(|(n, f, _)| n == "file" && f.is_some())
        .map(|(_, _, v)| v.clone())
    else {
        return invalid("The parameter file is required.");
    };
    let Some(kind) = field("type").filter(|t| !t.is_empty()) else {
        return invalid("The parameter type is required.");
    };
    // Unconfirmed: Meta's exact words for a type it does not take.
    if !UPLOAD_TYPES.contains(&kind.as_str()) {
        return invalid(&format!(
            "Param file must be a file with one of the following types: {}. Received file of type '{kind}'.",
            UPLOAD_TYPES.join(", ")
        ));
    }
    let id = media_id();
    state.media.insert(
        id.clone(),
        Media {
            phone_number_id: phone_number_id.to_owned(),
            mime_type: kind,
            bytes,
            expired: false,
        },
    );
    state.uploads += 1;
    HttpResponse::Ok().json(json!({ "id": id }))
}

/// Graph's answer for an id the token may not see (or that does not exist).
fn unknown_object(id: &str) -> HttpResponse {
    graph_error(
        400,
        100,
        "GraphMethodException",
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
        None,
    )
}

/// A media id as Meta writes them: 15–16 digits.
fn media_id() -> String {
    let mut rng = rand::rng();
    format!(
        "{}",
        rng.random_range(100_000_000_000_000_u64..10_000_000_000_000_000)
    )
}

/// `http://host:port` of the fake as the request reached it: where its download URLs point.
fn own_base(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// `GET /{version}/{media-id}`: the media's temporary URL, for a token of the number it was
/// sent to.
fn media_url(req: &HttpRequest, state: &State, id: &str, token: &str) -> HttpResponse {
    let Some(m) = state.media.get(id) else {
        return unknown_object(id);
    };
    let owner_token = state
        .numbers
        .get(&m.phone_number_id)
        .map(|n| n.token.as_str());
    if owner_token != Some(token) {
        return unknown_object(id);
    }
    use sha2::Digest;
    HttpResponse::Ok().json(json!({
        "url": format!(
            "{}/whatsapp_business/attachments/?mid={id}&ext={}&hash=AT{}",
            own_base(req),
            now(),
            hex_id(40)
        ),
        "mime_type": m.mime_type,
        "sha256": hex::encode(Sha256::digest(&m.bytes)),
        "file_size": m.bytes.len(),
        "id": id,
        "messaging_product": "whatsapp",
    }))
}

/// The download URL: the bytes for the owning number's token; 404 when the media is gone.
fn attachment(req: &HttpRequest, fake: &FakeCloudApi, token: &str) -> HttpResponse {
    let mid = req
        .query_string()
        .split('&')
        .find_map(|p| p.strip_prefix("mid="))
        .unwrap_or_default()
        .to_owned();
    let state = fake.lock();
    let Some(m) = state.media.get(&mid).filter(|m| !m.expired) else {
        return HttpResponse::NotFound().finish();
    };
    let owner_token = state
        .numbers
        .get(&m.phone_number_id)
        .map(|n| n.token.as_str());
    if token.is_empty() || owner_token != Some(token) {
        return HttpResponse::Unauthorized().finish();
    }
    HttpResponse::Ok()
        .content_type(m.mime_type.clone())
        .body(m.bytes.clone())
}
