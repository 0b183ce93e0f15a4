//! What the home page shows as needing attention now: bundles that paused themselves, bundles
//! whose latest runs failed for good, providers whose check fails. Read from the rows' current
//! state, so an alert disappears once the cause is gone (a success, a resume, a passing check).

use diesel::prelude::*;

use crate::bundles::AutoPause;
use crate::db::schema::{bundles, providers};
use crate::db::{AnyConnection, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedBundle {
    pub id: i64,
    pub name: String,
    pub pause: AutoPause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingBundle {
    pub id: i64,
    pub name: String,
    /// Permanent failures in a row.
    pub failures: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingProvider {
    pub id: i64,
    pub name: String,
    /// The check's stored failure.
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active {
    pub paused: Vec<PausedBundle>,
    pub failing_bundles: Vec<FailingBundle>,
    pub failing_providers: Vec<FailingProvider>,
}

impl Active {
    pub fn is_empty(&self) -> bool {
        self.paused.is_empty()
            && self.failing_bundles.is_empty()
            && self.failing_providers.is_empty()
    }
}

pub fn active(conn: &mut AnyConnection) -> Result<Active, DbError> {
    let rows: Vec<(i64, String, String, i32, Option<String>)> = bundles::table
        .filter(
            bundles::consecutive_failures
                .gt(0)
                .or(bundles::paused_reason.is_not_null()),
        )
        .order(bundles::id)
        .select((
            bundles::id,
            bundles::name,
            bundles::state,
            bundles::consecutive_failures,
            bundles::paused_reason,
        ))
        .load(conn)?;
    let mut out = Active::default();
    for (id, name, state, failures, paused) in rows {
        let pause = paused.and_then(|p| serde_json::from_str::<AutoPause>(&p).ok());
        match pause {
            Some(pause) if state != "running" => out.paused.push(PausedBundle { id, name, pause }),
            _ if failures > 0 => out
                .failing_bundles
                .push(FailingBundle { id, name, failures }),
            _ => {}
        }
    }
    out.failing_providers = providers::table
        .filter(providers::check_status.eq(crate::providers::CheckStatus::Error))
        .order(providers::id)
        .select((providers::id, providers::name, providers::check_message))
        .load::<(i64, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, name, message)| FailingProvider { id, name, message })
        .collect();
    Ok(out)
}
