//! User templates ("Здравствуйте, {{ first_name }}!") rendered with minijinja.
//!
//! The environment has no loader, no filesystem, no env access; undefined variables are errors,
//! and every template is checked at save time against the variables the bundle offers, so a
//! typo is reported in the editor, not as a blank in a customer's message.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};

use super::template_limits::{Forbidden, find_forbidden};

/// Output is capped so a runaway loop in a template cannot produce megabytes of message text.
const MAX_OUTPUT: usize = 16 * 1024;
const MAX_SOURCE: usize = 8 * 1024;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Messages are plain text, not HTML: no auto-escaping (the admin pages escape on display).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_fuel(Some(50_000));
    // Filters whose output can be many times their input (padding widths, fill counts,
    // repeated replacements) are not offered; `join` is replaced by one that stops at the
    // output cap. See `template_limits` for the operators and statements.
    for filter in [
        "replace", "batch", "slice", "indent", "format", "tojson", "pprint",
    ] {
        env.remove_filter(filter);
    }
    env.add_filter("join", capped_join);
    env
}

fn capped_join(
    value: &minijinja::Value,
    joiner: Option<String>,
) -> Result<String, minijinja::Error> {
    let joiner = joiner.unwrap_or_default();
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.push_str(&joiner);
        }
        match item.as_str() {
            Some(s) => out.push_str(s),
            None => out.push_str(&item.to_string()),
        }
        if out.len() > MAX_OUTPUT {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("result longer than {MAX_OUTPUT} bytes"),
            ));
        }
    }
    Ok(out)
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
    #[error("{}", .0.describe(true))]
    Unsupported(Forbidden),
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
            TemplateError::Unsupported(f) => f.describe(false),
        }
    }
}

/// Checks syntax and that every variable is one of `known` (dotted names like `step1.contact_id`).
pub fn check(text: &str, known: &BTreeSet<String>) -> Result<(), TemplateError> {
    refuse_size_multipliers(text)?;
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

/// Before compiling: minijinja folds constants at compile time, so a template must be
/// refused before it is compiled, not only while it renders.
fn refuse_size_multipliers(text: &str) -> Result<(), TemplateError> {
    if text.len() > MAX_SOURCE {
        return Err(TemplateError::TooLong);
    }
    match find_forbidden(text) {
        Some(f) => Err(TemplateError::Unsupported(f)),
        None => Ok(()),
    }
}

/// Collects output and refuses to grow past `MAX_OUTPUT`: the render stops at the first write
/// over the cap, instead of finishing a huge result and checking its length afterwards.
struct CappedWriter {
    out: Vec<u8>,
    exceeded: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT {
            self.exceeded = true;
            return Err(std::io::Error::other("template output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders with the fuel limit of `env()` and output capped while it renders. Request
/// handlers use [`render_off_executor`].
pub fn render(text: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
    refuse_size_multipliers(text)?;
    let env = env();
    let tmpl = env
        .template_from_str(text)
        .map_err(|e| TemplateError::Syntax(describe(&e)))?;
    let mut writer = CappedWriter {
        out: Vec::new(),
        exceeded: false,
    };
    let rendered = tmpl.render_captured_to(ctx, &mut writer);
    if writer.exceeded {
        return Err(TemplateError::Render(format!(
            "result longer than {MAX_OUTPUT} bytes"
        )));
    }
    rendered.map_err(|e| match e.kind() {
        minijinja::ErrorKind::UndefinedError => TemplateError::Unknown(describe(&e)),
        _ => TemplateError::Render(describe(&e)),
    })?;
    // minijinja writes whole UTF-8 strings, so the bytes are valid text.
    String::from_utf8(writer.out)
        .map_err(|_| TemplateError::Render("result is not valid text".to_owned()))
}

/// [`render`] on a blocking thread, so a heavy template cannot stall the executor that also
/// serves webhooks and pages.
pub async fn render_off_executor(
    text: String,
    ctx: serde_json::Value,
) -> Result<String, TemplateError> {
    tokio::task::spawn_blocking(move || render(&text, &ctx))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
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
    fn the_memory_bomb_is_refused_before_compiling() {
        let bomb = r#"{{ "y" * 99999999 }}"#.repeat(50);
        let started = std::time::Instant::now();
        assert_eq!(
            check(&bomb, &known(&[])),
            Err(TemplateError::Unsupported(Forbidden::Multiplication))
        );
        assert_eq!(
            render(&bomb, &json!({})),
            Err(TemplateError::Unsupported(Forbidden::Multiplication))
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let doubling = "{% set s = 'y' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}";
        assert!(matches!(
            check(doubling, &known(&[])),
            Err(TemplateError::Unsupported(Forbidden::Statement("set")))
        ));
        for amplifier in [
            "{{ 'x'|indent(99999999) }}",
            "{{ range(10)|batch(99999999, 'x')|list }}",
            "{{ 'ab'|replace('a', 'aaaaaaaa')|replace('a', 'aaaaaaaa') }}",
        ] {
            assert!(render(amplifier, &json!({})).is_err(), "{amplifier}");
        }
    }

    #[test]
    fn output_is_capped_while_rendering() {
        let long = format!("{{{{ range(100000)|join('{}') }}}}", "y".repeat(100));
        let err = render(&long, &json!({})).expect_err("too long");
        assert!(
            matches!(&err, TemplateError::Render(m) if m.contains("longer than")),
            "{err:?}"
        );
        let loop_ = format!(
            "{{% for i in range(100000) %}}{}{{% endfor %}}",
            "y".repeat(10)
        );
        let err = render(&loop_, &json!({})).expect_err("too long");
        assert!(
            matches!(&err, TemplateError::Render(m) if m.contains("longer than")),
            "{err:?}"
        );
        let within = "y".repeat(MAX_SOURCE);
        assert_eq!(render(&within, &json!({})).map(|s| s.len()), Ok(MAX_SOURCE));
        assert_eq!(
            render(
                "{{ names|join(', ') }}",
                &json!({"names": ["Анна", "Борис"]})
            )
            .as_deref(),
            Ok("Анна, Борис")
        );
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
