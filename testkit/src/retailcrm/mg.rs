//! The fake MG transport API under `/mg/api/transport/v1`: token check, channels, messages.

use actix_web::HttpRequest;
use actix_web::http::Method;
use serde_json::{Value, json};

use super::MgMessageRecord;
use super::api::{MG_PREFIX, Reply, json_response, percent_decode};
use super::state::{Bucket, ChannelRec, State, now_rfc3339};

/// Channel types MG accepts (MGSPEC `Channel.type`).
const CHANNEL_TYPES: &[&str] = &[
    "telegram",
    "fbmessenger",
    "viber",
    "whatsapp",
    "skype",
    "vk",
    "instagram",
    "consultant",
    "yandex_chat",
    "odnoklassniki",
    "max",
    "ozon",
    "wildberries",
    "yandex_market",
    "mega_market",
    "avito",
    "drom",
    "youla",
    "custom",
];

fn errors(status: u16, list: &[String]) -> Reply {
    json_response(status, &json!({ "errors": list }))
}

fn error(status: u16, message: &str) -> Reply {
    errors(status, &[message.to_owned()])
}

/// What MG got downloading the URL of `POST /files/upload_by_url` (fetched before the state
/// is locked): the bytes, or why not.
pub(crate) type Fetched = Option<Result<Vec<u8>, String>>;

pub(crate) fn handle(state: &mut State, req: &HttpRequest, body: &[u8], fetched: Fetched) -> Reply {
    let token = req
        .headers()
        .get("x-transport-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(module) = state.tokens.get(token).cloned() else {
        // Whether MG answers 401 or 403, and with which text, is UNCONFIRMED; our choice.
        return error(401, "Invalid transport token");
    };
    if let Some(rps) = state.cfg.mg_rps
        && !state
            .mg_buckets
            .entry(token.to_owned())
            .or_insert_with(Bucket::new)
            .take(rps)
    {
        state.rate_limited += 1;
        return error(429, "Too many requests");
    }
    let path = req.path().trim_start_matches(MG_PREFIX);
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method();
    let parse_body = || -> Result<Value, Reply> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(error(400, "Invalid JSON body")),
        }
    };
    let result = match (method, segments.as_slice()) {
        (m, ["channels"]) if m == Method::GET => Ok(list_channels(state, &module)),
        (m, ["channels"]) if m == Method::POST => {
            parse_body().and_then(|b| create_channel(state, &module, &b))
        }
        (m, ["channels", id]) if m == Method::DELETE => delete_channel(state, &module, id),
        (m, ["channels", id]) if m == Method::PUT => {
            parse_body().and_then(|b| update_channel(state, &module, id, &b))
        }
        (m, ["messages", "ack"]) if m == Method::POST => {
            parse_body().and_then(|b| ack(state, &module, &b))
        }
        (m, ["messages", "read"]) if m == Method::POST => {
            parse_body().and_then(|b| mark_read(state, &module, &b))
        }
        (m, ["messages"]) if m == Method::POST => {
            parse_body().and_then(|b| send_message(state, &module, &b))
        }
        (m, ["files", "upload"]) if m == Method::POST => upload(state, body),
        (m, ["files", "upload_by_url"]) if m == Method::POST => {
            parse_body().and_then(|_| upload_by_url(state, fetched))
        }
        (m, ["files", id]) if m == Method::GET => get_file(state, req, id),
        _ => Err(error(404, "Method not found")),
    };
    match result {
        Ok(response) | Err(response) => response,
    }
}

/// `POST /files/upload`: the body is the file (as the official client sends it).
fn upload(state: &mut State, body: &[u8]) -> Result<Reply, Reply> {
    if body.is_empty() {
        return Err(error(400, "file: this field is required"));
    }
    if body.len() > MAX_FILE {
        return Err(error(400, "file: the file is too large"));
    }
    let id = state.store_file(body.to_vec(), None);
    Ok(file_base(state, &id))
}

