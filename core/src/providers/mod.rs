//! Providers: connected accounts (RetailCRM, a ChatAPI WhatsApp gateway, a Telegram bot).
//! Non-secret settings are stored as JSON; secrets as one AES-GCM encrypted JSON blob.

pub mod account_state;
pub mod cache;
pub mod connect;
pub mod settings;
pub mod transport;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::crypto::{Crypto, CryptoError};
use crate::db::schema::{bundles, providers};
use crate::db::{AnyConnection, DbError, now};
pub use settings::{Secrets, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Retailcrm,
    Chatapi,
    Telegram,
    Greenapi,
    Wacloud,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Retailcrm,
        ProviderKind::Chatapi,
        ProviderKind::Greenapi,
        ProviderKind::Wacloud,
        ProviderKind::Telegram,
    ];

    /// The RetailCRM chat channel type for conversations from this messenger.
    pub fn mg_channel_type(self) -> Option<&'static str> {
        match self {
            ProviderKind::Retailcrm => None,
            ProviderKind::Chatapi | ProviderKind::Greenapi | ProviderKind::Wacloud => {
                Some(settings::MG_WHATSAPP)
            }
            ProviderKind::Telegram => Some(settings::MG_TELEGRAM),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Retailcrm => "retailcrm",
            ProviderKind::Chatapi => "chatapi",
            ProviderKind::Telegram => "telegram",
            ProviderKind::Greenapi => "greenapi",
            ProviderKind::Wacloud => "wacloud",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            ProviderKind::Retailcrm => "RetailCRM",
            ProviderKind::Chatapi => "WhatsApp (1msg.io / ChatAPI)",
            ProviderKind::Telegram => "Telegram",
            ProviderKind::Greenapi => "WhatsApp (Green-API)",
            ProviderKind::Wacloud => "WhatsApp Cloud API",
        }
    }
}

crate::db::text_enum! {
    /// The outcome of a provider's last live check.
    pub enum CheckStatus {
        Ok = "ok",
        Error = "error",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = providers)]
pub struct ProviderRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub settings: String,
    pub secrets: String,
    pub webhook_secret: String,
    pub check_status: CheckStatus,
    pub check_message: Option<String>,
    pub checked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A provider with its settings parsed; secrets stay encrypted until `secrets()` is called.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: i64,
    pub kind: ProviderKind,
    pub name: String,
    pub settings: Settings,
    encrypted_secrets: String,
    pub webhook_secret: String,
    pub check_status: CheckStatus,
    pub check_message: Option<String>,
    pub checked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("provider {0} has unreadable settings: {1}")]
    Corrupt(i64, String),
    #[error("provider is used by bundles: {}", .0.join(", "))]
    InUse(Vec<String>),
    #[error("provider not found")]
    NotFound,
}

impl From<diesel::result::Error> for ProviderError {
    fn from(e: diesel::result::Error) -> Self {
        ProviderError::Db(DbError::Query(e))
    }
}

impl Provider {
    fn from_row(r: ProviderRow) -> Result<Self, ProviderError> {
        let kind = ProviderKind::parse(&r.kind)
            .ok_or_else(|| ProviderError::Corrupt(r.id, format!("kind {}", r.kind)))?;
        let settings = serde_json::from_str(&r.settings)
            .map_err(|e| ProviderError::Corrupt(r.id, e.to_string()))?;
        Ok(Provider {
            id: r.id,
            kind,
            name: r.name,
            settings,
            encrypted_secrets: r.secrets,
            webhook_secret: r.webhook_secret,
            check_status: r.check_status,
            check_message: r.check_message,
            checked_at: r.checked_at,
            created_at: r.created_at,
        })
    }

    pub fn secrets(&self, crypto: &Crypto) -> Result<Secrets, ProviderError> {
        let plain = crypto.decrypt(&self.encrypted_secrets, &secrets_aad(self.id, self.kind))?;
        serde_json::from_str(&plain).map_err(|e| ProviderError::Corrupt(self.id, e.to_string()))
    }

