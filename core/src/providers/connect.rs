//! Adding or editing a provider: validate the form, check the account live, and register what
//! the provider needs upstream (our MG transport in RetailCRM, our webhook at the gateway or
//! Telegram). Every refusal is tied to the form field the admin has to change, as data that
//! keeps the upstream's own message; the web app words it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use validator::Validate;

use super::settings::{
    ChatapiSettings, GreenapiSettings, MG_WHATSAPP, RetailcrmSettings, TelegramReceive,
    TelegramSettings, WacloudSettings, mask,
};
use super::transport;
use super::{NewProvider, Provider, ProviderKind, Secrets, Settings};
use crate::Core;
use crate::messengers::chatapi::ChatApi;
use crate::messengers::telegram::Telegram;
use crate::reason::{Explain, FieldProblem, ServiceFailure, field_problems, stored};
use crate::retailcrm::{MgTransport, RetailCrm, RetailCrmError, normalize_domain};
use crate::upstream::Refused;

/// Scopes the bundles' RetailCRM actions and the chat registration need.
pub const REQUIRED_SCOPES: [&str; 7] = [
    "order_read",
    "order_write",
    "customer_read",
    "customer_write",
    "reference_read",
    "integration_read",
    "integration_write",
];

pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// What the provider form posts; fields a kind does not use stay empty.
#[derive(Debug, Clone, Default, serde::Deserialize, Validate)]
pub struct ProviderForm {
    #[serde(default)]
    #[validate(length(min = 5, max = 100))]
    pub name: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub api_url: String,
    #[serde(default)]
    pub token: String,
    /// Green-API's idInstance.
    #[serde(default)]
    pub instance_id: String,
    /// Green-API's webhookUrlToken; generated when left empty.
    #[serde(default)]
    pub webhook_token: String,
    /// Cloud API: the business phone number's id, the app secret, our verify token, the WABA id.
    #[serde(default)]
    pub phone_number_id: String,
    #[serde(default)]
    pub app_secret: String,
    #[serde(default)]
    pub verify_token: String,
    #[serde(default)]
    pub waba_id: String,
}

/// Form field name → what is wrong with it, shown next to that field.
pub type FieldErrors = BTreeMap<&'static str, FieldProblem>;

/// The form's field names, for keys that arrive as strings (the validator's).
const FIELDS: [&str; 11] = [
    "phone_number_id",
    "app_secret",
    "verify_token",
    "waba_id",
    "name",
    "domain",
    "api_key",
    "api_url",
    "token",
    "instance_id",
    "webhook_token",
];

fn one(field: &'static str, problem: FieldProblem) -> FieldErrors {
    let mut e = FieldErrors::new();
    e.insert(field, problem);
    e
}

fn upstream(field: &'static str, e: &impl Explain) -> FieldErrors {
    one(
        field,
        FieldProblem::Upstream {
            failure: e.explain(),
        },
    )
}

/// A secret field left as the mask we rendered means "keep the stored one".
fn secret_or_stored(submitted: &str, stored: Option<&str>) -> String {
    let submitted = submitted.trim();
    match stored {
        Some(s) if submitted.is_empty() || submitted == mask(s) => s.to_string(),
        _ => submitted.to_string(),
    }
}

/// The stored secret goes only to the address it was entered for: when the admin changes the
/// address, the secret has to be typed again, so editing a provider cannot send its key to a
/// new host.
fn kept_secret(stored: Option<&str>, same_address: bool) -> Option<&str> {
    stored.filter(|_| same_address)
}

/// Whether the submitted secret field means "keep the stored one" (left empty or as the mask).
fn is_kept(submitted: &str, existing: Option<&Provider>, core: &Core) -> bool {
    let submitted = submitted.trim();
    if submitted.is_empty() {
        return true;
    }
    let stored = existing.and_then(|p| p.secrets(&core.crypto).ok());
    let stored = match &stored {
        Some(Secrets::Retailcrm { api_key, .. }) => api_key.as_str(),
        Some(Secrets::Chatapi { token }) => token.as_str(),
        Some(Secrets::Telegram { bot_token }) => bot_token.as_str(),
        Some(Secrets::Greenapi { api_token, .. }) => api_token.as_str(),
        Some(Secrets::Wacloud { access_token, .. }) => access_token.as_str(),
        None => return false,
    };
    submitted == mask(stored)
}

