//! Conversations: the messages of one chat, the triggers of one order. A customer who writes
//! twice within a second must still get one contact and one deal, and the shop's chat must
//! show the messages in the order they were written; so the work of one conversation is done
//! one item at a time, in the order the deliveries arrived (their inbox id), while different
//! conversations run side by side.
//!
//! Two gates keep that order, each checked inside the claim statement itself (so it holds
//! across worker processes, on SQLite and PostgreSQL alike):
//! - an inbox row is dispatched only when no earlier row of its conversation (same provider)
//!   waits or is being dispatched, so the runs of a conversation are created in order;
//! - a run is claimed only when no earlier run of its conversation (same bundle) is queued or
//!   running; a run being retried is queued, so it holds the ones behind it until it succeeds
//!   or fails for good (or an admin skips it).
//!
//! Whoever settles a row hands its conversation on: it looks up the next waiting row and
//! continues with it at once (a stopping worker hands it back for any sweeper instead). A
//! waiting row counts as enqueued, so the sweeper leaves it to that hand-over and takes it only
//! after the re-enqueue grace, should the worker have died in between.
//!
//! Most conversations are one row long (an order's single trigger), so the look-up is made only
//! when somebody waits: a row that has to wait marks the unfinished rows before it
//! `waited_on` (a dispatch creating a run behind another, a refused claim), and the settling
//! update returns the mark. The mark and the settle are updates of the same row, so they are
//! ordered: either the settle sees the mark and looks after its commit, or the mark finds the
//! row settled and the waiter goes on by itself.

use std::sync::LazyLock;

use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::sql_types::Bool;

use crate::inbox::InboxStatus;
use crate::runs::RunStatus;

/// The conversation of a messenger message: its chat.
pub fn of_chat(chat_id: &str) -> String {
    format!("chat:{chat_id}")
}

/// The conversation of a RetailCRM trigger: its order.
pub fn of_order(order_id: i64) -> String {
    format!("order:{order_id}")
}

/// A run's conversation: its bundle's share of the delivery's conversation. Two bundles
/// listening for the same chat do not wait for each other (their shared upstream objects are
/// protected by locks where it matters, see `locks`).
pub fn of_run(bundle_id: i64, delivery: &str) -> String {
    format!("b{bundle_id}:{delivery}")
}

// The statuses are written as literals, exactly as in the partial indexes' predicates
// (migrations `…_conversations`), so both planners can use those indexes.

/// `… IN ('pending', 'processing')`: inbox rows that hold their conversation.
pub(crate) static INBOX_OPEN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "status IN ('{}', '{}')",
        InboxStatus::Pending,
        InboxStatus::Processing
    )
});

/// `… IN ('queued', 'running')`: runs that hold their conversation.
pub(crate) static RUN_OPEN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "status IN ('{}', '{}')",
        RunStatus::Queued,
        RunStatus::Running
    )
});

static INBOX_IN_TURN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "NOT EXISTS (SELECT 1 FROM inbox AS earlier \
         WHERE earlier.conversation = inbox.conversation AND earlier.id < inbox.id \
         AND earlier.provider_id = inbox.provider_id AND earlier.{})",
        *INBOX_OPEN
    )
});

static RUN_IN_TURN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "NOT EXISTS (SELECT 1 FROM runs AS earlier \
         WHERE earlier.conversation = runs.conversation AND earlier.inbox_id < runs.inbox_id \
         AND earlier.{})",
        *RUN_OPEN
    )
});

/// For queries on `inbox`: no earlier row of the row's conversation is still to dispatch.
pub(crate) fn inbox_in_turn() -> SqlLiteral<Bool> {
    sql(&INBOX_IN_TURN)
}

/// For queries on `runs`: no earlier run of the run's conversation is unfinished.
pub(crate) fn run_in_turn() -> SqlLiteral<Bool> {
    sql(&RUN_IN_TURN)
}

/// `inbox.status IN (…)` / `runs.status IN (…)` for filters on the table itself.
pub(crate) fn inbox_open() -> SqlLiteral<Bool> {
    sql(&format!("inbox.{}", *INBOX_OPEN))
}

pub(crate) fn run_open() -> SqlLiteral<Bool> {
    sql(&format!("runs.{}", *RUN_OPEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_bundle_and_the_chat_or_order() {
        assert_eq!(
            of_run(7, &of_chat("79991234567@c.us")),
            "b7:chat:79991234567@c.us"
        );
        assert_eq!(of_run(7, &of_order(42)), "b7:order:42");
        assert_ne!(of_run(1, &of_order(42)), of_run(11, &of_chat("42")));
    }

    #[test]
    fn status_words_match_the_indexes() {
        assert_eq!(*RUN_OPEN, "status IN ('queued', 'running')");
        assert_eq!(*INBOX_OPEN, "status IN ('pending', 'processing')");
    }
}
