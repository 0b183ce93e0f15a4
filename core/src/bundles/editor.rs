//! Editing a bundle's chain the way the editor screen does: add, remove and reorder steps
//! (keeping every reference to an earlier step's outputs pointing at the same step), read a
//! posted parameter form into value sources, list what a parameter can be filled from, check a
//! card's parameters one by one, and preview a template with sample data.
//!
//! Pure functions over `Step`s and the catalog; the web handlers only load, call and store.

use std::collections::BTreeMap;

use diesel::prelude::*;
use validator::{Validate, ValidationErrors};

use super::definition::{Step, Value, step_var};
use super::resolve::{known_variables, sample_context};
use super::template::{self, TemplateError};
use super::validate::{ParamIssue, param_issue};
use crate::catalog::{self, ActionDef, EventDef, FieldDef, FieldType};
use crate::db::schema::bundles;
use crate::db::{AnyConnection, DbError};
use crate::messengers::templates::{SHAPE, Shape};
use crate::providers::ProviderKind;

/// Form value of a parameter's source select meaning "a literal typed by the user".
pub const SRC_LITERAL: &str = "lit";
/// Form value meaning "a text template with parameters".
pub const SRC_TEMPLATE: &str = "tpl";
/// Form field of the approved-template select: its value (see [`template_choice`]) sets the
/// template's name, language, namespace and shape at once.
pub const TEMPLATE_CHOICE: &str = "template.choice";
/// Longest literal or template the editor accepts (templates have their own, lower cap).
pub const MAX_VALUE: usize = 8 * 1024;
/// Longest bundle name, in characters.
pub const MAX_NAME: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("unknown action {0}")]
    UnknownAction(String),
    #[error("no step {0}")]
    NoStep(usize),
}

/// A new step of `action` with the catalog's defaults filled in.
pub fn new_step(target: ProviderKind, action: &str) -> Result<Step, EditError> {
    let def = catalog::action(target, action)
        .ok_or_else(|| EditError::UnknownAction(action.to_string()))?;
    // The default mode's defaults; the mode itself is the default while it is not chosen.
    let params = def
        .params_in(None)
        .filter(|p| p.key != catalog::MODE)
        .filter_map(|p| {
            p.default.map(|d| {
                (
                    p.key.to_string(),
                    Value::Literal {
                        value: d.to_string(),
                    },
                )
            })
        })
        .collect();
    Ok(Step {
        action: def.key.to_string(),
        params,
    })
}

/// Appends a step; returns its index.
pub fn add_step(
    steps: &mut Vec<Step>,
    target: ProviderKind,
    action: &str,
) -> Result<usize, EditError> {
    steps.push(new_step(target, action)?);
    Ok(steps.len() - 1)
}

/// Removes step `index`. Mappings to its outputs are cleared (the parameter becomes unmapped,
/// which validation names); later steps' references shift down by one.
pub fn remove_step(steps: &mut Vec<Step>, index: usize) -> Result<(), EditError> {
    if index >= steps.len() {
        return Err(EditError::NoStep(index));
    }
    steps.remove(index);
    remap(steps, |i| match i.cmp(&index) {
        std::cmp::Ordering::Less => Some(i),
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(i - 1),
    });
    Ok(())
}

/// Swaps step `index` with its neighbour above (`up`) or below. References follow the steps
/// they point at; one that now points forward is reported by validation, not silently changed.
/// Returns `false` when the step is already first/last.
pub fn move_step(steps: &mut [Step], index: usize, up: bool) -> Result<bool, EditError> {
    if index >= steps.len() {
        return Err(EditError::NoStep(index));
    }
    let other = match (up, index) {
        (true, 0) => return Ok(false),
        (true, i) => i - 1,
        (false, i) if i + 1 >= steps.len() => return Ok(false),
        (false, i) => i + 1,
    };
    steps.swap(index, other);
    remap(steps, |i| {
        Some(if i == index {
            other
        } else if i == other {
            index
        } else {
            i
        })
    });
    Ok(true)
}

