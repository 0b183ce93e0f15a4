//! Events as the engine and the editor see them: a flat map of fields named as in the catalog.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::messengers::incoming::IncomingMessage;
use crate::retailcrm::Order;

/// What RetailCRM's trigger posts: the guide's short body `type=order&status=…&id=…&event=…`,
/// or the extended body that also carries the order's fields (see `web`'s trigger card), so a
/// run that needs only those makes no RetailCRM call. A field the body did not carry (or
/// carried empty) is `None` and comes from the order fetch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerPayload {
    pub id: i64,
    /// Status code at the time of the trigger; may be empty when the template had none.
    pub status: String,
    /// `new` (order created) or `status` (status changed).
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    /// The order's store code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl TriggerPayload {
    pub fn event_type(&self) -> &'static str {
        if self.event == "new" {
            "new_deal"
        } else {
            "deal_status_changed"
        }
    }

    /// The key of the order's latest trigger (see `inbox::Dedup::Repeats`): the same event
    /// and status again shortly after is RetailCRM repeating itself; anything in between, or a
    /// long pause, makes it a new event.
    pub fn dedup_key(&self) -> String {
        format!("order:{}", self.id)
    }

    /// The event's fields the body carried, named as `order_fields` names them; `None` when
    /// the body cannot stand in for the order at all: without the store its order may be
    /// another store's (only the fetch tells), and without the status no bundle can be matched.
    pub fn carried_fields(&self) -> Option<Map<String, Json>> {
        let site = self.site.as_ref()?;
        if self.status.is_empty() {
            return None;
        }
        let mut m = Map::new();
        m.insert("order_id".into(), Json::from(self.id));
        m.insert("status".into(), Json::from(self.status.clone()));
        m.insert("site".into(), Json::from(site.clone()));
        for (key, value) in [
            ("number", &self.number),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("phone", &self.phone),
            ("email", &self.email),
        ] {
            if let Some(v) = value {
                m.insert(key.into(), Json::from(v.clone()));
            }
        }
        // The same JSON number the fetch gives (`total_summ` is an f64 there too), so a
        // template renders the total alike either way.
        if let Some(t) = self.total.and_then(serde_json::Number::from_f64) {
            m.insert("total".into(), Json::Number(t));
        }
        Some(m)
    }
}

fn obj(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// The event field that carries an incoming message's [`IncomingMedia`] as JSON.
///
/// [`IncomingMedia`]: crate::messengers::incoming::IncomingMedia
pub const ATTACHMENT_FIELD: &str = "attachment";

pub fn incoming_message_fields(m: &IncomingMessage) -> Map<String, Json> {
    obj(json!({
        "sender_id": m.sender_id,
        "sender_phone": m.sender_phone.clone().unwrap_or_default(),
        "sender_name": m.sender_name,
        "text": m.text,
        "chat_id": m.chat_id,
        "message_id": m.message_id,
        "time": m.time,
        "media": m.media.as_ref().map(|x| x.kind.code()).unwrap_or_default(),
        "media_name": m.media.as_ref().and_then(|x| x.file_name()).unwrap_or_default(),
        // The whole media for the step that passes it on to RetailCRM's chat; not a field
        // the catalog offers to templates.
        ATTACHMENT_FIELD: m.media,
    }))
}

/// The order's fields; `status` is the trigger's (the state that fired it), falling back to
/// the order's current status when the trigger body had none.
pub fn order_fields(order: &Order, trigger_status: &str) -> Map<String, Json> {
    let phone = order
        .phone
        .clone()
        .filter(|p| !p.trim().is_empty())
        .or_else(|| {
            order
                .customer
                .as_ref()
                .and_then(|c| c.phones.first())
                .map(|p| p.number.clone())
        })
        .unwrap_or_default();
    let status = if trigger_status.is_empty() {
        order.status.clone()
    } else {
        trigger_status.to_string()
    };
    obj(json!({
        "order_id": order.id,
        "number": order.number,
        "status": status,
        "phone": phone,
        "contact_id": order.customer.as_ref().and_then(|c| c.id),
        "first_name": order.first_name.clone().unwrap_or_default(),
        "last_name": order.last_name.clone().unwrap_or_default(),
        "email": order.email.clone().unwrap_or_default(),
        "total": order.total_summ,
        "site": order.site,
        "created_at": order.created_at.clone().unwrap_or_default(),
    }))
}
