//! Can this bundle start? Every problem is named (as data) so the admin is told what to fix.

use serde::{Deserialize, Serialize};

use super::definition::{Step, Value};
use super::resolve::known_variables;
use super::{Bundle, template};
use crate::catalog::{self, EventDef};
use crate::providers::ProviderKind;

/// One thing that stands in the way of starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based step number, `None` for the event card.
    pub step: Option<usize>,
    pub what: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The stored event is not in the catalog (a bundle from a newer or older version).
    UnknownEvent {
        event: String,
    },
    NoSteps,
    /// A RetailCRM event with no status ticked and «любой статус» not chosen either.
    NoStatusChosen,
    UnknownAction {
        action: String,
    },
    /// A parameter (catalog key) of the step cannot be used as mapped.
    Param {
        param: &'static str,
        issue: ParamIssue,
    },
}

/// What is wrong with one parameter's mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum ParamIssue {
    /// Required, and mapped to nothing.
    Unmapped,
    NoEventField {
        field: String,
    },
    /// Step `step` (1-based) has no output `field` before this step.
    NoStepOutput {
        step: usize,
        field: String,
    },
    Template {
        error: template::TemplateError,
    },
}

impl std::fmt::Display for Problem {
    /// English, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(n) = self.step {
            write!(f, "step {n}: ")?;
        }
        match &self.what {
            ProblemKind::UnknownEvent { event } => write!(f, "unknown event {event}"),
            ProblemKind::NoSteps => f.write_str("no actions"),
            ProblemKind::NoStatusChosen => f.write_str("no status chosen"),
            ProblemKind::UnknownAction { action } => write!(f, "unknown action {action}"),
            ProblemKind::Param { param, issue } => write!(f, "{param}: {issue:?}"),
        }
    }
}

/// The issue of one mapped parameter of step `index`, if any. Unmapped parameters are
/// `None` here: whether that is a problem depends on the parameter being required.
pub fn param_issue(
    event: &EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
    value: &Value,
) -> Option<ParamIssue> {
    match value {
        Value::EventField { field } if !field.is_empty() => {
            (!event.fields.iter().any(|f| f.key == field)).then(|| ParamIssue::NoEventField {
                field: field.clone(),
            })
        }
        Value::StepOutput { step: from, field } if !field.is_empty() => {
            let ok = *from < index
                && steps
                    .get(*from)
                    .and_then(|s| catalog::action(target, &s.action))
                    .is_some_and(|a| a.outputs.iter().any(|o| o.key == field));
            (!ok).then(|| ParamIssue::NoStepOutput {
                step: from + 1,
                field: field.clone(),
            })
        }
        Value::Template { text } if !text.trim().is_empty() => {
            let known = known_variables(event, steps, index, target);
            template::check(text, &known)
                .err()
                .map(|error| ParamIssue::Template { error })
        }
        _ => None,
    }
}

pub fn problems(bundle: &Bundle, source: ProviderKind, target: ProviderKind) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(event) = catalog::event(source, &bundle.event_type) else {
        out.push(Problem {
            step: None,
            what: ProblemKind::UnknownEvent {
                event: bundle.event_type.clone(),
            },
        });
        return out;
    };
    if event.status_filter && bundle.status_filter.is_empty() {
        out.push(Problem {
            step: None,
            what: ProblemKind::NoStatusChosen,
        });
    }
    if bundle.steps.is_empty() {
        out.push(Problem {
            step: None,
            what: ProblemKind::NoSteps,
        });
    }
    for (i, step) in bundle.steps.iter().enumerate() {
        let n = Some(i + 1);
        let Some(action) = catalog::action(target, &step.action) else {
            out.push(Problem {
                step: n,
                what: ProblemKind::UnknownAction {
                    action: step.action.clone(),
                },
            });
            continue;
        };
        for p in action.params_in(step.mode()) {
            let issue = match step.params.get(p.key) {
                Some(v) if !v.is_empty() => param_issue(event, target, &bundle.steps, i, v),
                _ => {
                    (p.required || step.required_by_template(p.key)).then_some(ParamIssue::Unmapped)
                }
            };
            if let Some(issue) = issue {
                out.push(Problem {
                    step: n,
                    what: ProblemKind::Param {
                        param: p.key,
                        issue,
                    },
                });
            }
        }
    }
    out
}
