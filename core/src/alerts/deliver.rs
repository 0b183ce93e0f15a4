//! Delivering alerts: a worker claims the row, words it in the admin's language and sends it
//! through the chosen channel; a transient failure waits the usual back-off, a permanent one
//! (or the attempts used up) leaves the row failed with the reason.

use serde::{Deserialize, Serialize};

use super::settings::{self, AlertSettings, Channel};
use super::wording::{self, Outgoing, Worded};
use super::{Alert, AlertKind, AlertStatus};
use crate::Core;
use crate::db::DbError;
use crate::engine::clients;
use crate::providers::ProviderError;
use crate::reason::Reason;
use crate::upstream::{Refused, Retry};

/// Why an alert could not be sent; the settings page shows it for «Send test alert», quoting
/// the upstream's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum SendFailure {
    #[error("alerts are switched off")]
    Off,
    #[error("the alert channel's Telegram provider no longer exists")]
    ProviderGone,
    /// Telegram refused or failed (its own description inside).
    #[error("telegram: {reason}")]
    Telegram { reason: Reason },
    #[error("the outbound policy refused the SMTP server: {refused}")]
    Refused { refused: Refused },
    #[error("the {field} address is not an e-mail address")]
    BadAddress { field: String },
    /// The SMTP server's answer (code and text) or the connection's failure.
    #[error("smtp: {message}")]
    Smtp { code: Option<u16>, message: String },
    #[error("the stored SMTP password cannot be decrypted")]
    Secrets,
    #[error("alert wording not installed")]
    NoWording,
    /// Our own database failed while reading the settings.
    #[error("the alert settings could not be read")]
    Unavailable,
}

impl SendFailure {
    /// The JSON kept in the alert's `error` column.
    pub fn to_stored(&self) -> String {
        crate::reason::stored(self)
    }
}

/// Sends `text` through the channel of `s`.
pub async fn send(
    core: &Core,
    s: &AlertSettings,
    text: &Worded,
) -> Result<(), (SendFailure, Retry)> {
    match &s.channel {
        Channel::Off => Err((SendFailure::Off, Retry::Permanent)),
        Channel::Telegram {
            provider_id,
            chat_id,
        } => {
            let p = match core.provider(*provider_id).await {
                Ok(p) => p,
                Err(ProviderError::NotFound) => {
                    return Err((SendFailure::ProviderGone, Retry::Permanent));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alert provider unreadable");
                    return Err((SendFailure::ProviderGone, Retry::Transient { after: None }));
                }
            };
            let tg = clients::telegram(core, &p)
                .map_err(|e| (SendFailure::Telegram { reason: e.reason }, e.retry))?;
            let body = format!("{}\n\n{}", text.subject, text.body);
            tg.send_message(chat_id.trim(), &body)
                .await
                .map(|_| ())
                .map_err(|e| {
                    let e = crate::engine::StepError::upstream(&e);
                    (SendFailure::Telegram { reason: e.reason }, e.retry)
                })
        }
        Channel::Smtp(smtp) => {
            let crypto = core.crypto.clone();
            let password = match core
                .db(move |c| Ok::<_, DbError>(settings::password(c, &crypto)))
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(settings::SettingsError::Secrets)) => {
                    return Err((SendFailure::Secrets, Retry::Permanent));
                }
                Ok(Err(settings::SettingsError::Db(e))) | Err(e) => {
                    tracing::warn!(error = %e, "alert settings unreadable");
                    return Err((SendFailure::Unavailable, Retry::Transient { after: None }));
                }
            };
            super::smtp::send(
                core.http.policy(),
                core.config.upstream_timeout,
                smtp,
                &password,
                text,
            )
            .await
        }
    }
}

/// The words of `alert` (or of a test) in the language of `s`.
fn word(s: &AlertSettings, out: Outgoing<'_>) -> Result<Worded, SendFailure> {
    wording::word(&out, s.language).ok_or(SendFailure::NoWording)
}

/// «Send test alert»: sends a test through the saved settings at once; the failure is the
/// upstream's own.
pub async fn send_test(core: &Core) -> Result<(), SendFailure> {
    let s = core
        .db(settings::load)
        .await
        .map_err(|_| SendFailure::Unavailable)?;
    let text = word(
        &s,
        Outgoing {
            kind: AlertKind::Test,
            subject_id: 0,
            subject_name: "",
            reason: None,
            count: 0,
            public_url: &core.config.public_url,
        },
    )?;
    send(core, &s, &text).await.map_err(|(f, _)| f)
}

/// A worker's attempt at alert `id`: claims it (due, or abandoned by a dead holder) and sends.
pub async fn process(core: &Core, id: i64) -> Result<(), DbError> {
    let lease = core.lease();
    let Some((alert, s)) = core
        .db(move |c| {
            let Some(a) = super::claim(c, id, lease)? else {
                return Ok::<_, DbError>(None);
            };
            Ok(Some((a, settings::load(c)?)))
        })
        .await?
    else {
        return Ok(());
    };
    if !s.sends() {
        return core
            .db(move |c| super::settle(c, id, AlertStatus::Dropped))
            .await;
    }
    let result = match word(&s, outgoing(core, &alert)) {
        Ok(text) => send(core, &s, &text).await,
        // Another process' wording is installed at its start; this one will be too.
        Err(f) => Err((f, Retry::Transient { after: None })),
    };
    match result {
        Ok(()) => {
            tracing::info!(alert = id, kind = %alert.kind, "alert sent");
            core.db(move |c| super::settle(c, id, AlertStatus::Sent))
                .await
        }
        Err((f, retry)) => {
            let error = f.to_stored();
            match crate::db::lease::retry_at(&core.config, alert.attempts, &retry) {
                Some(at) => {
                    tracing::info!(alert = id, error = %f, "alert will be retried");
                    core.db(move |c| super::retry_later(c, id, &error, at))
                        .await
                }
                None => {
                    tracing::warn!(alert = id, error = %f, "alert not delivered");
                    core.db(move |c| super::fail(c, id, &error)).await
                }
            }
        }
    }
}

fn outgoing<'a>(core: &'a Core, a: &'a Alert) -> Outgoing<'a> {
    Outgoing {
        kind: a.kind,
        subject_id: a.subject_id,
        subject_name: &a.subject_name,
        reason: a.reason.as_deref(),
        count: a.count,
        public_url: &core.config.public_url,
    }
}
