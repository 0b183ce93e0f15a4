//! How the admin is told about failures: off, a Telegram bot provider to a chat, or SMTP. One
//! row; the SMTP password is encrypted like providers' secrets and never shown again.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Crypto;
use crate::db::schema::alert_settings;
use crate::db::{AnyConnection, DbError, now};
use crate::reason::FieldProblem;

/// The single row's id.
const ROW: i64 = 1;
/// Associated data of the encrypted password: it decrypts only in this place.
const AAD: &str = "alert_settings:secrets";

/// Consecutive permanent failures after which a bundle stops itself, unless the admin says
/// otherwise.
pub const DEFAULT_PAUSE_AFTER: u32 = 5;
/// At most one failure alert per bundle in this many minutes, unless the admin says otherwise.
pub const DEFAULT_COALESCE_MINUTES: u32 = 15;

/// The language alert texts are written in (the admin's choice, saved with the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    Ru,
    En,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only to a loopback server with the development setting on (local test sinks).
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Off,
    Telegram {
        provider_id: i64,
        chat_id: String,
    },
    Smtp(Smtp),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSettings {
    pub channel: Channel,
    pub language: Language,
    /// 0: never pause.
    pub pause_after: u32,
    /// 0: every failure is its own alert.
    pub coalesce_minutes: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            channel: Channel::Off,
            language: Language::Ru,
            pause_after: DEFAULT_PAUSE_AFTER,
            coalesce_minutes: DEFAULT_COALESCE_MINUTES,
        }
    }
}

