//! Upstream clients built from a provider's settings and decrypted secrets.

use super::StepError;
use crate::Core;
use crate::messengers::chatapi::ChatApi;
use crate::messengers::greenapi::GreenApi;
use crate::messengers::telegram::Telegram;
use crate::messengers::wacloud::CloudApi;
use crate::providers::settings::RetailcrmSettings;
use crate::providers::{Provider, Secrets, Settings};
use crate::reason::Reason;
use crate::retailcrm::{MgTransport, RetailCrm};

fn secrets(core: &Core, p: &Provider) -> Result<Secrets, StepError> {
    p.secrets(&core.crypto).map_err(|e| {
        tracing::warn!(provider = p.id, error = %e, "provider secrets unreadable");
        StepError::permanent(Reason::SecretsUnreadable {
            provider: p.name.clone(),
        })
    })
}

fn mismatch(p: &Provider) -> StepError {
    StepError::permanent(Reason::SettingsMismatch {
        provider: p.name.clone(),
    })
}

pub struct RetailcrmClients {
    pub api: RetailCrm,
    pub mg: Option<MgTransport>,
    pub site: String,
    pub settings: RetailcrmSettings,
    /// The account's base URL: what two providers of one account have in common.
    pub account: String,
}

pub fn retailcrm(core: &Core, p: &Provider) -> Result<RetailcrmClients, StepError> {
    let (Settings::Retailcrm(s), Secrets::Retailcrm { api_key, mg_token }) =
        (&p.settings, secrets(core, p)?)
    else {
        return Err(mismatch(p));
    };
    let api = RetailCrm::with_client(core.http.clone(), &s.base_url, &api_key)
        .map_err(|error| StepError::permanent(Reason::ProviderAddress { error }))?
        .with_rate_limit(f64::from(core.config.retailcrm_rps))
        .with_shared_budget(core.rate_budget.as_ref());
    let mg = if !s.mg_endpoint.is_empty() && !mg_token.is_empty() {
        Some(
            MgTransport::with_client(core.http.clone(), &s.mg_endpoint, &mg_token)
                .map_err(|e| StepError::upstream(&e))?,
        )
    } else {
        None
    };
    Ok(RetailcrmClients {
        api,
        mg,
        site: s.site_code.clone(),
        settings: s.clone(),
        account: s.base_url.clone(),
    })
}

pub fn chatapi(core: &Core, p: &Provider) -> Result<ChatApi, StepError> {
    let (Settings::Chatapi(s), Secrets::Chatapi { token }) = (&p.settings, secrets(core, p)?)
    else {
        return Err(mismatch(p));
    };
    ChatApi::with_client(core.http.clone(), &s.api_url, &token).map_err(|e| StepError::upstream(&e))
}

pub fn greenapi(core: &Core, p: &Provider) -> Result<GreenApi, StepError> {
    let (Settings::Greenapi(s), Secrets::Greenapi { api_token, .. }) =
        (&p.settings, secrets(core, p)?)
    else {
        return Err(mismatch(p));
    };
    GreenApi::with_client(core.http.clone(), &s.api_url, &s.id_instance, &api_token)
        .map_err(|e| StepError::upstream(&e))
}

pub fn wacloud(core: &Core, p: &Provider) -> Result<CloudApi, StepError> {
    let (Settings::Wacloud(s), Secrets::Wacloud { access_token, .. }) =
        (&p.settings, secrets(core, p)?)
    else {
        return Err(mismatch(p));
    };
    CloudApi::with_client(
        core.http.clone(),
        &s.graph_url,
        &s.phone_number_id,
        &access_token,
    )
    .map_err(|e| StepError::upstream(&e))
}

pub fn telegram(core: &Core, p: &Provider) -> Result<Telegram, StepError> {
    let (Settings::Telegram(s), Secrets::Telegram { bot_token }) = (&p.settings, secrets(core, p)?)
    else {
        return Err(mismatch(p));
    };
    Telegram::with_client(core.http.clone(), &s.api_base, &bot_token)
        .map_err(|e| StepError::upstream(&e))
}
