//! Why something did not work, as data: what the engine stores for a failed step or run, what a
//! provider check records. Core never words these for the admin; the web app renders each in
//! the admin's language. An upstream's own message travels verbatim in `message` fields, to be
//! shown as a quote.
//!
//! Stored reasons are JSON. Rows written before reasons were typed hold plain text; reading
//! one gives [`Stored::Text`], which the web shows as it is.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use validator::{ValidationError, ValidationErrors};

use crate::bundles::template::TemplateError;
use crate::messengers::chatapi::ChatApiError;
use crate::messengers::greenapi::GreenApiError;
use crate::messengers::phone::{PhoneError, PhoneProblem};
use crate::messengers::telegram::TelegramError;
use crate::messengers::wacloud::CloudApiError;
use crate::providers::ProviderKind;
use crate::retailcrm::{DomainError, MgError, RetailCrmError};

/// Which upstream answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Retailcrm,
    /// RetailCRM's chat transport (MG).
    RetailcrmChats,
    Chatapi,
    Telegram,
    Greenapi,
    /// Meta's WhatsApp Cloud API.
    Wacloud,
}

/// What an upstream answered, or that it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Upstream {
    /// The key or token was refused.
    Credentials {
        message: String,
    },
    /// The key works but may not do this (a scope, a store, a plan without API access).
    AccessDenied {
        message: String,
    },
    /// Nothing that speaks the API answers at this address (`message`: its own words, if any).
    NoAccount {
        status: u16,
        message: Option<String>,
    },
    /// The entity asked for does not exist.
    NotFound {
        message: String,
    },
    /// The request was refused (validation, an unknown chat, a message not sent).
    Refused {
        status: Option<u16>,
        message: String,
        /// Per-field details the upstream added (`field: message`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        details: Vec<String>,
    },
    /// Still rate-limited after the client's own retries.
    RateLimited,
    /// Not called: the outbound policy does not call this address (private, not https, …).
    Blocked {
        refused: crate::upstream::Refused,
    },
    Server {
        status: u16,
        message: String,
    },
    Timeout,
    /// No connection (DNS, refused, TLS); `detail` is the HTTP library's account of it.
    Unreachable {
        detail: String,
    },
    /// An answer that is not the API's; `detail` is what came back (or what could not be read).
    Unexpected {
        status: Option<u16>,
        detail: String,
    },
    /// The WhatsApp instance's subscription ran out.
    NotPaid {
        message: String,
    },
    /// The WhatsApp instance cannot send yet; `status` as the gateway names it.
    NotReady {
        status: String,
    },
    /// Green-API: the WhatsApp account is not `authorized`; `state` in Green-API's words.
    AccountState {
        state: String,
    },
    /// The plan's limit was reached (Green-API 466); `message` is the upstream's.
    QuotaExceeded {
        message: String,
    },
    /// The recipient has no WhatsApp account (Green-API `noAccount`, Cloud API 131026).
    NoWhatsapp {
        message: String,
    },
    /// Our stored settings cannot make a client (a malformed base URL or token).
    BadSettings {
        detail: String,
    },
}

/// A failure an upstream client reports, with the service it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFailure {
    pub service: Service,
    #[serde(flatten)]
    pub failure: Upstream,
}