fn retype_secret(field: &'static str) -> FieldErrors {
    one(field, FieldProblem::RetypeSecret)
}

/// An address the outbound policy refuses, next to the field it came from.
fn refused(field: &'static str, refused: &Refused) -> FieldErrors {
    one(
        field,
        FieldProblem::Refused {
            refused: refused.clone(),
        },
    )
}

/// The form's own rules (the name's length), checked by its `Validate` derive.
fn check_form(form: &ProviderForm, errors: &mut FieldErrors) {
    let trimmed = ProviderForm {
        name: form.name.trim().to_string(),
        ..form.clone()
    };
    if let Err(invalid) = trimmed.validate() {
        for (field, problem) in field_problems(&invalid) {
            if let Some(key) = FIELDS.iter().find(|f| **f == field) {
                errors.entry(key).or_insert(problem);
            }
        }
    }
}

/// Validates and checks the form live. `existing` is the provider being edited.
pub async fn prepare(
    core: &Core,
    kind: ProviderKind,
    form: &ProviderForm,
    existing: Option<&Provider>,
) -> Result<NewProvider, FieldErrors> {
    let mut errors = FieldErrors::new();
    check_form(form, &mut errors);
    let stored = existing.and_then(|p| p.secrets(&core.crypto).ok());
    let result = match kind {
        ProviderKind::Retailcrm => {
            let stored_key = match &stored {
                Some(Secrets::Retailcrm { api_key, .. }) => Some(api_key.as_str()),
                _ => None,
            };
            retailcrm(core, form, stored_key, existing).await
        }
        ProviderKind::Chatapi => {
            let stored_token = match &stored {
                Some(Secrets::Chatapi { token }) => Some(token.as_str()),
                _ => None,
            };
            chatapi(core, form, stored_token, existing).await
        }
        ProviderKind::Telegram => {
            let stored_token = match &stored {
                Some(Secrets::Telegram { bot_token }) => Some(bot_token.as_str()),
                _ => None,
            };
            telegram(core, form, stored_token, existing).await
        }
        ProviderKind::Greenapi => greenapi(core, form, stored.as_ref(), existing).await,
        ProviderKind::Wacloud => wacloud(core, form, stored.as_ref(), existing).await,
    };
    match result {
        Ok((settings, secrets, message)) if errors.is_empty() => Ok(NewProvider {
            kind,
            name: form.name.trim().to_string(),
            settings,
            secrets,
            check_message: message,
        }),
        Ok(_) => Err(errors),
        Err(more) => {
            // Name errors first, live-check errors next to their own fields.
            for (k, v) in more {
                errors.entry(k).or_insert(v);
            }
            Err(errors)
        }
    }
}

type Prepared = (Settings, Secrets, Option<String>);

