//! Adding or editing a provider: validate the form, check the account live, and register what
//! the provider needs upstream (our MG transport in RetailCRM, our webhook at the gateway or
//! Telegram). Every refusal is tied to the form field the admin has to change, and keeps the
//! upstream's own message.

use std::collections::BTreeMap;

use super::settings::{
    ChatapiSettings, RetailcrmSettings, TelegramReceive, TelegramSettings, mask,
};
use super::{NewProvider, Provider, ProviderKind, Secrets, Settings};
use crate::Core;
use crate::messengers::chatapi::ChatApi;
use crate::messengers::telegram::Telegram;
use crate::retailcrm::{
    Channel, IntegrationModule, Integrations, MgTransport, MgTransportConfig, RetailCrm,
    RetailCrmError, normalize_domain,
};
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
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ProviderForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub api_url: String,
    #[serde(default)]
    pub token: String,
}

/// Field name → message, shown next to that field.
pub type FieldErrors = BTreeMap<&'static str, String>;

fn one(field: &'static str, msg: impl Into<String>) -> FieldErrors {
    let mut e = FieldErrors::new();
    e.insert(field, msg.into());
    e
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
        None => return false,
    };
    submitted == mask(stored)
}

fn retype_secret(field: &'static str, en: bool) -> FieldErrors {
    one(
        field,
        if en {
            "the address changed: enter the key again (a stored key is only sent to the address it was entered for)"
        } else {
            "адрес изменён: введите ключ заново (сохранённый ключ отправляется только на тот адрес, для которого он был введён)"
        },
    )
}

/// An address refused by the outbound policy, in the admin's language.
fn refused(field: &'static str, r: &Refused, en: bool) -> FieldErrors {
    one(field, r.localized(en))
}

fn check_name(form: &ProviderForm, errors: &mut FieldErrors, en: bool) {
    let n = form.name.trim().chars().count();
    if n < 5 {
        errors.insert(
            "name",
            if en {
                "at least 5 characters"
            } else {
                "минимум 5 символов"
            }
            .into(),
        );
    } else if n > 100 {
        errors.insert(
            "name",
            if en {
                "at most 100 characters"
            } else {
                "не длиннее 100 символов"
            }
            .into(),
        );
    }
}