/// Rewrites step references (`StepOutput.step` and `stepN` in templates) with `map`
/// (0-based old index → new index, `None` = the step is gone).
fn remap(steps: &mut [Step], map: impl Fn(usize) -> Option<usize>) {
    for step in steps.iter_mut() {
        step.params.retain(|_, v| match v {
            Value::StepOutput { step, .. } => match map(*step) {
                Some(n) => {
                    *step = n;
                    true
                }
                None => false,
            },
            _ => true,
        });
        for v in step.params.values_mut() {
            if let Value::Template { text } = v {
                *text = rename_step_vars(text, &map);
            }
        }
    }
}

/// Renames `stepN` variables inside `{{ … }}` / `{% … %}` blocks; a removed step becomes
/// `removed_stepN`, so the template check names it instead of it silently meaning another step.
pub fn rename_step_vars(text: &str, map: &impl Fn(usize) -> Option<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let open = [rest.find("{{"), rest.find("{%")]
            .into_iter()
            .flatten()
            .min();
        let Some(start) = open else {
            out.push_str(rest);
            return out;
        };
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        let end = rest[start + 2..]
            .find(close)
            .map_or(rest.len(), |e| start + 2 + e + 2);
        out.push_str(&rest[..start]);
        out.push_str(&rename_in_block(&rest[start..end], map));
        rest = &rest[end..];
    }
}

fn rename_in_block(block: &str, map: &impl Fn(usize) -> Option<usize>) -> String {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(block.len());
    let mut i = 0;
    while i < block.len() {
        let tail = &block[i..];
        let boundary = block[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        if boundary && tail.starts_with("step") {
            let digits: String = tail[4..].chars().take_while(char::is_ascii_digit).collect();
            let after = tail[4 + digits.len()..].chars().next();
            if !digits.is_empty()
                && after.is_none_or(|c| !is_ident(c))
                && let Ok(n) = digits.parse::<usize>()
                && n >= 1
            {
                match map(n - 1) {
                    Some(new) => out.push_str(&step_var(new)),
                    None => out.push_str(&format!("removed_step{n}")),
                }
                i += 4 + digits.len();
                continue;
            }
        }
        let c = tail.chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// The select value that stands for `value` in the parameter form.
pub fn source_key(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Literal { .. }) => SRC_LITERAL.into(),
        Some(Value::Template { .. }) => SRC_TEMPLATE.into(),
        Some(Value::EventField { field }) => format!("event:{field}"),
        Some(Value::StepOutput { step, field }) => format!("step:{step}:{field}"),
    }
}

/// Reads a posted parameter form: for each parameter `k`, `k.src` (the source select: empty,
/// `lit`, `tpl`, `event:<field>`, `step:<index>:<field>`), `k.lit` (literal) and `k.tpl`
/// (template). Unknown keys are ignored; an empty literal or template leaves the parameter
/// unmapped. Repeated keys: the last one wins.
pub fn parse_params(def: &ActionDef, fields: &[(String, String)]) -> BTreeMap<String, Value> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let mut out = BTreeMap::new();
    for p in def.params {
        let src = get(&format!("{}.src", p.key)).unwrap_or("").trim();
        let value = match src {
            SRC_LITERAL => {
                let v = get(&format!("{}.lit", p.key)).unwrap_or("");
                (!v.trim().is_empty()).then(|| Value::Literal {
                    value: clip(v).to_string(),
                })
            }
            SRC_TEMPLATE => {
                let v = get(&format!("{}.tpl", p.key)).unwrap_or("");
                let v = v.replace("\r\n", "\n");
                (!v.trim().is_empty()).then(|| Value::Template {
                    text: clip(&v).to_string(),
                })
            }
            s => {
                if let Some(field) = s.strip_prefix("event:") {
                    Some(Value::EventField {
                        field: field.to_string(),
                    })
                } else if let Some(rest) = s.strip_prefix("step:") {
                    rest.split_once(':').and_then(|(n, field)| {
                        n.parse().ok().map(|step| Value::StepOutput {
                            step,
                            field: field.to_string(),
                        })
                    })
                } else {
                    None
                }
            }
        };
        if let Some(v) = value {
            out.insert(p.key.to_string(), v);
        }
    }
    if def.param("template").is_some()
        && let Some(choice) = get(TEMPLATE_CHOICE).filter(|c| !c.trim().is_empty())
    {
        apply_template_choice(choice, &mut out);
    }
    out
}