async fn retailcrm(
    core: &Core,
    form: &ProviderForm,
    stored_key: Option<&str>,
    existing: Option<&Provider>,
) -> Result<Prepared, FieldErrors> {
    let base_url = normalize_domain(&form.domain, core.http.policy())
        .map_err(|error| one("domain", FieldProblem::Domain { error }))?;
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Retailcrm(s)) => s.base_url == base_url,
        _ => false,
    };
    let stored_key = kept_secret(stored_key, same_address);
    if existing.is_some() && stored_key.is_none() && is_kept(&form.api_key, existing, core) {
        return Err(retype_secret("api_key"));
    }
    let api_key = secret_or_stored(&form.api_key, stored_key);
    if api_key.is_empty() {
        return Err(one("api_key", FieldProblem::Required));
    }
    let api = RetailCrm::with_client(core.http.clone(), &base_url, &api_key)
        .map_err(|error| one("domain", FieldProblem::Domain { error }))?;
    let creds = api.credentials().await.map_err(|e| credentials_error(&e))?;
    if !creds.scopes.is_empty() {
        let missing: Vec<String> = REQUIRED_SCOPES
            .iter()
            .filter(|s| !creds.has_scope(s))
            .map(|s| s.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(one(
                "api_key",
                FieldProblem::MissingScopes { scopes: missing },
            ));
        }
    }
    let Some(site_code) = creds.single_site().map(str::to_string) else {
        let sites = match creds.site_access {
            crate::retailcrm::SiteAccess::Selective => creds.sites_available.clone(),
            // Every store of the account.
            _ => Vec::new(),
        };
        return Err(one("api_key", FieldProblem::NotOneStore { sites }));
    };
    let sites = api.sites().await.map_err(|e| upstream("api_key", &e))?;
    let site_name = sites
        .get(&site_code)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| site_code.clone());

    // Registering our chat transport is the only reliable "Chats are activated" check.
    let client_id = super::settings::client_id(&base_url, &site_code);
    let module = transport::module(core, &client_id);
    let info = api.integration_module_edit(&module).await.map_err(|e| {
        one(
            "api_key",
            FieldProblem::ChatsUnavailable {
                failure: e.explain(),
            },
        )
    })?;
    // The endpoint comes from RetailCRM, and passes the same outbound policy as any address.
    let mg = MgTransport::with_client(core.http.clone(), &info.endpoint_url, &info.token).map_err(
        |e| {
            one(
                "api_key",
                FieldProblem::ChatsUnavailable {
                    failure: e.explain(),
                },
            )
        },
    )?;
    let kept = match existing.map(|p| &p.settings) {
        Some(Settings::Retailcrm(s)) if s.mg_endpoint == info.endpoint_url => Some(s),
        _ => None,
    };
    let mg_channels = transport::channels(&mg, kept)
        .await
        .map_err(|e| upstream("api_key", &e))?;
    let settings = Settings::Retailcrm(RetailcrmSettings {
        base_url,
        domain_input: form.domain.trim().to_string(),
        site_code,
        site_name,
        mg_endpoint: info.endpoint_url,
        mg_channel_id: mg_channels.get(MG_WHATSAPP).copied(),
        mg_channels,
        mg_webhook_url: module
            .integrations
            .mg_transport
            .as_ref()
            .map(|t| t.webhook_url.clone())
            .unwrap_or_default(),
    });
    Ok((
        settings,
        Secrets::Retailcrm {
            api_key,
            mg_token: info.token,
        },
        None,
    ))
}

fn credentials_error(e: &RetailCrmError) -> FieldErrors {
    match e {
        RetailCrmError::Refused(r) => refused("domain", r),
        RetailCrmError::AccessDenied { message } => one(
            "api_key",
            FieldProblem::ApiUnavailable {
                message: message.clone(),
            },
        ),
        RetailCrmError::AccountNotFound { .. }
        | RetailCrmError::Network(_)
        | RetailCrmError::Timeout
        | RetailCrmError::Unexpected { .. }
        | RetailCrmError::NotFound { .. } => one(
            "domain",
            FieldProblem::NotRetailcrm {
                failure: e.explain().failure,
            },
        ),
        other => upstream("api_key", other),
    }
}

async fn chatapi(
    core: &Core,
    form: &ProviderForm,
    stored: Option<&str>,
    existing: Option<&Provider>,
) -> Result<Prepared, FieldErrors> {
    let api_url = form.api_url.trim().trim_end_matches('/').to_string();
    if api_url.is_empty() {
        return Err(one("api_url", FieldProblem::Required));
    }
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Chatapi(s)) => s.api_url == api_url,
        _ => false,
    };
    let stored = kept_secret(stored, same_address);
    if existing.is_some() && stored.is_none() && is_kept(&form.token, existing, core) {
        return Err(retype_secret("token"));
    }
    let token = secret_or_stored(&form.token, stored);
    if token.is_empty() {
        return Err(one("token", FieldProblem::Required));
    }
    let api = ChatApi::with_client(core.http.clone(), &api_url, &token).map_err(|e| match e {
        crate::messengers::chatapi::ChatApiError::Refused(r) => refused("api_url", &r),
        other => upstream("api_url", &other),
    })?;
    let status = api.check().await.map_err(|e| {
        use crate::messengers::chatapi::ChatApiError as E;
        match e {
            E::Unauthorized { .. } | E::NotPaid { .. } | E::NotReady { .. } => {
                upstream("token", &e)
            }
            E::Refused(r) => refused("api_url", &r),
            other => upstream("api_url", &other),
        }
    })?;
    Ok((
        Settings::Chatapi(ChatapiSettings {
            api_url,
            webhook_set: false,
            account_status: status.account_status,
        }),
        Secrets::Chatapi { token },
        None,
    ))
}

