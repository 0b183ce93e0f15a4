//! What can go wrong talking to RetailCRM API v5, classified the way the official clients do,
//! keeping RetailCRM's own words (`errorMsg` and `errors`) for the admin.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::upstream::{self, BodyError, Refused, Retry, UpstreamFailure};

/// `errorMsg` of an unknown or mistyped key (403, seen live on demo.retailcrm.ru).
pub const WRONG_API_KEY: &str = "Wrong \"apiKey\" value.";
/// `errorMsg` when no key reached the server.
pub const MISSING_API_KEY: &str = "\"apiKey\" is missing.";
/// `errorMsg` when the key lacks the scope (or store) the method needs.
pub const ACCESS_DENIED: &str = "Access denied.";
/// JSON form of "no such account" (real nginx usually answers an HTML page instead).
pub const ACCOUNT_DOES_NOT_EXIST: &str = "Account does not exist.";
/// `errorMsg` of a missing entity; the PHP client maps exactly this text to "not found".
pub const NOT_FOUND: &str = "Not found";
/// `errorMsg` of an unknown API path: a 404 that says nothing about the entity asked for.
pub const METHOD_NOT_FOUND: &str = "API method not found";

/// One entry of RetailCRM's `errors`, which arrives as an object (`{"field":"msg"}`) or as a
/// list (`["msg"]`); nested objects are flattened to dotted field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A failed RetailCRM call.
#[derive(Debug, thiserror::Error)]
pub enum RetailCrmError {
    /// The key is wrong or was not sent (403 `Wrong "apiKey" value.` / `"apiKey" is missing.`).
    #[error("RetailCRM rejected the API key: {message}")]
    InvalidKey { message: String },
    /// The key exists but may not call this method or store, or the plan has no API access.
    #[error("RetailCRM denied access: {message}")]
    AccessDenied { message: String },
    /// Nothing that speaks RetailCRM API answers at this address (an HTML page, `message`
    /// `None`; or `Account does not exist.`).
    #[error("no RetailCRM account at this address (HTTP {status}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    AccountNotFound {
        status: u16,
        message: Option<String>,
    },
    /// The entity does not exist (404 `Not found`).
    #[error("RetailCRM: {message}")]
    NotFound { message: String },
    /// The request was refused as malformed (400 and other 4xx): `errorMsg` plus field errors.
    #[error("RetailCRM: {message}{}", join_errors(errors))]
    Validation {
        status: u16,
        message: String,
        errors: Vec<FieldError>,
    },
    /// 503 or 429 still answered after the client's own retries.
    #[error("RetailCRM rate limit exceeded (HTTP {status})")]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// A 5xx other than 503.
    #[error("RetailCRM server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("RetailCRM did not answer in time")]
    Timeout,
    #[error("cannot reach RetailCRM: {0}")]
    Network(#[source] reqwest::Error),
    /// The outbound policy forbids calling this address.
    #[error("RetailCRM address refused: {0}")]
    Refused(Refused),
    /// An answer none of the above explains (unparseable JSON, unknown API path, …); `detail`
    /// says what kind of body came back (never the body itself, see `upstream::describe_body`).
    #[error("unexpected answer from RetailCRM (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
}

fn join_errors(errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(" — {}", parts.join("; "))
}

impl RetailCrmError {
    /// RetailCRM's own `errorMsg` when the answer carried one.
    pub fn upstream_message(&self) -> Option<&str> {
        match self {
            Self::InvalidKey { message }
            | Self::AccessDenied { message }
            | Self::NotFound { message }
            | Self::Validation { message, .. }
            | Self::Server { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Field errors of a validation failure (empty for other kinds).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::Validation { errors, .. } => errors,
            _ => &[],
        }
    }

    pub(crate) fn from_transport(error: reqwest::Error) -> Self {
        if let Some(refused) = upstream::refusal(&error) {
            Self::Refused(refused)
        } else if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Network(error.without_url())
        }
    }

    pub(crate) fn from_body(status: u16, error: BodyError) -> Self {
        match error {
            BodyError::Transport(e) => Self::from_transport(e),
            BodyError::TooLarge => Self::Unexpected {
                status,
                detail: error.to_string(),
            },
        }
    }

    /// Whether the answer's body was something other than RetailCRM's JSON (worth logging;
    /// the admin only sees the status and a short reason).
    pub(crate) fn is_unexpected_body(&self) -> bool {
        matches!(
            self,
            Self::Unexpected { .. } | Self::AccountNotFound { .. } | Self::Server { .. }
        )
    }

