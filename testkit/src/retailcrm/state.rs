//! The fake account's data and the business rules that do not depend on HTTP.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{ApiKey, KeyStats, MgFileRecord, MgMessageRecord, SiteAccess, Stats};

/// Field errors of a validation failure: (field, message).
pub(crate) type FieldErrors = Vec<(String, String)>;

pub(crate) fn join_errors(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) struct Config {
    pub rps: Option<f64>,
    pub rate_limit_html: bool,
    pub mg_rps: Option<f64>,
    /// (status, remaining count).
    pub fault: Option<(u16, u32)>,
    /// Requests to let through before `fault` starts (to fail in the middle of a run).
    pub fault_skip: u32,
    pub latency: Option<Duration>,
    /// (count, delay): the next requests are carried out, then answered late.
    pub stall: (u32, Duration),
    pub account_exists: bool,
    pub errors_as_list: bool,
    pub mg_dedupe: bool,
}

/// Token bucket with a capacity of one second's worth of requests.
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new() -> Self {
        Self {
            tokens: f64::MAX,
            last: Instant::now(),
        }
    }

    /// Takes a token if one is there.
    pub fn take(&mut self, rps: f64) -> bool {
        let now = Instant::now();
        let capacity = rps.max(1.0);
        let refill = now.duration_since(self.last).as_secs_f64() * rps;
        self.tokens = (self.tokens + refill).min(capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) struct KeyState {
    pub spec: ApiKey,
    pub bucket: Bucket,
    window: VecDeque<Instant>,
    pub requests: u64,
    pub max_per_second: u32,
}

impl KeyState {
    /// Counts an arrival and updates the busiest one-second window.
    pub fn record(&mut self) {
        let now = Instant::now();
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.window.pop_front();
        }
        self.window.push_back(now);
        self.requests += 1;
        let in_window = u32::try_from(self.window.len()).unwrap_or(u32::MAX);
        self.max_per_second = self.max_per_second.max(in_window);
    }
}

pub(crate) struct ModuleRec {
    /// What `GET /integration-modules/{code}` shows.
    pub value: Value,
    pub client_id: Option<String>,
    pub webhook_url: Option<String>,
    pub token: Option<String>,
}

pub(crate) struct ChannelRec {
    pub value: Value,
    /// Module whose transport token created the channel.
    pub module: String,
    pub active: bool,
}

pub(crate) struct State {
    pub cfg: Config,
    pub keys: BTreeMap<String, KeyState>,
    pub sites: BTreeMap<String, Value>,
    /// (code, name, group, ordering), in display order.
    pub statuses: Vec<(String, String, String, i64)>,
    /// (code, name, ordering, process).
    pub groups: Vec<(String, String, i64, bool)>,
    pub customers: BTreeMap<i64, Value>,
    pub orders: BTreeMap<i64, Value>,
    pub modules: BTreeMap<String, ModuleRec>,
    /// Transport token → module code.
    pub tokens: HashMap<String, String>,
    pub mg_buckets: HashMap<String, Bucket>,
    pub channels: BTreeMap<i64, ChannelRec>,
    /// (channel, external_chat_id) → customer external id.
    pub chats: BTreeMap<(i64, String), String>,
    pub messages: Vec<MgMessageRecord>,
    /// Webhooks posted for operators' messages, by MG message id: (url, clientId, payload),
    /// so a test can make MG repeat one.
    pub webhooks: BTreeMap<i64, (String, String, Value)>,
    /// Bodies of `POST /messages/ack`, in arrival order.
    pub acks: Vec<Value>,
    /// Uploaded files by id.
    pub files: BTreeMap<String, MgFileRecord>,
    pub total_requests: u64,
    pub rate_limited: u64,
    next_customer: i64,
    next_order: i64,
    next_payment: i64,
    next_item: i64,
    pub next_channel: i64,
    pub next_message: i64,
}

