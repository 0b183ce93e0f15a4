//! Read receipts of operators' replies: the WhatsApp gateway says the customer read a message
//! (`ack` status `viewed`); when it is one of our replies, the time is kept and RetailCRM's
//! chat shows it read (`POST /messages/read`). Best effort: a failed report is logged, the
//! gateway is not asked to repeat its receipt.

use diesel::prelude::*;

use super::{Reply, deliver};
use crate::Core;
use crate::db::schema::mg_replies;
use crate::db::{AnyConnection, DbError, now};

/// Notes the first read of the reply `messenger_provider_id` delivered as `external_id`;
/// answers it then (a repeated receipt, or a message that is no reply, answers `None`).
pub fn mark_read(
    conn: &mut AnyConnection,
    messenger_provider_id: i64,
    external_id: &str,
) -> Result<Option<Reply>, DbError> {
    Ok(diesel::update(
        mg_replies::table
            .filter(mg_replies::messenger_provider_id.eq(messenger_provider_id))
            .filter(mg_replies::external_message_id.eq(external_id))
            .filter(mg_replies::read_at.is_null()),
    )
    .set((
        mg_replies::read_at.eq(Some(now())),
        mg_replies::updated_at.eq(now()),
    ))
    .returning(<Reply as Selectable<crate::db::Backend>>::construct_selection())
    .get_result(conn)
    .optional()?)
}

pub async fn read(
    core: &Core,
    messenger_provider_id: i64,
    ids: Vec<String>,
) -> Result<(), DbError> {
    for id in ids {
        let reply = core
            .db(move |c| mark_read(c, messenger_provider_id, &id))
            .await?;
        let Some(reply) = reply else {
            continue;
        };
        let Some(external) = reply.external_message_id.as_deref() else {
            continue;
        };
        let reported = match deliver::crm_transport(core, reply.provider_id).await {
            Ok(mg) => mg
                .mark_read(reply.channel_id, external)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = reported {
            tracing::warn!(reply = reply.id, error = %e, "read receipt not passed on to MG");
        }
    }
    Ok(())
}
