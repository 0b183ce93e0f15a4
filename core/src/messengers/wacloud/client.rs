//! Graph API client of one WhatsApp business phone number.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::messengers::templates::{Filled, Listed, Template};
use crate::messengers::{ExchangeError, Reply};
use crate::upstream::{self, HttpClient, OutboundPolicy, Refused, Retry, UpstreamFailure};

/// The Graph API with the version the requests are written against.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com/v23.0";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Re-engagement: more than 24 hours since the customer last wrote.
pub const CODE_WINDOW_CLOSED: i64 = 131047;
/// Message undeliverable: the number has no WhatsApp (or an old client).
pub const CODE_NO_WHATSAPP: i64 = 131026;
/// Cloud API throughput reached.
pub const CODE_THROUGHPUT: i64 = 130429;

/// Codes that clear by themselves: throughput, pair rate, WABA and app rate limits, temporary
/// and unknown service errors (Meta: "retry").
const TRANSIENT_CODES: [i64; 8] = [130429, 131056, 80007, 4, 131000, 2, 131016, 1];

#[derive(Clone)]
pub struct CloudApi {
    pub(super) http: HttpClient,
    pub(super) base: Url,
    pub(super) phone_number_id: String,
    pub(super) token: String,
}

impl fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApi")
            .field("base", &self.base.as_str())
            .field("phone_number_id", &self.phone_number_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloudApiError {
    /// A Graph error envelope `{"error":{message, type, code, error_data{details}, fbtrace_id}}`.
    #[error("WhatsApp Cloud API error {code} (HTTP {status}): {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
        details: Option<String>,
        retry_after: Option<Duration>,
    },
    #[error("WhatsApp Cloud API is unreachable: {0}")]
    Network(#[source] reqwest::Error),
    #[error("WhatsApp Cloud API address refused: {0}")]
    Refused(Refused),
    #[error("WhatsApp Cloud API answered {what} with an unexpected body (HTTP {status}): {detail}")]
    BadResponse {
        what: &'static str,
        status: u16,
        detail: String,
    },
    #[error("WhatsApp Cloud API settings are invalid: {0}")]
    Config(String),
}

impl CloudApiError {
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Meta's words: `error_data.details` when given, else the message.
    pub fn upstream_error(&self) -> Option<&str> {
        match self {
            Self::Api {
                details, message, ..
            } => Some(details.as_deref().unwrap_or(message)),
            _ => None,
        }
    }
}

impl UpstreamFailure for CloudApiError {
    fn retry(&self) -> Retry {
        match self {
            Self::Api {
                code, retry_after, ..
            } if TRANSIENT_CODES.contains(code) => Retry::Transient {
                after: *retry_after,
            },
            Self::Api {
                status,
                retry_after,
                ..
            } if *status >= 500 || *status == 429 => Retry::Transient {
                after: *retry_after,
            },
            Self::Network(_) => Retry::Transient { after: None },
            Self::BadResponse { status, .. } if *status >= 500 => Retry::Transient { after: None },
            _ => Retry::Permanent,
        }
    }
}

/// `GET /{phone-number-id}`: what the live check shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PhoneNumber {
    pub id: String,
    #[serde(default)]
    pub display_phone_number: String,
    #[serde(default)]
    pub verified_name: String,
    #[serde(default)]
    pub quality_rating: Option<String>,
}

#[derive(Deserialize)]
struct SendReply {
    messages: Vec<SentId>,
}

#[derive(Deserialize)]
struct SentId {
    id: String,
}

/// One page of `message_templates`: Graph's `{data, paging{cursors{before, after}, next?}}`.
#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<Listed>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    /// Present only when there is a next page.
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

/// Pages of templates read at most: 20 × 100 is far beyond what a business account holds.
const MAX_TEMPLATE_PAGES: usize = 20;