/// Why a run, one of its steps, or the dispatch of an event failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    Upstream(ServiceFailure),
    /// A parameter resolved to nothing.
    EmptyParam {
        param: String,
    },
    /// A parameter that must be an https address (a template header's file) is not.
    NotHttpsLink {
        param: String,
        value: String,
    },
    /// A parameter that must be a number is not.
    NotANumber {
        param: String,
        value: String,
    },
    NotAPhone {
        input: String,
        problem: PhoneProblem,
    },
    /// The event has no such field (the bundle changed after the event arrived).
    MissingEventField {
        field: String,
    },
    /// An earlier step has no such output.
    MissingOutput {
        step: usize,
        field: String,
    },
    Template {
        error: TemplateError,
    },
    /// The target provider has no such action.
    NoSuchAction {
        kind: ProviderKind,
        action: String,
    },
    /// The provider's stored secrets cannot be decrypted or read.
    SecretsUnreadable {
        provider: String,
    },
    /// The provider's settings are of another kind than its secrets.
    SettingsMismatch {
        provider: String,
    },
    /// The provider the run or event needs was deleted.
    ProviderGone,
    /// The provider's stored settings cannot be read.
    ProviderUnreadable,
    /// RetailCRM chats were never registered for this provider.
    ChatsNotRegistered,
    /// A worker stopped while this message was being sent; it may have been delivered.
    InterruptedSend,
    /// The run's stored bundle definition cannot be read.
    DefinitionUnreadable {
        detail: String,
    },
    /// A stored webhook delivery cannot be read.
    PayloadUnreadable {
        detail: String,
    },
    UnknownInboxKind {
        kind: String,
    },
    /// The provider's stored RetailCRM address is not usable.
    ProviderAddress {
        error: DomainError,
    },
    /// The database failed (retried).
    Database {
        detail: String,
    },
    /// Another run is creating the same contact right now (retried, then it finds it).
    ContactBeingCreated,
    /// RetailCRM does not show the trigger's order to the provider's key, which reaches one
    /// store (`site`) only: an order of another store (or one deleted since). The event is
    /// skipped, not failed, and never retried. `message` is RetailCRM's own answer.
    OtherStore {
        site: String,
        message: String,
    },
    /// An operator's reply names a customer no messenger conversation of ours was posted
    /// into RetailCRM's chats for.
    ReplyNoRoute,
    /// An operator's reply of a kind the bridge does not deliver (files, products, …).
    ReplyUnsupported {
        kind: String,
    },
    /// Official WhatsApp: more than 24 hours since the customer last wrote, so free text is
    /// refused (only approved templates may start a conversation again).
    ReplyWindowClosed {
        last_customer_message: String,
    },
    /// A customer's file whose source the bridge cannot fetch: the messenger connection it
    /// came through is gone, or is of a kind that hands out no files (`kind`).
    MediaUnavailable {
        kind: String,
    },
    /// The trigger's extended body names the order's store, `order_site`, and it is not the
    /// provider's (`site`): skipped like `OtherStore`, without asking RetailCRM.
    OtherStoreInTrigger {
        site: String,
        order_site: String,
    },
}

/// Why a form field cannot be accepted; the web app words it next to the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum FieldProblem {
    /// Nothing entered.
    Required,
    /// Too short or too long, in characters.
    Length { min: Option<u64>, max: Option<u64> },
    /// Must equal another field (`other`), e.g. the repeated password.
    MustMatch { other: String },
    /// A rule of the form the web app has no words for (`code` is the validator's).
    Invalid { code: String },
    /// Not a RetailCRM account address.
    Domain { error: DomainError },
    /// Nothing at this address answers as RetailCRM.
    NotRetailcrm { failure: Upstream },
    /// The key may not use the API (a plan without API access, or the key's own limits).
    ApiUnavailable { message: String },
    /// The key lacks scopes the bundles need.
    MissingScopes { scopes: Vec<String> },
    /// The key reaches every store (`sites` empty) or several.
    NotOneStore { sites: Vec<String> },
    /// RetailCRM refused to connect our chat transport ("Chats" not activated for the key).
    ChatsUnavailable { failure: ServiceFailure },
    /// The upstream refused or failed.
    Upstream { failure: ServiceFailure },
    /// The outbound policy does not call this address (private, not https, …).
    Refused { refused: crate::upstream::Refused },
    /// The address changed and the stored secret is only sent where it was entered: type it
    /// again.
    RetypeSecret,
}

impl From<&ValidationError> for FieldProblem {
    fn from(e: &ValidationError) -> Self {
        let number = |k: &str| e.params.get(k).and_then(serde_json::Value::as_u64);
        match e.code.as_ref() {
            "length" => FieldProblem::Length {
                min: number("min"),
                max: number("max"),
            },
            "required" => FieldProblem::Required,
            "must_match" => FieldProblem::MustMatch {
                other: e
                    .params
                    .get("other")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
            code => FieldProblem::Invalid {
                code: code.to_string(),
            },
        }
    }
}

/// Each failed field of a `validator` check, with its first problem, in field order.
pub fn field_problems(errors: &ValidationErrors) -> Vec<(String, FieldProblem)> {
    let mut out: Vec<(String, FieldProblem)> = errors
        .field_errors()
        .into_iter()
        .filter_map(|(field, list)| list.first().map(|e| (field.to_string(), e.into())))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl Reason {
    /// The JSON kept in an `error` column.
    pub fn to_stored(&self) -> String {
        stored(self)
    }
}

impl std::fmt::Display for Reason {
    /// English, for logs; the admin reads the web app's rendering.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_stored())
    }
}

/// The JSON of a reason for a text column.
pub fn stored<T: Serialize>(reason: &T) -> String {
    // Serialising plain enums of strings and numbers cannot fail.
    serde_json::to_string(reason).unwrap_or_default()
}

/// A reason read back from a text column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<T> {
    Typed(T),
    /// Written before reasons were typed (or by something that stores text).
    Text(String),
}

