//! Storing many deliveries in one round trip: the group commit behind the webhook writer. A
//! redelivery (same provider and upstream id) is not an error but `Stored::Duplicate`.
//!
//! Two kinds of key: a messenger's message id names one delivery for good (`Dedup::Forever`),
//! while an order's trigger names the latest trigger of that order (`Dedup::Repeats`): the
//! same trigger again within a window is RetailCRM repeating itself, but an order that goes
//! A → B → A fires A a second time for real. So a trigger's row holds the key only until
//! another trigger of its order arrives or its window passes; then the row is retired (its key
//! gets its id appended) and the new one takes the key.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Text;

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
    /// Deliveries of one conversation are dispatched in the order they are stored.
    pub conversation: Option<String>,
    pub dedup: Dedup,
}

/// How long a delivery's key keeps a repeat out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// The key names this delivery for good: any redelivery is a duplicate.
    Forever,
    /// The key names the latest delivery of its subject: a repeat with the same payload within
    /// `window` of it is a duplicate; a different payload, or one after the window, is new.
    Repeats { window: chrono::Duration },
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
    conversation: Option<&'a str>,
}

type Inserted = (i64, i64, String);

/// Attempts for a repeating key that other writers keep taking meanwhile.
const RETAKES: u32 = 3;

/// Inserts all `items` atomically and answers, in order, what each became. Within one call
/// the first of two equal keys is `New`, the second its `Duplicate`.
pub fn store_batch(conn: &mut AnyConnection, items: &[NewItem]) -> Result<Vec<Stored>, DbError> {
    store_batch_retaking(conn, items, RETAKES)
}

fn store_batch_retaking(
    conn: &mut AnyConnection,
    items: &[NewItem],
    retakes: u32,
) -> Result<Vec<Stored>, DbError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // Two different triggers of one order in one call: the second must see the first stored.
    if let Some(k) = second_take(items) {
        let mut out = store_batch_retaking(conn, &items[..k], retakes)?;
        out.extend(store_batch_retaking(conn, &items[k..], retakes)?);
        return Ok(out);
    }
    let t = now();
    let kept = retire_superseded(conn, items, t)?;
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
            conversation: i.conversation.as_deref(),
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
    let new_ids: HashSet<i64> = inserted.iter().map(|(id, _, _)| *id).collect();
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
    // A repeating key taken by another writer between our look and our insert (a different
    // trigger of the order, stored by another lane at the same moment): look again.
    for (i, item) in items.iter().enumerate() {
        let Stored::Duplicate(id) = out[i] else {
            continue;
        };
        let raced = matches!(item.dedup, Dedup::Repeats { .. })
            && !new_ids.contains(&id)
            && kept.get(&(item.provider_id, item.dedup_key.clone())) != Some(&id);
        if raced && retakes > 0 {
            let again = store_batch_retaking(conn, std::slice::from_ref(item), retakes - 1)?;
            if let Some(s) = again.first() {
                out[i] = *s;
            }
        }
    }
    Ok(out)
}

/// The index of the first item whose repeating key an earlier item of `items` has with a
/// different payload, if any.
fn second_take(items: &[NewItem]) -> Option<usize> {
    let mut payloads: HashMap<(i64, &str), &str> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if !matches!(item.dedup, Dedup::Repeats { .. }) {
            continue;
        }
        let k = (item.provider_id, item.dedup_key.as_str());
        match payloads.get(&k) {
            Some(p) if *p != item.payload => return Some(i),
            Some(_) => {}
            None => {
                payloads.insert(k, &item.payload);
            }
        }
    }
    None
}

/// Retires the rows holding a repeating key of `items` that the item does not repeat (another
/// payload, or its window has passed), so the item can take the key. Answers the rows left
/// holding their key: those the items repeat.
fn retire_superseded(
    conn: &mut AnyConnection,
    items: &[NewItem],
    t: NaiveDateTime,
) -> Result<HashMap<(i64, String), i64>, DbError> {
    let repeating: Vec<&NewItem> = items
        .iter()
        .filter(|i| matches!(i.dedup, Dedup::Repeats { .. }))
        .collect();
    let mut kept = HashMap::new();
    if repeating.is_empty() {
        return Ok(kept);
    }
    let providers: HashSet<i64> = repeating.iter().map(|i| i.provider_id).collect();
    let keys: HashSet<&str> = repeating.iter().map(|i| i.dedup_key.as_str()).collect();
    let holders: Vec<(i64, i64, String, String, NaiveDateTime)> = inbox::table
        .filter(inbox::provider_id.eq_any(providers))
        .filter(inbox::dedup_key.eq_any(&keys))
        .select((
            inbox::id,
            inbox::provider_id,
            inbox::dedup_key,
            inbox::payload,
            inbox::created_at,
        ))
        .load(conn)?;
    let mut retire = Vec::new();
    for (id, provider_id, key, payload, created_at) in holders {
        let Some(item) = repeating
            .iter()
            .find(|i| i.provider_id == provider_id && i.dedup_key == key)
        else {
            continue;
        };
        let repeats = match item.dedup {
            Dedup::Repeats { window } => item.payload == payload && created_at >= t - window,
            Dedup::Forever => true,
        };
        if repeats {
            kept.insert((provider_id, key), id);
        } else {
            retire.push(id);
        }
    }
    if !retire.is_empty() {
        // Only while the row still holds the key: another writer may have retired it already.
        diesel::update(
            inbox::table
                .filter(inbox::id.eq_any(&retire))
                .filter(inbox::dedup_key.eq_any(&keys)),
        )
        .set(inbox::dedup_key.eq(sql::<Text>("dedup_key || '@' || CAST(id AS TEXT)")))
        .execute(conn)?;
    }
    Ok(kept)
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
