//! A bundle's chain: ordered steps, each an action of the target provider with a value source
//! per parameter.

use std::collections::BTreeMap;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

/// Template variable name of a step's outputs: `step1`, `step2`, … (1-based, as shown to users).
pub fn step_var(index: usize) -> String {
    format!("step{}", index + 1)
}
