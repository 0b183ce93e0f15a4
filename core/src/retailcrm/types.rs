//! Typed requests and answers of the RetailCRM methods Svyazka uses.
//!
//! RetailCRM is a PHP application and its JSON shows it: empty objects arrive as `[]`, maps
//! sometimes as lists, ids sometimes as strings, status codes that look like numbers. The
//! deserializers here accept all of those rather than failing a user flow over a formatting
//! quirk. `Order` and `Customer` also keep the raw JSON so callers can read fields we did not
//! type (custom fields, delivery, items…).

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// `GET /api/credentials`: what the key may do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[serde(default, deserialize_with = "de::strings")]
    pub scopes: Vec<String>,
    /// Deprecated list of allowed method paths; only meaningful when `scopes` is empty.
    #[serde(default, deserialize_with = "de::strings")]
    pub credentials: Vec<String>,
    #[serde(default)]
    pub site_access: SiteAccess,
    #[serde(default, deserialize_with = "de::strings")]
    pub sites_available: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SiteAccess {
    #[serde(rename = "access_full")]
    Full,
    #[serde(rename = "access_selective")]
    Selective,
    #[default]
    #[serde(other)]
    Unknown,
}

impl Credentials {
    /// Whether the key has `scope`. Old accounts may report no scopes and list allowed method
    /// paths in the deprecated `credentials` instead (the official transport core falls back to
    /// those only then); this method does not guess scopes from paths.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The store code when the key is bound to exactly one store: that code must be passed as
    /// `site`. `None` for keys with access to several or all stores.
    pub fn single_site(&self) -> Option<&str> {
        match (self.site_access, self.sites_available.as_slice()) {
            (SiteAccess::Selective, [only]) => Some(only),
            _ => None,
        }
    }
}

/// A store (`GET /api/v5/reference/sites`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    #[serde(default, deserialize_with = "de::opt_int")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "de::string")]
    pub code: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub currency: Option<String>,
}

/// An order status (`GET /api/v5/reference/statuses`). Codes are arbitrary strings ("3" too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, deserialize_with = "de::string")]
    pub code: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, deserialize_with = "de::opt_int")]
    pub ordering: Option<i64>,
    /// Code of the status group ("new", "approval", "assembling", "delivery", "complete", "cancel", …).
    #[serde(default, deserialize_with = "de::string")]
    pub group: String,
}

/// A status group (`GET /api/v5/reference/status-groups`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusGroup {
    #[serde(default, deserialize_with = "de::string")]
    pub code: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, deserialize_with = "de::opt_int")]
    pub ordering: Option<i64>,
    /// True for the in-progress groups (approval, assembling, delivery).
    #[serde(default)]
    pub process: bool,
    #[serde(default, deserialize_with = "de::strings")]
    pub statuses: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A phone as RetailCRM stores it: free text, e.g. "+7 (999) 123-45-67".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    #[serde(default, deserialize_with = "de::string")]
    pub number: String,
}

impl Phone {
    pub fn new(number: impl Into<String>) -> Self {
        Self {
            number: number.into(),
        }
    }
}

/// The customer an order belongs to, as embedded in the order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCustomer {
    #[serde(default, deserialize_with = "de::opt_int")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub external_id: Option<String>,
    /// "customer" or "customer_corporate".
    #[serde(default, rename = "type", deserialize_with = "de::opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::list_or_map")]
    pub phones: Vec<Phone>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub email: Option<String>,
}

/// A payment of an order; on GET RetailCRM sends them as a map keyed by id, on create as a list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    #[serde(default, deserialize_with = "de::opt_int")]
    pub id: Option<i64>,
    #[serde(default, rename = "type", deserialize_with = "de::opt_string")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "de::float")]
    pub amount: f64,
}

/// An order with the fields Svyazka's bundles use; everything else stays in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: i64,
    pub number: String,
    pub external_id: Option<String>,
    /// Status code (a string even when it looks numeric).
    pub status: String,
    pub site: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub total_summ: f64,
    pub customer: Option<OrderCustomer>,
    pub payments: Vec<Payment>,
    /// "Y-m-d H:i:s" in the account's timezone, as RetailCRM sends it.
    pub created_at: Option<String>,
    /// The whole order object as received.
    pub raw: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderFields {
    #[serde(deserialize_with = "de::int")]
    id: i64,
    #[serde(default, deserialize_with = "de::string")]
    number: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    external_id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    status: String,
    #[serde(default, deserialize_with = "de::string")]
    site: String,
    #[serde(default, deserialize_with = "de::opt_string")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    phone: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "de::float")]
    total_summ: f64,
    #[serde(default, deserialize_with = "de::opt_object")]
    customer: Option<OrderCustomer>,
    #[serde(default, deserialize_with = "de::list_or_map")]
    payments: Vec<Payment>,
    #[serde(default, deserialize_with = "de::opt_string")]
    created_at: Option<String>,
}

