//! Approved WhatsApp message templates as both official routes list them (the Cloud API's
//! `message_templates`, 1msg.io's `/templates`, which mirrors it), and what the editor and the
//! engine need of one: its header and body text, how many body variables it takes, which
//! header value and URL button variables it needs ([`Shape`]), how it reads filled in.

mod filled;
mod shape;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use filled::{Filled, HeaderValue};
pub use shape::{
    HEADER_MEDIA, HEADER_PARAM, HeaderNeed, MAX_URL_BUTTONS, SHAPE, Shape, button_param,
};

/// The most body variables a step maps (`param1` … `param10`).
pub const MAX_PARAMS: usize = 10;

/// An approved message template, as the editor offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub category: String,
    /// 1msg.io's `namespace` (the business account's); empty on the Cloud API, which does not
    /// need it.
    #[serde(default)]
    pub namespace: String,
    /// The body's text with its `{{1}}`-style placeholders.
    pub body: String,
    /// How many body variables the template takes.
    pub params: usize,
    /// A text header's text (with its `{{1}}`, if any); empty for other headers.
    #[serde(default)]
    pub header_text: String,
    /// What the header needs at send time.
    #[serde(default)]
    pub header: HeaderNeed,
    /// The URL buttons whose address ends in a variable, in order.
    #[serde(default)]
    pub url_buttons: Vec<UrlButton>,
}

/// A URL button whose address ends in a `{{1}}` filled at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlButton {
    /// Its index among all the template's buttons (how Meta addresses it).
    pub index: usize,
    pub text: String,
    /// The address with its `{{1}}`.
    pub url: String,
}

impl Template {
    /// What a step sending this template must fill beyond the body.
    pub fn shape(&self) -> Shape {
        Shape {
            header: self.header,
            url_buttons: self.url_buttons.iter().map(|b| b.index).collect(),
        }
    }
}

/// A template as both APIs list it: `{name, language, status, category, components[], namespace?}`.
#[derive(Deserialize)]
pub(crate) struct Listed {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    components: Vec<Value>,
}

impl Listed {
    /// The template when it may be sent (`APPROVED`, any case: 1msg has written it in lower
    /// case), else `None`.
    pub(crate) fn approved(self) -> Option<Template> {
        if !self.status.eq_ignore_ascii_case("APPROVED") || self.name.is_empty() {
            return None;
        }
        let component = |kind: &str| {
            self.components.iter().find(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
        };
        let text = |c: Option<&Value>, key: &str| {
            c.and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let body = text(component("BODY"), "text");
        let header = component("HEADER");
        let header_format = text(header, "format");
        let header_text = text(header, "text");
        let header_need = HeaderNeed::of_listed(&header_format, &header_text);
        let url_buttons = component("BUTTONS")
            .and_then(|c| c.get("buttons"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, b)| text(Some(b), "type").eq_ignore_ascii_case("URL"))
            .filter(|(_, b)| text(Some(b), "url").contains("{{"))
            .map(|(index, b)| UrlButton {
                index,
                text: text(Some(b), "text"),
                url: text(Some(b), "url"),
            })
            .take(MAX_URL_BUTTONS)
            .collect();
        Some(Template {
            params: placeholders(&body).len(),
            name: self.name,
            language: self.language,
            category: self.category,
            namespace: self.namespace.unwrap_or_default(),
            body,
            header_text: if header_format.eq_ignore_ascii_case("TEXT") {
                header_text
            } else {
                String::new()
            },
            header: header_need,
            url_buttons,
        })
    }
}

/// The distinct `{{1}}` / `{{name}}` placeholders of a template body, in first-use order.
pub fn placeholders(body: &str) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !name.is_empty() && !seen.contains(&name) {
            seen.push(name);
        }
        rest = &after[end + 2..];
    }
    seen
}

