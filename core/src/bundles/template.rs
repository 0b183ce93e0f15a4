//! User templates ("Здравствуйте, {{ first_name }}!") rendered with minijinja.
//!
//! The environment has no loader, no filesystem, no env access; undefined variables are errors,
//! and every template is checked at save time against the variables the bundle offers, so a
//! typo is reported in the editor, not as a blank in a customer's message.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

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
                OUTPUT_CAP_HIT,
            ));
        }
    }
    Ok(out)
}

/// What `capped_join` says when it stops, so `render` can tell the cap from other failures.
const OUTPUT_CAP_HIT: &str = "output limit";

/// Why a template cannot be used, as data (the web app words it for the admin; `Display` is
/// English, for logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum TemplateError {
    #[error("template syntax, line {line}: {syntax}")]
    Syntax { line: usize, syntax: Syntax },
    #[error("unknown parameter {{{{ {name} }}}}")]
    Unknown { name: String },
    #[error("template, line {line}: {failure}")]
    Render { line: usize, failure: RenderFailure },
    #[error("template is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the filled-in template is longer than {max} bytes")]
    OutputTooLong { max: usize },
    /// A construct that could grow the output without bound (see `template_limits`).
    #[error("template uses {forbidden:?}, which templates do not offer")]
    Unsupported { forbidden: Forbidden },
}

/// What the parser tripped over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Syntax {
    /// `found` where the parser wanted `expected` (when it said).
    #[error("unexpected {found:?}, expected {expected:?}")]
    Unexpected {
        found: Token,
        expected: Option<Token>,
    },
    #[error("unexpected character")]
    UnexpectedCharacter,
    #[error("unterminated string")]
    UnterminatedString,
    #[error("unterminated comment")]
    UnterminatedComment,
    #[error("input after the expression")]
    TrailingInput,
    #[error("unknown statement {name}")]
    UnknownStatement { name: String },
    /// Anything else, in the template engine's own (English) words.
    #[error("{detail}")]
    Other { detail: String },
}

/// A piece of template syntax as the parser names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Token {
    /// The end of the template.
    End,
    VariableStart,
    VariableEnd,
    BlockStart,
    BlockEnd,
    Name,
    String,
    Number,
    Text,
    Expression,
    Keyword,
    /// An operator or bracket, e.g. `}`.
    Symbol(String),
    /// A phrase of the parser's this list does not know.
    Other(String),
}

impl Token {
    fn from_phrase(p: &str) -> Token {
        match p.trim() {
            "end of input" => Token::End,
            "start of variable block" => Token::VariableStart,
            "end of variable block" => Token::VariableEnd,
            "start of block" => Token::BlockStart,
            "end of block" => Token::BlockEnd,
            "identifier" => Token::Name,
            "string" => Token::String,
            "integer" | "float" => Token::Number,
            "template-data" => Token::Text,
            "expression" => Token::Expression,
            "keyword" | "statement" => Token::Keyword,
            other => match other.strip_prefix('`').and_then(|o| o.strip_suffix('`')) {
                Some(symbol) => Token::Symbol(symbol.to_string()),
                None => Token::Other(other.to_string()),
            },
        }
    }
}

/// What went wrong while filling a template in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RenderFailure {
    #[error("unknown filter")]
    UnknownFilter,
    #[error("unknown test")]
    UnknownTest,
    #[error("unknown function")]
    UnknownFunction,
    #[error("unknown method")]
    UnknownMethod,
    #[error("wrong arguments")]
    WrongArguments,
    /// The step limit ran out (a runaway loop).
    #[error("too much work")]
    TooMuchWork,
    /// E.g. adding text to a number; `detail` in the engine's own words.
    #[error("invalid operation: {detail}")]
    InvalidOperation { detail: String },
    #[error("{detail}")]
    Other { detail: String },
}

fn syntax(e: &minijinja::Error) -> TemplateError {
    let detail = e.detail().unwrap_or_default();
    let syntax = if let Some(rest) = detail.strip_prefix("unexpected ") {
        match rest {
            "character" => Syntax::UnexpectedCharacter,
            "end of string" => Syntax::UnterminatedString,
            "end of comment" => Syntax::UnterminatedComment,
            "input after expression" => Syntax::TrailingInput,
            _ => {
                let (found, expected) = match rest.split_once(", expected ") {
                    Some((f, x)) => (f, Some(Token::from_phrase(x))),
                    None => (rest, None),
                };
                Syntax::Unexpected {
                    found: Token::from_phrase(found),
                    expected,
                }
            }
        }
    } else if let Some(name) = detail.strip_prefix("unknown statement ") {
        Syntax::UnknownStatement {
            name: name.to_string(),
        }
    } else {
        Syntax::Other {
            detail: if detail.is_empty() {
                e.kind().to_string()
            } else {
                detail.to_string()
            },
        }
    };
    TemplateError::Syntax {
        line: e.line().unwrap_or(1),
        syntax,
    }
}