impl<'de> Deserialize<'de> for Order {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        let f: OrderFields = serde_json::from_value(raw.clone()).map_err(D::Error::custom)?;
        Ok(Self {
            id: f.id,
            number: f.number,
            external_id: f.external_id,
            status: f.status,
            site: f.site,
            first_name: f.first_name,
            last_name: f.last_name,
            phone: f.phone,
            email: f.email,
            total_summ: f.total_summ,
            customer: f.customer,
            payments: f.payments,
            created_at: f.created_at,
            raw,
        })
    }
}

impl Serialize for Order {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

/// A customer with the fields Svyazka uses; everything else stays in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: i64,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub patronymic: Option<String>,
    pub email: Option<String>,
    pub phones: Vec<Phone>,
    pub site: Option<String>,
    pub created_at: Option<String>,
    pub raw: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerFields {
    #[serde(deserialize_with = "de::int")]
    id: i64,
    #[serde(default, deserialize_with = "de::opt_string")]
    external_id: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    patronymic: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "de::list_or_map")]
    phones: Vec<Phone>,
    #[serde(default, deserialize_with = "de::opt_string")]
    site: Option<String>,
    #[serde(default, deserialize_with = "de::opt_string")]
    created_at: Option<String>,
}

impl<'de> Deserialize<'de> for Customer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        let f: CustomerFields = serde_json::from_value(raw.clone()).map_err(D::Error::custom)?;
        Ok(Self {
            id: f.id,
            external_id: f.external_id,
            first_name: f.first_name,
            last_name: f.last_name,
            patronymic: f.patronymic,
            email: f.email,
            phones: f.phones,
            site: f.site,
            created_at: f.created_at,
            raw,
        })
    }
}

impl Serialize for Customer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

/// Link from a new order to an existing customer: by CRM id, or by external id (+ store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Offer of an order line, by CRM id or external id (SKU).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<OfferRef>,
    /// Free-text line when there is no catalogue offer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    pub quantity: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_price: Option<f64>,
}

/// `order=<json>` of `POST /api/v5/orders/create`. Unset fields are not sent, so RetailCRM
/// applies the account's defaults; `extra` carries any field not typed here (custom fields…).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patronymic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<NewOrderItem>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `customer=<json>` of `POST /api/v5/customers/create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCustomer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patronymic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `integrationModule=<json>` of `POST /api/v5/integration-modules/{code}/edit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationModule {
    pub code: String,
    pub integration_code: String,
    pub active: bool,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Unique per account; MG sends it back as the `Clientid` header of webhooks.
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_url: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub actions: BTreeMap<String, String>,
    pub integrations: Integrations,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mg_transport: Option<MgTransportConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MgTransportConfig {
    /// Where MG posts operator messages (`message_sent` etc.).
    pub webhook_url: String,
    /// Ask RetailCRM for a fresh transport token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refresh_token: bool,
}

/// `info.mgTransport` of the module edit answer: where and how to call the transport API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MgTransportInfo {
    #[serde(deserialize_with = "de::string")]
    pub endpoint_url: String,
    #[serde(deserialize_with = "de::string")]
    pub token: String,
}

/// `pagination` of list answers; missing fields mean "one page".
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pagination {
    #[serde(default, deserialize_with = "de::opt_int")]
    pub current_page: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_int")]
    pub total_page_count: Option<i64>,
}

/// Lenient field deserializers for PHP-produced JSON.
pub(crate) mod de {
    use super::*;

    fn scalar_string(value: Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// String or number → `Some(string)`; null, `[]`, `{}` → `None`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(scalar_string(Value::deserialize(d)?))
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    fn to_int(value: &Value) -> Option<i64> {
        match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(to_int(&Value::deserialize(d)?))
    }

    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let value = Value::deserialize(d)?;
        to_int(&value).ok_or_else(|| D::Error::custom(format!("expected an id, got {value}")))
    }