/// Default status groups: (code, name, process).
const GROUPS: &[(&str, &str, bool)] = &[
    ("new", "Новый", false),
    ("approval", "Согласование", true),
    ("assembling", "Комплектация", true),
    ("delivery", "Доставка", true),
    ("complete", "Выполнен", false),
    ("cancel", "Отменен", false),
];

/// Default statuses of a fresh account: (code, name, group).
const STATUSES: &[(&str, &str, &str)] = &[
    ("new", "Новый", "new"),
    ("availability-confirmed", "Наличие подтверждено", "approval"),
    ("offer-analog", "Предложить замену", "approval"),
    ("client-confirmed", "Согласовано с клиентом", "approval"),
    ("prepayed", "Предоплата поступила", "approval"),
    (
        "send-to-assembling",
        "Передано в комплектацию",
        "assembling",
    ),
    ("assembling", "Комплектуется", "assembling"),
    ("assembling-complete", "Укомплектован", "assembling"),
    ("send-to-delivery", "Передан в доставку", "delivery"),
    ("delivering", "Доставляется", "delivery"),
    ("redirect", "Доставка перенесена", "delivery"),
    ("complete", "Выполнен", "complete"),
    ("no-call", "Недозвон", "cancel"),
    ("no-product", "Нет в наличии", "cancel"),
    ("already-buyed", "Купил в другом месте", "cancel"),
    ("delivery-did-not-suit", "Не устроила доставка", "cancel"),
    ("prices-did-not-suit", "Не устроила цена", "cancel"),
    ("cancel-other", "Отменен", "cancel"),
];

pub(crate) fn now_crm() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// An id given as a number or a numeric string.
pub(crate) fn int_field(v: &Value, name: &str) -> Option<i64> {
    match v.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or_default(),
        Some(Value::String(s)) => s.trim().parse().unwrap_or_default(),
        _ => 0.0,
    }
}

impl State {
    pub fn new() -> Self {
        let mut state = Self {
            cfg: Config {
                rps: Some(10.0),
                rate_limit_html: false,
                mg_rps: None,
                fault: None,
                fault_skip: 0,
                latency: None,
                stall: (0, Duration::ZERO),
                account_exists: true,
                errors_as_list: false,
                mg_dedupe: true,
            },
            keys: BTreeMap::new(),
            sites: BTreeMap::new(),
            statuses: Vec::new(),
            groups: Vec::new(),
            customers: BTreeMap::new(),
            orders: BTreeMap::new(),
            modules: BTreeMap::new(),
            tokens: HashMap::new(),
            mg_buckets: HashMap::new(),
            channels: BTreeMap::new(),
            chats: BTreeMap::new(),
            messages: Vec::new(),
            webhooks: BTreeMap::new(),
            acks: Vec::new(),
            files: BTreeMap::new(),
            total_requests: 0,
            rate_limited: 0,
            // Distinct ranges make an order id passed as a customer id fail loudly.
            next_customer: 4001,
            next_order: 7001,
            next_payment: 101,
            next_item: 501,
            next_channel: 301,
            next_message: 9001,
        };
        for (i, (code, name, process)) in GROUPS.iter().enumerate() {
            let ordering = (i as i64 + 1) * 10;
            state
                .groups
                .push(((*code).to_owned(), (*name).to_owned(), ordering, *process));
        }
        for (code, name, group) in STATUSES {
            state.add_status(code, name, group);
        }
        state
    }

    pub fn add_site(&mut self, code: &str, name: &str) {
        let id = self.sites.get(code).and_then(|s| int_field(s, "id"));
        let id = id.unwrap_or(self.sites.len() as i64 + 1);
        self.sites.insert(
            code.to_owned(),
            json!({
                "id": id, "code": code, "name": name,
                "url": format!("https://{code}.example.com"),
                "description": "", "defaultForCrm": self.sites.is_empty(),
                "countryIso": "RU", "currency": "RUB", "ordering": 990 + id,
                "isDemo": false, "contragent": {"code": "main", "legalName": name, "contragentType": "legal-entity"}
            }),
        );
    }