/// Validates and checks the form live. `existing` is the provider being edited.
pub async fn prepare(
    core: &Core,
    kind: ProviderKind,
    form: &ProviderForm,
    existing: Option<&Provider>,
    en: bool,
) -> Result<NewProvider, FieldErrors> {
    let mut errors = FieldErrors::new();
    check_name(form, &mut errors, en);
    let stored = existing.and_then(|p| p.secrets(&core.crypto).ok());
    let result = match kind {
        ProviderKind::Retailcrm => {
            let stored_key = match &stored {
                Some(Secrets::Retailcrm { api_key, .. }) => Some(api_key.as_str()),
                _ => None,
            };
            retailcrm(core, form, stored_key, existing, en).await
        }
        ProviderKind::Chatapi => {
            let stored_token = match &stored {
                Some(Secrets::Chatapi { token }) => Some(token.as_str()),
                _ => None,
            };
            chatapi(core, form, stored_token, existing, en).await
        }
        ProviderKind::Telegram => {
            let stored_token = match &stored {
                Some(Secrets::Telegram { bot_token }) => Some(bot_token.as_str()),
                _ => None,
            };
            telegram(core, form, stored_token, existing, en).await
        }
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
    en: bool,
) -> Result<Prepared, FieldErrors> {
    let base_url = normalize_domain(&form.domain, core.http.policy())
        .map_err(|e| one("domain", e.to_string()))?;
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Retailcrm(s)) => s.base_url == base_url,
        _ => false,
    };
    let stored_key = kept_secret(stored_key, same_address);
    if existing.is_some() && stored_key.is_none() && is_kept(&form.api_key, existing, core) {
        return Err(retype_secret("api_key", en));
    }
    let api_key = secret_or_stored(&form.api_key, stored_key);
    if api_key.is_empty() {
        return Err(one(
            "api_key",
            if en {
                "enter the API key"
            } else {
                "укажите apiKey"
            },
        ));
    }
    let api = RetailCrm::with_client(core.http.clone(), &base_url, &api_key)
        .map_err(|e| one("domain", e.to_string()))?;
    let creds = api
        .credentials()
        .await
        .map_err(|e| credentials_error(&e, en))?;
    if !creds.scopes.is_empty() {
        let missing: Vec<&str> = REQUIRED_SCOPES
            .iter()
            .copied()
            .filter(|s| !creds.has_scope(s))
            .collect();
        if !missing.is_empty() {
            let msg = if en {
                format!(
                    "the key lacks permissions the bundles need: {}. Enable them for the key in RetailCRM",
                    missing.join(", ")
                )
            } else {
                format!(
                    "ключу не хватает прав, нужных связкам: {}. Включите их для ключа в RetailCRM",
                    missing.join(", ")
                )
            };
            return Err(one("api_key", msg));
        }
    }
    let Some(site_code) = creds.single_site().map(str::to_string) else {
        let reach = match creds.site_access {
            crate::retailcrm::SiteAccess::Selective => creds.sites_available.join(", "),
            _ => {
                if en {
                    "all stores".to_string()
                } else {
                    "все магазины".to_string()
                }
            }
        };
        let msg = if en {
            format!(
                "the key reaches {reach}. A key must be restricted to exactly one store (access type «Access to selected stores»); create one key per store"
            )
        } else {
            format!(
                "ключ даёт доступ к: {reach}. Ключ должен быть ограничен ровно одним магазином (тип доступа «Доступ к отдельным магазинам»); для каждого магазина создайте отдельный ключ"
            )
        };
        return Err(one("api_key", msg));
    };
    let sites = api
        .sites()
        .await
        .map_err(|e| one("api_key", e.to_string()))?;
    let site_name = sites
        .get(&site_code)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| site_code.clone());

    // Registering our chat transport is the only reliable "Chats are activated" check.
    let client_id = match existing.map(|p| &p.settings) {
        Some(Settings::Retailcrm(s)) if s.base_url == base_url => {
            format!("svyazka-{}", short_hash(&s.base_url, &site_code))
        }
        _ => format!("svyazka-{}", short_hash(&base_url, &site_code)),
    };
    let public = &core.config.public_url;
    let module = IntegrationModule {
        code: client_id.clone(),
        integration_code: client_id.clone(),
        active: true,
        name: "Svyazka".into(),
        client_id: client_id.clone(),
        base_url: Some(public.clone()),
        account_url: Some(format!("{public}/providers")),
        integrations: Integrations {
            mg_transport: Some(MgTransportConfig {
                webhook_url: format!("{public}/hooks/mg/{client_id}"),
                refresh_token: false,
            }),
        },
        ..Default::default()
    };
    let info = api.integration_module_edit(&module).await.map_err(|e| {
        let msg = if en {
            format!("could not connect RetailCRM chats — check that «Chats» is activated for this key. RetailCRM answered: {}", e.user_message_text())
        } else {
            format!("не удалось подключить чаты RetailCRM — проверьте, что для ключа активированы «Чаты». Ответ RetailCRM: {}", e.user_message_text())
        };
        one("api_key", msg)
    })?;
    let mg = MgTransport::with_client(core.http.clone(), &info.endpoint_url, &info.token).map_err(
        |e| match e {
            crate::retailcrm::MgError::Refused(r) => {
                let msg = if en {
                    format!(
                        "RetailCRM returned a chat endpoint Svyazka will not call: {}",
                        r.localized(en)
                    )
                } else {
                    format!(
                        "RetailCRM вернул адрес чатов, к которому Связка не обращается: {}",
                        r.localized(en)
                    )
                };
                one("domain", msg)
            }
            other => one("api_key", format!("RetailCRM chats: {other}")),
        },
    )?;
    let keep_channel = match existing.map(|p| &p.settings) {
        Some(Settings::Retailcrm(s)) if s.mg_endpoint == info.endpoint_url => s.mg_channel_id,
        _ => None,
    };
    let channel_id = match keep_channel {
        Some(id) => id,
        None => mg
            .create_channel(&Channel::text_only("whatsapp", "Svyazka", 4096))
            .await
            .map_err(|e| one("api_key", format!("RetailCRM chats: {e}")))?,
    };
    let settings = Settings::Retailcrm(RetailcrmSettings {
        base_url,
        domain_input: form.domain.trim().to_string(),
        site_code,
        site_name,
        mg_endpoint: info.endpoint_url,
        mg_channel_id: Some(channel_id),
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

trait UserText {
    fn user_message_text(&self) -> String;
}

impl UserText for RetailCrmError {
    fn user_message_text(&self) -> String {
        self.upstream_message()
            .map(str::to_string)
            .unwrap_or_else(|| self.to_string())
    }
}

fn credentials_error(e: &RetailCrmError, en: bool) -> FieldErrors {
    match e {
        RetailCrmError::Refused(r) => refused("domain", r, en),
        RetailCrmError::InvalidKey { message } => one("api_key", format!("RetailCRM: {message}")),
        RetailCrmError::AccessDenied { message } => {
            let hint = if en {
                "the API is unavailable for this account or key (API works only on paid plans or during the trial)"
            } else {
                "API недоступен для этого аккаунта или ключа (работа с API доступна только на платных тарифах или в тестовом периоде)"
            };
            one("api_key", format!("{hint}. RetailCRM: {message}"))
        }
        RetailCrmError::AccountNotFound { .. }
        | RetailCrmError::Network(_)
        | RetailCrmError::Timeout
        | RetailCrmError::Unexpected { .. }
        | RetailCrmError::NotFound { .. } => {
            let hint = if en {
                "this address does not answer as RetailCRM"
            } else {
                "по этому адресу не отвечает RetailCRM"
            };
            one("domain", format!("{hint}: {e}"))
        }
        other => one("api_key", other.to_string()),
    }
}

fn short_hash(a: &str, b: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{a}|{b}").as_bytes());
    hex::encode(&d[..6])
}

async fn chatapi(
    core: &Core,
    form: &ProviderForm,
    stored: Option<&str>,
    existing: Option<&Provider>,
    en: bool,
) -> Result<Prepared, FieldErrors> {
    let api_url = form.api_url.trim().trim_end_matches('/').to_string();
    if api_url.is_empty() {
        return Err(one(
            "api_url",
            if en {
                "enter the instance API URL"
            } else {
                "укажите API URL инстанса"
            },
        ));
    }
    let same_address = match existing.map(|p| &p.settings) {
        Some(Settings::Chatapi(s)) => s.api_url == api_url,
        _ => false,
    };
    let stored = kept_secret(stored, same_address);
    if existing.is_some() && stored.is_none() && is_kept(&form.token, existing, core) {
        return Err(retype_secret("token", en));
    }
    let token = secret_or_stored(&form.token, stored);
    if token.is_empty() {
        return Err(one(
            "token",
            if en {
                "enter the token"
            } else {
                "укажите токен"
            },
        ));
    }
    let api = ChatApi::with_client(core.http.clone(), &api_url, &token).map_err(|e| match e {
        crate::messengers::chatapi::ChatApiError::Refused(r) => refused("api_url", &r, en),
        other => one("api_url", other.to_string()),
    })?;
    let status = api.check().await.map_err(|e| {
        use crate::messengers::chatapi::ChatApiError as E;
        match e {
            E::Unauthorized { .. } | E::NotPaid { .. } | E::NotReady { .. } => {
                one("token", e.to_string())
            }
            E::Refused(r) => refused("api_url", &r, en),
            other => one("api_url", other.to_string()),
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
    en: bool,
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
        return Err(retype_secret("token", en));
    }
    let token = secret_or_stored(&form.token, stored);
    if token.is_empty() {
        return Err(one(
            "token",
            if en {
                "enter the bot token"
            } else {
                "укажите токен бота"
            },
        ));
    }
    let api = Telegram::with_client(core.http.clone(), &api_base, &token).map_err(|e| match e {
        crate::messengers::telegram::TelegramError::Refused(r) => refused("api_url", &r, en),
        crate::messengers::telegram::TelegramError::Config(m) if m.starts_with("Bot API URL") => {
            one("api_url", m)
        }
        other => one("token", other.to_string()),
    })?;
    let me = api.get_me().await.map_err(|e| match e {
        crate::messengers::telegram::TelegramError::Refused(r) => refused("api_url", &r, en),
        other => one("token", other.to_string()),
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

/// After the provider is stored (it has an id and a webhook secret): point the upstream at our
/// webhook. A failure here does not undo the save; it is recorded as the provider's check
/// message so the page says what to do.
pub async fn after_save(core: &Core, provider: &Provider) -> Result<Option<Settings>, String> {
    let url = format!("{}{}", core.config.public_url, provider.webhook_path());
    match (
        &provider.settings,
        provider.secrets(&core.crypto).map_err(|e| e.to_string())?,
    ) {
        (Settings::Chatapi(s), Secrets::Chatapi { token }) => {
            let api = ChatApi::with_client(core.http.clone(), &s.api_url, &token)
                .map_err(|e| e.to_string())?;
            match api.set_webhook(&url).await {
                Ok(()) => Ok(Some(Settings::Chatapi(ChatapiSettings {
                    webhook_set: true,
                    ..s.clone()
                }))),
                Err(e) => Err(format!(
                    "webhook not set at the gateway ({e}); set it there by hand to {url}"
                )),
            }
        }
        (Settings::Telegram(s), Secrets::Telegram { bot_token }) => {
            let api = Telegram::with_client(core.http.clone(), &s.api_base, &bot_token)
                .map_err(|e| e.to_string())?;
            match s.receive {
                TelegramReceive::Webhook => api
                    .set_webhook(&url, &provider.webhook_secret)
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("Telegram setWebhook: {e}")),
                // getUpdates fails while a webhook is set (e.g. left by another install).
                TelegramReceive::Polling => api
                    .delete_webhook()
                    .await
                    .map(|()| None)
                    .map_err(|e| format!("Telegram deleteWebhook: {e}")),
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
