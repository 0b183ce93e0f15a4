//! What the editor shows of a bundle: its header, the run bar (state and what stands in the way
//! of starting), and each action card with its parameters. Built from a loaded bundle and its
//! two providers; the templates only print these.

use svyazka_core::bundles::editor::{self, PickFrom, PickGroup};
use svyazka_core::bundles::template::TemplateError;
use svyazka_core::bundles::validate::{self, Problem, ProblemKind};
use svyazka_core::bundles::{self, Bundle};
use svyazka_core::catalog::{self, EventDef, FieldDef, FieldType};
use svyazka_core::messengers::templates::{self, HeaderNeed, ListFailure, Template};
use svyazka_core::providers::{self, Provider};

use super::Choice;
use crate::error::WebError;
use crate::i18n::{self, Lang, Msg, reasons};
use crate::state::AppState;

/// A bundle with its two providers and its event, as every editor handler needs them.
#[derive(Clone)]
pub(super) struct Loaded {
    pub(super) bundle: Bundle,
    pub(super) source: Provider,
    pub(super) target: Provider,
    pub(super) event: &'static EventDef,
    /// The target's approved templates, read live when a card sends one (`None`: not read).
    pub(super) templates: Option<Result<Vec<Template>, ListFailure>>,
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
        templates: None,
    })
}

/// What the page header and cards show about the bundle.
pub(super) struct BundleView {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) running: bool,
    /// Why it stopped itself, when it did (HTML).
    pub(super) paused: Option<String>,
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
    pub(super) problems: Vec<Msg>,
    pub(super) refused: bool,
}

/// One `<optgroup>` of a parameter's source select.
#[derive(Clone)]
pub(super) struct GroupView {
    pub(super) label: String,
    pub(super) options: Vec<OptionView>,
}

#[derive(Clone)]
pub(super) struct OptionView {
    pub(super) value: String,
    pub(super) label: String,
}

pub(super) struct ParamView {
    pub(super) key: &'static str,
    pub(super) label: String,
    pub(super) required: bool,
    pub(super) is_bool: bool,
    /// A text parameter: typed straight away in the template editor (plain text is a
    /// template without parameters), so its source defaults to the template.
    pub(super) is_text: bool,
    pub(super) bool_value: bool,
    pub(super) src: String,
    pub(super) lit: String,
    pub(super) tpl: String,
    pub(super) error: Option<Msg>,
    pub(super) preview_ok: Option<String>,
    pub(super) preview_err: Option<Msg>,
    pub(super) groups: Vec<GroupView>,
    /// `[{"v": "first_name", "l": "RetailCRM: Имя"}, …]` for the chip editor.
    pub(super) vars_json: String,
    /// Not part of the chosen mode (or a template variable the chosen template does not
    /// have): kept in the form, so switching back loses nothing, but not shown.
    pub(super) hidden: bool,
    /// The mode it belongs to (`data-mode`), for switching without a round trip.
    pub(super) mode: &'static str,
}

/// One approved template in a card's select.
pub(super) struct TemplateOption {
    pub(super) value: String,
    pub(super) label: String,
    pub(super) selected: bool,
}

/// «Отправить сообщение» of official WhatsApp: free text or an approved template.
pub(super) struct ModesView {
    pub(super) template_mode: bool,
    pub(super) options: Vec<TemplateOption>,
    /// Why the approved templates could not be read (HTML).
    pub(super) failure: Option<Msg>,
    /// Read, and there are none.
    pub(super) none: bool,
    /// The chosen template's header text (when it has one) and body, and how it reads with
    /// sample values.
    pub(super) header: Option<String>,
    pub(super) body: Option<String>,
    pub(super) preview: Option<String>,
    pub(super) no_vars: bool,
    pub(super) templates_url: String,
}

pub(super) struct StepView {
    /// What the admin must know about this action (Cloud API: the 24-hour window, where the
    /// approved templates are).
    pub(super) note: Option<String>,
    pub(super) index: usize,
    pub(super) number: usize,
    pub(super) title: String,
    pub(super) params: Vec<ParamView>,
    pub(super) modes: Option<ModesView>,
    pub(super) saved: bool,
}