impl AlertSettings {
    /// Whether alerts are stored for delivery at all.
    pub fn sends(&self) -> bool {
        self.channel != Channel::Off
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Secrets {
    #[serde(default)]
    smtp_password: String,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = alert_settings)]
struct Row {
    settings: String,
    secrets: String,
    #[allow(dead_code)]
    updated_at: NaiveDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the alert settings' secret cannot be decrypted")]
    Secrets,
}

fn row(conn: &mut AnyConnection) -> Result<Option<Row>, DbError> {
    Ok(alert_settings::table
        .find(ROW)
        .select(Row::as_select())
        .first(conn)
        .optional()?)
}

/// The settings (defaults when never saved; an unreadable row reads as the defaults too, so a
/// failure is still counted and the bundle still pauses).
pub fn load(conn: &mut AnyConnection) -> Result<AlertSettings, DbError> {
    Ok(row(conn)?
        .and_then(|r| serde_json::from_str(&r.settings).ok())
        .unwrap_or_default())
}

/// Whether an SMTP password is stored (the form says «saved» instead of showing it).
pub fn has_password(conn: &mut AnyConnection) -> Result<bool, DbError> {
    Ok(row(conn)?.is_some_and(|r| !r.secrets.is_empty()))
}

/// The stored SMTP password, decrypted ("" when none).
pub fn password(conn: &mut AnyConnection, crypto: &Crypto) -> Result<String, SettingsError> {
    let Some(r) = row(conn)? else {
        return Ok(String::new());
    };
    if r.secrets.is_empty() {
        return Ok(String::new());
    }
    let plain = crypto
        .decrypt(&r.secrets, AAD)
        .map_err(|_| SettingsError::Secrets)?;
    let s: Secrets = serde_json::from_str(&plain).map_err(|_| SettingsError::Secrets)?;
    Ok(s.smtp_password)
}

/// Saves the settings; `password` `None` keeps the stored one (the form leaves it blank).
pub fn save(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    settings: &AlertSettings,
    password: Option<&str>,
) -> Result<(), DbError> {
    let json = serde_json::to_string(settings).unwrap_or_default();
    let secrets = match password {
        Some(p) if !p.is_empty() => Some(
            crypto.encrypt(
                &serde_json::to_string(&Secrets {
                    smtp_password: p.to_string(),
                })
                .unwrap_or_default(),
                AAD,
            ),
        ),
        Some(_) => Some(String::new()),
        None => None,
    };
    let t = now();
    conn.transaction(|c| {
        let keep = match &secrets {
            Some(s) => s.clone(),
            None => row(c)?.map(|r| r.secrets).unwrap_or_default(),
        };
        diesel::delete(alert_settings::table.find(ROW)).execute(c)?;
        diesel::insert_into(alert_settings::table)
            .values((
                alert_settings::id.eq(ROW),
                alert_settings::settings.eq(&json),
                alert_settings::secrets.eq(&keep),
                alert_settings::updated_at.eq(t),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// The settings form as typed (every field text, as it came).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Form {
    pub channel: String,
    pub language: String,
    pub pause_after: String,
    pub coalesce_minutes: String,
    pub telegram_provider: String,
    pub telegram_chat: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub smtp_security: String,
    pub smtp_user: String,
    pub smtp_password: String,
    pub smtp_from: String,
    pub smtp_to: String,
}

impl Form {
    /// The form filled with saved settings (the password is never sent back).
    pub fn from_settings(s: &AlertSettings) -> Form {
        let mut f = Form {
            language: match s.language {
                Language::Ru => "ru".into(),
                Language::En => "en".into(),
            },
            pause_after: s.pause_after.to_string(),
            coalesce_minutes: s.coalesce_minutes.to_string(),
            smtp_port: "587".into(),
            smtp_security: "starttls".into(),
            ..Form::default()
        };
        match &s.channel {
            Channel::Off => f.channel = "off".into(),
            Channel::Telegram {
                provider_id,
                chat_id,
            } => {
                f.channel = "telegram".into();
                f.telegram_provider = provider_id.to_string();
                f.telegram_chat = chat_id.clone();
            }
            Channel::Smtp(m) => {
                f.channel = "smtp".into();
                f.smtp_host = m.host.clone();
                f.smtp_port = m.port.to_string();
                f.smtp_security = match m.security {
                    SmtpSecurity::Starttls => "starttls",
                    SmtpSecurity::Tls => "tls",
                    SmtpSecurity::Plain => "plain",
                }
                .into();
                f.smtp_user = m.user.clone();
                f.smtp_from = m.from.clone();
                f.smtp_to = m.to.clone();
            }
        }
        f
    }

    /// The settings, or what is wrong with which field. `telegram_providers`: the ids of the
    /// Telegram bot providers there are.
    pub fn parse(
        &self,
        telegram_providers: &[i64],
    ) -> Result<AlertSettings, Vec<(String, FieldProblem)>> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, p: FieldProblem| problems.push((field.to_string(), p));
        let invalid = || FieldProblem::Invalid {
            code: "invalid".into(),
        };
        let number = |text: &str, max: u32| text.trim().parse::<u32>().ok().filter(|n| *n <= max);
        let language = match self.language.as_str() {
            "en" => Language::En,
            _ => Language::Ru,
        };
        let pause_after = number(&self.pause_after, 1000);
        if pause_after.is_none() {
            bad("pause_after", invalid());
        }
        let coalesce_minutes = number(&self.coalesce_minutes, 24 * 60);
        if coalesce_minutes.is_none() {
            bad("coalesce_minutes", invalid());
        }
        let required = |text: &str| !text.trim().is_empty();
        let channel = match self.channel.as_str() {
            "off" | "" => Channel::Off,
            "telegram" => {
                let provider = self
                    .telegram_provider
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|id| telegram_providers.contains(id));
                if provider.is_none() {
                    bad("telegram_provider", FieldProblem::Required);
                }
                let chat = self.telegram_chat.trim();
                // A numeric chat id (negative for groups) or a channel's @username.
                let chat_ok = chat.parse::<i64>().is_ok()
                    || (chat.starts_with('@')
                        && chat.len() > 1
                        && !chat.contains(char::is_whitespace));
                if !required(chat) {
                    bad("telegram_chat", FieldProblem::Required);
                } else if !chat_ok {
                    bad("telegram_chat", invalid());
                }
                Channel::Telegram {
                    provider_id: provider.unwrap_or_default(),
                    chat_id: chat.to_string(),
                }
            }
            "smtp" => {
                let host = self.smtp_host.trim();
                if !required(host) {
                    bad("smtp_host", FieldProblem::Required);
                } else if host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
                    bad("smtp_host", invalid());
                }
                let port = self.smtp_port.trim().parse::<u16>().ok().filter(|p| *p > 0);
                if port.is_none() {
                    bad("smtp_port", invalid());
                }
                let security = match self.smtp_security.as_str() {
                    "tls" => SmtpSecurity::Tls,
                    "plain" => SmtpSecurity::Plain,
                    _ => SmtpSecurity::Starttls,
                };
                for (field, value) in [("smtp_from", &self.smtp_from), ("smtp_to", &self.smtp_to)] {
                    if !required(value) {
                        bad(field, FieldProblem::Required);
                    } else if value.trim().parse::<lettre::message::Mailbox>().is_err() {
                        bad(field, invalid());
                    }
                }
                Channel::Smtp(Smtp {
                    host: host.to_string(),
                    port: port.unwrap_or(587),
                    security,
                    user: self.smtp_user.trim().to_string(),
                    from: self.smtp_from.trim().to_string(),
                    to: self.smtp_to.trim().to_string(),
                })
            }
            _ => {
                bad("channel", invalid());
                Channel::Off
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AlertSettings {
            channel,
            language,
            pause_after: pause_after.unwrap_or(DEFAULT_PAUSE_AFTER),
            coalesce_minutes: coalesce_minutes.unwrap_or(DEFAULT_COALESCE_MINUTES),
        })
    }

    /// The password typed, if any (blank keeps the saved one).
    pub fn new_password(&self) -> Option<&str> {
        Some(self.smtp_password.as_str()).filter(|p| !p.is_empty())
    }
}
