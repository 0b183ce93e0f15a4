//! Per-kind settings (shown on the provider page) and secrets (encrypted, never shown in full).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Settings {
    Retailcrm(RetailcrmSettings),
    Chatapi(ChatapiSettings),
    Telegram(TelegramSettings),
    Greenapi(GreenapiSettings),
    Wacloud(WacloudSettings),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetailcrmSettings {
    /// Normalised, e.g. `https://shop.retailcrm.ru`.
    pub base_url: String,
    /// What the admin typed, shown back in the edit form.
    pub domain_input: String,
    /// The one store the key is restricted to.
    pub site_code: String,
    pub site_name: String,
    /// Our MG transport registration: where to post chat messages, and our channel there.
    pub mg_endpoint: String,
    /// The WhatsApp channel (the only one before Telegram had its own); kept for older rows.
    pub mg_channel_id: Option<i64>,
    /// One MG channel per messenger type ("whatsapp", "telegram"), so RetailCRM's chats show
    /// each conversation under the messenger it came from.
    #[serde(default)]
    pub mg_channels: BTreeMap<String, i64>,
    /// The transport webhook address RetailCRM was last given; empty for providers
    /// registered before operators' replies were delivered (re-registered at start-up).
    #[serde(default)]
    pub mg_webhook_url: String,
}

impl RetailcrmSettings {
    /// Our transport's `clientId` (and module code) in this account: one per account and store.
    pub fn client_id(&self) -> String {
        client_id(&self.base_url, &self.site_code)
    }

    /// The channel for messages from `messenger`; WhatsApp's when the type is not known (runs
    /// and settings stored before channels were per messenger).
    pub fn mg_channel(&self, messenger: Option<&str>) -> Option<i64> {
        let kind = messenger.unwrap_or(MG_WHATSAPP);
        self.mg_channels.get(kind).copied().or_else(|| {
            (kind == MG_WHATSAPP)
                .then_some(self.mg_channel_id)
                .flatten()
        })
    }
}

pub fn client_id(base_url: &str, site_code: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{base_url}|{site_code}").as_bytes());
    format!("svyazka-{}", hex::encode(&d[..6]))
}

/// MG channel types, as RetailCRM names them.
pub const MG_WHATSAPP: &str = "whatsapp";
pub const MG_TELEGRAM: &str = "telegram";
/// Every messenger type a RetailCRM provider serves, one MG channel each.
pub const MG_CHANNEL_TYPES: [&str; 2] = [MG_WHATSAPP, MG_TELEGRAM];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatapiSettings {
    /// Instance URL, e.g. `https://api.chat-api.com/instance123456` or `https://api.1msg.io/123456`.
    pub api_url: String,
    /// Whether the gateway accepted our webhook address (set through its webhook endpoint).
    pub webhook_set: bool,
    pub account_status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenapiSettings {
    /// The instance's API host, e.g. `https://api.green-api.com` (the console shows it).
    pub api_url: String,
    pub id_instance: String,
    /// `stateInstance` at the last check or `stateInstanceChanged` notification, in
    /// Green-API's words (`authorized`, `notAuthorized`, …).
    pub state: String,
    /// When Green-API saw that state (unix seconds; 0 for a check): a notification that
    /// arrives late does not undo a newer one.
    #[serde(default)]
    pub state_at: i64,
    /// Whether `setSettings` accepted our webhook address and token.
    pub webhook_set: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WacloudSettings {
    /// The Graph API with its version, e.g. `https://graph.facebook.com/v23.0`.
    pub graph_url: String,
    pub phone_number_id: String,
    /// The WhatsApp Business Account the number belongs to: where templates are listed.
    #[serde(default)]
    pub waba_id: String,
    /// What the live check read: the number as WhatsApp shows it, and its business name.
    pub display_phone_number: String,
    pub verified_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelegramSettings {
    pub api_base: String,
    pub bot_id: i64,
    pub bot_username: String,
    pub receive: TelegramReceive,
    /// Next `getUpdates` offset in polling mode.
    #[serde(default)]
    pub poll_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TelegramReceive {
    /// Telegram posts updates to our https webhook.
    Webhook,
    /// The public URL is not https (a local install): the worker long-polls getUpdates.
    Polling,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Secrets {
    Retailcrm {
        api_key: String,
        mg_token: String,
    },
    Chatapi {
        token: String,
    },
    Telegram {
        bot_token: String,
    },
    /// `webhook_token`: what Green-API sends back in the `Authorization` header of webhooks.
    Greenapi {
        api_token: String,
        webhook_token: String,
    },
    /// `app_secret` signs webhooks (X-Hub-Signature-256); `verify_token` answers Meta's
    /// subscription handshake.
    Wacloud {
        access_token: String,
        app_secret: String,
        verify_token: String,
    },
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// `abcd…wxyz` style mask for showing a stored secret.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "••••••••".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}••••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_edges() {
        assert_eq!(mask("abcdefghijklmnop"), "abc••••••nop");
        assert_eq!(mask("short"), "••••••••");
        assert!(
            !format!(
                "{:?}",
                Secrets::Chatapi {
                    token: "tok-123456789".into()
                }
            )
            .contains("tok")
        );
    }
}