/// Parameters a card with modes shows in its own block (the mode switch, the template select)
/// rather than one by one.
const MODE_BLOCK_PARAMS: [&str; 5] = [
    catalog::MODE,
    "template",
    "language",
    "namespace",
    templates::SHAPE,
];

/// Template variables shown while the chosen template is not known (not listed, or the list
/// could not be read); more appear as they are mapped.
const UNKNOWN_TEMPLATE_VARS: usize = 5;

impl Loaded {
    /// Reads the target's approved templates when a card sends one (nothing to read
    /// otherwise: the list costs a call to Meta or 1msg.io).
    pub(super) async fn read_templates(&mut self, state: &AppState) {
        let wanted = templates::offered(self.target.kind)
            && self
                .bundle
                .steps
                .iter()
                .any(|s| s.mode() == Some(catalog::MODE_TEMPLATE));
        if !wanted {
            return;
        }
        let read = templates::approved_of(&state.core, &self.target).await;
        if let Err(e) = &read {
            tracing::warn!(provider = self.target.id, error = ?e, "templates not read for the editor");
        }
        self.templates = Some(read);
    }

    fn chosen_template(&self, step: &bundles::Step) -> (String, String, Option<&Template>) {
        // The editor stores literals; older steps may hold the name as a template's text.
        let literal = |k: &str| literal_of(step, k);
        let (name, language) = (literal("template"), literal("language"));
        let found = match &self.templates {
            Some(Ok(list)) => list
                .iter()
                .find(|t| t.name == name && t.language == language),
            _ => None,
        };
        (name, language, found)
    }

    /// What a mapped template value of the card reads as with sample values; `None` when
    /// unmapped (or it cannot be previewed).
    fn sample_value(
        &self,
        lang: Lang,
        index: usize,
        step: &bundles::Step,
        key: &str,
    ) -> Option<String> {
        let sample = |f: &FieldDef| i18n::catalog::sample(lang, f);
        step.params
            .get(key)
            .filter(|v| !v.is_empty())
            .and_then(|v| {
                editor::value_preview(
                    self.event,
                    self.target.kind,
                    &self.bundle.steps,
                    index,
                    v,
                    &sample,
                )
                .ok()
            })
    }

    /// The chosen template as the customer reads it with sample values: its header (text, or
    /// which file), body and URL buttons.
    fn template_preview(
        &self,
        lang: Lang,
        index: usize,
        step: &bundles::Step,
        t: &Template,
    ) -> String {
        let value = |key: &str, placeholder: &str| {
            self.sample_value(lang, index, step, key)
                .unwrap_or_else(|| placeholder.to_owned())
        };
        let mut lines = Vec::new();
        match t.header {
            HeaderNeed::None if !t.header_text.is_empty() => lines.push(t.header_text.clone()),
            HeaderNeed::None => {}
            HeaderNeed::Text => lines.push(templates::fill(
                &t.header_text,
                &[value(templates::HEADER_PARAM, "{{1}}")],
            )),
            media => {
                let key = match media {
                    HeaderNeed::Image => "b_preview_image",
                    HeaderNeed::Document => "b_preview_document",
                    _ => "b_preview_video",
                };
                lines.push(lang.f(key, &[("link", &value(templates::HEADER_MEDIA, "…"))]));
            }
        }
        let values: Vec<String> = (1..=t.params)
            .map(|n| value(&format!("param{n}"), &format!("{{{{{n}}}}}")))
            .collect();
        lines.push(templates::fill(&t.body, &values));
        for (n, b) in t.url_buttons.iter().enumerate() {
            let url = templates::fill(&b.url, &[value(&templates::button_param(n + 1), "{{1}}")]);
            lines.push(lang.f("b_preview_button", &[("text", &b.text), ("url", &url)]));
        }
        lines.join("\n")
    }

