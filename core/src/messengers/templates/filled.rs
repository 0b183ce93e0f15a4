//! A template's values at send time, and the `components` both official routes take them as
//! (the Cloud API's `template.components`, 1msg.io's `sendTemplate` `params`, which is the
//! same list: "never a list of strings").

use serde_json::{Value, json};

use super::shape::HeaderNeed;

/// The header's value: its `{{1}}` or the link of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Text(String),
    /// `kind` is a media header ([`HeaderNeed::media_type`] is `Some`).
    Media {
        kind: HeaderNeed,
        link: String,
    },
}

/// Everything a template send fills in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    pub header: Option<HeaderValue>,
    /// The body variables, in order.
    pub body: Vec<String>,
    /// Each URL button's index among all buttons and its variable.
    pub buttons: Vec<(usize, String)>,
}

impl Filled {
    /// The components in the order Meta lists them (header, body, buttons), or `None` for a
    /// template that takes no values.
    pub(crate) fn components(&self) -> Option<Value> {
        let mut out = Vec::new();
        match &self.header {
            Some(HeaderValue::Text(text)) => out.push(json!({
                "type": "header",
                "parameters": [{ "type": "text", "text": text }],
            })),
            Some(HeaderValue::Media { kind, link }) => {
                if let Some(t) = kind.media_type() {
                    let mut param = json!({ "type": t });
                    param[t] = json!({ "link": link });
                    out.push(json!({ "type": "header", "parameters": [param] }));
                }
            }
            None => {}
        }
        if !self.body.is_empty() {
            let parameters: Vec<Value> = self
                .body
                .iter()
                .map(|p| json!({ "type": "text", "text": p }))
                .collect();
            out.push(json!({ "type": "body", "parameters": parameters }));
        }
        for (index, text) in &self.buttons {
            // `index` is a string in Meta's shape ("0"–"9").
            out.push(json!({
                "type": "button",
                "sub_type": "url",
                "index": index.to_string(),
                "parameters": [{ "type": "text", "text": text }],
            }));
        }
        (!out.is_empty()).then_some(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_in_meta_shape() {
        let f = Filled {
            header: Some(HeaderValue::Media {
                kind: HeaderNeed::Image,
                link: "https://shop.example/a.jpg".into(),
            }),
            body: vec!["Анна".into()],
            buttons: vec![(1, "8061".into())],
        };
        assert_eq!(
            f.components(),
            Some(json!([
                {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://shop.example/a.jpg"}}]},
                {"type": "body", "parameters": [{"type": "text", "text": "Анна"}]},
                {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "8061"}]},
            ]))
        );
        let text = Filled {
            header: Some(HeaderValue::Text("7146C".into())),
            ..Filled::default()
        };
        assert_eq!(
            text.components(),
            Some(json!([{"type": "header", "parameters": [{"type": "text", "text": "7146C"}]}]))
        );
        assert_eq!(Filled::default().components(), None);
    }
}
