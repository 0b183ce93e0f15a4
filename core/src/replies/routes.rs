//! Where an MG chat's replies go. Every customer message posted into a RetailCRM chat records
//! (RetailCRM provider, MG channel, our customer id there) → (messenger provider, chat); an
//! operator's reply is routed by the same three, since MG's `external_chat_id` may be empty.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::mg_routes;
use crate::db::{AnyConnection, DbError, now};

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Route {
    pub messenger_provider_id: i64,
    pub chat_id: String,
    /// When the customer last wrote, by the messenger's clock.
    pub customer_at: Option<NaiveDateTime>,
}

/// Records (or moves) the route: the customer's latest conversation wins.
pub fn record(
    conn: &mut AnyConnection,
    provider_id: i64,
    channel_id: i64,
    external_user_id: &str,
    route: &Route,
) -> Result<(), DbError> {
    let t = now();
    let values = (
        mg_routes::provider_id.eq(provider_id),
        mg_routes::channel_id.eq(channel_id),
        mg_routes::external_user_id.eq(external_user_id),
        mg_routes::messenger_provider_id.eq(route.messenger_provider_id),
        mg_routes::chat_id.eq(&route.chat_id),
        mg_routes::customer_at.eq(route.customer_at),
        mg_routes::updated_at.eq(t),
    );
    let key = (
        mg_routes::provider_id,
        mg_routes::channel_id,
        mg_routes::external_user_id,
    );
    let changes = (
        mg_routes::messenger_provider_id.eq(route.messenger_provider_id),
        mg_routes::chat_id.eq(&route.chat_id),
        mg_routes::customer_at.eq(route.customer_at),
        mg_routes::updated_at.eq(t),
    );
    crate::db::each_backend!(conn, |c| diesel::insert_into(mg_routes::table)
        .values(values)
        .on_conflict(key)
        .do_update()
        .set(changes)
        .execute(c)?);
    Ok(())
}

pub fn find(
    conn: &mut AnyConnection,
    provider_id: i64,
    channel_id: i64,
    external_user_id: &str,
) -> Result<Option<Route>, DbError> {
    Ok(mg_routes::table
        .find((provider_id, channel_id, external_user_id))
        .select((
            mg_routes::messenger_provider_id,
            mg_routes::chat_id,
            mg_routes::customer_at,
        ))
        .first(conn)
        .optional()?)
}