/// `POST /files/upload_by_url {url}`: MG downloads the URL; one it cannot download is refused
/// (the real wording is UNCONFIRMED; ours).
fn upload_by_url(state: &mut State, fetched: Fetched) -> Result<Reply, Reply> {
    match fetched {
        None => Err(error(400, "url: this field is required")),
        Some(Err(why)) => Err(error(400, &format!("url: cannot download the file: {why}"))),
        Some(Ok(bytes)) if bytes.len() > MAX_FILE => Err(error(400, "url: the file is too large")),
        Some(Ok(bytes)) => {
            let id = state.store_file(bytes, None);
            Ok(file_base(state, &id))
        }
    }
}

/// MG's file size limit (`FileSizeLimit` of the official client).
pub(crate) const MAX_FILE: usize = 20 * 1024 * 1024;

/// `{id, type, size}` (MGSPEC `FileBase`).
fn file_base(state: &State, id: &str) -> Reply {
    let Some(f) = state.files.get(id) else {
        return error(404, "File not found");
    };
    json_response(
        200,
        &json!({"id": f.id, "type": f.kind, "size": f.bytes.len()}),
    )
}

/// `GET /files/{id}`: the file with a download URL (`url`, as the official client reads it).
fn get_file(state: &State, req: &HttpRequest, id: &str) -> Result<Reply, Reply> {
    let f = state
        .files
        .get(id)
        .ok_or_else(|| error(404, "File not found"))?;
    let info = req.connection_info();
    let url = format!("{}://{}/mg/files/{}", info.scheme(), info.host(), f.id);
    Ok(json_response(
        200,
        &json!({"id": f.id, "type": f.kind, "size": f.bytes.len(), "url": url, "mime_type": f.mime_type}),
    ))
}

fn list_channels(state: &State, module: &str) -> Reply {
    let list: Vec<&Value> = state
        .channels
        .values()
        .filter(|c| c.module == module)
        .map(|c| &c.value)
        .collect();
    json_response(200, &json!(list))
}

fn create_channel(state: &mut State, module: &str, body: &Value) -> Result<Reply, Reply> {
    let mut problems = Vec::new();
    match body.get("type").and_then(Value::as_str) {
        Some(kind) if CHANNEL_TYPES.contains(&kind) => {}
        Some(kind) => problems.push(format!("type: unknown channel type \"{kind}\"")),
        None => problems.push("type: this field is required".to_owned()),
    }
    if body
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.chars().count() > 100)
    {
        problems.push("name: must be at most 100 characters".to_owned());
    }
    let external_id = body.get("external_id").and_then(Value::as_str);
    if external_id.is_some_and(|e| e.chars().count() > 64) {
        problems.push("external_id: must be at most 64 characters".to_owned());
    }
    if !problems.is_empty() {
        return Err(errors(400, &problems));
    }
    let id = state.next_channel;
    state.next_channel += 1;
    let now = now_rfc3339();
    let mut value = body.clone();
    value["id"] = json!(id);
    value["is_active"] = json!(true);
    value["created_at"] = json!(now);
    value["updated_at"] = json!(now);
    value["activated_at"] = json!(now);
    state.channels.insert(
        id,
        ChannelRec {
            value,
            module: module.to_owned(),
            active: true,
        },
    );
    Ok(json_response(
        201,
        &json!({"id": id, "external_id": external_id, "activated_at": now}),
    ))
}

/// The channel a path names, if it is one of this module's active channels.
fn path_channel<'s>(
    state: &'s mut State,
    module: &str,
    raw_id: &str,
) -> Result<&'s mut ChannelRec, Reply> {
    raw_id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.channels.get_mut(&id))
        .filter(|c| c.module == module && c.active)
        .ok_or_else(|| error(404, "Channel not found"))
}

fn delete_channel(state: &mut State, module: &str, raw_id: &str) -> Result<Reply, Reply> {
    let channel = path_channel(state, module, raw_id)?;
    let now = now_rfc3339();
    channel.active = false;
    channel.value["is_active"] = json!(false);
    channel.value["deactivated_at"] = json!(now);
    Ok(json_response(
        200,
        &json!({"id": channel.value["id"], "deactivated_at": now}),
    ))
}

