//! Turning a step's parameter sources into values at run time, and listing the variables a
//! step can use (for validation and the editor's pickers).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use super::definition::{Step, Value, step_var};
use super::template;
use crate::catalog::{self, EventDef, FieldDef};
use crate::providers::ProviderKind;

/// What a run knows when it resolves step `i`: the event's fields and earlier steps' outputs.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    pub event: Map<String, Json>,
    pub outputs: Vec<Map<String, Json>>,
}

impl RunContext {
    /// Template context: event fields at the top level, step outputs under `stepN`.
    pub fn template_context(&self) -> Json {
        let mut ctx = self.event.clone();
        for (i, out) in self.outputs.iter().enumerate() {
            ctx.insert(step_var(i), Json::Object(out.clone()));
        }
        Json::Object(ctx)
    }
}

fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the event has no field {0}")]
    MissingEventField(String),
    #[error("step {0} has no output {1}")]
    MissingOutput(usize, String),
    #[error(transparent)]
    Template(#[from] template::TemplateError),
}

pub fn resolve(value: &Value, ctx: &RunContext) -> Result<String, ResolveError> {
    match value {
        Value::Literal { value } => Ok(value.clone()),
        Value::EventField { field } => ctx
            .event
            .get(field)
            .map(as_text)
            .ok_or_else(|| ResolveError::MissingEventField(field.clone())),
        Value::StepOutput { step, field } => ctx
            .outputs
            .get(*step)
            .and_then(|o| o.get(field))
            .map(as_text)
            .ok_or_else(|| ResolveError::MissingOutput(step + 1, field.clone())),
        Value::Template { text } => Ok(template::render(text, &ctx.template_context())?),
    }
}

/// Resolves every mapped parameter of a step; unmapped optional ones use their default.
pub fn resolve_step(
    step: &Step,
    ctx: &RunContext,
    kind: ProviderKind,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut out = BTreeMap::new();
    if let Some(def) = catalog::action(kind, &step.action) {
        // Only the chosen mode's parameters: the other mode's stay saved, unused.
        for p in def.params_in(step.mode()) {
            match step.params.get(p.key) {
                Some(v) if !v.is_empty() => {
                    out.insert(p.key.to_string(), resolve(v, ctx)?);
                }
                _ => {
                    if let Some(d) = p.default {
                        out.insert(p.key.to_string(), d.to_string());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Variables a template in step `index` may use: event fields and outputs of earlier steps.
pub fn known_variables(
    event: &EventDef,
    steps: &[Step],
    index: usize,
    target: ProviderKind,
) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = event.fields.iter().map(|f| f.key.to_string()).collect();
    for (i, s) in steps.iter().enumerate().take(index) {
        if let Some(a) = catalog::action(target, &s.action) {
            for o in a.outputs {
                known.insert(format!("{}.{}", step_var(i), o.key));
            }
        }
    }
    known
}

/// A context filled with sample values (`sample` gives each field's), for template previews.
pub fn sample_context(
    event: &EventDef,
    steps: &[Step],
    target: ProviderKind,
    sample: &dyn Fn(&FieldDef) -> String,
) -> RunContext {
    let event_map = event
        .fields
        .iter()
        .map(|f| (f.key.to_string(), Json::String(sample(f))))
        .collect();
    let outputs = steps
        .iter()
        .map(|s| {
            catalog::action(target, &s.action)
                .map(|a| {
                    a.outputs
                        .iter()
                        .map(|o| (o.key.to_string(), Json::String(sample(o))))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    RunContext {
        event: event_map,
        outputs,
    }
}
