//! Approved WhatsApp message templates as both official routes list them (the Cloud API's
//! `message_templates`, 1msg.io's `/templates`, which mirrors it), and what the editor and the
//! engine need of one: its body text, how many body variables it takes, how it reads filled in.
//!
//! Only body variables are filled: header media, buttons and the like are sent as approved.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        let body = self
            .components
            .iter()
            .find(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case("BODY"))
            })
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(Template {
            params: placeholders(&body).len(),
            name: self.name,
            language: self.language,
            category: self.category,
            namespace: self.namespace.unwrap_or_default(),
            body,
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

/// Template send parameters as both APIs take them: one `body` component with a `text`
/// parameter per variable, or nothing for a template without variables.
pub(crate) fn body_components(params: &[String]) -> Option<Value> {
    if params.is_empty() {
        return None;
    }
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| serde_json::json!({ "type": "text", "text": p }))
        .collect();
    Some(serde_json::json!([{ "type": "body", "parameters": parameters }]))
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
        let pending: Listed = serde_json::from_value(
            serde_json::json!({"name": "x", "status": "PENDING", "components": []}),
        )
        .expect("shape");
        assert!(pending.approved().is_none());
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