async fn telegram(
    core: &Core,
    form: &ProviderForm,
    stored: Option<&str>,
    existing: Option<&Provider>,
) -> Result<Prepared, FieldErrors> {
    let api_base = if form.api_url.trim().is_empty() {
        DEFAULT_TELEGRAM_API.to_string()
    } else {
        form.api_url.trim().trim_end_matches('/').to_string()
    };
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Telegram(s)) => s.api_base.trim_end_matches('/') == api_base,
        _ => false,
    };
    let stored = kept_secret(stored, same_address);
    if existing.is_some() && stored.is_none() && is_kept(&form.token, existing, core) {
        return Err(retype_secret("token"));
    }
    let token = secret_or_stored(&form.token, stored);
    if token.is_empty() {
        return Err(one("token", FieldProblem::Required));
    }
    let api = Telegram::with_client(core.http.clone(), &api_base, &token).map_err(|e| match e {
        crate::messengers::telegram::TelegramError::Refused(r) => refused("api_url", &r),
        crate::messengers::telegram::TelegramError::Config(m) if m.starts_with("Bot API URL") => {
            refused("api_url", &Refused::NotUrl)
        }
        other => upstream("token", &other),
    })?;
    let me = api.get_me().await.map_err(|e| match e {
        crate::messengers::telegram::TelegramError::Refused(r) => refused("api_url", &r),
        other => upstream("token", &other),
    })?;
    let receive = if core.config.public_url.starts_with("https://") {
        TelegramReceive::Webhook
    } else {
        TelegramReceive::Polling
    };
    Ok((
        Settings::Telegram(TelegramSettings {
            api_base,
            bot_id: me.id,
            bot_username: me.username.clone().unwrap_or_default(),
            receive,
            poll_offset: 0,
        }),
        Secrets::Telegram { bot_token: token },
        None,
    ))
}

async fn greenapi(
    core: &Core,
    form: &ProviderForm,
    stored: Option<&Secrets>,
    existing: Option<&Provider>,
) -> Result<Prepared, FieldErrors> {
    use crate::messengers::greenapi::{GreenApi, GreenApiError as E, client::DEFAULT_API_URL};
    let api_url = match form.api_url.trim().trim_end_matches('/') {
        "" => DEFAULT_API_URL.to_string(),
        url => url.to_string(),
    };
    let id_instance = form.instance_id.trim().to_string();
    if id_instance.is_empty() {
        return Err(one("instance_id", FieldProblem::Required));
    }
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Greenapi(s)) => s.api_url == api_url && s.id_instance == id_instance,
        _ => false,
    };
    let (stored_token, stored_hook) = match stored {
        Some(Secrets::Greenapi {
            api_token,
            webhook_token,
        }) => (Some(api_token.as_str()), Some(webhook_token.as_str())),
        _ => (None, None),
    };
    let stored_token = kept_secret(stored_token, same_address);
    if existing.is_some() && stored_token.is_none() && is_kept(&form.token, existing, core) {
        return Err(retype_secret("token"));
    }
    let api_token = secret_or_stored(&form.token, stored_token);
    if api_token.is_empty() {
        return Err(one("token", FieldProblem::Required));
    }
    // Our own secret: kept across edits unless the admin types another one.
    let webhook_token = match secret_or_stored(&form.webhook_token, stored_hook) {
        t if t.is_empty() => crate::crypto::random_token(24),
        t => t,
    };
    let api = GreenApi::with_client(core.http.clone(), &api_url, &id_instance, &api_token)
        .map_err(|e| match e {
            E::Refused(r) => refused("api_url", &r),
            E::Config(_) if !id_instance.bytes().all(|b| b.is_ascii_digit()) => one(
                "instance_id",
                FieldProblem::Invalid {
                    code: "digits".into(),
                },
            ),
            other => upstream("token", &other),
        })?;
    let state = api.check().await.map_err(|e| match e {
        E::Refused(r) => refused("api_url", &r),
        E::Unauthorized { status: 403, .. } => upstream("instance_id", &e),
        E::Network(_) | E::BadResponse { .. } => upstream("api_url", &e),
        other => upstream("token", &other),
    })?;
    Ok((
        Settings::Greenapi(GreenapiSettings {
            api_url,
            id_instance,
            state,
            state_at: 0,
            webhook_set: false,
        }),
        Secrets::Greenapi {
            api_token,
            webhook_token,
        },
        None,
    ))
}

