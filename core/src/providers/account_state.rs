//! A Green-API account's state as Green-API reports it between checks: the
//! `stateInstanceChanged` notification (`notAuthorized` when the phone was unlinked,
//! `blocked`, `sleepMode`, `yellowCard`, back to `authorized`). The provider page shows the
//! state in Green-API's words; a state that cannot send marks the provider failing (with the
//! alert that brings), the same finding a re-check would record; `authorized` clears only
//! such a finding.

use diesel::prelude::*;

use super::connect::CheckFailure;
use super::{ProviderError, Settings};
use crate::Core;
use crate::db::schema::providers;
use crate::db::{AnyConnection, now};
use crate::messengers::greenapi::client::AUTHORIZED;
use crate::reason::{FieldProblem, Service, ServiceFailure, Upstream, read_stored};

/// What recording a state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The state (and the provider's check status) now say it.
    Changed,
    /// Nothing to do: the same state, a notification older than the one recorded, or not a
    /// Green-API provider.
    Unchanged,
}

/// The finding a check records for an account in `state`.
fn failure(state: &str) -> CheckFailure {
    CheckFailure::Fields {
        fields: vec![(
            "token".to_owned(),
            FieldProblem::Upstream {
                failure: ServiceFailure {
                    service: Service::Greenapi,
                    failure: Upstream::AccountState {
                        state: state.to_owned(),
                    },
                },
            },
        )],
    }
}

/// Whether a stored check message is an account-state finding (which `authorized` clears).
fn is_state_failure(message: Option<&str>) -> bool {
    let Some(message) = message else { return false };
    match read_stored::<CheckFailure>(message) {
        crate::reason::Stored::Typed(CheckFailure::Fields { fields }) => fields.iter().any(|(_, p)| {
            matches!(p, FieldProblem::Upstream { failure } if matches!(failure.failure, Upstream::AccountState { .. }))
        }),
        _ => false,
    }
}

/// Stores `state` seen at `at` (unix seconds) on provider `id`, unless a newer one is stored.
/// A compare-and-set on the settings text, so an admin's save in the meantime is kept.
pub fn record(
    conn: &mut AnyConnection,
    id: i64,
    state: &str,
    at: i64,
) -> Result<Recorded, ProviderError> {
    for _ in 0..5 {
        let row: Option<(String, Option<String>)> = providers::table
            .find(id)
            .select((providers::settings, providers::check_message))
            .first(conn)
            .optional()?;
        let Some((raw, check_message)) = row else {
            return Ok(Recorded::Unchanged);
        };
        let Ok(Settings::Greenapi(mut s)) = serde_json::from_str::<Settings>(&raw) else {
            return Ok(Recorded::Unchanged);
        };
        if at < s.state_at || (s.state == state && at == s.state_at) {
            return Ok(Recorded::Unchanged);
        }
        s.state = state.to_owned();
        s.state_at = at;
        let Ok(new) = serde_json::to_string(&Settings::Greenapi(s)) else {
            return Ok(Recorded::Unchanged);
        };
        let n = diesel::update(
            providers::table
                .find(id)
                .filter(providers::settings.eq(&raw)),
        )
        .set((
            providers::settings.eq(&new),
            providers::updated_at.eq(now()),
        ))
        .execute(conn)?;
        if n == 0 {
            continue;
        }
        if state == AUTHORIZED {
            if is_state_failure(check_message.as_deref()) {
                super::record_check(conn, id, true, None)?;
            }
        } else {
            super::record_check(conn, id, false, Some(&failure(state).to_stored()))?;
        }
        return Ok(Recorded::Changed);
    }
    Ok(Recorded::Unchanged)
}

/// [`record`] for a webhook: logged, never failing the delivery (Green-API would only send
/// it again), and this process' cached provider forgotten so the page shows it at once.
pub async fn note(core: &Core, id: i64, state: String, at: i64) {
    let recorded = {
        let state = state.clone();
        core.db(move |c| record(c, id, &state, at)).await
    };
    match recorded {
        Ok(Recorded::Changed) => {
            core.providers.forget(id);
            tracing::info!(provider = id, state, "Green-API account state changed");
        }
        Ok(Recorded::Unchanged) => {}
        Err(e) => tracing::warn!(provider = id, error = %e, "Green-API account state not recorded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_state_finding_is_cleared_by_authorized() {
        assert!(is_state_failure(Some(
            &failure("notAuthorized").to_stored()
        )));
        assert!(!is_state_failure(Some(
            &CheckFailure::SecretsUnreadable.to_stored()
        )));
        assert!(!is_state_failure(None));
        assert!(!is_state_failure(Some("some old text")));
    }
}
