//! Accepting webhooks: parse and verify the upstream's body, store it in the inbox (dedup by
//! the upstream's id), and say which dispatch jobs to push. Handlers answer 200 only after
//! this returns, so "200" means "stored".

use crate::conversations;
use crate::engine::events::TriggerPayload;
use crate::inbox::{Dedup, InboxKind, NewItem};
use crate::messengers::incoming::{BadPayload, IncomingMessage, Parsed};

/// Inbox rows for the messages of a messenger webhook (or a Telegram poll). A message id is
/// one message for good: its redeliveries are duplicates however late they come.
pub fn message_items(provider_id: i64, messages: &[IncomingMessage]) -> Vec<NewItem> {
    messages
        .iter()
        .map(|m| NewItem {
            provider_id,
            dedup_key: format!("msg:{}", m.message_id),
            kind: InboxKind::IncomingMessage,
            payload: serde_json::to_string(m).unwrap_or_default(),
            conversation: Some(conversations::of_chat(&m.chat_id)),
            dedup: Dedup::Forever,
        })
        .collect()
}

/// The inbox row for a RetailCRM trigger: the same trigger again within `repeat_window` of it
/// (with no other trigger of its order in between) is a duplicate.
pub fn trigger_item(
    provider_id: i64,
    t: &TriggerPayload,
    repeat_window: std::time::Duration,
) -> NewItem {
    NewItem {
        provider_id,
        dedup_key: t.dedup_key(),
        kind: InboxKind::RetailcrmTrigger,
        payload: serde_json::to_string(t).unwrap_or_default(),
        conversation: Some(conversations::of_order(t.id)),
        dedup: Dedup::Repeats {
            window: chrono::Duration::from_std(repeat_window)
                .unwrap_or(chrono::Duration::minutes(10)),
        },
    }
}

/// Reads RetailCRM's trigger from `pairs` (query string and/or form body, already decoded).
/// `type` must be `order` when present; `id` a positive integer; `event` `new` or `status`.
/// A key given twice is refused rather than guessed. The extended body's order fields are
/// optional; one given empty counts as not given (it is fetched), so a template mistake that
/// renders nothing cannot blank a field. Values may arrive URL-encoded or raw: a raw value
/// parses the same as long as it has no `&` or `=` (a raw `+` reads as a space, which a phone
/// survives: it is trimmed).
pub fn parse_trigger(pairs: &[(String, String)]) -> Result<TriggerPayload, BadPayload> {
    let get = |key: &str| -> Result<Option<&str>, BadPayload> {
        let mut it = pairs.iter().filter(|(k, _)| k == key);
        let first = it.next().map(|(_, v)| v.trim());
        if it.next().is_some() {
            return Err(BadPayload(format!(
                "parameter {key} is given more than once"
            )));
        }
        Ok(first)
    };
    if let Some(t) = get("type")?
        && t != "order"
    {
        return Err(BadPayload(format!("type must be order, got {t:?}")));
    }
    let id = get("id")?.ok_or_else(|| BadPayload("parameter id is missing".into()))?;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| BadPayload(format!("id must be a positive integer, got {id:?}")))?;
    let event = match get("event")? {
        Some("new") => "new",
        Some("status") => "status",
        Some(other) => {
            return Err(BadPayload(format!(
                "event must be new or status, got {other:?}"
            )));
        }
        None => return Err(BadPayload("parameter event is missing".into())),
    };
    let status = get("status")?.unwrap_or_default();
    if status.len() > 128 {
        return Err(BadPayload("status is longer than 128 characters".into()));
    }
    let text = |key: &'static str, max: usize| -> Result<Option<String>, BadPayload> {
        match get(key)? {
            None | Some("") => Ok(None),
            Some(v) if v.chars().count() > max => {
                Err(BadPayload(format!("{key} is longer than {max} characters")))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    };
    let total = match get("total")? {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| BadPayload(format!("total must be a number, got {t:?}")))?,
        ),
    };
    Ok(TriggerPayload {
        id,
        status: status.to_string(),
        event: event.to_string(),
        number: text("number", 128)?,
        first_name: text("first_name", 256)?,
        last_name: text("last_name", 256)?,
        phone: text("phone", 64)?,
        email: text("email", 256)?,
        total,
        site: text("site", 128)?,
    })
}

/// Pairs from a body RetailCRM may send as form-urlencoded (the guide's custom body) or JSON.
pub fn trigger_pairs(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, BadPayload> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if content_type.starts_with("application/json") {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| BadPayload(format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| BadPayload("JSON body must be an object".into()))?;
        return Ok(obj
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect());
    }
    let text =
        std::str::from_utf8(body).map_err(|_| BadPayload("body is not valid UTF-8".into()))?;
    serde_html_form::from_str(text).map_err(|e| BadPayload(format!("invalid form body: {e}")))
}