    /// The path our webhook for this provider lives at (appended to the public base URL).
    pub fn webhook_path(&self) -> String {
        format!(
            "/hooks/{}/{}/{}",
            self.kind.as_str(),
            self.id,
            self.webhook_secret
        )
    }
}

/// What the provider forms save after a successful live check.
pub struct NewProvider {
    pub kind: ProviderKind,
    pub name: String,
    pub settings: Settings,
    pub secrets: Secrets,
    pub check_message: Option<String>,
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<Provider>, ProviderError> {
    let rows: Vec<ProviderRow> = providers::table
        .order(providers::id)
        .select(ProviderRow::as_select())
        .load(conn)?;
    rows.into_iter().map(Provider::from_row).collect()
}

pub fn get(conn: &mut AnyConnection, id: i64) -> Result<Provider, ProviderError> {
    let row: Option<ProviderRow> = providers::table
        .find(id)
        .select(ProviderRow::as_select())
        .first(conn)
        .optional()?;
    Provider::from_row(row.ok_or(ProviderError::NotFound)?)
}

/// Associated data of a provider's encrypted secrets: the ciphertext decrypts only in the row
/// (and for the kind) it was written for, so copying it to another provider yields nothing.
fn secrets_aad(id: i64, kind: ProviderKind) -> String {
    format!("svyazka:provider:{id}:{}:secrets", kind.as_str())
}

fn encode_secrets(crypto: &Crypto, id: i64, kind: ProviderKind, secrets: &Secrets) -> String {
    // Serialising our own plain enums cannot fail.
    crypto.encrypt(
        &serde_json::to_string(secrets).unwrap_or_default(),
        &secrets_aad(id, kind),
    )
}

fn encode_settings(settings: &Settings) -> String {
    serde_json::to_string(settings).unwrap_or_default()
}

/// Stores a new provider. The secrets are bound to the row's id, which exists only after the
/// insert, so they are written by an update in the same transaction.
pub fn insert(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    p: &NewProvider,
) -> Result<i64, ProviderError> {
    let t = now();
    conn.transaction(|conn| {
        let id: i64 = diesel::insert_into(providers::table)
            .values((
                providers::kind.eq(p.kind.as_str()),
                providers::name.eq(&p.name),
                providers::settings.eq(encode_settings(&p.settings)),
                providers::secrets.eq(""),
                providers::webhook_secret.eq(crate::crypto::random_token(24)),
                providers::check_status.eq(CheckStatus::Ok),
                providers::check_message.eq(&p.check_message),
                providers::checked_at.eq(Some(t)),
                providers::created_at.eq(t),
                providers::updated_at.eq(t),
            ))
            .returning(providers::id)
            .get_result(conn)?;
        diesel::update(providers::table.find(id))
            .set(providers::secrets.eq(encode_secrets(crypto, id, p.kind, &p.secrets)))
            .execute(conn)?;
        Ok(id)
    })
}

pub fn update(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    id: i64,
    p: &NewProvider,
) -> Result<(), ProviderError> {
    let settings = encode_settings(&p.settings);
    let secrets = encode_secrets(crypto, id, p.kind, &p.secrets);
    let t = now();
    let n = diesel::update(providers::table.find(id))
        .set((
            providers::name.eq(&p.name),
            providers::settings.eq(settings),
            providers::secrets.eq(secrets),
            providers::check_status.eq(CheckStatus::Ok),
            providers::check_message.eq(&p.check_message),
            providers::checked_at.eq(Some(t)),
            providers::updated_at.eq(t),
        ))
        .execute(conn)?;
    if n == 0 {
        Err(ProviderError::NotFound)
    } else {
        Ok(())
    }
}

/// Settings only (e.g. Telegram's polling offset), leaving secrets and check state alone.
pub fn update_settings(
    conn: &mut AnyConnection,
    id: i64,
    settings: &Settings,
) -> Result<(), ProviderError> {
    diesel::update(providers::table.find(id))
        .set((
            providers::settings.eq(serde_json::to_string(settings).unwrap_or_default()),
            providers::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn record_check(
    conn: &mut AnyConnection,
    id: i64,
    ok: bool,
    message: Option<&str>,
) -> Result<(), ProviderError> {
    conn.transaction::<_, DbError, _>(|c| {
        // Only the change from fine to failing alerts; a check that keeps failing does not.
        let was_failing = providers::table
            .find(id)
            .select(providers::check_status)
            .first::<CheckStatus>(c)
            .optional()?
            .is_some_and(|s| s == CheckStatus::Error);
        let name: Option<String> = diesel::update(providers::table.find(id))
            .set((
                providers::check_status.eq(if ok {
                    CheckStatus::Ok
                } else {
                    CheckStatus::Error
                }),
                providers::check_message.eq(message),
                providers::checked_at.eq(Some(now())),
            ))
            .returning(providers::name)
            .get_result(c)
            .optional()?;
        if let Some(name) = name.filter(|_| !ok && !was_failing) {
            crate::alerts::on_provider_failing(c, id, &name, message)?;
        }
        Ok(())
    })?;
    Ok(())
}

pub fn rotate_secret(conn: &mut AnyConnection, id: i64) -> Result<String, ProviderError> {
    let secret = crate::crypto::random_token(24);
    let n = diesel::update(providers::table.find(id))
        .set((
            providers::webhook_secret.eq(&secret),
            providers::updated_at.eq(now()),
        ))
        .execute(conn)?;
    if n == 0 {
        Err(ProviderError::NotFound)
    } else {
        Ok(secret)
    }
}

/// Re-encrypts secrets written before derived keys and associated data (see `crypto`);
/// returns how many rows changed. Each row is updated only if it still holds the old value,
/// so processes starting together do not overwrite each other.
pub fn upgrade_legacy_secrets(
    conn: &mut AnyConnection,
    crypto: &Crypto,
) -> Result<usize, ProviderError> {
    let rows: Vec<(i64, String, String)> = providers::table
        .select((providers::id, providers::kind, providers::secrets))
        .load(conn)?;
    let mut upgraded = 0;
    for (id, kind, stored) in rows {
        if !Crypto::is_legacy(&stored) {
            continue;
        }
        let kind = ProviderKind::parse(&kind)
            .ok_or_else(|| ProviderError::Corrupt(id, format!("kind {kind}")))?;
        // A value this key cannot read stays as it is: the provider page then says its
        // secrets cannot be decrypted, and the admin re-enters them.
        let Ok(plain) = crypto.decrypt_legacy(&stored) else {
            tracing::warn!(
                provider = id,
                "stored secrets cannot be decrypted with this key"
            );
            continue;
        };
        let sealed = crypto.encrypt(&plain, &secrets_aad(id, kind));
        upgraded += diesel::update(
            providers::table
                .find(id)
                .filter(providers::secrets.eq(&stored)),
        )
        .set(providers::secrets.eq(sealed))
        .execute(conn)?;
    }
    Ok(upgraded)
}

/// Refused while a bundle uses the provider, naming the bundles.
pub fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), ProviderError> {
    conn.transaction(|conn| {
        let users: Vec<String> = bundles::table
            .filter(
                bundles::source_provider_id
                    .eq(id)
                    .or(bundles::target_provider_id.eq(id)),
            )
            .order(bundles::name)
            .select(bundles::name)
            .load(conn)?;
        if !users.is_empty() {
            return Err(ProviderError::InUse(users));
        }
        let n = diesel::delete(providers::table.find(id)).execute(conn)?;
        if n == 0 {
            Err(ProviderError::NotFound)
        } else {
            Ok(())
        }
    })
}

/// For webhook endpoints: the provider whose id, kind and secret all match, else `None`
/// (the endpoint then answers 404 without saying which part was wrong).
/// The provider behind a webhook URL: kind, id and secret must all match. The secret is
/// compared in constant time.
pub fn matches_hook(p: &Provider, kind: ProviderKind, secret: &str) -> bool {
    p.kind == kind && crate::crypto::secure_eq(&p.webhook_secret, secret)
}
