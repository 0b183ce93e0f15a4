//! Approved WhatsApp templates as Meta defines them, and how it checks a template send against
//! its definition: the Cloud API fake and the 1msg.io fake (which passes `sendTemplate` on to
//! Meta) both use this.
//!
//! Meta's refusals, as integrators report them verbatim: a header text variable or body
//! variable count that does not match is `(#132000) Number of parameters does not match the
//! expected number of params` with details `header: …` / `body: number of localizable_params
//! (N) does not match the expected number of params (M)`; a media header without its file is
//! `(#132012) Parameter format does not match format in the created template`, details
//! `header: Format mismatch, expected IMAGE, received UNKNOWN`; a URL button with a variable
//! left out is `(#131008) Required parameter is missing`, details `buttons: Button at index 0
//! of type Url requires a parameter`.

use serde_json::{Value, json};

/// A template's header, as it is approved.
#[derive(Debug, Clone, Copy)]
pub enum Header<'a> {
    None,
    /// A text header; `{{1}}` in it is filled at send time.
    Text(&'a str),
    /// A media header: the file's link (or media id) is given at send time.
    Image,
    Document,
    Video,
}

/// What a send filled into the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentHeader {
    Text(String),
    /// `kind` is `image`, `document` or `video`; `link` the file's link (or media id).
    Media {
        kind: String,
        link: String,
    },
}

/// A template send that passed the checks: what it filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    pub header: Option<SentHeader>,
    pub body: Vec<String>,
    /// `(index, text)` of each URL button variable, as sent.
    pub buttons: Vec<(String, String)>,
}

/// Why Meta refused a template send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
    pub details: String,
}

/// The distinct `{{…}}` variables of a text, in first-use order.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for part in text.split("{{").skip(1) {
        if let Some((name, _)) = part.split_once("}}") {
            let name = name.trim().to_owned();
            if !name.is_empty() && !seen.contains(&name) {
                seen.push(name);
            }
        }
    }
    seen
}

fn examples(n: usize, what: &str) -> Vec<String> {
    (1..=n).map(|i| format!("{what} {i}")).collect()
}

/// The `components` Meta lists for an approved template: the header, the body with its
/// example, a footer and, when `url_buttons` (`(caption, address)`) are given, a quick reply
/// first and then those URL buttons (so their indexes start at 1, as Meta counts every
/// button).
pub fn components(body: &str, header: Header<'_>, url_buttons: &[(&str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    match header {
        Header::None => {}
        Header::Text(text) => {
            let mut h = json!({ "type": "HEADER", "format": "TEXT", "text": text });
            let n = placeholders(text).len();
            if n > 0 {
                h["example"] = json!({ "header_text": examples(n, "header") });
            }
            out.push(h);
        }
        Header::Image | Header::Document | Header::Video => {
            let format = match header {
                Header::Image => "IMAGE",
                Header::Document => "DOCUMENT",
                _ => "VIDEO",
            };
            out.push(json!({
                "type": "HEADER", "format": format,
                "example": { "header_handle": ["4::aW1hZ2UvanBlZw==:ARZ2x-example"] },
            }));
        }
    }
    let mut b = json!({ "type": "BODY", "text": body });
    let n = placeholders(body).len();
    if n > 0 {
        b["example"] = json!({ "body_text": [examples(n, "example")] });
    }
    out.push(b);
    out.push(json!({ "type": "FOOTER", "text": "Reply STOP to unsubscribe" }));
    if !url_buttons.is_empty() {
        let mut buttons = vec![json!({ "type": "QUICK_REPLY", "text": "OK" })];
        for (text, url) in url_buttons {
            let mut button = json!({ "type": "URL", "text": text, "url": url });
            if url.contains("{{") {
                button["example"] = json!([url.replace("{{1}}", "example")]);
            }
            buttons.push(button);
        }
        out.push(json!({ "type": "BUTTONS", "buttons": buttons }));
    }
    out
}