async fn wacloud(
    core: &Core,
    form: &ProviderForm,
    stored: Option<&Secrets>,
    existing: Option<&Provider>,
) -> Result<Prepared, FieldErrors> {
    use crate::messengers::wacloud::client::DEFAULT_GRAPH_URL;
    use crate::messengers::wacloud::{CloudApi, CloudApiError as E};
    let graph_url = match form.api_url.trim().trim_end_matches('/') {
        "" => DEFAULT_GRAPH_URL.to_string(),
        url => url.to_string(),
    };
    let phone_number_id = form.phone_number_id.trim().to_string();
    if phone_number_id.is_empty() {
        return Err(one("phone_number_id", FieldProblem::Required));
    }
    let waba_id = form.waba_id.trim().to_string();
    if !waba_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(one(
            "waba_id",
            FieldProblem::Invalid {
                code: "digits".into(),
            },
        ));
    }
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Wacloud(s)) => {
            s.graph_url == graph_url && s.phone_number_id == phone_number_id
        }
        _ => false,
    };
    let (stored_token, stored_secret, stored_verify) = match stored {
        Some(Secrets::Wacloud {
            access_token,
            app_secret,
            verify_token,
        }) => (
            Some(access_token.as_str()),
            Some(app_secret.as_str()),
            Some(verify_token.as_str()),
        ),
        _ => (None, None, None),
    };
    let stored_token = kept_secret(stored_token, same_address);
    if existing.is_some() && stored_token.is_none() && is_kept(&form.token, existing, core) {
        return Err(retype_secret("token"));
    }
    let access_token = secret_or_stored(&form.token, stored_token);
    if access_token.is_empty() {
        return Err(one("token", FieldProblem::Required));
    }
    let app_secret = secret_or_stored(&form.app_secret, stored_secret);
    if app_secret.is_empty() {
        return Err(one("app_secret", FieldProblem::Required));
    }
    let verify_token = match secret_or_stored(&form.verify_token, stored_verify) {
        t if t.is_empty() => crate::crypto::random_token(24),
        t => t,
    };
    let api = CloudApi::with_client(
        core.http.clone(),
        &graph_url,
        &phone_number_id,
        &access_token,
    )
    .map_err(|e| match e {
        E::Refused(r) => refused("api_url", &r),
        E::Config(_) if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) => one(
            "phone_number_id",
            FieldProblem::Invalid {
                code: "digits".into(),
            },
        ),
        other => upstream("token", &other),
    })?;
    let number = api.phone_number().await.map_err(|e| match e {
        E::Refused(r) => refused("api_url", &r),
        // 100: "Object with ID … does not exist" — the id, not the token.
        E::Api { code: 100, .. } => upstream("phone_number_id", &e),
        E::Network(_) | E::BadResponse { .. } => upstream("api_url", &e),
        other => upstream("token", &other),
    })?;
    if !waba_id.is_empty() {
        api.templates(&waba_id)
            .await
            .map_err(|e| upstream("waba_id", &e))?;
    }
    Ok((
        Settings::Wacloud(WacloudSettings {
            graph_url,
            phone_number_id,
            waba_id,
            display_phone_number: number.display_phone_number,
            verified_name: number.verified_name,
        }),
        Secrets::Wacloud {
            access_token,
            app_secret,
            verify_token,
        },
        None,
    ))
}