fn update_channel(
    state: &mut State,
    module: &str,
    raw_id: &str,
    body: &Value,
) -> Result<Reply, Reply> {
    let channel = path_channel(state, module, raw_id)?;
    if let Some(kind) = body.get("type").and_then(Value::as_str)
        && channel.value.get("type").and_then(Value::as_str) != Some(kind)
    {
        return Err(error(400, "type: the channel type cannot be changed"));
    }
    let now = now_rfc3339();
    for field in ["name", "settings", "avatar_url", "external_id"] {
        if let Some(v) = body.get(field) {
            channel.value[field] = v.clone();
        }
    }
    channel.value["updated_at"] = json!(now);
    Ok(json_response(
        200,
        &json!({"id": channel.value["id"], "external_id": channel.value.get("external_id"), "updated_at": now}),
    ))
}

/// `POST /messages/ack`: the outcome of an operator message the transport answered `async`
/// for: `transport_message_id` sends it, `error` fails it.
fn ack(state: &mut State, module: &str, body: &Value) -> Result<Reply, Reply> {
    let channel_id = body_channel(state, module, body)?;
    let message_id = body
        .get("message")
        .and_then(|m| m.get("id"))
        .and_then(Value::as_i64)
        .ok_or_else(|| error(400, "message: this field is required"))?;
    let message = state
        .messages
        .iter_mut()
        .find(|m| m.id == message_id && m.channel_id == channel_id && m.originator == "user")
        .ok_or_else(|| error(404, "Message not found"))?;
    if let Some(e) = body.get("error").filter(|e| !e.is_null()) {
        message.status = "failed".to_owned();
        message.error = Some(e.clone());
    } else {
        message.status = "sent".to_owned();
        message.error = None;
        if let Some(ext) = body.get("transport_message_id").and_then(Value::as_str) {
            message.external_id = Some(ext.to_owned());
        }
    }
    state.acks.push(body.clone());
    Ok(json_response(200, &json!({})))
}

/// `POST /messages/read` `{channel_id, message: {id | external_id}}`: the customer read the
/// message; MG shows it "seen".
fn mark_read(state: &mut State, module: &str, body: &Value) -> Result<Reply, Reply> {
    let mut body = body.clone();
    // This method names the channel `channel_id` (MGSPEC), unlike the others.
    body["channel"] = body.get("channel_id").cloned().unwrap_or(Value::Null);
    let channel_id = body_channel(state, module, &body)?;
    let message = body.get("message").filter(|m| m.is_object());
    let id = message.and_then(|m| m.get("id")).and_then(Value::as_i64);
    let external = message
        .and_then(|m| m.get("external_id"))
        .and_then(Value::as_str);
    if id.is_none() && external.is_none() {
        return Err(error(400, "message: this field is required"));
    }
    let found = state
        .messages
        .iter_mut()
        .find(|m| {
            m.channel_id == channel_id
                && (id == Some(m.id)
                    || (external.is_some() && m.external_id.as_deref() == external))
        })
        .ok_or_else(|| error(404, "Message not found"))?;
    found.status = "seen".to_owned();
    Ok(json_response(200, &json!({})))
}

/// The body's `channel`: required, and one of this module's active channels. Unknown,
/// foreign and deactivated channels look the same to the transport.
fn body_channel(state: &State, module: &str, body: &Value) -> Result<i64, Reply> {
    let channel_id = body
        .get("channel")
        .and_then(Value::as_i64)
        .ok_or_else(|| error(400, "channel: this field is required"))?;
    if !state
        .channels
        .get(&channel_id)
        .is_some_and(|c| c.module == module && c.active)
    {
        return Err(error(404, "Channel not found"));
    }
    Ok(channel_id)
}

fn text_len(v: Option<&Value>) -> Option<usize> {
    v.and_then(Value::as_str).map(|s| s.chars().count())
}