    /// The mode switch and template select of a card whose action has modes.
    fn modes_view(&self, lang: Lang, index: usize, step: &bundles::Step) -> ModesView {
        let template_mode = step.mode() == Some(catalog::MODE_TEMPLATE);
        let (name, language, chosen) = self.chosen_template(step);
        let mut options: Vec<TemplateOption> = match &self.templates {
            Some(Ok(list)) => list
                .iter()
                .map(|t| TemplateOption {
                    value: editor::template_choice(
                        &t.name,
                        &t.language,
                        &t.namespace,
                        &t.shape().to_stored(),
                    ),
                    label: format!("{} ({}) — {}", t.name, t.language, t.body),
                    selected: t.name == name && t.language == language,
                })
                .collect(),
            _ => Vec::new(),
        };
        if chosen.is_none() && !name.is_empty() {
            // Kept selectable (with what the step stored of it), so saving the card does not
            // drop it.
            options.insert(
                0,
                TemplateOption {
                    value: editor::template_choice(
                        &name,
                        &language,
                        &literal_of(step, "namespace"),
                        &literal_of(step, templates::SHAPE),
                    ),
                    label: format!("{name} ({language}) — {}", lang.t("b_template_unlisted")),
                    selected: true,
                },
            );
        }
        let preview = chosen.map(|t| self.template_preview(lang, index, step, t));
        ModesView {
            template_mode,
            options,
            failure: match &self.templates {
                Some(Err(f)) => Some(reasons::templates_failure(lang, f)),
                _ => None,
            },
            none: matches!(&self.templates, Some(Ok(list)) if list.is_empty()),
            header: chosen
                .map(|t| t.header_text.clone())
                .filter(|h| !h.is_empty()),
            body: chosen.map(|t| t.body.clone()),
            no_vars: chosen.is_some_and(|t| {
                t.params == 0 && t.header == HeaderNeed::None && t.url_buttons.is_empty()
            }),
            preview,
            templates_url: format!("/providers/{}/templates", self.target.id),
        }
    }

    /// Whether a template-mode parameter is left out of the card: a body variable, header
    /// value or URL button variable the chosen template does not have. While the template is
    /// not known (not listed, or the list could not be read): a few body variables and every
    /// one mapped.
    fn template_param_hidden(&self, step: &bundles::Step, key: &str) -> bool {
        let chosen = self.chosen_template(step).2;
        if let Some(n) = key
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
        {
            let visible = match chosen {
                Some(t) => t.params,
                None => (1..=templates::MAX_PARAMS)
                    .rev()
                    .find(|n| step.params.contains_key(&format!("param{n}")))
                    .unwrap_or(0)
                    .max(UNKNOWN_TEMPLATE_VARS),
            };
            return n > visible;
        }
        let beyond_body = key == templates::HEADER_PARAM
            || key == templates::HEADER_MEDIA
            || key.starts_with("button");
        if !beyond_body {
            return false;
        }
        match chosen {
            Some(t) => !t.shape().requires(key),
            None => !step.params.contains_key(key) && !step.required_by_template(key),
        }
    }

    /// A header or URL button field's label naming what the chosen template has there (the
    /// header's text, its file's kind, the button's caption and address).
    fn template_param_label(&self, lang: Lang, step: &bundles::Step, key: &str) -> Option<String> {
        let t = self.chosen_template(step).2?;
        if key == templates::HEADER_PARAM && t.header == HeaderNeed::Text {
            return Some(lang.f("b_header_text", &[("text", &t.header_text)]));
        }
        if key == templates::HEADER_MEDIA {
            return match t.header {
                HeaderNeed::Image => Some(lang.t("b_header_image").to_string()),
                HeaderNeed::Document => Some(lang.t("b_header_document").to_string()),
                HeaderNeed::Video => Some(lang.t("b_header_video").to_string()),
                _ => None,
            };
        }
        let n = key.strip_prefix("button")?.parse::<usize>().ok()?;
        let b = t.url_buttons.get(n.checked_sub(1)?)?;
        Some(lang.f("b_url_button", &[("text", &b.text), ("url", &b.url)]))
    }
}

/// A parameter's literal (or, as older steps stored the template's name, its text).
fn literal_of(step: &bundles::Step, key: &str) -> String {
    match step.params.get(key) {
        Some(bundles::Value::Literal { value: v } | bundles::Value::Template { text: v }) => {
            v.trim().to_owned()
        }
        _ => String::new(),
    }
}

/// A template filled in with sample values in the admin's language.
pub(super) fn preview(
    lang: Lang,
    l: &Loaded,
    index: usize,
    text: &str,
) -> Result<String, TemplateError> {
    let sample = |f: &FieldDef| i18n::catalog::sample(lang, f);
    editor::preview(
        l.event,
        l.target.kind,
        &l.bundle.steps,
        index,
        text,
        &sample,
    )
}