fn render_failure(e: &minijinja::Error) -> TemplateError {
    use minijinja::ErrorKind as K;
    let detail = || {
        e.detail()
            .map_or_else(|| e.kind().to_string(), str::to_string)
    };
    let failure = match e.kind() {
        K::SyntaxError => return syntax(e),
        K::UndefinedError => {
            return TemplateError::Unknown {
                name: e.detail().unwrap_or_default().to_string(),
            };
        }
        K::UnknownFilter => RenderFailure::UnknownFilter,
        K::UnknownTest => RenderFailure::UnknownTest,
        K::UnknownFunction => RenderFailure::UnknownFunction,
        K::UnknownMethod => RenderFailure::UnknownMethod,
        K::TooManyArguments | K::MissingArgument => RenderFailure::WrongArguments,
        K::OutOfFuel => RenderFailure::TooMuchWork,
        K::InvalidOperation => RenderFailure::InvalidOperation { detail: detail() },
        _ => RenderFailure::Other { detail: detail() },
    };
    TemplateError::Render {
        line: e.line().unwrap_or(1),
        failure,
    }
}

/// Checks syntax and that every variable is one of `known` (dotted names like `step1.contact_id`).
pub fn check(text: &str, known: &BTreeSet<String>) -> Result<(), TemplateError> {
    refuse_size_multipliers(text)?;
    let env = env();
    let tmpl = env.template_from_str(text).map_err(|e| syntax(&e))?;
    for var in tmpl.undeclared_variables(true) {
        let ok = known.contains(&var) || known.iter().any(|k| k.starts_with(&format!("{var}.")));
        if !ok {
            return Err(TemplateError::Unknown { name: var });
        }
    }
    Ok(())
}

/// The top-level names a template reads (`step1` for `step1.contact_id`); `None` when it does
/// not compile, so a caller cannot tell what it needs.
pub fn variables(text: &str) -> Option<BTreeSet<String>> {
    refuse_size_multipliers(text).ok()?;
    let env = env();
    let tmpl = env.template_from_str(text).ok()?;
    Some(
        tmpl.undeclared_variables(false)
            .into_iter()
            .map(|v| v.split('.').next().unwrap_or_default().to_string())
            .collect(),
    )
}

/// Before compiling: minijinja folds constants at compile time, so a template must be
/// refused before it is compiled, not only while it renders.
fn refuse_size_multipliers(text: &str) -> Result<(), TemplateError> {
    if text.len() > MAX_SOURCE {
        return Err(TemplateError::TooLong { max: MAX_SOURCE });
    }
    match find_forbidden(text) {
        Some(forbidden) => Err(TemplateError::Unsupported { forbidden }),
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
    let tmpl = env.template_from_str(text).map_err(|e| syntax(&e))?;
    let mut writer = CappedWriter {
        out: Vec::new(),
        exceeded: false,
    };
    let rendered = tmpl.render_captured_to(ctx, &mut writer);
    let capped = |e: &minijinja::Error| e.detail() == Some(OUTPUT_CAP_HIT);
    match rendered {
        _ if writer.exceeded => return Err(TemplateError::OutputTooLong { max: MAX_OUTPUT }),
        Err(e) if capped(&e) => return Err(TemplateError::OutputTooLong { max: MAX_OUTPUT }),
        Err(e) => return Err(render_failure(&e)),
        Ok(_) => {}
    }
    // minijinja writes whole UTF-8 strings, so the bytes are valid text.
    String::from_utf8(writer.out).map_err(|_| TemplateError::OutputTooLong { max: MAX_OUTPUT })
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
            Err(TemplateError::Unknown {
                name: "firstname".into()
            })
        );
        assert_eq!(
            check("Hi\n{{ first_name ", &k),
            Err(TemplateError::Syntax {
                line: 2,
                syntax: Syntax::Unexpected {
                    found: Token::End,
                    expected: Some(Token::VariableEnd)
                }
            })
        );
        assert!(matches!(
            check("{{ first_name }} {% if %}", &k),
            Err(TemplateError::Syntax {
                syntax: Syntax::Unexpected {
                    found: Token::BlockEnd,
                    ..
                },
                ..
            })
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
        // Whichever limit comes first: the step budget or the output cap.
        assert!(matches!(
            render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &json!({})
            ),
            Err(TemplateError::Render {
                failure: RenderFailure::TooMuchWork,
                ..
            } | TemplateError::OutputTooLong { .. })
        ));
    }

    #[test]
    fn the_memory_bomb_is_refused_before_compiling() {
        let bomb = r#"{{ "y" * 99999999 }}"#.repeat(50);
        let started = std::time::Instant::now();
        assert_eq!(
            check(&bomb, &known(&[])),
            Err(TemplateError::Unsupported {
                forbidden: Forbidden::Multiplication
            })
        );
        assert_eq!(
            render(&bomb, &json!({})),
            Err(TemplateError::Unsupported {
                forbidden: Forbidden::Multiplication
            })
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let doubling = "{% set s = 'y' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}";
        assert!(matches!(
            check(doubling, &known(&[])),
            Err(TemplateError::Unsupported {
                forbidden: Forbidden::Statement(s)
            }) if s == "set"
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
        assert_eq!(err, TemplateError::OutputTooLong { max: MAX_OUTPUT });
        let loop_ = format!(
            "{{% for i in range(100000) %}}{}{{% endfor %}}",
            "y".repeat(10)
        );
        let err = render(&loop_, &json!({})).expect_err("too long");
        assert_eq!(err, TemplateError::OutputTooLong { max: MAX_OUTPUT });
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
}