impl CloudApi {
    pub fn new(graph_url: &str, phone_number_id: &str, token: &str) -> Result<Self, CloudApiError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            graph_url,
            phone_number_id,
            token,
        )
    }

    pub fn with_client(
        http: HttpClient,
        graph_url: &str,
        phone_number_id: &str,
        token: &str,
    ) -> Result<Self, CloudApiError> {
        let base = http
            .policy()
            .parse_base(graph_url)
            .map_err(CloudApiError::Refused)?;
        let phone_number_id = phone_number_id.trim();
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CloudApiError::Config(
                "the phone number id is digits, e.g. 106540352242922".into(),
            ));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(CloudApiError::Config("the access token is empty".into()));
        }
        Ok(Self {
            http,
            base,
            phone_number_id: phone_number_id.to_owned(),
            token: token.to_owned(),
        })
    }

    /// The live check: the number exists and the token may read it.
    pub async fn phone_number(&self) -> Result<PhoneNumber, CloudApiError> {
        let id = self.phone_number_id.clone();
        let reply = self
            .call(
                Method::GET,
                &[&id],
                &[(
                    "fields",
                    "id,display_phone_number,verified_name,quality_rating",
                )],
                None,
            )
            .await?;
        decode(reply, "the phone number")
    }

    /// Free text; answers the `wamid`. `to` is international digits.
    pub async fn send_text(&self, to: &str, text: &str) -> Result<String, CloudApiError> {
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "preview_url": false, "body": text },
        });
        self.send(&body).await
    }

    /// An approved template with its header value, body variables and URL button variables.
    pub async fn send_template(
        &self,
        to: &str,
        name: &str,
        language: &str,
        values: &Filled,
    ) -> Result<String, CloudApiError> {
        let mut template = json!({
            "name": name,
            "language": { "policy": "deterministic", "code": language },
        });
        if let Some(components) = values.components() {
            template["components"] = components;
        }
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "template",
            "template": template,
        });
        self.send(&body).await
    }

    pub(super) async fn send(&self, body: &Value) -> Result<String, CloudApiError> {
        let id = self.phone_number_id.clone();
        let reply = self
            .call(Method::POST, &[&id, "messages"], &[], Some(body))
            .await?;
        let status = reply.status.as_u16();
        let parsed: SendReply = decode(reply, "the message")?;
        parsed
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or(CloudApiError::BadResponse {
                what: "the message",
                status,
                detail: "no message id".into(),
            })
    }

    /// The business account's approved templates (`GET /{waba-id}/message_templates`).
    pub async fn templates(&self, waba_id: &str) -> Result<Vec<Template>, CloudApiError> {
        let waba_id = waba_id.trim();
        if waba_id.is_empty() || !waba_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CloudApiError::Config(
                "the WhatsApp Business Account id is digits".into(),
            ));
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let mut query = vec![
                ("fields", "name,language,status,category,components"),
                ("limit", "100"),
            ];
            if let Some(a) = &after {
                query.push(("after", a));
            }
            let reply = self
                .call(Method::GET, &[waba_id, "message_templates"], &query, None)
                .await?;
            let page: TemplatePage = decode(reply, "the templates")?;
            out.extend(page.data.into_iter().filter_map(Listed::approved));
            after = page
                .paging
                .filter(|p| p.next.is_some())
                .and_then(|p| p.cursors)
                .and_then(|c| c.after);
            if after.is_none() {
                break;
            }
        }
        Ok(out)
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for s in segments {
            path.push('/');
            path.push_str(s);
        }
        url.set_path(&path);
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    pub(super) async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, CloudApiError> {
        let mut request = self
            .http
            .request(method, self.url(segments, query))
            .map_err(CloudApiError::Refused)?
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.exchange(request).await
    }

    /// A POST of a multipart/form-data body (a media upload).
    pub(super) async fn call_multipart(
        &self,
        segments: &[&str],
        form: crate::messengers::multipart::Multipart,
    ) -> Result<Reply, CloudApiError> {
        let (content_type, body) = form.finish();
        let request = self
            .http
            .request(Method::POST, self.url(segments, &[]))
            .map_err(CloudApiError::Refused)?
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.exchange(request).await
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, CloudApiError> {
        crate::messengers::exchange(request, "WhatsApp Cloud API", &[&self.token], false)
            .await
            .map_err(|e| match e {
                ExchangeError::Network(e) => network(e),
                too_large @ ExchangeError::TooLarge { status } => CloudApiError::BadResponse {
                    what: "a request",
                    status,
                    detail: too_large.to_string(),
                },
            })
    }
}

pub(super) fn network(e: reqwest::Error) -> CloudApiError {
    match upstream::refusal(&e) {
        Some(refused) => CloudApiError::Refused(refused),
        None => CloudApiError::Network(e.without_url()),
    }
}

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    reply: Reply,
    what: &'static str,
) -> Result<T, CloudApiError> {
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(&reply.body) {
        return Err(CloudApiError::Api {
            status: reply.status.as_u16(),
            code: error.code,
            message: upstream::short_text(&error.message),
            details: error
                .error_data
                .and_then(|d| d.details)
                .map(|d| upstream::short_text(&d)),
            retry_after: reply.retry_after,
        });
    }
    let status = reply.status.as_u16();
    if !reply.status.is_success() {
        return Err(CloudApiError::BadResponse {
            what,
            status,
            detail: upstream::describe_body(&reply.body).to_owned(),
        });
    }
    serde_json::from_slice(&reply.body).map_err(|e| {
        tracing::warn!(error = %e, what, "Cloud API answer does not match the API");
        CloudApiError::BadResponse {
            what,
            status,
            detail: upstream::describe_body(&reply.body).to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn graph_errors_keep_code_and_details() {
        let e = decode::<Value>(
            reply(
                400,
                r#"{"error":{"message":"(#131026) Message Undeliverable.","type":"OAuthException","code":131026,"error_data":{"messaging_product":"whatsapp","details":"Message Undeliverable."},"fbtrace_id":"A1"}}"#,
            ),
            "x",
        )
        .err();
        assert_eq!(
            e.as_ref().and_then(CloudApiError::code),
            Some(CODE_NO_WHATSAPP)
        );
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Permanent));
        // Meta answers its throughput limit with HTTP 400: the code makes it transient.
        let e = decode::<Value>(
            reply(400, r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A2"}}"#),
            "x",
        )
        .err();
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Transient { after: None }));
        // A plain HTTP 429 (any code) is retried too.
        let e = decode::<Value>(
            reply(429, r#"{"error":{"message":"Too many requests","type":"OAuthException","code":0,"fbtrace_id":"A3"}}"#),
            "x",
        )
        .err();
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Transient { after: None }));
        let e = decode::<Value>(reply(502, "<html></html>"), "x").err();
        assert_eq!(e.map(|e| e.retry()), Some(Retry::Transient { after: None }));
    }

    #[test]
    fn urls_are_graph_paths() {
        let api = CloudApi::new("https://graph.facebook.com/v23.0/", "1065", "t")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            api.url(&["1065", "messages"], &[]).as_str(),
            "https://graph.facebook.com/v23.0/1065/messages"
        );
        assert!(matches!(
            CloudApi::new("https://graph.facebook.com/v23.0", "abc", "t"),
            Err(CloudApiError::Config(_))
        ));
    }
}