fn component<'a>(definition: &'a [Value], kind: &str) -> Option<&'a Value> {
    definition.iter().find(|c| {
        c["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

fn count_mismatch(part: &str, sent: usize, wanted: usize) -> Refusal {
    Refusal {
        code: 132000,
        message: "(#132000) Number of parameters does not match the expected number of params"
            .into(),
        details: format!(
            "{part}: number of localizable_params ({sent}) does not match the expected number of params ({wanted})"
        ),
    }
}

/// Checks a send's `components` against the template's `definition` as Meta does, answering
/// what was filled in.
pub fn check(definition: &[Value], sent: &[Value]) -> Result<Filled, Refusal> {
    fn sent_of<'a>(sent: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
        sent.iter().filter(move |c| c["type"] == kind)
    }
    let params = |c: &Value| c["parameters"].as_array().cloned().unwrap_or_default();
    let mut filled = Filled::default();

    // Header.
    let header_params: Vec<Value> = sent_of(sent, "header").flat_map(params).collect();
    let header = component(definition, "HEADER");
    let format = header
        .and_then(|h| h["format"].as_str())
        .unwrap_or("TEXT")
        .to_ascii_uppercase();
    if format == "TEXT" {
        let wanted = header
            .and_then(|h| h["text"].as_str())
            .map_or(0, |t| placeholders(t).len());
        let texts: Vec<String> = header_params
            .iter()
            .filter_map(|p| p["text"].as_str().map(str::to_owned))
            .collect();
        if header_params.len() != wanted || texts.len() != wanted {
            return Err(count_mismatch("header", header_params.len(), wanted));
        }
        filled.header = texts.into_iter().next().map(SentHeader::Text);
    } else {
        let kind = format.to_ascii_lowercase();
        let media = header_params.first().filter(|p| p["type"] == kind.as_str());
        let source = media.and_then(|p| {
            let object = &p[kind.as_str()];
            object["link"].as_str().or(object["id"].as_str())
        });
        match source {
            Some(link) if !link.is_empty() && header_params.len() == 1 => {
                filled.header = Some(SentHeader::Media {
                    kind,
                    link: link.to_owned(),
                });
            }
            _ => {
                let received = header_params
                    .first()
                    .and_then(|p| p["type"].as_str())
                    .filter(|t| ["image", "document", "video", "text"].contains(t))
                    .map_or("UNKNOWN".to_owned(), str::to_ascii_uppercase);
                return Err(Refusal {
                    code: 132012,
                    message:
                        "(#132012) Parameter format does not match format in the created template"
                            .into(),
                    details: format!(
                        "header: Format mismatch, expected {format}, received {received}"
                    ),
                });
            }
        }
    }

    // Body.
    let body_params: Vec<Value> = sent_of(sent, "body").flat_map(params).collect();
    let wanted = component(definition, "BODY")
        .and_then(|c| c["text"].as_str())
        .map_or(0, |b| placeholders(b).len());
    filled.body = body_params
        .iter()
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect();
    if filled.body.len() != wanted || body_params.len() != wanted {
        return Err(count_mismatch("body", body_params.len(), wanted));
    }

    // URL buttons with a variable, addressed by their index among all buttons.
    let buttons = component(definition, "BUTTONS")
        .and_then(|c| c["buttons"].as_array())
        .cloned()
        .unwrap_or_default();
    let index_of = |c: &Value| match &c["index"] {
        Value::String(s) => s.parse::<usize>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    for (i, b) in buttons.iter().enumerate() {
        let dynamic = b["type"] == "URL" && b["url"].as_str().is_some_and(|u| u.contains("{{"));
        if !dynamic {
            continue;
        }
        let text = sent_of(sent, "button")
            .filter(|c| c["sub_type"] == "url" && index_of(c) == Some(i))
            .flat_map(params)
            .find_map(|p| p["text"].as_str().map(str::to_owned));
        match text {
            Some(t) if !t.is_empty() => filled.buttons.push((i.to_string(), t)),
            _ => {
                return Err(Refusal {
                    code: 131008,
                    message: "(#131008) Required parameter is missing".into(),
                    details: format!(
                        "buttons: Button at index {i} of type Url requires a parameter"
                    ),
                });
            }
        }
    }
    // Unconfirmed: Meta's words for a button parameter the template has no place for.
    if let Some(extra) = sent_of(sent, "button").find(|c| {
        index_of(c).is_none_or(|i| !filled.buttons.iter().any(|(at, _)| *at == i.to_string()))
    }) {
        return Err(Refusal {
            code: 131009,
            message: "(#131009) Parameter value is not valid".into(),
            details: format!(
                "buttons: Button at index {} does not take a parameter",
                index_of(extra).map_or_else(|| "?".to_owned(), |i| i.to_string())
            ),
        });
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_header_and_a_url_button_are_checked() {
        let def = components(
            "{{1}}, заказ готов",
            Header::Image,
            &[("Отследить", "https://shop.example/t/{{1}}")],
        );
        let body = json!({"type": "body", "parameters": [{"type": "text", "text": "Анна"}]});
        let err = check(&def, std::slice::from_ref(&body)).expect_err("refused");
        assert_eq!(err.code, 132012);
        assert_eq!(
            err.details,
            "header: Format mismatch, expected IMAGE, received UNKNOWN"
        );
        let header = json!({"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/a.jpg"}}]});
        let err = check(&def, &[header.clone(), body.clone()]).expect_err("refused");
        assert_eq!(
            (err.code, err.details.as_str()),
            (
                131008,
                "buttons: Button at index 1 of type Url requires a parameter"
            )
        );
        let button = json!({"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "8061"}]});
        let ok = check(&def, &[header, body, button]).expect("accepted");
        assert_eq!(ok.buttons, vec![("1".to_string(), "8061".to_string())]);
    }

    #[test]
    fn a_text_header_variable_is_counted() {
        let def = components("Готово", Header::Text("Заказ {{1}}"), &[]);
        let err = check(&def, &[]).expect_err("refused");
        assert_eq!(
            (err.code, err.details.as_str()),
            (
                132000,
                "header: number of localizable_params (0) does not match the expected number of params (1)"
            )
        );
        let header = json!({"type": "header", "parameters": [{"type": "text", "text": "7146C"}]});
        assert_eq!(
            check(&def, &[header]).expect("accepted").header,
            Some(SentHeader::Text("7146C".into()))
        );
        // A header without variables takes none.
        let plain = components("Готово", Header::Text("Demo shop"), &[]);
        assert!(check(&plain, &[]).is_ok());
    }
}
