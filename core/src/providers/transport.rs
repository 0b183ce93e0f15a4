//! Our MG chat transport in a RetailCRM account: the module registration (with the webhook
//! MG posts operators' replies to), one channel per messenger type with the capabilities the
//! bridge has, and bringing providers registered by older versions up to date.

use std::collections::BTreeMap;

use super::settings::{MG_CHANNEL_TYPES, RetailcrmSettings};
use super::{NewProvider, Provider, Secrets, Settings};
use crate::Core;
use crate::crypto::{Crypto, secure_eq};
use crate::retailcrm::{
    Channel, IntegrationModule, Integrations, MgError, MgTransport, MgTransportConfig, RetailCrm,
};

fn secret(crypto: &Crypto, client_id: &str) -> String {
    crypto.derived_token(&format!("mg-webhook:{client_id}"))
}

/// Where MG posts operators' actions: the client id names the account, the secret (derived
/// from our secret key) proves the caller was given the address by us.
pub fn webhook_url(core: &Core, client_id: &str) -> String {
    format!(
        "{}/hooks/mg/{client_id}/{}",
        core.config.public_url,
        secret(&core.crypto, client_id)
    )
}

pub fn webhook_secret_matches(crypto: &Crypto, client_id: &str, given: &str) -> bool {
    secure_eq(&secret(crypto, client_id), given)
}

/// The integration module RetailCRM registers our transport as.
pub fn module(core: &Core, client_id: &str) -> IntegrationModule {
    let public = &core.config.public_url;
    IntegrationModule {
        code: client_id.to_owned(),
        integration_code: client_id.to_owned(),
        active: true,
        name: "Svyazka".into(),
        client_id: client_id.to_owned(),
        base_url: Some(public.clone()),
        account_url: Some(format!("{public}/providers")),
        integrations: Integrations {
            mg_transport: Some(MgTransportConfig {
                webhook_url: webhook_url(core, client_id),
                refresh_token: false,
            }),
        },
        ..Default::default()
    }
}

/// One channel per messenger type: those `kept` from an earlier registration get the current
/// capabilities, missing ones are created.
pub async fn channels(
    mg: &MgTransport,
    kept: Option<&RetailcrmSettings>,
) -> Result<BTreeMap<String, i64>, MgError> {
    let mut ids = BTreeMap::new();
    for kind in MG_CHANNEL_TYPES {
        let channel = Channel::for_messenger(kind, "Svyazka");
        let id = match kept.and_then(|s| s.mg_channel(Some(kind))) {
            Some(id) => {
                mg.update_channel(id, &channel).await?;
                id
            }
            None => mg.create_channel(&channel).await?,
        };
        ids.insert(kind.to_string(), id);
    }
    Ok(ids)
}

/// The RetailCRM provider whose transport has this client id, if the secret is ours.
pub async fn provider_for_hook(
    core: &Core,
    client_id: &str,
    secret: &str,
) -> Result<Option<Provider>, super::ProviderError> {
    if !webhook_secret_matches(&core.crypto, client_id, secret) {
        return Ok(None);
    }
    let all = core.db(super::list).await?;
    Ok(all.into_iter().find(|p| match &p.settings {
        Settings::Retailcrm(s) => s.client_id() == client_id,
        _ => false,
    }))
}

/// At start-up: RetailCRM providers registered with another webhook address (older versions
/// had none that worked, or the public URL changed) are registered again, and their channels
/// get the current capabilities. A failure is logged and retried at the next start or when
/// the admin re-checks the provider.
pub async fn upgrade_registrations(core: &Core) {
    let all = match core.db(super::list).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list providers to update the chat transport");
            return;
        }
    };
    for p in all {
        let Settings::Retailcrm(s) = &p.settings else {
            continue;
        };
        if s.mg_endpoint.is_empty() || s.mg_webhook_url == webhook_url(core, &s.client_id()) {
            continue;
        }
        match reregister(core, &p, s).await {
            Ok(()) => tracing::info!(provider = p.id, "chat transport registered again"),
            Err(e) => {
                tracing::warn!(provider = p.id, error = %e, "chat transport not registered again")
            }
        }
    }
}

async fn reregister(core: &Core, p: &Provider, s: &RetailcrmSettings) -> Result<(), String> {
    let Ok(Secrets::Retailcrm { api_key, mg_token }) = p.secrets(&core.crypto) else {
        return Err("secrets unreadable".into());
    };
    let api = RetailCrm::with_client(core.http.clone(), &s.base_url, &api_key)
        .map_err(|e| e.to_string())?;
    let client_id = s.client_id();
    let info = api
        .integration_module_edit(&module(core, &client_id))
        .await
        .map_err(|e| e.to_string())?;
    let mg = MgTransport::with_client(core.http.clone(), &info.endpoint_url, &info.token)
        .map_err(|e| e.to_string())?;
    let kept = (s.mg_endpoint == info.endpoint_url).then_some(s);
    let mg_channels = channels(&mg, kept).await.map_err(|e| e.to_string())?;
    let settings = Settings::Retailcrm(RetailcrmSettings {
        mg_endpoint: info.endpoint_url,
        mg_channel_id: mg_channels.get(super::settings::MG_WHATSAPP).copied(),
        mg_channels,
        mg_webhook_url: webhook_url(core, &client_id),
        ..s.clone()
    });
    let id = p.id;
    if info.token == mg_token {
        // Only the settings: the provider's check state stays as the admin last saw it.
        core.db(move |c| super::update_settings(c, id, &settings))
            .await
            .map_err(|e| e.to_string())?;
    } else {
        let update = NewProvider {
            kind: p.kind,
            name: p.name.clone(),
            settings,
            secrets: Secrets::Retailcrm {
                api_key,
                mg_token: info.token,
            },
            check_message: p.check_message.clone(),
        };
        let crypto = core.crypto.clone();
        core.db(move |c| super::update(c, &crypto, id, &update))
            .await
            .map_err(|e| e.to_string())?;
    }
    core.providers.forget(id);
    Ok(())
}