/// The approved-template select's value for a template: `name|language|namespace|shape`
/// (Meta's names are lower case, digits and `_`, language codes like `pt_BR`, a stored shape
/// like `image;1`: none has a `|`).
pub fn template_choice(name: &str, language: &str, namespace: &str, shape: &str) -> String {
    format!("{name}|{language}|{namespace}|{shape}")
}

/// A posted template choice into the template, language, namespace and shape parameters (a
/// choice without a shape, as pages before it posted, means nothing beyond the body).
fn apply_template_choice(choice: &str, out: &mut BTreeMap<String, Value>) {
    let mut parts = choice.splitn(4, '|').map(str::trim);
    let (Some(name), Some(language)) = (parts.next(), parts.next()) else {
        return;
    };
    if name.is_empty() || language.is_empty() {
        return;
    }
    let literal = |v: &str| Value::Literal {
        value: clip(v).to_string(),
    };
    out.insert("template".into(), literal(name));
    out.insert("language".into(), literal(language));
    match parts.next().filter(|n| !n.is_empty()) {
        Some(namespace) => out.insert("namespace".into(), literal(namespace)),
        None => out.remove("namespace"),
    };
    let shape = Shape::parse(parts.next().unwrap_or_default()).to_stored();
    if shape.is_empty() {
        out.remove(SHAPE);
    } else {
        out.insert(SHAPE.into(), literal(&shape));
    }
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_VALUE {
        return s;
    }
    let mut end = MAX_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A bundle name as typed, with runs of whitespace collapsed.
#[derive(Debug, Clone, PartialEq, Eq, Validate)]
pub struct BundleName {
    #[validate(length(min = 1, max = MAX_NAME))]
    pub name: String,
}

/// A trimmed, non-empty bundle name of at most [`MAX_NAME`] characters, or why not.
pub fn clean_name(name: &str) -> Result<String, ValidationErrors> {
    let name = BundleName {
        name: name.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    name.validate()?;
    Ok(name.name)
}

/// One thing a parameter can be filled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickOption {
    /// The source select's value (see [`source_key`]).
    pub value: String,
    /// The provider kind the value comes from and its catalog field (the label's keys).
    pub kind: ProviderKind,
    pub field: &'static str,
    /// The variable a template uses for it: `first_name`, `step1.contact_id`.
    pub var: String,
    pub ty: FieldType,
}

/// Where a group of options comes from: the event, or an earlier step (1-based `number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickFrom {
    Event {
        kind: ProviderKind,
        event: &'static str,
    },
    Step {
        number: usize,
        kind: ProviderKind,
        action: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickGroup {
    pub from: PickFrom,
    pub options: Vec<PickOption>,
}

/// What step `index` can use: the event's fields, then each earlier step's outputs, each
/// tagged with the provider it comes from.
pub fn picker(
    source: ProviderKind,
    event: &'static EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
) -> Vec<PickGroup> {
    let mut groups = vec![PickGroup {
        from: PickFrom::Event {
            kind: source,
            event: event.key,
        },
        options: event
            .fields
            .iter()
            .map(|f| PickOption {
                value: format!("event:{}", f.key),
                kind: source,
                field: f.key,
                var: f.key.to_string(),
                ty: f.ty,
            })
            .collect(),
    }];
    for (i, s) in steps.iter().enumerate().take(index) {
        let Some(a) = catalog::action(target, &s.action) else {
            continue;
        };
        if a.outputs.is_empty() {
            continue;
        }
        groups.push(PickGroup {
            from: PickFrom::Step {
                number: i + 1,
                kind: target,
                action: a.key,
            },
            options: a
                .outputs
                .iter()
                .map(|o| PickOption {
                    value: format!("step:{i}:{}", o.key),
                    kind: target,
                    field: o.key,
                    var: format!("{}.{}", step_var(i), o.key),
                    ty: o.ty,
                })
                .collect(),
        });
    }
    groups
}

/// Issues of step `index`'s mapped parameters, by parameter key: a field the event does not
/// carry, an output of a step that is not before this one, a template that does not compile or
/// uses an unknown parameter. Unmapped required parameters are not listed here (the form marks
/// them; starting the bundle names them).
pub fn param_errors(
    event: &EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
) -> BTreeMap<String, ParamIssue> {
    let mut out = BTreeMap::new();
    let Some(step) = steps.get(index) else {
        return out;
    };
    let Some(action) = catalog::action(target, &step.action) else {
        return out;
    };
    for p in action.params_in(step.mode()) {
        let Some(v) = step.params.get(p.key) else {
            continue;
        };
        if let Some(issue) = param_issue(event, target, steps, index, v) {
            out.insert(p.key.to_string(), issue);
        }
    }
    out
}

/// `text` rendered as step `index` would render it, with sample values (`sample` gives each
/// field's, e.g. in the admin's language).
pub fn preview(
    event: &EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
    text: &str,
    sample: &dyn Fn(&FieldDef) -> String,
) -> Result<String, TemplateError> {
    template::check(text, &known_variables(event, steps, index, target))?;
    let ctx = sample_context(event, steps, target, sample);
    template::render(text, &ctx.template_context())
}

/// What a mapped value of step `index` reads as with sample values: a template rendered, a
/// field's sample, a literal as typed. Fills the preview of an approved template's variables.
pub fn value_preview(
    event: &EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
    value: &Value,
    sample: &dyn Fn(&FieldDef) -> String,
) -> Result<String, TemplateError> {
    Ok(match value {
        Value::Literal { value } => value.clone(),
        Value::Template { text } => preview(event, target, steps, index, text, sample)?,
        Value::EventField { field } => event
            .fields
            .iter()
            .find(|f| f.key == field)
            .map(sample)
            .unwrap_or_default(),
        Value::StepOutput { step, field } => steps
            .get(*step)
            .and_then(|s| catalog::action(target, &s.action))
            .and_then(|a| a.outputs.iter().find(|o| o.key == field))
            .map(sample)
            .unwrap_or_default(),
    })
}

/// [`preview`] for request handlers: the check is cheap, the render runs on a blocking
/// thread so a heavy template cannot stall the executor serving webhooks.
pub async fn preview_off_executor(
    event: &EventDef,
    target: ProviderKind,
    steps: &[Step],
    index: usize,
    text: &str,
    sample: &(dyn Fn(&FieldDef) -> String + Sync),
) -> Result<String, TemplateError> {
    template::check(text, &known_variables(event, steps, index, target))?;
    let ctx = sample_context(event, steps, target, sample).template_context();
    template::render_off_executor(text.to_owned(), ctx).await
}

/// A row of the bundles list: read without parsing any bundle's step definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: i64,
    pub name: String,
    pub source_provider_id: i64,
    pub event_type: String,
    pub target_provider_id: i64,
    pub running: bool,
    /// Stopped itself after failures (see `alerts`).
    pub paused: Option<super::AutoPause>,
}

/// Every bundle, newest first, as the list screen shows them.
pub fn summaries(conn: &mut AnyConnection) -> Result<Vec<Summary>, DbError> {
    type SummaryRow = (
        i64,
        String,
        i64,
        String,
        i64,
        super::BundleState,
        Option<String>,
    );
    let rows: Vec<SummaryRow> = bundles::table
        .order(bundles::id.desc())
        .select((
            bundles::id,
            bundles::name,
            bundles::source_provider_id,
            bundles::event_type,
            bundles::target_provider_id,
            bundles::state,
            bundles::paused_reason,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, source_provider_id, event_type, target_provider_id, state, paused)| {
                Summary {
                    id,
                    name,
                    source_provider_id,
                    event_type,
                    target_provider_id,
                    running: state == super::BundleState::Running,
                    paused: paused.and_then(|p| serde_json::from_str(&p).ok()),
                }
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: &str, params: &[(&str, Value)]) -> Step {
        Step {
            action: action.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn out(step: usize, field: &str) -> Value {
        Value::StepOutput {
            step,
            field: field.into(),
        }
    }

    fn tpl(t: &str) -> Value {
        Value::Template { text: t.into() }
    }

    fn guide_chain() -> Vec<Step> {
        vec![
            step(
                "new_contact",
                &[(
                    "phone",
                    Value::EventField {
                        field: "sender_id".into(),
                    },
                )],
            ),
            step(
                "new_deal",
                &[
                    ("phone", out(0, "contact_phone")),
                    ("contact_id", out(0, "contact_id")),
                ],
            ),
            step(
                "new_message",
                &[
                    ("contact_id", out(0, "contact_id")),
                    ("text", tpl("{{ text }} ({{ step2.deal_number }})")),
                ],
            ),
        ]
    }

    fn fields(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn new_steps_get_defaults() {
        let s = new_step(ProviderKind::Retailcrm, "new_deal").expect("step");
        assert_eq!(
            s.params.get("only_if_no_open_deal"),
            Some(&Value::Literal {
                value: "true".into()
            })
        );
        assert_eq!(
            new_step(ProviderKind::Chatapi, "new_deal"),
            Err(EditError::UnknownAction("new_deal".into()))
        );
        let mut steps = Vec::new();
        assert_eq!(
            add_step(&mut steps, ProviderKind::Chatapi, "send_message"),
            Ok(0)
        );
        assert_eq!(steps[0].action, "send_message");
        // Official WhatsApp's card starts in free-text mode with nothing filled in.
        let s = new_step(ProviderKind::Wacloud, "send_message").expect("step");
        assert!(s.params.is_empty(), "{s:?}");
    }

    #[test]
    fn moving_keeps_references_on_the_same_steps() {
        let mut steps = guide_chain();
        assert_eq!(move_step(&mut steps, 2, true), Ok(true));
        // New message is now step 2 (index 1), New deal step 3 (index 2).
        assert_eq!(steps[1].action, "new_message");
        assert_eq!(
            steps[1].params["text"],
            tpl("{{ text }} ({{ step3.deal_number }})")
        );
        assert_eq!(steps[1].params["contact_id"], out(0, "contact_id"));
        assert_eq!(steps[2].params["phone"], out(0, "contact_phone"));
        // The first step moving down: its users now point forward, which validation reports.
        assert_eq!(move_step(&mut steps, 0, false), Ok(true));
        assert_eq!(steps[0].params["contact_id"], out(1, "contact_id"));
        assert_eq!(
            steps[0].params["text"],
            tpl("{{ text }} ({{ step3.deal_number }})")
        );
        let event = catalog::event(ProviderKind::Chatapi, "incoming_message").expect("event");
        let errors = param_errors(event, ProviderKind::Retailcrm, &steps, 0);
        assert!(errors.contains_key("contact_id"), "{errors:?}");
        assert!(errors.contains_key("text"), "{errors:?}");
        // Edges and bounds.
        assert_eq!(move_step(&mut steps, 0, true), Ok(false));
        assert_eq!(move_step(&mut steps, 2, false), Ok(false));
        assert_eq!(move_step(&mut steps, 3, false), Err(EditError::NoStep(3)));
    }

    #[test]
    fn removing_clears_references_to_the_removed_step() {
        let mut steps = guide_chain();
        remove_step(&mut steps, 1).expect("remove");
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].params["contact_id"], out(0, "contact_id"));
        assert_eq!(
            steps[1].params["text"],
            tpl("{{ text }} ({{ removed_step2.deal_number }})")
        );

        let mut steps = guide_chain();
        remove_step(&mut steps, 0).expect("remove");
        assert!(!steps[0].params.contains_key("phone"));
        assert!(!steps[1].params.contains_key("contact_id"));
        assert_eq!(
            steps[1].params["text"],
            tpl("{{ text }} ({{ step1.deal_number }})")
        );
        assert_eq!(remove_step(&mut steps, 5), Err(EditError::NoStep(5)));
    }

    #[test]
    fn renaming_touches_only_variables_inside_blocks() {
        let map = |i: usize| Some(i + 1);
        assert_eq!(
            rename_step_vars(
                "step1 {{ step1.a }} {{ mystep1 }} {% if step12.b %}x{% endif %} {{ step1x }}",
                &map
            ),
            "step1 {{ step2.a }} {{ mystep1 }} {% if step13.b %}x{% endif %} {{ step1x }}"
        );
        assert_eq!(
            rename_step_vars("Привет {{ step1.имя }} {{ unclosed step1", &map),
            "Привет {{ step2.имя }} {{ unclosed step2"
        );
    }

    #[test]
    fn parses_the_parameter_form() {
        let def = catalog::action(ProviderKind::Retailcrm, "new_deal").expect("action");
        let params = parse_params(
            def,
            &fields(&[
                ("phone.src", "step:0:contact_phone"),
                ("contact_id.src", "event:sender_id"),
                ("source.src", "lit"),
                ("source.lit", "WhatsApp"),
                ("comment.src", "tpl"),
                ("comment.tpl", "От {{ sender_name }}\r\n"),
                ("comment.lit", "ignored"),
                ("only_if_no_open_deal.src", "lit"),
                ("only_if_no_open_deal.lit", "false"),
                ("bogus.src", "lit"),
            ]),
        );
        assert_eq!(params["phone"], out(0, "contact_phone"));
        assert_eq!(
            params["contact_id"],
            Value::EventField {
                field: "sender_id".into()
            }
        );
        assert_eq!(
            params["source"],
            Value::Literal {
                value: "WhatsApp".into()
            }
        );
        assert_eq!(params["comment"], tpl("От {{ sender_name }}\n"));
        assert_eq!(
            params["only_if_no_open_deal"],
            Value::Literal {
                value: "false".into()
            }
        );
        assert_eq!(params.len(), 5);
        // Empty choices and empty texts leave parameters unmapped; garbage is ignored.
        let params = parse_params(
            def,
            &fields(&[
                ("phone.src", ""),
                ("source.src", "lit"),
                ("source.lit", "  "),
                ("comment.src", "step:x:y"),
            ]),
        );
        assert!(params.is_empty(), "{params:?}");
        // Every value the form can post round-trips through source_key.
        for v in [
            out(1, "deal_id"),
            Value::EventField {
                field: "text".into(),
            },
            tpl("x"),
            Value::Literal { value: "y".into() },
        ] {
            assert!(!source_key(Some(&v)).is_empty());
        }
        assert_eq!(source_key(Some(&out(1, "deal_id"))), "step:1:deal_id");
        assert_eq!(source_key(None), "");
    }

    #[test]
    fn the_template_choice_sets_name_language_and_namespace() {
        let def = catalog::action(ProviderKind::Chatapi, "send_message").expect("action");
        let params = parse_params(
            def,
            &fields(&[
                ("mode.src", "lit"),
                ("mode.lit", "template"),
                (
                    "template.choice",
                    &template_choice("order_ready", "ru", "ns_1", "image;0"),
                ),
                ("param1.src", "event:sender_name"),
            ]),
        );
        let lit = |v: &str| Value::Literal { value: v.into() };
        assert_eq!(params["template"], lit("order_ready"));
        assert_eq!(params["language"], lit("ru"));
        assert_eq!(params["namespace"], lit("ns_1"));
        assert_eq!(params["mode"], lit("template"));
        assert_eq!(params["shape"], lit("image;0"));
        let params = parse_params(
            def,
            &fields(&[(
                "template.choice",
                &template_choice("hello", "en_US", "", ""),
            )]),
        );
        assert!(!params.contains_key("namespace"));
        assert!(!params.contains_key("shape"));
        // A page from before shapes posts three parts.
        let params = parse_params(def, &fields(&[("template.choice", "hello|en_US|")]));
        assert_eq!(params["template"], lit("hello"));
        assert!(!params.contains_key("shape"));
        assert_eq!(params["language"], lit("en_US"));
    }

    #[test]
    fn picker_lists_event_fields_and_earlier_outputs_by_provider() {
        let event = catalog::event(ProviderKind::Chatapi, "incoming_message").expect("event");
        let steps = guide_chain();
        let groups = picker(
            ProviderKind::Chatapi,
            event,
            ProviderKind::Retailcrm,
            &steps,
            2,
        );
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0].from,
            PickFrom::Event {
                kind: ProviderKind::Chatapi,
                event: "incoming_message"
            }
        );
        assert!(groups[0].options.iter().any(|o| o.field == "sender_id"
            && o.kind == ProviderKind::Chatapi
            && o.value == "event:sender_id"));
        assert_eq!(
            groups[1].from,
            PickFrom::Step {
                number: 1,
                kind: ProviderKind::Retailcrm,
                action: "new_contact"
            }
        );
        let contact = groups[1]
            .options
            .iter()
            .find(|o| o.var == "step1.contact_id")
            .expect("contact id");
        assert_eq!(
            (contact.kind, contact.field),
            (ProviderKind::Retailcrm, "contact_id")
        );
        assert_eq!(contact.value, "step:0:contact_id");
        // The first step sees only the event.
        assert_eq!(
            picker(
                ProviderKind::Chatapi,
                event,
                ProviderKind::Retailcrm,
                &steps,
                0,
            )
            .len(),
            1
        );
    }

    #[test]
    fn param_errors_and_preview() {
        let event = catalog::event(ProviderKind::Retailcrm, "new_deal").expect("event");
        let steps = vec![step(
            "send_message",
            &[
                (
                    "recipient",
                    Value::EventField {
                        field: "phone".into(),
                    },
                ),
                ("text", tpl("Здравствуйте, {{ firstname }}!")),
            ],
        )];
        let errors = param_errors(event, ProviderKind::Chatapi, &steps, 0);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors["text"],
            ParamIssue::Template {
                error: TemplateError::Unknown {
                    name: "firstname".into()
                }
            }
        );
        let sample = |f: &FieldDef| f.sample.to_string();
        assert_eq!(
            preview(
                event,
                ProviderKind::Chatapi,
                &steps,
                0,
                "Здравствуйте, {{ first_name }}! Заказ №{{ number }}",
                &sample
            ),
            Ok("Здравствуйте, Анна! Заказ №7146C".into())
        );
        assert!(matches!(
            preview(
                event,
                ProviderKind::Chatapi,
                &steps,
                0,
                "{{ step1.message_id }}",
                &sample
            ),
            Err(TemplateError::Unknown { .. })
        ));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            clean_name("  WhatsApp   →  RetailCRM ").ok(),
            Some("WhatsApp → RetailCRM".into())
        );
        let refused = clean_name("   ").expect_err("empty");
        assert!(refused.field_errors()["name"][0].code == "length");
        assert!(clean_name(&"я".repeat(201)).is_err());
        assert!(clean_name(&"я".repeat(200)).is_ok());
    }
}
