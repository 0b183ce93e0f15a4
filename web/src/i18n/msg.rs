//! A message for the admin that may quote an upstream: our words in the admin's language, the
//! upstream's exactly as it wrote them, shown as a quotation (`<q class="upstream">` in pages,
//! «…» in plain text).

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msg {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Quote(String),
}

impl Msg {
    pub fn new(text: impl Into<String>) -> Msg {
        Msg {
            parts: vec![Part::Text(text.into())],
        }
    }

    /// Appends our own words.
    pub fn text(mut self, text: impl AsRef<str>) -> Msg {
        let text = text.as_ref();
        if !text.is_empty() {
            self.parts.push(Part::Text(text.to_string()));
        }
        self
    }

    /// Appends an upstream's words, verbatim.
    pub fn quote(mut self, text: impl AsRef<str>) -> Msg {
        let text = text.as_ref().trim();
        if !text.is_empty() {
            self.parts.push(Part::Quote(text.to_string()));
        }
        self
    }

    pub fn then(mut self, other: Msg) -> Msg {
        self.parts.extend(other.parts);
        self
    }

    /// The messages one after another, `sep` between them.
    pub fn join(items: impl IntoIterator<Item = Msg>, sep: &str) -> Msg {
        let mut out = Msg::default();
        for (i, m) in items.into_iter().enumerate() {
            if i > 0 {
                out = out.text(sep);
            }
            out = out.then(m);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Text(t) | Part::Quote(t) => t.is_empty(),
        })
    }

    /// For plain-text answers: quotes in «…».
    pub fn plain(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Quote(q) => format!("«{q}»"),
            })
            .collect()
    }

    /// At most `max` characters (quotes counted), cut with "…".
    pub fn excerpt(&self, max: usize) -> Msg {
        let mut left = max;
        let mut out = Msg::default();
        for p in &self.parts {
            let (text, quote) = match p {
                Part::Text(t) => (t, false),
                Part::Quote(q) => (q, true),
            };
            let n = text.chars().count();
            let piece = if n <= left {
                text.clone()
            } else {
                let head: String = text.chars().take(left).collect();
                format!("{}…", head.trim_end())
            };
            out.parts.push(if quote {
                Part::Quote(piece)
            } else {
                Part::Text(piece)
            });
            if n > left {
                break;
            }
            left -= n;
        }
        out
    }
}

fn escape(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for c in s.chars() {
        match c {
            '&' => f.write_str("&amp;")?,
            '<' => f.write_str("&lt;")?,
            '>' => f.write_str("&gt;")?,
            '"' => f.write_str("&#34;")?,
            '\'' => f.write_str("&#39;")?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// HTML, escaped: templates print it with `|safe`.
impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                Part::Text(t) => escape(t, f)?,
                Part::Quote(q) => {
                    f.write_str("<q class=\"upstream\">")?;
                    escape(q, f)?;
                    f.write_str("</q>")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        let m = Msg::new("ключ не принят: ").quote("Wrong \"apiKey\" <value>");
        assert_eq!(
            m.to_string(),
            "ключ не принят: <q class=\"upstream\">Wrong &#34;apiKey&#34; &lt;value&gt;</q>"
        );
        assert_eq!(m.plain(), "ключ не принят: «Wrong \"apiKey\" <value>»");
        assert_eq!(m.excerpt(18).plain(), "ключ не принят: «Wr…»");
    }
}