    pub fn add_key(&mut self, key: ApiKey) {
        let (requests, max) = self
            .keys
            .get(&key.key)
            .map_or((0, 0), |k| (k.requests, k.max_per_second));
        self.keys.insert(
            key.key.clone(),
            KeyState {
                spec: key,
                bucket: Bucket::new(),
                window: VecDeque::new(),
                requests,
                max_per_second: max,
            },
        );
    }

    pub fn add_status(&mut self, code: &str, name: &str, group: &str) {
        self.statuses.retain(|(c, ..)| c != code);
        let ordering = (self.statuses.len() as i64 + 1) * 10;
        self.statuses
            .push((code.to_owned(), name.to_owned(), group.to_owned(), ordering));
        if !self.groups.iter().any(|(g, ..)| g == group) {
            let ordering = (self.groups.len() as i64 + 1) * 10;
            self.groups
                .push((group.to_owned(), group.to_owned(), ordering, false));
        }
    }

    pub fn status_exists(&self, code: &str) -> bool {
        self.statuses.iter().any(|(c, ..)| c == code)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            total_requests: self.total_requests,
            rate_limited: self.rate_limited,
            per_key: self
                .keys
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        KeyStats {
                            requests: s.requests,
                            max_per_second: s.max_per_second,
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn reset_stats(&mut self) {
        self.total_requests = 0;
        self.rate_limited = 0;
        for key in self.keys.values_mut() {
            key.requests = 0;
            key.max_per_second = 0;
            key.window.clear();
        }
    }

    /// Stores the key reaches: a selective key's own list, or every store.
    pub fn key_sites(&self, key: &ApiKey) -> Vec<String> {
        match key.site_access {
            SiteAccess::Selective => key.sites.clone(),
            SiteAccess::Full => self.sites.keys().cloned().collect(),
        }
    }

    // ---- customers -----------------------------------------------------------------------

    pub fn create_customer(&mut self, site: &str, input: &Value) -> Result<i64, FieldErrors> {
        let Some(input) = input.as_object() else {
            return Err(vec![("customer".into(), "Invalid JSON".into())]);
        };
        let mut errors = FieldErrors::new();
        if let Some(email) = input.get("email").and_then(Value::as_str)
            && !email.is_empty()
            && !email.contains('@')
        {
            errors.push((
                "email".into(),
                "This value is not a valid email address.".into(),
            ));
        }
        if let Some(ext) = input.get("externalId").and_then(Value::as_str)
            && self.customer_by_external_id(ext, site).is_some()
        {
            errors.push((
                "externalId".into(),
                format!("Customer with externalId \"{ext}\" already exists."),
            ));
        }
        let phones = phones_of(input.get("phones"));
        for (i, phone) in phones.iter().enumerate() {
            if digits(phone).is_empty() {
                errors.push((
                    format!("phones[{i}].number"),
                    "This value is not a valid phone number.".into(),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let id = self.next_customer;
        self.next_customer += 1;
        let mut customer = Map::new();
        customer.insert("type".into(), json!("customer"));
        customer.insert("id".into(), json!(id));
        for field in [
            "externalId",
            "firstName",
            "lastName",
            "patronymic",
            "email",
            "managerId",
            "source",
            "customFields",
            "tags",
            "address",
            "vip",
            "bad",
        ] {
            if let Some(v) = input.get(field) {
                customer.insert(field.into(), v.clone());
            }
        }
        customer.insert(
            "phones".into(),
            Value::Array(phones.iter().map(|p| json!({ "number": p })).collect()),
        );
        customer.insert("site".into(), json!(site));
        customer.insert("createdAt".into(), json!(now_crm()));
        customer
            .entry("contragent")
            .or_insert(json!({"contragentType": "individual"}));
        // PHP renders an empty custom-fields map as a list.
        customer.entry("customFields").or_insert(json!([]));
        customer.entry("vip").or_insert(json!(false));
        customer.entry("bad").or_insert(json!(false));
        customer.insert("isContact".into(), json!(false));
        self.customers.insert(id, Value::Object(customer));
        Ok(id)
    }

    pub fn customer_by_external_id(&self, ext: &str, site: &str) -> Option<i64> {
        self.customers
            .iter()
            .find(|(_, c)| {
                str_field(c, "externalId") == Some(ext) && str_field(c, "site") == Some(site)
            })
            .map(|(id, _)| *id)
    }

    pub fn edit_customer(&mut self, id: i64, input: &Value) -> Result<(), FieldErrors> {
        let Some(input) = input.as_object() else {
            return Err(vec![("customer".into(), "Invalid JSON".into())]);
        };
        if let Some(email) = input.get("email").and_then(Value::as_str)
            && !email.is_empty()
            && !email.contains('@')
        {
            return Err(vec![(
                "email".into(),
                "This value is not a valid email address.".into(),
            )]);
        }
        let Some(Value::Object(customer)) = self.customers.get_mut(&id) else {
            return Err(vec![("id".into(), "Not found".into())]);
        };
        for (k, v) in input {
            if matches!(k.as_str(), "id" | "site" | "createdAt" | "type") {
                continue;
            }
            if k == "phones" {
                let phones = phones_of(Some(v));
                customer.insert(
                    "phones".into(),
                    Value::Array(phones.iter().map(|p| json!({ "number": p })).collect()),
                );
            } else {
                customer.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    // ---- orders --------------------------------------------------------------------------

    /// Creates an order as `POST /orders/create` does, creating a customer from the contact
    /// data when the order does not reference one (RetailCRM does the same).
    pub fn create_order(&mut self, site: &str, input: &Value) -> Result<i64, FieldErrors> {
        let Some(input) = input.as_object() else {
            return Err(vec![("order".into(), "Invalid JSON".into())]);
        };
        let mut errors = FieldErrors::new();

        let status = match input.get("status").and_then(Value::as_str) {
            Some(code) if !self.status_exists(code) => {
                errors.push((
                    "status".into(),
                    format!("Status \"{code}\" does not exist."),
                ));
                String::new()
            }
            Some(code) => code.to_owned(),
            None => "new".to_owned(),
        };
        if let Some(email) = input.get("email").and_then(Value::as_str)
            && !email.is_empty()
            && !email.contains('@')
        {
            errors.push((
                "email".into(),
                "This value is not a valid email address.".into(),
            ));
        }
        if let Some(ext) = input.get("externalId").and_then(Value::as_str)
            && self.orders.values().any(|o| {
                str_field(o, "externalId") == Some(ext) && str_field(o, "site") == Some(site)
            })
        {
            errors.push((
                "externalId".into(),
                format!("Order with externalId \"{ext}\" already exists."),
            ));
        }

        let mut customer_id = None;
        match input.get("customer") {
            None | Some(Value::Null) => {}
            Some(reference @ Value::Object(_)) => {
                if let Some(id) = int_field(reference, "id") {
                    if self.customers.contains_key(&id) {
                        customer_id = Some(id);
                    } else {
                        errors.push((
                            "customer".into(),
                            format!("Customer with id {id} not found."),
                        ));
                    }
                } else if let Some(ext) = str_field(reference, "externalId") {
                    match self.customer_by_external_id(ext, site) {
                        Some(id) => customer_id = Some(id),
                        None => errors.push((
                            "customer".into(),
                            format!("Customer with externalId \"{ext}\" not found."),
                        )),
                    }
                } else {
                    errors.push((
                        "customer".into(),
                        "Set one of the following fields: id, externalId".into(),
                    ));
                }
            }
            Some(_) => errors.push((
                "customer".into(),
                "This value should be of type object.".into(),
            )),
        }

        let mut items = Vec::new();
        let mut summ = 0.0;
        if let Some(list) = input.get("items") {
            let Some(list) = list.as_array() else {
                return Err(vec![(
                    "items".into(),
                    "This value should be of type array.".into(),
                )]);
            };
            for (i, item) in list.iter().enumerate() {
                let quantity = item.get("quantity").map_or(1.0, |q| number(Some(q)));
                if quantity <= 0.0 {
                    errors.push((
                        format!("items[{i}].quantity"),
                        "This value should be greater than 0.".into(),
                    ));
                }
                let price = number(item.get("initialPrice"));
                summ += price * quantity;
                let id = self.next_item;
                self.next_item += 1;
                items.push(json!({
                    "id": id,
                    "offer": item.get("offer").cloned().unwrap_or(json!({})),
                    "productName": item.get("productName").cloned().unwrap_or(json!("")),
                    "quantity": quantity, "initialPrice": price, "discountTotal": 0,
                    "prices": [{"price": price, "quantity": quantity}],
                    "status": "new", "createdAt": now_crm(), "properties": []
                }));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let customer_id = match customer_id {
            Some(id) => id,
            None => {
                let mut contact = Map::new();
                for field in ["firstName", "lastName", "patronymic", "email"] {
                    if let Some(v) = input.get(field) {
                        contact.insert(field.into(), v.clone());
                    }
                }
                if let Some(phone) = input.get("phone").and_then(Value::as_str) {
                    contact.insert("phones".into(), json!([{ "number": phone }]));
                }
                self.create_customer(site, &Value::Object(contact))?
            }
        };
        let customer = self
            .customers
            .get(&customer_id)
            .cloned()
            .unwrap_or(Value::Null);

        let mut payments = Vec::new();
        if let Some(Value::Array(list)) = input.get("payments") {
            for payment in list {
                let id = self.next_payment;
                self.next_payment += 1;
                payments.push(json!({
                    "id": id,
                    "type": payment.get("type").cloned().unwrap_or(json!("cash")),
                    "status": payment.get("status").cloned().unwrap_or(json!("not-paid")),
                    "amount": number(payment.get("amount")),
                }));
            }
        }
        let delivery_cost = number(input.get("delivery").and_then(|d| d.get("cost")));

        let id = self.next_order;
        self.next_order += 1;
        let now = now_crm();
        let mut order = Map::new();
        order.insert("slug".into(), json!(id));
        order.insert("id".into(), json!(id));
        order.insert("number".into(), json!(format!("{id}A")));
        for field in [
            "externalId",
            "orderType",
            "orderMethod",
            "firstName",
            "lastName",
            "patronymic",
            "phone",
            "additionalPhone",
            "email",
            "customerComment",
            "managerComment",
            "managerId",
            "source",
            "customFields",
            "delivery",
            "call",
            "expired",
        ] {
            if let Some(v) = input.get(field) {
                order.insert(field.into(), v.clone());
            }
        }
        // Contact data the order lacks comes from the customer, as in RetailCRM.
        for (order_field, customer_field) in [
            ("firstName", "firstName"),
            ("lastName", "lastName"),
            ("email", "email"),
        ] {
            if !order.contains_key(order_field)
                && let Some(v) = customer.get(customer_field)
            {
                order.insert(order_field.into(), v.clone());
            }
        }
        if !order.contains_key("phone")
            && let Some(phone) = customer
                .get("phones")
                .and_then(|p| p.get(0))
                .and_then(|p| p.get("number"))
        {
            order.insert("phone".into(), phone.clone());
        }
        order.insert("site".into(), json!(site));
        order.insert("status".into(), json!(status));
        order.insert("statusUpdatedAt".into(), json!(now));
        order.insert("createdAt".into(), json!(now));
        order.insert("customer".into(), customer);
        order.insert("items".into(), Value::Array(items));
        order.insert("summ".into(), json!(summ));
        order.insert("totalSumm".into(), json!(summ + delivery_cost));
        order.insert("prepaySum".into(), json!(0));
        order.insert("purchaseSumm".into(), json!(0));
        order.insert("currency".into(), json!("RUB"));
        order.insert("payments".into(), Value::Array(payments));
        order.entry("customFields").or_insert(json!([]));
        order
            .entry("delivery")
            .or_insert(json!({"cost": 0, "netCost": 0}));
        order.insert("fromApi".into(), json!(true));
        order.insert("links".into(), json!([]));
        self.orders.insert(id, Value::Object(order));
        Ok(id)
    }

    pub fn edit_order(&mut self, id: i64, input: &Value) -> Result<(), FieldErrors> {
        let Some(input) = input.as_object() else {
            return Err(vec![("order".into(), "Invalid JSON".into())]);
        };
        if let Some(code) = input.get("status").and_then(Value::as_str)
            && !self.status_exists(code)
        {
            return Err(vec![(
                "status".into(),
                format!("Status \"{code}\" does not exist."),
            )]);
        }
        let Some(Value::Object(order)) = self.orders.get_mut(&id) else {
            return Err(vec![("id".into(), "Not found".into())]);
        };
        for field in [
            "status",
            "externalId",
            "orderType",
            "orderMethod",
            "firstName",
            "lastName",
            "patronymic",
            "phone",
            "email",
            "customerComment",
            "managerComment",
            "managerId",
            "customFields",
        ] {
            if let Some(v) = input.get(field) {
                if field == "status" && order.get("status") != Some(v) {
                    order.insert("statusUpdatedAt".into(), json!(now_crm()));
                }
                order.insert(field.into(), v.clone());
            }
        }
        Ok(())
    }

    pub fn set_order_status(&mut self, id: i64, status: &str) -> bool {
        if !self.status_exists(status) {
            return false;
        }
        self.edit_order(id, &json!({ "status": status })).is_ok()
    }

    pub fn order_by_external_id(&self, ext: &str, site: Option<&str>) -> Option<i64> {
        self.orders
            .iter()
            .find(|(_, o)| {
                str_field(o, "externalId") == Some(ext)
                    && site.is_none_or(|s| str_field(o, "site") == Some(s))
            })
            .map(|(id, _)| *id)
    }

    // ---- MG ------------------------------------------------------------------------------

    /// An operator writes in a chat: MG stores the message ("sending") and posts
    /// `message_sent` to the channel module's webhook. Answers (url, clientId, payload, MG
    /// message id). `customer` is our customer id in the channel; `None` looks it up by the
    /// chat. The chat id is sent as given, which may be "" (as in MG's own fixture).
    pub fn operator_webhook(
        &mut self,
        channel_id: i64,
        external_chat_id: &str,
        customer: Option<&str>,
        text: &str,
    ) -> Option<(String, String, Value, i64)> {
        self.operator_webhook_of(
            channel_id,
            external_chat_id,
            customer,
            "text",
            text,
            Vec::new(),
        )
    }

    /// A file MG keeps; its type and MIME type read from the bytes, as MG's storage does.
    pub fn store_file(&mut self, bytes: Vec<u8>, source_url: Option<String>) -> String {
        let n = self.files.len() as u64 + 1;
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rand::random::<u32>(),
            rand::random::<u16>(),
            rand::random::<u16>() & 0xfff,
            rand::random::<u16>() & 0xfff,
            n
        );
        let (kind, mime) = sniff(&bytes);
        self.files.insert(
            id.clone(),
            MgFileRecord {
                id: id.clone(),
                kind: kind.to_owned(),
                mime_type: mime.to_owned(),
                bytes,
                source_url,
            },
        );
        id
    }

    /// [`Self::operator_webhook`] of any message type, with its items.
    pub fn operator_webhook_of(
        &mut self,
        channel_id: i64,
        external_chat_id: &str,
        customer: Option<&str>,
        kind: &str,
        text: &str,
        items: Vec<Value>,
    ) -> Option<(String, String, Value, i64)> {
        let channel = self.channels.get(&channel_id)?;
        let module = self.modules.get(&channel.module)?;
        let webhook = module.webhook_url.clone()?;
        let client_id = module.client_id.clone().unwrap_or_default();
        let customer = customer.map(str::to_owned).or_else(|| {
            self.chats
                .get(&(channel_id, external_chat_id.to_owned()))
                .cloned()
        });
        let customer = customer.unwrap_or_default();
        let id = self.next_message;
        self.next_message += 1;
        let payload = json!({
            "type": "message_sent",
            "meta": {"timestamp": chrono::Utc::now().timestamp()},
            "data": {
                "id": id,
                "external_user_id": customer,
                "external_chat_id": external_chat_id,
                "channel_id": channel_id,
                "type": kind,
                "content": text,
                "items": items.clone(),
                "quote_external_id": null,
                "quote_content": null,
                "in_app_id": id,
                "user": {"id": 1, "first_name": "Анна", "last_name": "Менеджер", "avatar": ""},
                "customer": {"first_name": "", "last_name": "", "avatar": ""}
            }
        });
        let channel_type = super::mg::channel_type(self, channel_id);
        self.messages.push(MgMessageRecord {
            id,
            channel_id,
            channel_type,
            external_chat_id: external_chat_id.to_owned(),
            customer_external_id: Some(customer),
            external_id: None,
            originator: "user".to_owned(),
            text: text.to_owned(),
            time: now_rfc3339(),
            status: "sending".to_owned(),
            error: None,
            kind: kind.to_owned(),
            items,
        });
        self.webhooks
            .insert(id, (webhook.clone(), client_id.clone(), payload.clone()));
        Some((webhook, client_id, payload, id))
    }

    /// What the transport answered to an operator message's webhook, as MG reads it: an
    /// `external_message_id` sends it, an `error` (or a status other than 2xx) fails it,
    /// `async` leaves it sending until `POST /messages/ack`.
    pub fn answer_operator_message(&mut self, id: i64, status: u16, body: &Value) {
        let Some(m) = self.messages.iter_mut().find(|m| m.id == id) else {
            return;
        };
        if m.status != "sending" {
            // An earlier delivery of the same webhook was answered already.
            return;
        }
        if let Some(error) = body.get("error").filter(|e| !e.is_null()) {
            m.status = "failed".to_owned();
            m.error = Some(error.clone());
        } else if !(200..300).contains(&status) {
            m.status = "failed".to_owned();
            // MG's own code for an answer it cannot use (MGSPEC `MessageErrorCode`).
            m.error = Some(json!({"code": "malformed_response"}));
        } else if let Some(ext) = body.get("external_message_id").and_then(Value::as_str) {
            m.status = "sent".to_owned();
            m.external_id = Some(ext.to_owned());
        } else if body.get("async").and_then(Value::as_bool) != Some(true) {
            m.status = "failed".to_owned();
            m.error = Some(json!({"code": "malformed_response"}));
        }
    }
}

/// Phone numbers from `phones` given as a list or map of `{number}` (or bare strings).
fn phones_of(value: Option<&Value>) -> Vec<String> {
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(map)) => map.values().collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|p| match p {
            Value::String(s) => Some(s.clone()),
            other => other
                .get("number")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect()
}

/// An order as `GET /orders/{id}` shows it: payments as a map keyed by id (`{}` when none),
/// which is what RetailCRM does and what clients must tolerate.
pub(crate) fn render_order(order: &Value) -> Value {
    let mut order = order.clone();
    if let Some(Value::Array(payments)) = order.get("payments") {
        let map: Map<String, Value> = payments
            .iter()
            .map(|p| {
                (
                    int_field(p, "id").unwrap_or_default().to_string(),
                    p.clone(),
                )
            })
            .collect();
        order["payments"] = Value::Object(map);
    }
    order
}

/// MG's file type and MIME type from a file's first bytes (our choice of what to recognise).
pub(crate) fn sniff(bytes: &[u8]) -> (&'static str, &'static str) {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\x89PNG") {
        ("image", "image/png")
    } else if starts(b"\xff\xd8\xff") {
        ("image", "image/jpeg")
    } else if starts(b"GIF8") {
        ("image", "image/gif")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        ("image", "image/webp")
    } else if starts(b"OggS") {
        ("audio", "audio/ogg")
    } else if starts(b"ID3") {
        ("audio", "audio/mpeg")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        ("video", "video/mp4")
    } else if starts(b"%PDF") {
        ("file", "application/pdf")
    } else {
        ("file", "application/octet-stream")
    }
}
