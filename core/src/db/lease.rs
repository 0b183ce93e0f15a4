//! The lease protocol of the work tables (inbox rows, runs). A row waits (`next_attempt_at`),
//! a worker claims it for a while (`lease_until`), and it ends done, back to waiting with a
//! later `next_attempt_at` (a transient failure), or failed for good. A claim succeeds only
//! while the row waits and is due or its holder's lease has expired (the worker died), so a
//! doubled job message or two workers never run one row at once. The sweeper enqueues rows
//! whose claim is due but whose queue message may be missing (`enqueued_at`).
//!
//! Both tables have the same lease columns (`status`, `attempts`, `error`, `next_attempt_at`,
//! `lease_until`, `enqueued_at`, `updated_at`), but diesel's column types differ per table, so
//! the queries are written once here as a macro each table module expands with its own
//! table, row type and status words.

use chrono::NaiveDateTime;

use crate::config::Config;
use crate::upstream::Retry;

/// After a failed attempt (the row's `attempts` so far): when to try again, or `None` to fail
/// for good. Transient failures wait the exponential backoff, or longer when the upstream
/// asked to (`Retry-After`), until the attempts are used up.
pub fn retry_at(config: &Config, attempts: i32, retry: &Retry) -> Option<NaiveDateTime> {
    let Retry::Transient { after } = retry else {
        return None;
    };
    if attempts >= config.max_attempts {
        return None;
    }
    let backoff = config.backoff(attempts);
    let delay = after.map_or(backoff, |asked| asked.max(backoff));
    Some(super::now() + chrono::Duration::from_std(delay).unwrap_or_default())
}

/// Expands, in a table's module, to its lease queries:
/// `claim`, `claim_many`, `renew`, `release`, `retry_later`, `fail` and `take_due` (for the
/// sweeper).
///
/// `status` names the table's status enum and which of its variants mean waiting, leased and
/// failed; `in_turn` is a further condition a row must meet to be claimed (its conversation's
/// earlier rows are finished, see `conversations`), checked in the claim statement itself so
/// it holds across processes; `claim_also`/`fail_also` add columns only that table has, given
/// the statement's time.
macro_rules! lease_queries {
    (
        table: $table:ident,
        row: $row:ty,
        status: $status:ident { waiting: $waiting:ident, leased: $leased:ident, failed: $failed:ident },
        $(in_turn: $in_turn:expr,)?
        $(claim_also: |$ct:ident| $claim_also:expr,)?
        $(fail_also: |$ft:ident| $fail_also:expr,)?
    ) => {
        /// Takes the row for this worker until now + `lease`: when it waits and is due, or
        /// its holder's lease has expired. `None` when another worker holds it or it is
        /// finished (a doubled job message).
        pub fn claim(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            lease: ::chrono::Duration,
        ) -> Result<Option<$row>, $crate::db::DbError> {
            Ok(claim_many(conn, &[id], lease)?.pop())
        }

        /// [`claim`] for many rows in one statement: those it took, in id order.
        pub fn claim_many(
            conn: &mut $crate::db::AnyConnection,
            ids: &[i64],
            lease: ::chrono::Duration,
        ) -> Result<Vec<$row>, $crate::db::DbError> {
            use diesel::prelude::*;
            use $crate::db::cached::CacheStatement;
            let Some(&last) = ids.last() else {
                return Ok(Vec::new());
            };
            // Padded to a power of two with the last id (which `IN` reads once), so the
            // statement takes one form per size class and each stays prepared on SQLite.
            let mut padded = ids.to_vec();
            padded.resize(ids.len().next_power_of_two(), last);
            let t = $crate::db::now();
            let query = diesel::update($table::table)
                .filter($table::id.eq_any(&padded))
                .filter($crate::db::lease::lease_queries!(@claimable $table, $status, $waiting, $leased, t));
            $(let query = query.filter($in_turn);)?
            let mut claimed: Vec<$row> = query
                .set((
                    $table::status.eq($status::$leased),
                    $table::lease_until.eq(Some(t + lease)),
                    $table::attempts.eq($table::attempts + 1),
                    $table::updated_at.eq(t),
                    $({
                        let $ct = t;
                        $claim_also
                    },)?
                ))
                .returning(<$row as Selectable<$crate::db::Backend>>::construct_selection())
                .cached()
                .get_results(conn)?;
            claimed.sort_by_key(|r| r.id);
            Ok(claimed)
        }

        /// Extends a lease this worker holds (`held_until`, as its claim answered it) to now +
        /// `lease`; `false` when it is not ours any more (it expired and another took it).
        pub fn renew(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            held_until: ::chrono::NaiveDateTime,
            lease: ::chrono::Duration,
        ) -> Result<bool, $crate::db::DbError> {
            use diesel::prelude::*;
            let t = $crate::db::now();
            let n = diesel::update($table::table.find(id))
                .filter($table::status.eq($status::$leased))
                .filter($table::lease_until.eq(Some(held_until)))
                .set(($table::lease_until.eq(Some(t + lease)), $table::updated_at.eq(t)))
                .execute(conn)?;
            Ok(n == 1)
        }

        /// A row this worker claimed but will not continue (it is stopping): waiting and due
        /// now, its attempt given back (it was not a failure), its lease dropped, and marked
        /// not enqueued, so any worker's sweeper takes it at once.
        pub fn release(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
        ) -> Result<(), $crate::db::DbError> {
            use diesel::prelude::*;
            let t = $crate::db::now();
            diesel::update($table::table.find(id).filter($table::status.eq($status::$leased)))
                .set((
                    $table::status.eq($status::$waiting),
                    $table::attempts.eq($table::attempts - 1),
                    $table::next_attempt_at.eq(t),
                    $table::lease_until.eq(None::<::chrono::NaiveDateTime>),
                    $table::enqueued_at.eq(None::<::chrono::NaiveDateTime>),
                    $table::updated_at.eq(t),
                ))
                .execute(conn)?;
            Ok(())
        }

        /// A transient failure: the row waits again until `retry_at`, when the sweeper
        /// enqueues it (its queue message is gone, so `enqueued_at` is cleared).
        pub fn retry_later(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            error: &str,
            retry_at: ::chrono::NaiveDateTime,
        ) -> Result<(), $crate::db::DbError> {
            use diesel::prelude::*;
            diesel::update($table::table.find(id))
                .set((
                    $table::status.eq($status::$waiting),
                    $table::error.eq(Some(error)),
                    $table::next_attempt_at.eq(retry_at),
                    $table::lease_until.eq(None::<::chrono::NaiveDateTime>),
                    $table::enqueued_at.eq(None::<::chrono::NaiveDateTime>),
                    $table::updated_at.eq($crate::db::now()),
                ))
                .execute(conn)?;
            Ok(())
        }

        /// Failed for good: no more attempts unless an admin asks for one.
        pub fn fail(
            conn: &mut $crate::db::AnyConnection,
            id: i64,
            error: &str,
        ) -> Result<(), $crate::db::DbError> {
            use diesel::prelude::*;
            let t = $crate::db::now();
            diesel::update($table::table.find(id))
                .set((
                    $table::status.eq($status::$failed),
                    $table::error.eq(Some(error)),
                    $table::lease_until.eq(None::<::chrono::NaiveDateTime>),
                    $table::updated_at.eq(t),
                    $({
                        let $ft = t;
                        $fail_also
                    },)?
                ))
                .execute(conn)?;
            Ok(())
        }

        /// For the sweeper: up to `limit` rows whose claim is due and whose queue message was
        /// not sent within `grace`, marked as enqueued now. The mark is a conditional update,
        /// so of two sweepers only one takes a row.
        pub fn take_due(
            conn: &mut $crate::db::AnyConnection,
            grace: ::chrono::Duration,
            limit: i64,
        ) -> Result<Vec<i64>, $crate::db::DbError> {
            use diesel::prelude::*;
            let t = $crate::db::now();
            let stale = t - grace;
            let query = $table::table
                .filter($crate::db::lease::lease_queries!(@claimable $table, $status, $waiting, $leased, t))
                .filter($table::enqueued_at.is_null().or($table::enqueued_at.lt(stale)));
            $(let query = query.filter($in_turn);)?
            let due: Vec<i64> = query
                .order($table::id)
                .limit(limit)
                .select($table::id)
                .load(conn)?;
            let mut taken = Vec::with_capacity(due.len());
            for id in due {
                let n = diesel::update($table::table.find(id))
                    .filter($table::enqueued_at.is_null().or($table::enqueued_at.lt(stale)))
                    .set($table::enqueued_at.eq(Some(t)))
                    .execute(conn)?;
                if n == 1 {
                    taken.push(id);
                }
            }
            Ok(taken)
        }
    };

    // Waiting and due, or leased by a holder whose lease has expired.
    (@claimable $table:ident, $status:ident, $waiting:ident, $leased:ident, $t:ident) => {
        ($table::status.eq($status::$waiting).and($table::next_attempt_at.le($t)))
            .or($table::status.eq($status::$leased).and($table::lease_until.lt($t)))
    };
}