pub fn read_stored<T: DeserializeOwned>(text: &str) -> Stored<T> {
    match serde_json::from_str(text) {
        Ok(t) => Stored::Typed(t),
        Err(_) => Stored::Text(text.to_string()),
    }
}

/// An upstream client error as data.
pub trait Explain {
    fn explain(&self) -> ServiceFailure;
}

fn failure(service: Service, failure: Upstream) -> ServiceFailure {
    ServiceFailure { service, failure }
}

impl Explain for RetailCrmError {
    fn explain(&self) -> ServiceFailure {
        use RetailCrmError as E;
        let f = match self {
            E::InvalidKey { message } => Upstream::Credentials {
                message: message.clone(),
            },
            E::AccessDenied { message } => Upstream::AccessDenied {
                message: message.clone(),
            },
            E::AccountNotFound { status, message } => Upstream::NoAccount {
                status: *status,
                message: message.clone(),
            },
            E::NotFound { message } => Upstream::NotFound {
                message: message.clone(),
            },
            E::Validation {
                status,
                message,
                errors,
            } => Upstream::Refused {
                status: Some(*status),
                message: message.clone(),
                details: errors.iter().map(ToString::to_string).collect(),
            },
            E::RateLimited { .. } => Upstream::RateLimited,
            E::Server { status, message } => Upstream::Server {
                status: *status,
                message: message.clone(),
            },
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            E::Timeout => Upstream::Timeout,
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::Unexpected { status, detail } => Upstream::Unexpected {
                status: (*status != 0).then_some(*status),
                detail: detail.clone(),
            },
        };
        failure(Service::Retailcrm, f)
    }
}

impl Explain for MgError {
    fn explain(&self) -> ServiceFailure {
        use MgError as E;
        let f = match self {
            E::Unauthorized { errors, .. } => Upstream::Credentials {
                message: errors.join("; "),
            },
            E::Rejected { status, errors } => Upstream::Refused {
                status: Some(*status),
                message: errors.join("; "),
                details: Vec::new(),
            },
            E::RateLimited { .. } => Upstream::RateLimited,
            E::Server { status, errors } => Upstream::Server {
                status: *status,
                message: errors.join("; "),
            },
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            E::Timeout => Upstream::Timeout,
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::Unexpected { status, detail } => Upstream::Unexpected {
                status: (*status != 0).then_some(*status),
                detail: detail.clone(),
            },
        };
        failure(Service::RetailcrmChats, f)
    }
}

impl Explain for ChatApiError {
    fn explain(&self) -> ServiceFailure {
        use ChatApiError as E;
        let f = match self {
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            E::Unauthorized { message, .. } => Upstream::Credentials {
                message: message.clone(),
            },
            E::NotPaid { message } => Upstream::NotPaid {
                message: message.clone(),
            },
            E::Rejected { message, .. } => Upstream::Refused {
                status: None,
                message: message.clone(),
                details: Vec::new(),
            },
            E::Http {
                status, message, ..
            } => http_answer(*status, message),
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::BadResponse { detail, .. } => Upstream::Unexpected {
                status: None,
                detail: detail.clone(),
            },
            E::NotReady { status, .. } => Upstream::NotReady {
                status: status.clone(),
            },
            E::Config(detail) => Upstream::BadSettings {
                detail: detail.clone(),
            },
        };
        failure(Service::Chatapi, f)
    }
}

impl Explain for TelegramError {
    fn explain(&self) -> ServiceFailure {
        use TelegramError as E;
        let f = match self {
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            // A wrong token is 401 "Unauthorized", a malformed one 404 "Not Found".
            E::Api {
                code: 401 | 404,
                description,
                ..
            } => Upstream::Credentials {
                message: description.clone(),
            },
            E::Api { code: 429, .. } => Upstream::RateLimited,
            E::Api {
                code, description, ..
            } if *code >= 500 => Upstream::Server {
                status: *code,
                message: description.clone(),
            },
            E::Api {
                code, description, ..
            } => Upstream::Refused {
                status: Some(*code),
                message: description.clone(),
                details: Vec::new(),
            },
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::BadResponse { status, detail } => Upstream::Unexpected {
                status: Some(*status),
                detail: detail.clone(),
            },
            E::Config(detail) => Upstream::BadSettings {
                detail: detail.clone(),
            },
        };
        failure(Service::Telegram, f)
    }
}