    /// Classifies a non-success answer from its status and body (JSON envelope or HTML page).
    pub(crate) fn from_answer(status: u16, body: &str) -> Self {
        if status == 503 || status == 429 {
            return Self::RateLimited {
                status,
                retry_after: None,
            };
        }
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("errorMsg"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if status >= 500 {
            return Self::Server {
                status,
                message: message
                    .map(|m| upstream::short_text(&m))
                    .unwrap_or_else(|| upstream::describe_body(body.as_bytes()).to_owned()),
            };
        }
        // Official GO client: any body starting with "<" means nginx answered for a missing
        // account; PHP: 405 text/html. A JSON API never answers HTML.
        if body.trim_start().starts_with('<') {
            return Self::AccountNotFound {
                status,
                message: None,
            };
        }
        let Some(value) = parsed else {
            return Self::Unexpected {
                status,
                detail: upstream::describe_body(body.as_bytes()).to_owned(),
            };
        };
        let errors = parse_field_errors(value.get("errors"));
        let message = message
            .map(|m| upstream::short_text(&m))
            .unwrap_or_else(|| format!("HTTP {status}"));
        match message.as_str() {
            WRONG_API_KEY | MISSING_API_KEY => return Self::InvalidKey { message },
            ACCESS_DENIED => return Self::AccessDenied { message },
            ACCOUNT_DOES_NOT_EXIST => {
                return Self::AccountNotFound {
                    status,
                    message: Some(message),
                };
            }
            NOT_FOUND => return Self::NotFound { message },
            METHOD_NOT_FOUND => {
                return Self::Unexpected {
                    status,
                    detail: message,
                };
            }
            _ => {}
        }
        match status {
            401 => Self::InvalidKey { message },
            403 => Self::AccessDenied { message },
            404 => Self::NotFound { message },
            400..=499 => Self::Validation {
                status,
                message,
                errors,
            },
            _ => Self::Unexpected {
                status,
                detail: format!("{message}{}", join_errors(&errors)),
            },
        }
    }
}

impl UpstreamFailure for RetailCrmError {
    fn retry(&self) -> Retry {
        match self {
            Self::RateLimited { retry_after, .. } => Retry::Transient {
                after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
            },
            Self::Server { .. } | Self::Timeout | Self::Network(_) => {
                Retry::Transient { after: None }
            }
            _ => Retry::Permanent,
        }
    }
}

/// Flattens `errors` (object, list, nested, or PHP's empty `[]`) into field/message pairs.
pub(crate) fn parse_field_errors(errors: Option<&Value>) -> Vec<FieldError> {
    // A hostile or broken server could send thousands; a form shows the first few.
    const MAX_ERRORS: usize = 20;
    let mut out = Vec::new();
    if let Some(value) = errors {
        flatten(None, value, &mut out);
    }
    out.truncate(MAX_ERRORS);
    for e in &mut out {
        e.message = upstream::short_text(&e.message);
    }
    out
}

fn flatten(field: Option<String>, value: &Value, out: &mut Vec<FieldError>) {
    match value {
        Value::Null => {}
        Value::String(message) => out.push(FieldError {
            field,
            message: message.clone(),
        }),
        Value::Object(map) => {
            for (key, inner) in map {
                let name = match &field {
                    Some(prefix) => format!("{prefix}.{key}"),
                    None => key.clone(),
                };
                flatten(Some(name), inner, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                flatten(field.clone(), item, out);
            }
        }
        other => out.push(FieldError {
            field,
            message: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_the_official_clients() {
        let wrong = RetailCrmError::from_answer(
            403,
            r#"{"success":false,"errorMsg":"Wrong \"apiKey\" value."}"#,
        );
        assert!(matches!(wrong, RetailCrmError::InvalidKey { .. }));
        assert_eq!(wrong.retry(), Retry::Permanent);

        let html = RetailCrmError::from_answer(405, "<!DOCTYPE html><html>…</html>");
        assert!(matches!(html, RetailCrmError::AccountNotFound { .. }));

        let html_gateway = RetailCrmError::from_answer(502, "<html>Bad Gateway</html>");
        assert!(matches!(
            html_gateway,
            RetailCrmError::Server { status: 502, .. }
        ));
        assert_eq!(html_gateway.retry(), Retry::Transient { after: None });

        let unknown_method = RetailCrmError::from_answer(
            404,
            r#"{"success":false,"errorMsg":"API method not found"}"#,
        );
        assert!(matches!(unknown_method, RetailCrmError::Unexpected { .. }));

        let plan = RetailCrmError::from_answer(
            403,
            r#"{"success":false,"errorMsg":"API is not available"}"#,
        );
        assert!(matches!(plan, RetailCrmError::AccessDenied { .. }));
    }

    #[test]
    fn keeps_field_errors_from_object_list_and_nesting() {
        let obj = RetailCrmError::from_answer(
            400,
            r#"{"success":false,"errorMsg":"Errors in the entity format","errors":{"customer":"Set one of the following fields: id, externalId"}}"#,
        );
        assert_eq!(
            obj.to_string(),
            "RetailCRM: Errors in the entity format — customer: Set one of the following fields: id, externalId"
        );

        let list = RetailCrmError::from_answer(
            400,
            r#"{"success":false,"errorMsg":"Validation error","errors":["first","second"]}"#,
        );
        assert_eq!(
            list.to_string(),
            "RetailCRM: Validation error — first; second"
        );

        let nested = parse_field_errors(Some(&serde_json::json!({
            "items": {"0": {"quantity": "must be positive"}}, "flag": true
        })));
        assert_eq!(nested.len(), 2);
        assert!(nested.contains(&FieldError {
            field: Some("items.0.quantity".into()),
            message: "must be positive".into()
        }));

        assert!(parse_field_errors(Some(&serde_json::json!([]))).is_empty());
    }

    #[test]
    fn rate_limit_is_transient_with_a_delay() {
        let e = RetailCrmError::from_answer(503, "<html>busy</html>");
        assert!(matches!(e, RetailCrmError::RateLimited { status: 503, .. }));
        assert!(matches!(e.retry(), Retry::Transient { after: Some(_) }));
    }
}