/// Why the provider's last check failed, as kept in its `check_message` (JSON, see
/// [`crate::reason::read_stored`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckFailure {
    /// A re-check of the stored settings refused these fields.
    Fields { fields: Vec<(String, FieldProblem)> },
    /// Our webhook address could not be set upstream; the admin sets `url` there by hand.
    WebhookNotSet {
        url: String,
        failure: ServiceFailure,
    },
    /// Telegram would not drop a webhook left by someone else, so polling cannot start.
    WebhookNotRemoved { failure: ServiceFailure },
    /// The stored secrets cannot be read (e.g. the secret key changed).
    SecretsUnreadable,
}

impl CheckFailure {
    pub fn fields(errors: &FieldErrors) -> Self {
        CheckFailure::Fields {
            fields: errors
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    pub fn to_stored(&self) -> String {
        stored(self)
    }
}

/// After the provider is stored (it has an id and a webhook secret): point the upstream at our
/// webhook. A failure here does not undo the save; it is recorded as the provider's check
/// message so the page says what to do.
pub async fn after_save(
    core: &Core,
    provider: &Provider,
) -> Result<Option<Settings>, CheckFailure> {
    let url = format!("{}{}", core.config.public_url, provider.webhook_path());
    let secrets = provider
        .secrets(&core.crypto)
        .map_err(|_| CheckFailure::SecretsUnreadable)?;
    let not_set = |failure: ServiceFailure| CheckFailure::WebhookNotSet {
        url: url.clone(),
        failure,
    };
    match (&provider.settings, secrets) {
        (Settings::Chatapi(s), Secrets::Chatapi { token }) => {
            let api = ChatApi::with_client(core.http.clone(), &s.api_url, &token)
                .map_err(|e| not_set(e.explain()))?;
            match api.set_webhook(&url).await {
                Ok(()) => Ok(Some(Settings::Chatapi(ChatapiSettings {
                    webhook_set: true,
                    ..s.clone()
                }))),
                Err(e) => Err(not_set(e.explain())),
            }
        }
        (
            Settings::Greenapi(s),
            Secrets::Greenapi {
                api_token,
                webhook_token,
            },
        ) => {
            let api = crate::messengers::greenapi::GreenApi::with_client(
                core.http.clone(),
                &s.api_url,
                &s.id_instance,
                &api_token,
            )
            .map_err(|e| not_set(e.explain()))?;
            match api.set_webhook(&url, &webhook_token).await {
                Ok(()) => Ok(Some(Settings::Greenapi(GreenapiSettings {
                    webhook_set: true,
                    ..s.clone()
                }))),
                Err(e) => Err(not_set(e.explain())),
            }
        }
        (Settings::Telegram(s), Secrets::Telegram { bot_token }) => {
            let api = Telegram::with_client(core.http.clone(), &s.api_base, &bot_token)
                .map_err(|e| not_set(e.explain()))?;
            match s.receive {
                TelegramReceive::Webhook => api
                    .set_webhook(&url, &provider.webhook_secret)
                    .await
                    .map(|()| None)
                    .map_err(|e| not_set(e.explain())),
                // getUpdates fails while a webhook is set (e.g. left by another install).
                TelegramReceive::Polling => {
                    api.delete_webhook().await.map(|()| None).map_err(|e| {
                        CheckFailure::WebhookNotRemoved {
                            failure: e.explain(),
                        }
                    })
                }
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_secret_keeps_the_stored_one() {
        assert_eq!(
            secret_or_stored("abc••••••xyz", Some("abcdefghijxyz")),
            "abcdefghijxyz"
        );
        assert_eq!(secret_or_stored("", Some("abcdefghijxyz")), "abcdefghijxyz");
        assert_eq!(
            secret_or_stored("new-key", Some("abcdefghijxyz")),
            "new-key"
        );
        assert_eq!(secret_or_stored(" new ", None), "new");
    }
}