fn send_message(state: &mut State, module: &str, body: &Value) -> Result<Reply, Reply> {
    let channel_id = body_channel(state, module, body)?;

    let mut problems = Vec::new();
    let chat_id = body
        .get("external_chat_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // MG requires a chat id for customer messages as far as we can tell; our choice.
    if chat_id.is_empty() {
        problems.push("external_chat_id: this field is required".to_owned());
    } else if chat_id.chars().count() > 64 {
        problems.push("external_chat_id: must be at most 64 characters".to_owned());
    }
    let chat_key = (channel_id, chat_id.to_owned());
    let known_chat = state.chats.get(&chat_key).cloned();
    let customer = body.get("customer").filter(|c| c.is_object());
    let customer_ext = customer
        .and_then(|c| c.get("external_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // The customer may be omitted once the chat exists; a first message must introduce it.
    if customer.is_some() || known_chat.is_none() {
        match text_len(customer.and_then(|c| c.get("external_id"))) {
            Some(1..=64) => {}
            Some(0) | None => {
                problems.push("customer.external_id: this field is required".to_owned())
            }
            Some(_) => {
                problems.push("customer.external_id: must be at most 64 characters".to_owned())
            }
        }
        match text_len(customer.and_then(|c| c.get("nickname"))) {
            Some(1..=255) => {}
            Some(0) | None => problems.push("customer.nickname: this field is required".to_owned()),
            Some(_) => {
                problems.push("customer.nickname: must be at most 255 characters".to_owned())
            }
        }
    }
    let message = body.get("message").filter(|m| m.is_object());
    let external_id = message
        .and_then(|m| m.get("external_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if external_id
        .as_ref()
        .is_some_and(|e| e.chars().count() > 255)
    {
        problems.push("message.external_id: must be at most 255 characters".to_owned());
    }
    let text = message
        .and_then(|m| m.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match message.and_then(|m| m.get("type")).and_then(Value::as_str) {
        None => problems.push("message.type: this field is required".to_owned()),
        Some("text") => {
            if text.is_empty() {
                problems.push("message.text: this field is required".to_owned());
            } else if text.chars().count() > 65_535 {
                problems.push("message.text: must be at most 65535 characters".to_owned());
            }
        }
        Some("image" | "file" | "audio") => {
            if text.chars().count() > 65_535 {
                problems.push("message.text: must be at most 65535 characters".to_owned());
            }
            match message
                .and_then(|m| m.get("items"))
                .and_then(Value::as_array)
            {
                Some(items) if (1..=20).contains(&items.len()) => {
                    for (i, item) in items.iter().enumerate() {
                        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
                        if !state.files.contains_key(id) {
                            problems.push(format!("message.items[{i}].id: file not found"));
                        }
                        if text_len(item.get("caption")).is_some_and(|n| !(1..=1024).contains(&n)) {
                            problems.push(format!(
                                "message.items[{i}].caption: must be 1 to 1024 characters"
                            ));
                        }
                    }
                }
                _ => problems.push("message.items: must have 1 to 20 files".to_owned()),
            }
        }
        // Products and orders need catalogue data the fake does not model.
        Some(other) => problems.push(format!(
            "message.type: \"{other}\" is not supported by the fake"
        )),
    }
    let kind = message
        .and_then(|m| m.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let items = message
        .and_then(|m| m.get("items"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !problems.is_empty() {
        return Err(errors(400, &problems));
    }

    // Whether MG deduplicates on message.external_id is UNCONFIRMED; configurable, on by default.
    if state.cfg.mg_dedupe
        && let Some(ext) = &external_id
        && let Some(previous) = state.messages.iter().find(|m| {
            m.channel_id == channel_id
                && m.originator == "customer"
                && m.external_id.as_ref() == Some(ext)
        })
    {
        return Ok(json_response(
            200,
            &json!({"message_id": previous.id, "time": previous.time, "warnings": []}),
        ));
    }

    let customer_ext = match (customer_ext, known_chat) {
        (Some(ext), _) | (None, Some(ext)) => ext,
        (None, None) => String::new(),
    };
    state.chats.insert(chat_key, customer_ext.clone());
    let id = state.next_message;
    state.next_message += 1;
    let time = now_rfc3339();
    let channel_type = channel_type(state, channel_id);
    state.messages.push(MgMessageRecord {
        id,
        channel_id,
        channel_type,
        external_chat_id: chat_id.to_owned(),
        customer_external_id: Some(customer_ext),
        external_id,
        originator: "customer".to_owned(),
        text,
        time: time.clone(),
        status: "received".to_owned(),
        error: None,
        kind,
        items,
    });
    Ok(json_response(
        200,
        &json!({"message_id": id, "time": time, "warnings": []}),
    ))
}

/// The type a channel was registered with (empty for an unknown channel).
pub(super) fn channel_type(state: &State, channel_id: i64) -> String {
    state
        .channels
        .get(&channel_id)
        .and_then(|c| c.value.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