/// Messenger webhook bodies by provider kind.
pub fn parse_chatapi(body: &[u8]) -> Result<Parsed, BadPayload> {
    crate::messengers::chatapi::webhook::parse(body)
}

pub fn chatapi_read_receipts(body: &[u8]) -> Vec<String> {
    crate::messengers::chatapi::webhook::read_receipts(body)
}

pub fn parse_greenapi(body: &[u8]) -> Result<Parsed, BadPayload> {
    crate::messengers::greenapi::webhook::parse(body)
}

pub fn parse_wacloud(body: &[u8]) -> Result<Parsed, BadPayload> {
    crate::messengers::wacloud::webhook::parse(body)
}

pub fn parse_telegram(body: &[u8]) -> Result<Parsed, BadPayload> {
    crate::messengers::telegram::webhook::parse(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        serde_html_form::from_str(s).expect("pairs")
    }

    #[test]
    fn reads_the_guide_body() {
        let t = parse_trigger(&pairs("type=order&status=send-to-delivery&id=42&event=new"))
            .expect("ok");
        assert_eq!(
            t,
            TriggerPayload {
                id: 42,
                status: "send-to-delivery".into(),
                event: "new".into(),
                ..Default::default()
            }
        );
        assert_eq!(t.event_type(), "new_deal");
    }

    #[test]
    fn refuses_bad_bodies_with_a_reason() {
        for (body, reason) in [
            ("type=order&status=x&event=new", "id is missing"),
            ("type=order&id=abc&event=new", "positive integer"),
            ("type=order&id=-3&event=new", "positive integer"),
            ("type=customer&id=3&event=new", "type must be order"),
            ("type=order&id=3&event=delete", "event must be"),
            ("type=order&id=3", "event is missing"),
            ("type=order&id=3&id=4&event=new", "more than once"),
            (
                "type=order&id=3&event=new&total=abc",
                "total must be a number",
            ),
            (
                "type=order&id=3&event=new&total=2%20490",
                "total must be a number",
            ),
            (
                "type=order&id=3&event=new&total=NaN",
                "total must be a number",
            ),
            ("type=order&id=3&event=new&site=a&site=b", "more than once"),
        ] {
            let e = parse_trigger(&pairs(body)).expect_err(body);
            assert!(e.0.contains(reason), "{body}: {}", e.0);
        }
    }

    #[test]
    fn json_and_invalid_utf8() {
        let p = trigger_pairs(
            "application/json",
            br#"{"type":"order","id":5,"event":"status","status":"new"}"#,
        )
        .expect("json");
        assert_eq!(parse_trigger(&p).expect("ok").id, 5);
        assert!(trigger_pairs("application/x-www-form-urlencoded", b"id=\xff\xfe").is_err());
        assert!(trigger_pairs("application/json", b"[1,2]").is_err());
    }

    /// The extended body as `|url_encode` renders it: Cyrillic percent-encoded as UTF-8, the
    /// phone's `+` as `%2B`; and the same values arriving raw, had the filter been ignored.
    #[test]
    fn reads_the_extended_body() {
        let encoded = "type=order&status=new&id=7&event=status&number=7C\
                       &first_name=%D0%90%D0%BD%D0%BD%D0%B0&last_name=%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2%D0%B0\
                       &phone=%2B7%20999%20123-45-67&email=anna%40example.com&total=2490.5&site=shop";
        let t = parse_trigger(&pairs(encoded)).expect("encoded");
        assert_eq!(t.first_name.as_deref(), Some("Анна"));
        assert_eq!(t.last_name.as_deref(), Some("Петрова"));
        assert_eq!(t.phone.as_deref(), Some("+7 999 123-45-67"));
        assert_eq!(t.email.as_deref(), Some("anna@example.com"));
        assert_eq!(t.total, Some(2490.5));
        assert_eq!(t.site.as_deref(), Some("shop"));
        let fields = t.carried_fields().expect("carries the store and status");
        assert_eq!(fields["first_name"], "Анна");
        assert_eq!(fields["total"], serde_json::json!(2490.5));

        let raw = "type=order&status=new&id=7&event=status&first_name=Анна&phone=+79991234567\
                   &email=anna@example.com&total=2490&site=shop";
        let t = parse_trigger(&pairs(raw)).expect("raw");
        assert_eq!(t.first_name.as_deref(), Some("Анна"));
        // A raw `+` decodes to a space; the phone survives it.
        assert_eq!(t.phone.as_deref(), Some("79991234567"));
        assert_eq!(t.email.as_deref(), Some("anna@example.com"));
        assert_eq!(t.total, Some(2490.0));

        // Empty values are "not given"; without the store the body cannot stand in.
        let t = parse_trigger(&pairs("type=order&status=new&id=7&event=new&email=&total="))
            .expect("empty");
        assert_eq!(
            (t.email.as_deref(), t.total, t.site.as_deref()),
            (None, None, None)
        );
        assert!(t.carried_fields().is_none());
    }
}