/// [`preview`] for the live-preview request: rendered on a blocking thread, so a heavy
/// template cannot stall the executor that also serves webhooks.
pub(super) async fn preview_off_executor(
    lang: Lang,
    l: &Loaded,
    index: usize,
    text: &str,
) -> Result<String, TemplateError> {
    let sample = move |f: &FieldDef| i18n::catalog::sample(lang, f);
    editor::preview_off_executor(
        l.event,
        l.target.kind,
        &l.bundle.steps,
        index,
        text,
        &sample,
    )
    .await
}

/// "Step 2 · New deal: «Contact ID»: required parameter is not mapped".
fn problem(lang: Lang, l: &Loaded, p: &Problem) -> Msg {
    let target = l.target.kind;
    let what = match &p.what {
        ProblemKind::UnknownEvent { event } => {
            Msg::new(lang.f("b_unknown_event", &[("event", event)]))
        }
        ProblemKind::NoSteps => Msg::new(lang.t("b_no_steps")),
        ProblemKind::NoStatusChosen => Msg::new(lang.t("b_no_status")),
        ProblemKind::UnknownAction { action } => {
            Msg::new(lang.f("b_unknown_action", &[("action", action)]))
        }
        ProblemKind::Param { param, issue } => {
            Msg::new(format!("«{}»: ", i18n::catalog::field(lang, target, param)))
                .then(reasons::param_issue(lang, issue))
        }
    };
    match p.step {
        Some(n) => {
            let action = l.bundle.steps.get(n - 1).map_or_else(
                || "?".to_string(),
                |s| i18n::catalog::action(lang, target, &s.action),
            );
            Msg::new(format!("{} {n} · {action}: ", lang.t("b_step"))).then(what)
        }
        None => what,
    }
}

fn group_view(lang: Lang, g: &PickGroup) -> GroupView {
    let label = match &g.from {
        PickFrom::Event { kind, event } => {
            format!(
                "{} · {}",
                kind.title(),
                i18n::catalog::event(lang, *kind, event)
            )
        }
        PickFrom::Step {
            number,
            kind,
            action,
        } => format!(
            "{} {number} · {}",
            lang.t("b_step"),
            i18n::catalog::action(lang, *kind, action)
        ),
    };
    GroupView {
        label,
        options: g
            .options
            .iter()
            .map(|o| OptionView {
                value: o.value.clone(),
                label: format!(
                    "{}: {}",
                    o.kind.title(),
                    i18n::catalog::field(lang, o.kind, o.field)
                ),
            })
            .collect(),
    }
}

impl Loaded {
    pub(super) fn view(&self, lang: Lang) -> BundleView {
        let source = self.source.kind;
        BundleView {
            id: self.bundle.id,
            name: self.bundle.name.clone(),
            running: self.bundle.is_running(),
            paused: self
                .bundle
                .paused
                .as_ref()
                .filter(|_| !self.bundle.is_running())
                .map(|p| super::list::paused_note(lang, p)),
            source_name: self.source.name.clone(),
            source_title: source.title(),
            target_name: self.target.name.clone(),
            target_title: self.target.kind.title(),
            event_label: i18n::catalog::event(lang, source, self.event.key),
            status_filter: self.event.status_filter,
            event_fields: self
                .event
                .fields
                .iter()
                .map(|f| i18n::catalog::field(lang, source, f.key))
                .collect(),
        }
    }

    pub(super) fn run_bar(&self, lang: Lang, refused: bool) -> RunBar {
        let problems = validate::problems(&self.bundle, self.source.kind, self.target.kind)
            .iter()
            // A bundle started before «любой статус» existed keeps hearing every status; its
            // runs do not fail for it, so a running bar does not list it.
            .filter(|p| !(self.bundle.is_running() && p.what == ProblemKind::NoStatusChosen))
            .map(|p| problem(lang, self, p))
            .collect();
        RunBar { problems, refused }
    }