impl Explain for GreenApiError {
    fn explain(&self) -> ServiceFailure {
        use GreenApiError as E;
        let f = match self {
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            E::Unauthorized { message, .. } => Upstream::Credentials {
                message: message.clone(),
            },
            E::NotAuthorized { state } => Upstream::AccountState {
                state: state.clone(),
            },
            E::Quota { message } => Upstream::QuotaExceeded {
                message: message.clone(),
            },
            E::Rejected { op } => Upstream::Refused {
                status: None,
                message: (*op).to_owned(),
                details: Vec::new(),
            },
            E::Http {
                status, message, ..
            } => http_answer(*status, message),
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::BadResponse { detail, .. } => Upstream::Unexpected {
                status: None,
                detail: detail.clone(),
            },
            E::Config(detail) => Upstream::BadSettings {
                detail: detail.clone(),
            },
        };
        failure(Service::Greenapi, f)
    }
}

impl Explain for CloudApiError {
    fn explain(&self) -> ServiceFailure {
        use crate::messengers::wacloud::client::{CODE_NO_WHATSAPP, CODE_THROUGHPUT};
        use CloudApiError as E;
        let f = match self {
            E::Refused(refused) => Upstream::Blocked {
                refused: refused.clone(),
            },
            E::Api { status: 401, .. } | E::Api { code: 0 | 190, .. } => Upstream::Credentials {
                message: self.upstream_error().unwrap_or_default().to_owned(),
            },
            E::Api {
                code: CODE_NO_WHATSAPP,
                ..
            } => Upstream::NoWhatsapp {
                message: self.upstream_error().unwrap_or_default().to_owned(),
            },
            E::Api {
                code: CODE_THROUGHPUT,
                ..
            }
            | E::Api { status: 429, .. } => Upstream::RateLimited,
            E::Api {
                status,
                code,
                message,
                details,
                ..
            } => {
                let mut more = vec![format!("code {code}")];
                more.extend(details.clone());
                if *status >= 500 {
                    Upstream::Server {
                        status: *status,
                        message: message.clone(),
                    }
                } else {
                    Upstream::Refused {
                        status: Some(*status),
                        message: message.clone(),
                        details: more,
                    }
                }
            }
            E::Network(e) => Upstream::Unreachable {
                detail: e.to_string(),
            },
            E::BadResponse { status, detail, .. } => Upstream::Unexpected {
                status: Some(*status),
                detail: detail.clone(),
            },
            E::Config(detail) => Upstream::BadSettings {
                detail: detail.clone(),
            },
        };
        failure(Service::Wacloud, f)
    }
}

impl From<&PhoneError> for Reason {
    fn from(e: &PhoneError) -> Self {
        Reason::NotAPhone {
            input: e.input.clone(),
            problem: e.reason,
        }
    }
}

/// A gateway's non-2xx answer: its rate limit, trouble on its side, or a refusal in its own
/// words.
fn http_answer(status: u16, message: &str) -> Upstream {
    match status {
        429 => Upstream::RateLimited,
        500.. => Upstream::Server {
            status,
            message: message.to_owned(),
        },
        _ => Upstream::Refused {
            status: Some(status),
            message: message.to_owned(),
            details: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_old_text_stays_text() {
        let r = Reason::Upstream(ServiceFailure {
            service: Service::Chatapi,
            failure: Upstream::Refused {
                status: None,
                message: "Номер не зарегистрирован".into(),
                details: Vec::new(),
            },
        });
        let text = r.to_stored();
        assert!(text.contains("\"service\":\"chatapi\""), "{text}");
        assert_eq!(read_stored::<Reason>(&text), Stored::Typed(r));
        assert_eq!(
            read_stored::<Reason>("RetailCRM: Not found"),
            Stored::Text("RetailCRM: Not found".into())
        );
    }

    #[test]
    fn upstream_words_are_kept() {
        let e = RetailCrmError::from_answer(
            400,
            r#"{"success":false,"errorMsg":"Errors in the entity format","errors":{"customer":"Set one of the following fields: id, externalId"}}"#,
        );
        assert_eq!(
            e.explain().failure,
            Upstream::Refused {
                status: Some(400),
                message: "Errors in the entity format".into(),
                details: vec!["customer: Set one of the following fields: id, externalId".into()],
            }
        );
    }
}
