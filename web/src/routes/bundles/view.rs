//! What the editor shows of a bundle: its header, the run bar (state and what stands in the way
//! of starting), and each action card with its parameters. Built from a loaded bundle and its
//! two providers; the templates only print these.

use svyazka_core::bundles::editor::{self, PickGroup};
use svyazka_core::bundles::{self, Bundle, validate};
use svyazka_core::catalog::{self, EventDef, FieldType};
use svyazka_core::providers::{self, Provider};

use super::Choice;
use crate::error::WebError;
use crate::i18n::Lang;
use crate::state::AppState;

/// A bundle with its two providers and its event, as every editor handler needs them.
pub(super) struct Loaded {
    pub(super) bundle: Bundle,
    pub(super) source: Provider,
    pub(super) target: Provider,
    pub(super) event: &'static EventDef,
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Loaded, WebError> {
    let (bundle, source, target) = state
        .core
        .db(move |c| {
            let b = bundles::get(c, id)?.ok_or(providers::ProviderError::NotFound)?;
            let s = providers::get(c, b.source_provider_id)?;
            let t = providers::get(c, b.target_provider_id)?;
            Ok::<_, providers::ProviderError>((b, s, t))
        })
        .await?;
    let event = catalog::event(source.kind, &bundle.event_type).ok_or_else(|| {
        WebError::Internal(format!("bundle {id}: unknown event {}", bundle.event_type))
    })?;
    Ok(Loaded {
        bundle,
        source,
        target,
        event,
    })
}

/// What the page header and cards show about the bundle.
pub(super) struct BundleView {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) running: bool,
    pub(super) source_name: String,
    pub(super) source_title: &'static str,
    pub(super) target_name: String,
    pub(super) target_title: &'static str,
    pub(super) event_label: String,
    pub(super) status_filter: bool,
    pub(super) event_fields: Vec<String>,
}

/// The state, Start/Stop, and what stands in the way of starting.
pub(super) struct RunBar {
    pub(super) problems: Vec<String>,
    pub(super) refused: bool,
}

pub(super) struct ParamView {
    pub(super) key: &'static str,
    pub(super) label: String,
    pub(super) required: bool,
    pub(super) is_bool: bool,
    pub(super) bool_value: bool,
    pub(super) src: String,
    pub(super) lit: String,
    pub(super) tpl: String,
    pub(super) error: Option<String>,
    pub(super) preview_ok: Option<String>,
    pub(super) preview_err: Option<String>,
    pub(super) groups: Vec<PickGroup>,
    /// `[{"v": "first_name", "l": "RetailCRM: Имя"}, …]` for the chip editor.
    pub(super) vars_json: String,
}

pub(super) struct StepView {
    pub(super) index: usize,
    pub(super) number: usize,
    pub(super) title: String,
    pub(super) params: Vec<ParamView>,
    pub(super) saved: bool,
}

impl Loaded {
    pub(super) fn view(&self, lang: Lang) -> BundleView {
        let en = lang == Lang::En;
        BundleView {
            id: self.bundle.id,
            name: self.bundle.name.clone(),
            running: self.bundle.is_running(),
            source_name: self.source.name.clone(),
            source_title: self.source.kind.title(),
            target_name: self.target.name.clone(),
            target_title: self.target.kind.title(),
            event_label: self.event.label(en).to_string(),
            status_filter: self.event.status_filter,
            event_fields: self
                .event
                .fields
                .iter()
                .map(|f| f.label(en).to_string())
                .collect(),
        }
    }

    pub(super) fn run_bar(&self, lang: Lang, refused: bool) -> RunBar {
        let en = lang == Lang::En;
        let problems = validate::problems(&self.bundle, self.source.kind, self.target.kind, en)
            .into_iter()
            .map(|p| match p.step {
                Some(n) => {
                    let action = self
                        .bundle
                        .steps
                        .get(n - 1)
                        .and_then(|s| catalog::action(self.target.kind, &s.action))
                        .map_or("?", |a| a.label(en));
                    format!("{} {n} · {action}: {}", lang.t("b_step"), p.message)
                }
                None => p.message,
            })
            .collect();
        RunBar { problems, refused }
    }

    pub(super) fn step_view(&self, index: usize, lang: Lang, saved: bool) -> Option<StepView> {
        let en = lang == Lang::En;
        let steps = &self.bundle.steps;
        let step = steps.get(index)?;
        let action = catalog::action(self.target.kind, &step.action)?;
        let groups = editor::picker(
            self.source.kind,
            self.event,
            self.target.kind,
            steps,
            index,
            en,
        );
        let errors = editor::param_errors(self.event, self.target.kind, steps, index, en);
        let vars: Vec<serde_json::Value> = groups
            .iter()
            .flat_map(|g| g.options.iter())
            .map(|o| serde_json::json!({"v": o.var, "l": o.label}))
            .collect();
        let vars_json = serde_json::Value::Array(vars).to_string();
        let params = action
            .params
            .iter()
            .map(|p| {
                let value = step.params.get(p.key);
                let (lit, tpl) = match value {
                    Some(bundles::Value::Literal { value }) => (value.clone(), String::new()),
                    Some(bundles::Value::Template { text }) => (String::new(), text.clone()),
                    _ => (String::new(), String::new()),
                };
                let (preview_ok, preview_err) =
                    if tpl.trim().is_empty() || errors.contains_key(p.key) {
                        (None, None)
                    } else {
                        match editor::preview(self.event, self.target.kind, steps, index, &tpl) {
                            Ok(s) => (Some(s), None),
                            Err(e) => (None, Some(e.localized(en))),
                        }
                    };
                let is_bool = p.ty == FieldType::Bool;
                let bool_value = if is_bool {
                    lit == "true" || (value.is_none() && p.default == Some("true"))
                } else {
                    false
                };
                ParamView {
                    key: p.key,
                    label: p.label(en).to_string(),
                    required: p.required,
                    is_bool,
                    bool_value,
                    src: editor::source_key(value),
                    lit,
                    tpl,
                    error: errors.get(p.key).cloned(),
                    preview_ok,
                    preview_err,
                    groups: groups.clone(),
                    vars_json: vars_json.clone(),
                }
            })
            .collect();
        Some(StepView {
            index,
            number: index + 1,
            title: action.label(en).to_string(),
            params,
            saved,
        })
    }

    pub(super) fn step_views(&self, lang: Lang) -> Vec<StepView> {
        (0..self.bundle.steps.len())
            .filter_map(|i| self.step_view(i, lang, false))
            .collect()
    }

    pub(super) fn action_choices(&self, lang: Lang) -> Vec<Choice> {
        let en = lang == Lang::En;
        catalog::actions(self.target.kind)
            .iter()
            .map(|a| Choice {
                key: a.key,
                label: a.label(en).to_string(),
            })
            .collect()
    }
}