/// The body as the customer reads it: each placeholder replaced by its value, in the order
/// the placeholders first appear (positional `{{1}}` templates are written in order; named ones
/// are filled in order too, which is how Meta numbers them). A placeholder without a value
/// stays as it is.
pub fn fill(body: &str, values: &[String]) -> String {
    let names = placeholders(body);
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        out.push_str(&rest[..start]);
        match names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i))
        {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_once_each() {
        assert_eq!(placeholders("Hi {{1}}, order {{2}} is {{1}}").len(), 2);
        assert!(placeholders("No params").is_empty());
        assert_eq!(
            placeholders("Named {{first_name}} {{ order }}"),
            ["first_name", "order"]
        );
    }

    #[test]
    fn filling_replaces_in_order_and_keeps_what_has_no_value() {
        let v = vec!["Анна".to_string(), "7146C".to_string()];
        assert_eq!(
            fill("{{1}}, заказ {{2}} готов, {{1}}! {{3}}", &v),
            "Анна, заказ 7146C готов, Анна! {{3}}"
        );
        assert_eq!(fill("Без {{", &v), "Без {{");
    }

    #[test]
    fn only_approved_templates_with_their_body() {
        let listed: Listed = serde_json::from_value(serde_json::json!({
            "name": "order_ready", "language": "ru", "status": "approved", "category": "UTILITY",
            "namespace": "ns1",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Заказ"},
                {"type": "BODY", "text": "{{1}}, заказ {{2}} готов", "example": {"body_text": [["Анна", "1"]]}},
                {"type": "FOOTER", "text": "Магазин"}
            ]
        }))
        .expect("shape");
        let t = listed.approved().expect("approved");
        assert_eq!((t.params, t.namespace.as_str()), (2, "ns1"));
        assert_eq!(t.shape(), Shape::default(), "a header without a variable");
        let pending: Listed = serde_json::from_value(
            serde_json::json!({"name": "x", "status": "PENDING", "components": []}),
        )
        .expect("shape");
        assert!(pending.approved().is_none());
    }

    #[test]
    fn header_and_url_button_needs_are_read() {
        let listed: Listed = serde_json::from_value(serde_json::json!({
            "name": "order_shipped", "language": "ru", "status": "APPROVED", "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Заказ {{1}}", "example": {"header_text": ["7146C"]}},
                {"type": "BODY", "text": "{{1}}, заказ в пути"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Спасибо"},
                    {"type": "URL", "text": "Сайт", "url": "https://shop.example/"},
                    {"type": "URL", "text": "Отследить", "url": "https://shop.example/track/{{1}}", "example": ["https://shop.example/track/7146"]}
                ]}
            ]
        }))
        .expect("shape");
        let t = listed.approved().expect("approved");
        assert_eq!(t.header_text, "Заказ {{1}}");
        assert_eq!(t.shape().to_stored(), "text;2");
        assert_eq!(t.url_buttons[0].text, "Отследить");
        let media: Listed = serde_json::from_value(serde_json::json!({
            "name": "invoice", "language": "ru", "status": "APPROVED",
            "components": [
                {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::aW"]}},
                {"type": "BODY", "text": "Счёт"}
            ]
        }))
        .expect("shape");
        let t = media.approved().expect("approved");
        assert_eq!(
            (t.header, t.header_text.as_str()),
            (HeaderNeed::Document, "")
        );
    }
}

/// Why a provider's templates could not be listed.
#[derive(Debug, Clone, PartialEq)]
pub enum ListFailure {
    /// A Cloud API number without its WhatsApp Business Account id (where templates live).
    NoBusinessAccount,
    /// The provider's settings or secrets could not be used.
    Settings(crate::reason::Reason),
    /// The upstream refused or could not be reached.
    Upstream(crate::reason::ServiceFailure),
}

/// Whether a provider kind sends approved templates («Отправить сообщение» in template mode).
pub fn offered(kind: crate::providers::ProviderKind) -> bool {
    use crate::providers::ProviderKind;
    matches!(kind, ProviderKind::Wacloud | ProviderKind::Chatapi)
}

/// The provider's approved templates, read live: the Cloud API's `message_templates` of its
/// business account, 1msg.io's `/templates`. Empty for a kind without templates.
pub async fn approved_of(
    core: &crate::Core,
    p: &crate::providers::Provider,
) -> Result<Vec<Template>, ListFailure> {
    use crate::engine::clients;
    use crate::providers::Settings;
    use crate::reason::Explain;
    match &p.settings {
        Settings::Wacloud(s) if s.waba_id.trim().is_empty() => Err(ListFailure::NoBusinessAccount),
        Settings::Wacloud(s) => {
            let api = clients::wacloud(core, p).map_err(|e| ListFailure::Settings(e.reason))?;
            api.templates(&s.waba_id)
                .await
                .map_err(|e| ListFailure::Upstream(e.explain()))
        }
        Settings::Chatapi(_) => {
            let api = clients::chatapi(core, p).map_err(|e| ListFailure::Settings(e.reason))?;
            api.templates()
                .await
                .map_err(|e| ListFailure::Upstream(e.explain()))
        }
        _ => Ok(Vec::new()),
    }
}
