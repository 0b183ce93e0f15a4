//! Can this bundle start? Every problem is named so the admin knows what to fix.

use super::definition::Value;
use super::resolve::known_variables;
use super::{Bundle, template};
use crate::catalog;
use crate::providers::ProviderKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based step number, `None` for the event card.
    pub step: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            Some(n) => write!(f, "Шаг {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

pub fn problems(
    bundle: &Bundle,
    source: ProviderKind,
    target: ProviderKind,
    en: bool,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(event) = catalog::event(source, &bundle.event_type) else {
        out.push(Problem {
            step: None,
            message: format!("unknown event {}", bundle.event_type),
        });
        return out;
    };
    if bundle.steps.is_empty() {
        out.push(Problem {
            step: None,
            message: if en {
                "add at least one action".into()
            } else {
                "добавьте хотя бы одно действие".into()
            },
        });
    }
    for (i, step) in bundle.steps.iter().enumerate() {
        let n = Some(i + 1);
        let Some(action) = catalog::action(target, &step.action) else {
            out.push(Problem {
                step: n,
                message: format!("unknown action {}", step.action),
            });
            continue;
        };
        for p in action.params {
            let label = p.label(en);
            match step.params.get(p.key) {
                None => {
                    if p.required {
                        let msg = if en {
                            "required parameter is not mapped"
                        } else {
                            "обязательный параметр не заполнен"
                        };
                        out.push(Problem {
                            step: n,
                            message: format!("«{label}»: {msg}"),
                        });
                    }
                }
                Some(v) if v.is_empty() && p.required => {
                    let msg = if en {
                        "required parameter is not mapped"
                    } else {
                        "обязательный параметр не заполнен"
                    };
                    out.push(Problem {
                        step: n,
                        message: format!("«{label}»: {msg}"),
                    });
                }
                Some(Value::EventField { field }) if !field.is_empty() => {
                    if !event.fields.iter().any(|f| f.key == field) {
                        out.push(Problem {
                            step: n,
                            message: format!("«{label}»: the event has no field {field}"),
                        });
                    }
                }
                Some(Value::StepOutput { step: from, field }) if !field.is_empty() => {
                    let ok = *from < i
                        && bundle
                            .steps
                            .get(*from)
                            .and_then(|s| catalog::action(target, &s.action))
                            .is_some_and(|a| a.outputs.iter().any(|o| o.key == field));
                    if !ok {
                        out.push(Problem {
                            step: n,
                            message: format!(
                                "«{label}»: step {} has no output {field} before this step",
                                from + 1
                            ),
                        });
                    }
                }
                Some(Value::Template { text }) if !text.trim().is_empty() => {
                    let known = known_variables(event, &bundle.steps, i, target);
                    if let Err(e) = template::check(text, &known) {
                        out.push(Problem {
                            step: n,
                            message: format!("«{label}»: {}", e.localized(en)),
                        });
                    }
                }
                Some(_) => {}
            }
        }
    }
    out
}
