//! What a message template may not contain, checked on the source before minijinja compiles
//! it.
//!
//! Output is capped while rendering, but memory can be exhausted before anything is written:
//! minijinja folds constant expressions at compile time (`{{ "y" * 99999999 }}` is a 100 MB
//! constant, once per occurrence, already during the save check), and `set` in a loop can
//! double a string on every pass. A message needs neither, so the constructs that multiply
//! sizes are refused outright: the `*` and `**` operators and the `set`, `macro`, `call`,
//! `filter`, `include`, `import`, `from` and `extends` statements. Filters that multiply sizes
//! are removed from the environment (see `template::env`).

/// A construct the template language of bundles does not offer (the web app words it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "construct", content = "name", rename_all = "snake_case")]
pub enum Forbidden {
    /// `*` or `**`.
    Multiplication,
    /// `{% set %}`, `{% macro %}`, …
    Statement(String),
}

const STATEMENTS: [&str; 8] = [
    "set", "macro", "call", "filter", "include", "import", "from", "extends",
];

/// The first forbidden construct in `text`, if any. Text outside tags and string literals
/// inside tags are not looked at.
pub fn find_forbidden(text: &str) -> Option<Forbidden> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'{', b'#') => i = find(text, i + 2, "#}").map_or(bytes.len(), |end| end + 2),
            (b'{', b'{') => {
                let (body, end) = tag_body(text, i + 2, b'}');
                if has_multiplication(body) {
                    return Some(Forbidden::Multiplication);
                }
                i = end;
            }
            (b'{', b'%') => {
                let (body, end) = tag_body(text, i + 2, b'%');
                let word = first_word(body);
                if let Some(s) = STATEMENTS.iter().find(|s| **s == word) {
                    return Some(Forbidden::Statement((*s).to_owned()));
                }
                if has_multiplication(body) {
                    return Some(Forbidden::Multiplication);
                }
                i = if word == "raw" {
                    end_of_raw(text, end)
                } else {
                    end
                };
            }
            _ => i += 1,
        }
    }
    None
}

fn find(text: &str, from: usize, needle: &str) -> Option<usize> {
    text.get(from..)?.find(needle).map(|p| p + from)
}

/// The inside of a tag starting at `start` (after `{{` or `{%`) up to its closing `}}` / `%}`
/// outside string literals, and the index after the tag. An unclosed tag runs to the end
/// (minijinja then reports the syntax error).
fn tag_body(text: &str, start: usize, close: u8) -> (&str, usize) {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'\'' {
                    quote = Some(b);
                } else if b == close && bytes.get(i + 1) == Some(&b'}') {
                    return (&text[start..i], i + 2);
                }
            }
        }
        i += 1;
    }
    (&text[start..], bytes.len())
}

/// `*` outside string literals.
fn has_multiplication(body: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in body.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '*' => return true,
                _ => {}
            },
        }
    }
    false
}

fn first_word(body: &str) -> &str {
    let body = body.trim_start_matches(['-', '+']).trim_start();
    let end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    &body[..end]
}

/// After `{% raw %}`: the index after the matching `{% endraw %}` (its content is text).
fn end_of_raw(text: &str, from: usize) -> usize {
    let mut i = from;
    while let Some(open) = find(text, i, "{%") {
        let (body, end) = tag_body(text, open + 2, b'%');
        if first_word(body) == "endraw" {
            return end;
        }
        i = open + 2;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_message_templates_pass() {
        for ok in [
            "Здравствуйте, {{ first_name }}! Заказ №{{ number }}",
            "{% if total > 1000 %}Скидка{% else %}{{ total - 10 }}{% endif %}",
            "{% for i in items %}{{ i.name }} × {{ i.quantity }}{% endfor %}",
            "{{ \"5 * 5\" }} and {{ '*' }}",
            "{# a comment with * and {% set %} #}text * text",
            "{% raw %}{{ a * b }}{% set x = 1 %}{% endraw %}{{ name|upper }}",
            "{{- name -}} {%- if x -%}y{%- endif -%}",
            "{{ \"quote \\\" * inside\" }}",
        ] {
            assert_eq!(find_forbidden(ok), None, "{ok}");
        }
    }

    #[test]
    fn size_multipliers_are_refused() {
        for (bad, what) in [
            (r#"{{ "y" * 99999999 }}"#, Forbidden::Multiplication),
            ("{{ 9 ** 9 }}", Forbidden::Multiplication),
            (
                "{% if ('y' * 9)|length %}{% endif %}",
                Forbidden::Multiplication,
            ),
            ("{% set x = 'y' %}", Forbidden::Statement("set".into())),
            ("{%- set x = 'y' -%}", Forbidden::Statement("set".into())),
            (
                "{% macro m() %}x{% endmacro %}",
                Forbidden::Statement("macro".into()),
            ),
            (
                "{% filter upper %}x{% endfilter %}",
                Forbidden::Statement("filter".into()),
            ),
            (
                "{% raw %}x{% endraw %}{{ a * 2 }}",
                Forbidden::Multiplication,
            ),
        ] {
            assert_eq!(find_forbidden(bad), Some(what), "{bad}");
        }
    }
}
