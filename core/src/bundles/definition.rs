//! A bundle's chain: ordered steps, each an action of the target provider with a value source
//! per parameter.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where a parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    Literal {
        value: String,
    },
    /// A field of the triggering event.
    EventField {
        field: String,
    },
    /// An output of an earlier step (0-based index).
    StepOutput {
        step: usize,
        field: String,
    },
    /// Text with `{{ field }}` / `{{ stepN.field }}` placeholders, rendered with minijinja.
    Template {
        text: String,
    },
}

impl Value {
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Literal { value } => value.trim().is_empty(),
            Value::Template { text } => text.trim().is_empty(),
            Value::EventField { field } | Value::StepOutput { field, .. } => field.is_empty(),
        }
    }
}

/// The event fields `steps` read (step outputs are not event fields); `None` when a template
/// does not compile, so which fields it needs cannot be told. Decides whether a trigger's own
/// body is enough for a run or the order must be fetched.
pub fn event_fields(steps: &[Step]) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for value in steps.iter().flat_map(|s| s.params.values()) {
        match value {
            Value::Literal { .. } | Value::StepOutput { .. } => {}
            Value::EventField { field } => {
                out.insert(field.clone());
            }
            Value::Template { text } => out.extend(
                super::template::variables(text)?
                    .into_iter()
                    .filter(|v| !is_step_var(v)),
            ),
        }
    }
    Some(out)
}

/// `step1`, `step2`, …: the template names of step outputs.
fn is_step_var(name: &str) -> bool {
    name.strip_prefix("step")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredStep")]
pub struct Step {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

impl Step {
    /// The step's mode, for an action that has modes (see [`crate::catalog::MODE`]): the
    /// literal chosen in the editor.
    pub fn mode(&self) -> Option<&str> {
        match self.params.get(crate::catalog::MODE) {
            Some(Value::Literal { value }) => Some(value.trim()),
            _ => None,
        }
    }

    /// Whether parameter `key` must be mapped because of the approved template this step
    /// sends: its header value or a URL button's variable (see
    /// [`crate::messengers::templates::Shape`]). Only in template mode.
    pub fn required_by_template(&self, key: &str) -> bool {
        use crate::messengers::templates::{SHAPE, Shape};
        if self.mode() != Some(crate::catalog::MODE_TEMPLATE) {
            return false;
        }
        match self.params.get(SHAPE) {
            Some(Value::Literal { value }) => Shape::parse(value).requires(key),
            _ => false,
        }
    }
}

/// A step as stored, before it is read in today's terms.
#[derive(Deserialize)]
struct StoredStep {
    action: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
}

/// The Cloud API's separate «Отправить шаблон» action is now «Отправить сообщение» in template
/// mode, with the same parameters: saved bundles and the snapshots of their runs keep working.
const LEGACY_SEND_TEMPLATE: &str = "send_template";

impl From<StoredStep> for Step {
    fn from(s: StoredStep) -> Self {
        let StoredStep { action, mut params } = s;
        if action != LEGACY_SEND_TEMPLATE {
            return Step { action, params };
        }
        params.insert(
            crate::catalog::MODE.to_owned(),
            Value::Literal {
                value: crate::catalog::MODE_TEMPLATE.to_owned(),
            },
        );
        Step {
            action: "send_message".to_owned(),
            params,
        }
    }
}

/// Template variable name of a step's outputs: `step1`, `step2`, … (1-based, as shown to users).
pub fn step_var(index: usize) -> String {
    format!("step{}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(params: &[(&str, Value)]) -> Step {
        Step {
            action: "send".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn a_saved_send_template_step_reads_as_send_message_in_template_mode() {
        let step: Step = serde_json::from_str(
            r#"{"action":"send_template","params":{"template":{"type":"literal","value":"order_ready"}}}"#,
        )
        .expect("reads");
        assert_eq!(step.action, "send_message");
        assert_eq!(step.mode(), Some("template"));
        assert_eq!(
            step.params["template"],
            Value::Literal {
                value: "order_ready".into()
            }
        );
        let text: Step = serde_json::from_str(r#"{"action":"send_message"}"#).expect("reads");
        assert_eq!((text.action.as_str(), text.mode()), ("send_message", None));
    }

    #[test]
    fn lists_the_event_fields_steps_read() {
        let steps = [
            step(&[
                ("phone", Value::EventField { field: "phone".into() }),
                ("x", Value::Literal { value: "{{ email }}".into() }),
            ]),
            step(&[
                (
                    "text",
                    Value::Template {
                        text: "{{ first_name }}, заказ {{ number }} {% if total > 0 %}{{ total }}{% endif %} {{ step1.message_id }}".into(),
                    },
                ),
                ("y", Value::StepOutput { step: 0, field: "contact_id".into() }),
            ]),
        ];
        let fields: Vec<String> = event_fields(&steps)
            .expect("compiles")
            .into_iter()
            .collect();
        assert_eq!(fields, ["first_name", "number", "phone", "total"]);
        let broken = [step(&[(
            "t",
            Value::Template {
                text: "{{ oops".into(),
            },
        )])];
        assert!(event_fields(&broken).is_none());
    }
}