    /// Number or numeric string; anything else (null, "") is 0, as RetailCRM means by it.
    pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_f64().unwrap_or_default(),
            Value::String(s) => s.trim().parse().unwrap_or_default(),
            _ => 0.0,
        })
    }

    /// List of strings, also from a map's values or with numbers mixed in.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(values(Value::deserialize(d)?)
            .into_iter()
            .filter_map(scalar_string)
            .collect())
    }

    fn values(value: Value) -> Vec<Value> {
        match value {
            Value::Array(items) => items,
            Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        }
    }

    /// A list that PHP may have sent as a map keyed by id (payments) or as `{}`/`[]`.
    pub fn list_or_map<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        values(Value::deserialize(d)?)
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(D::Error::custom))
            .collect()
    }

    /// A map keyed by code that PHP sends as `[]` when empty; a list of objects is keyed by
    /// each object's `code` (or its position when it has none).
    pub fn map_by_code<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<BTreeMap<String, T>, D::Error> {
        let entries: Vec<(String, Value)> = match Value::deserialize(d)? {
            Value::Object(map) => map.into_iter().collect(),
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let key = v
                        .get("code")
                        .cloned()
                        .and_then(scalar_string)
                        .unwrap_or_else(|| i.to_string());
                    (key, v)
                })
                .collect(),
            _ => Vec::new(),
        };
        entries
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_value(v)
                    .map(|t| (k, t))
                    .map_err(D::Error::custom)
            })
            .collect()
    }

    /// An embedded object that may be null or PHP's `[]` when absent.
    pub fn opt_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        match Value::deserialize(d)? {
            value @ Value::Object(_) => serde_json::from_value(value)
                .map(Some)
                .map_err(D::Error::custom),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_tolerates_php_quirks() {
        let order: Order = serde_json::from_value(json!({
            "id": "7146", "number": "7146C", "status": 3, "site": "shop",
            "totalSumm": "1250.50", "customFields": [], "externalId": null,
            "customer": {"type": "customer", "id": 4924, "phones": {"0": {"number": "+79001234567"}}},
            "payments": {"17": {"id": 17, "type": "cash", "amount": 100, "status": "paid"}},
            "createdAt": "2026-05-01 10:00:00"
        }))
        .expect("order");
        assert_eq!(order.id, 7146);
        assert_eq!(order.status, "3");
        assert_eq!(order.total_summ, 1250.5);
        assert_eq!(order.external_id, None);
        let customer = order.customer.as_ref().expect("customer");
        assert_eq!(customer.id, Some(4924));
        assert_eq!(customer.phones, vec![Phone::new("+79001234567")]);
        assert_eq!(order.payments.len(), 1);
        assert_eq!(order.raw["customFields"], json!([]));

        let listed: Order = serde_json::from_value(json!({
            "id": 1, "payments": [{"amount": 5}], "customer": []
        }))
        .expect("order");
        assert_eq!(listed.payments[0].amount, 5.0);
        assert!(listed.customer.is_none());

        assert!(serde_json::from_value::<Order>(json!({"number": "1"})).is_err());
    }

    #[derive(Deserialize)]
    struct Refs {
        #[serde(deserialize_with = "de::map_by_code")]
        statuses: BTreeMap<String, Status>,
    }

    #[test]
    fn reference_maps_accept_empty_list_and_lists() {
        let empty: Refs = serde_json::from_value(json!({"statuses": []})).expect("refs");
        assert!(empty.statuses.is_empty());
        let listed: Refs = serde_json::from_value(json!({
            "statuses": [{"code": "new", "name": "Новый", "group": "new"}]
        }))
        .expect("refs");
        assert_eq!(listed.statuses["new"].name, "Новый");
    }

    #[test]
    fn credentials_single_site() {
        let c: Credentials = serde_json::from_value(json!({
            "success": true, "scopes": ["order_read"], "siteAccess": "access_selective",
            "sitesAvailable": ["shop1"]
        }))
        .expect("credentials");
        assert_eq!(c.single_site(), Some("shop1"));
        assert!(c.has_scope("order_read"));
        assert!(!c.has_scope("order_write"));
        let full: Credentials =
            serde_json::from_value(json!({"siteAccess": "access_full", "sitesAvailable": ["a"]}))
                .expect("credentials");
        assert_eq!(full.single_site(), None);
        let odd: Credentials =
            serde_json::from_value(json!({"siteAccess": "whatever"})).expect("credentials");
        assert_eq!(odd.site_access, SiteAccess::Unknown);
    }

    #[test]
    fn new_order_sends_only_what_is_set() {
        let mut order = NewOrder {
            first_name: Some("Ivan".into()),
            customer: Some(CustomerRef {
                id: Some(4924),
                external_id: None,
            }),
            ..NewOrder::default()
        };
        order.extra.insert("customFields".into(), json!({"nps": 5}));
        assert_eq!(
            serde_json::to_value(&order).expect("json"),
            json!({"firstName": "Ivan", "customer": {"id": 4924}, "customFields": {"nps": 5}})
        );
    }
}