    fn step_view(&self, index: usize, lang: Lang, saved: bool) -> Option<StepView> {
        let target = self.target.kind;
        let steps = &self.bundle.steps;
        let step = steps.get(index)?;
        let action = catalog::action(target, &step.action)?;
        let picks = editor::picker(self.source.kind, self.event, target, steps, index);
        let groups: Vec<GroupView> = picks.iter().map(|g| group_view(lang, g)).collect();
        let vars: Vec<serde_json::Value> = picks
            .iter()
            .zip(&groups)
            .flat_map(|(g, view)| g.options.iter().zip(&view.options))
            .map(|(o, v)| serde_json::json!({"v": o.var, "l": v.label}))
            .collect();
        let vars_json = serde_json::Value::Array(vars).to_string();
        let errors = editor::param_errors(self.event, target, steps, index);
        let modes = action
            .has_modes()
            .then(|| self.modes_view(lang, index, step));
        let active: Vec<&'static str> = action.params_in(step.mode()).map(|p| p.key).collect();
        let params = action
            .params
            .iter()
            .filter(|p| !(action.has_modes() && MODE_BLOCK_PARAMS.contains(&p.key)))
            .map(|p| {
                let var_hidden = p.mode == Some(catalog::MODE_TEMPLATE)
                    && self.template_param_hidden(step, p.key);
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
                        match preview(lang, self, index, &tpl) {
                            Ok(s) => (Some(s), None),
                            Err(e) => (None, Some(reasons::template(lang, &e))),
                        }
                    };
                let is_bool = p.ty == FieldType::Bool;
                let is_text = p.ty == FieldType::Text;
                let bool_value = if is_bool {
                    lit == "true" || (value.is_none() && p.default == Some("true"))
                } else {
                    false
                };
                ParamView {
                    key: p.key,
                    label: self
                        .template_param_label(lang, step, p.key)
                        .unwrap_or_else(|| i18n::catalog::field(lang, target, p.key)),
                    required: p.required || step.required_by_template(p.key),
                    is_bool,
                    bool_value,
                    src: if value.is_none() && is_text {
                        editor::SRC_TEMPLATE.to_string()
                    } else {
                        editor::source_key(value)
                    },
                    is_text,
                    lit,
                    tpl,
                    error: errors.get(p.key).map(|e| reasons::param_issue(lang, e)),
                    preview_ok,
                    preview_err,
                    groups: groups.clone(),
                    vars_json: vars_json.clone(),
                    hidden: !active.contains(&p.key) || var_hidden,
                    mode: p.mode.unwrap_or_default(),
                }
            })
            .collect();
        // Free text through official WhatsApp reaches the customer only inside the window.
        let note = action
            .has_modes()
            .then(|| lang.t("b_window_note").to_string());
        Some(StepView {
            note,
            index,
            number: index + 1,
            title: i18n::catalog::action(lang, target, action.key),
            params,
            modes,
            saved,
        })
    }

    fn step_views(&self, lang: Lang) -> Vec<StepView> {
        (0..self.bundle.steps.len())
            .filter_map(|i| self.step_view(i, lang, false))
            .collect()
    }

    /// Every step card. Built on a blocking thread because each card previews the admin's
    /// templates, and a heavy template must not stall the executor that also answers webhooks.
    pub(super) async fn step_views_off_executor(
        &self,
        lang: Lang,
    ) -> Result<Vec<StepView>, WebError> {
        self.off_executor(move |l| l.step_views(lang)).await
    }

    /// One step card, built like [`Self::step_views_off_executor`].
    pub(super) async fn step_view_off_executor(
        &self,
        index: usize,
        lang: Lang,
        saved: bool,
    ) -> Result<StepView, WebError> {
        self.off_executor(move |l| l.step_view(index, lang, saved))
            .await?
            .ok_or(WebError::NotFound)
    }

    async fn off_executor<T: Send + 'static>(
        &self,
        build: impl FnOnce(&Loaded) -> T + Send + 'static,
    ) -> Result<T, WebError> {
        let l = self.clone();
        actix_web::web::block(move || build(&l))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))
    }

    pub(super) fn action_choices(&self, lang: Lang) -> Vec<Choice> {
        let kind = self.target.kind;
        catalog::actions(kind)
            .iter()
            .map(|a| Choice {
                key: a.key,
                label: i18n::catalog::action(lang, kind, a.key),
            })
            .collect()
    }
}
