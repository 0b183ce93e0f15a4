//! Storing many deliveries in one round trip: the group commit behind the webhook writer. A
//! redelivery (same provider and upstream id) is not an error but `Stored::Duplicate`.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{InboxKind, InboxStatus, Stored};
use crate::db::schema::inbox;
use crate::db::{AnyConnection, DbError, now};

/// One delivery to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub provider_id: i64,
    /// The upstream's own id of the delivery (`order:42:new:new`, `msg:ABC`).
    pub dedup_key: String,
    pub kind: InboxKind,
    pub payload: String,
}

#[derive(Insertable)]
#[diesel(table_name = inbox)]
struct Row<'a> {
    provider_id: i64,
    dedup_key: &'a str,
    kind: &'static str,
    payload: &'a str,
    status: InboxStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    // Marked as enqueued now: the writer announces the batch right after the commit; if that
    // push fails, the sweeper enqueues the rows once the grace period has passed.
    enqueued_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

type Inserted = (i64, i64, String);

/// Inserts all `items` atomically and answers, in order, what each became. Within one call
/// the first of two equal keys is `New`, the second its `Duplicate`.
pub fn store_batch(conn: &mut AnyConnection, items: &[NewItem]) -> Result<Vec<Stored>, DbError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let t = now();
    let rows: Vec<Row<'_>> = items
        .iter()
        .map(|i| Row {
            provider_id: i.provider_id,
            dedup_key: &i.dedup_key,
            kind: i.kind.as_str(),
            payload: &i.payload,
            status: InboxStatus::Pending,
            attempts: 0,
            next_attempt_at: t,
            enqueued_at: Some(t),
            created_at: t,
            updated_at: t,
        })
        .collect();
    let key = (inbox::provider_id, inbox::dedup_key);
    let returned = (inbox::id, inbox::provider_id, inbox::dedup_key);
    let inserted: Vec<Inserted> = match conn {
        // One multi-row statement: one round trip and one commit for the whole batch.
        AnyConnection::Postgresql(c) => diesel::insert_into(inbox::table)
            .values(&rows)
            .on_conflict(key)
            .do_nothing()
            .returning(returned)
            .get_results(c)?,
        // In-process: statements are cheap, the commit is what costs; one transaction.
        AnyConnection::Sqlite(c) => c.transaction(|c| {
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let got: Option<Inserted> = diesel::insert_into(inbox::table)
                    .values(r)
                    .on_conflict(key)
                    .do_nothing()
                    .returning(returned)
                    .get_result(c)
                    .optional()?;
                out.extend(got);
            }
            Ok::<_, diesel::result::Error>(out)
        })?,
    };
    let mut fresh: HashMap<(i64, &str), i64> = inserted
        .iter()
        .map(|(id, p, k)| ((*p, k.as_str()), *id))
        .collect();
    let mut seen: HashMap<(i64, &str), i64> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let k = (item.provider_id, item.dedup_key.as_str());
        if let Some(id) = fresh.remove(&k) {
            seen.insert(k, id);
            out.push(Stored::New(id));
        } else if let Some(id) = seen.get(&k) {
            out.push(Stored::Duplicate(*id));
        } else {
            let id = existing_id(conn, item.provider_id, &item.dedup_key)?;
            seen.insert(k, id);
            out.push(Stored::Duplicate(id));
        }
    }
    Ok(out)
}

fn existing_id(
    conn: &mut AnyConnection,
    provider_id: i64,
    dedup_key: &str,
) -> Result<i64, DbError> {
    Ok(inbox::table
        .filter(
            inbox::provider_id
                .eq(provider_id)
                .and(inbox::dedup_key.eq(dedup_key)),
        )
        .select(inbox::id)
        .first(conn)?)
}