pub(crate) use lease_queries;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config() -> Config {
        Config::from_vars(&[
            ("SVYAZKA_BACKOFF_MS", "1000"),
            ("SVYAZKA_BACKOFF_MAX_MS", "60000"),
            ("SVYAZKA_MAX_ATTEMPTS", "3"),
        ])
        .expect("config")
    }

    /// Asserts that `retry_at` answers now + `delay`.
    fn assert_retried_in(c: &Config, attempts: i32, retry: &Retry, delay: Duration) {
        let delay = chrono::Duration::from_std(delay).expect("delay");
        let before = crate::db::now();
        let at = retry_at(c, attempts, retry).expect("retried");
        let after = crate::db::now();
        assert!(
            before + delay <= at && at <= after + delay,
            "attempt {attempts}: retried at {at}, expected {delay} after {before}"
        );
    }

    #[test]
    fn transient_failures_back_off_until_the_attempts_are_used_up() {
        let c = config();
        let transient = Retry::Transient { after: None };
        assert_retried_in(&c, 1, &transient, Duration::from_secs(1));
        assert_retried_in(&c, 2, &transient, Duration::from_secs(2));
        assert_eq!(
            retry_at(&c, 3, &transient),
            None,
            "the third attempt was the last"
        );
    }

    #[test]
    fn the_upstreams_retry_after_wins_when_longer_never_when_shorter() {
        let c = config();
        let asked = |s| Retry::Transient {
            after: Some(Duration::from_secs(s)),
        };
        assert_retried_in(&c, 1, &asked(30), Duration::from_secs(30));
        assert_retried_in(&c, 2, &asked(0), Duration::from_secs(2));
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        assert_eq!(retry_at(&config(), 1, &Retry::Permanent), None);
    }
}
