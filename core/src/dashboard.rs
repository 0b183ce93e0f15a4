//! What the home page shows at a glance: each bundle's runs per hour over the last day with
//! its failures, and when each provider's webhook last delivered or was refused.

use std::collections::HashMap;

use chrono::{NaiveDateTime, Timelike};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::bundles::{self, BundleState};
use crate::db::schema::hook_deliveries as hd;
use crate::db::{AnyConnection, DbError};
use crate::hook_log::HookLog;
use crate::runs::RunStatus;

pub const HOURS: usize = 24;

/// One hour of one bundle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hour {
    /// The hour's first instant (UTC).
    pub start: NaiveDateTime,
    pub runs: i64,
    /// Of those, failed for good.
    pub failed: i64,
}

#[derive(Debug, Clone)]
pub struct BundleActivity {
    pub bundle_id: i64,
    pub name: String,
    pub running: bool,
    /// `HOURS` hours, oldest first; the last one is the current (partial) hour.
    pub hours: Vec<Hour>,
}

impl BundleActivity {
    pub fn runs(&self) -> i64 {
        self.hours.iter().map(|h| h.runs).sum()
    }

    pub fn failed(&self) -> i64 {
        self.hours.iter().map(|h| h.failed).sum()
    }
}

#[derive(QueryableByName)]
struct HourCount {
    #[diesel(sql_type = BigInt)]
    bundle_id: i64,
    #[diesel(sql_type = Text)]
    hour: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The start of the hour `at` is in.
fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    at.date().and_hms_opt(at.hour(), 0, 0).unwrap_or(at)
}

/// Every bundle's last `HOURS` hours up to `now`, counted in the database (one row per
/// bundle, hour and status), so a busy day costs no more to show than a quiet one.
pub fn activity(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
) -> Result<Vec<BundleActivity>, DbError> {
    let first = hour_of(now) - chrono::Duration::hours(HOURS as i64 - 1);
    let counts: Vec<HourCount> = match conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(
            "SELECT bundle_id, strftime('%Y-%m-%d %H:00:00', created_at) AS hour, status, \
             COUNT(*) AS n FROM runs WHERE created_at >= ? GROUP BY bundle_id, hour, status",
        )
        .bind::<Timestamp, _>(first)
        .load(c)?,
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT bundle_id, to_char(date_trunc('hour', created_at), 'YYYY-MM-DD HH24:00:00') \
             AS hour, status, COUNT(*) AS n FROM runs WHERE created_at >= $1 \
             GROUP BY 1, 2, 3",
        )
        .bind::<Timestamp, _>(first)
        .load(c)?,
    };
    let mut by_bundle: HashMap<i64, Vec<Hour>> = HashMap::new();
    let empty = || -> Vec<Hour> {
        (0..HOURS)
            .map(|i| Hour {
                start: first + chrono::Duration::hours(i as i64),
                ..Hour::default()
            })
            .collect()
    };
    for c in counts {
        let Ok(hour) = NaiveDateTime::parse_from_str(&c.hour, "%Y-%m-%d %H:%M:%S") else {
            continue;
        };
        let Ok(i) = usize::try_from((hour - first).num_hours()) else {
            continue;
        };
        let hours = by_bundle.entry(c.bundle_id).or_insert_with(empty);
        if let Some(h) = hours.get_mut(i) {
            h.runs += c.n;
            if c.status == RunStatus::Failed.as_str() {
                h.failed += c.n;
            }
        }
    }
    Ok(bundles::list(conn)?
        .into_iter()
        .map(|b| BundleActivity {
            hours: by_bundle.remove(&b.id).unwrap_or_else(empty),
            running: b.state == BundleState::Running,
            bundle_id: b.id,
            name: b.name,
        })
        .collect())
}

/// Every provider's webhook record, by provider id.
pub fn deliveries(conn: &mut AnyConnection) -> Result<HashMap<i64, HookLog>, DbError> {
    Ok(hd::table
        .select(HookLog::as_select())
        .load::<HookLog>(conn)?
        .into_iter()
        .map(|h| (h.provider_id, h))
        .collect())
}
