//! User templates ("Здравствуйте, {{ first_name }}!") rendered with minijinja.
//!
//! The environment has no loader, no filesystem, no env access; undefined variables are errors,
//! and every template is checked at save time against the variables the bundle offers, so a
//! typo is reported in the editor, not as a blank in a customer's message.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

/// Output is capped so a runaway loop in a template cannot produce megabytes of message text.
const MAX_OUTPUT: usize = 16 * 1024;
const MAX_SOURCE: usize = 8 * 1024;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Messages are plain text, not HTML: no auto-escaping (the admin pages escape on display).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_fuel(Some(50_000));
    env
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax: {0}")]
    Syntax(String),
    #[error("unknown parameter {{{{ {0} }}}}")]
    Unknown(String),
    #[error("template: {0}")]
    Render(String),
    #[error("template is longer than {MAX_SOURCE} characters")]
    TooLong,
}

impl TemplateError {
    /// The message in the admin's language (the `Display` form is English, for logs).
    pub fn localized(&self, en: bool) -> String {
        if en {
            return self.to_string();
        }
        match self {
            TemplateError::Syntax(d) => format!("ошибка в шаблоне: {d}"),
            TemplateError::Unknown(v) => format!("неизвестный параметр {{{{ {v} }}}}"),
            TemplateError::Render(d) => format!("шаблон не удалось заполнить: {d}"),
            TemplateError::TooLong => format!("шаблон длиннее {MAX_SOURCE} символов"),
        }
    }
}

/// Checks syntax and that every variable is one of `known` (dotted names like `step1.contact_id`).
pub fn check(text: &str, known: &BTreeSet<String>) -> Result<(), TemplateError> {
    if text.len() > MAX_SOURCE {
        return Err(TemplateError::TooLong);
    }
    let env = env();
    let tmpl = env
        .template_from_str(text)
        .map_err(|e| TemplateError::Syntax(describe(&e)))?;
    for var in tmpl.undeclared_variables(true) {
        let ok = known.contains(&var) || known.iter().any(|k| k.starts_with(&format!("{var}.")));
        if !ok {
            return Err(TemplateError::Unknown(var));
        }
    }
    Ok(())
}

pub fn render(text: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
    if text.len() > MAX_SOURCE {
        return Err(TemplateError::TooLong);
    }
    let env = env();
    let tmpl = env
        .template_from_str(text)
        .map_err(|e| TemplateError::Syntax(describe(&e)))?;
    let out = tmpl.render(ctx).map_err(|e| match e.kind() {
        minijinja::ErrorKind::UndefinedError => TemplateError::Unknown(describe(&e)),
        _ => TemplateError::Render(describe(&e)),
    })?;
    if out.len() > MAX_OUTPUT {
        return Err(TemplateError::Render(format!(
            "result longer than {MAX_OUTPUT} bytes"
        )));
    }
    Ok(out)
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{d} (line {})", e.line().unwrap_or(1)),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn renders_the_guide_example() {
        let out = render(
            "Здравствуйте, {{ first_name }}! Заказ №{{ number }}",
            &json!({"first_name": "Анна", "number": "7C"}),
        )
        .expect("render");
        assert_eq!(out, "Здравствуйте, Анна! Заказ №7C");
    }

    #[test]
    fn unknown_variables_are_caught_at_save_time() {
        let k = known(&["first_name", "step1.contact_id"]);
        assert!(check("Hi {{ first_name }} {{ step1.contact_id }}", &k).is_ok());
        assert_eq!(
            check("Hi {{ firstname }}", &k),
            Err(TemplateError::Unknown("firstname".into()))
        );
        assert!(matches!(
            check("Hi {{ first_name ", &k),
            Err(TemplateError::Syntax(_))
        ));
    }

    #[test]
    fn no_file_env_or_include_access() {
        let k = known(&[]);
        assert!(render("{% include '/etc/passwd' %}", &json!({})).is_err());
        assert!(render("{% import 'x' as y %}", &json!({})).is_err());
        assert!(check("{{ env }}", &k).is_err());
        // User data is inserted as text, never evaluated as template code.
        let out = render(
            "{{ text }}",
            &json!({"text": "{{ 7*7 }} {% include 'x' %}"}),
        )
        .expect("render");
        assert_eq!(out, "{{ 7*7 }} {% include 'x' %}");
    }

    #[test]
    fn runaway_templates_stop() {
        assert!(
            render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &json!({})
            )
            .is_err()
        );
    }
}
