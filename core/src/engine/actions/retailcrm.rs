//! RetailCRM actions. Each is safe to repeat after a crash between the upstream call and our
//! checkpoint: contacts are found by phone before creating, deals carry our idempotency key as
//! externalId, chat messages carry it as MG's message external_id.

use serde_json::{Map, Value as Json, json};

use super::{Attempt, Inputs, Outputs, input, optional};
use crate::Core;
use crate::engine::{StepError, clients};
use crate::locks;
use crate::messengers::phone::{PhoneProblem, WaRecipient};
use crate::providers::Provider;
use crate::reason::Reason;
use crate::references;
use crate::replies::routes::{self, Route};
use crate::retailcrm::{
    CustomerRef, InboundMessage, MgCustomer, NewCustomer, NewOrder, Order, Phone,
};

fn outputs(v: Json) -> Outputs {
    v.as_object().cloned().unwrap_or_default()
}

fn phone_digits(raw: &str) -> Result<String, StepError> {
    let r = WaRecipient::parse(raw).map_err(|e| StepError::permanent((&e).into()))?;
    // A group chat id parses as a recipient but is no one's phone.
    r.digits().map(str::to_string).ok_or_else(|| {
        StepError::permanent(Reason::NotAPhone {
            input: raw.to_string(),
            problem: PhoneProblem::BadChatId,
        })
    })
}

/// Finds the customer by phone or creates one. Search and create for one phone in one account
/// and store are serialized across runs and processes (see `locks`): two bundles, or two
/// conversations, meeting the same new customer at once must not both create them.
pub async fn new_contact(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let phone = phone_digits(input(inputs, "phone")?)?;
    let crm = clients::retailcrm(core, target)?;
    let lock = format!("retailcrm-contact:{}:{}:{phone}", crm.account, crm.site);
    let held = locks::acquire(core, &lock, core.config.lease)
        .await?
        .ok_or_else(|| StepError::transient(Reason::ContactBeingCreated))?;
    let res = find_or_create_contact(&crm, &phone, inputs).await;
    held.release(core).await;
    res
}

async fn find_or_create_contact(
    crm: &clients::RetailcrmClients,
    phone: &str,
    inputs: &Inputs,
) -> Result<Outputs, StepError> {
    let phone = phone.to_string();
    let name = optional(inputs, "name");
    let site = Some(crm.site.as_str());
    let found = crm
        .api
        .customers_find_by_phone(&phone, site)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    if let Some(c) = found.into_iter().min_by_key(|c| c.id) {
        let display = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        return Ok(outputs(
            json!({"contact_id": c.id, "contact_phone": phone, "contact_name": display}),
        ));
    }
    let mut extra = Map::new();
    if let Some(src) = optional(inputs, "source") {
        extra.insert("source".into(), json!({"source": src}));
    }
    let customer = NewCustomer {
        first_name: Some(name.unwrap_or(&phone).to_string()),
        phones: vec![Phone::new(format!("+{phone}"))],
        extra,
        ..Default::default()
    };
    let id = crm
        .api
        .customer_create(&customer, site)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(outputs(
        json!({"contact_id": id, "contact_phone": phone, "contact_name": name.unwrap_or_default()}),
    ))
}

fn deal_outputs(o: &Order) -> Outputs {
    outputs(json!({"deal_id": o.id, "deal_number": o.number, "deal_status": o.status}))
}

fn parse_id(raw: &str, param: &str) -> Result<i64, StepError> {
    raw.trim().parse().map_err(|_| {
        StepError::permanent(Reason::NotANumber {
            param: param.to_string(),
            value: raw.to_string(),
        })
    })
}

pub async fn new_deal(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    idem: &str,
) -> Result<Outputs, StepError> {
    let phone = phone_digits(input(inputs, "phone")?)?;
    let contact_id = parse_id(input(inputs, "contact_id")?, "contact_id")?;
    let only_if_no_open = optional(inputs, "only_if_no_open_deal")
        .is_none_or(|v| matches!(v, "true" | "1" | "on" | "yes"));
    let crm = clients::retailcrm(core, target)?;
    let site = Some(crm.site.as_str());
    if let Some(existing) = crm
        .api
        .order_get_by_external_id(idem, site)
        .await
        .map_err(|e| StepError::upstream(&e))?
    {
        return Ok(deal_outputs(&existing));
    }
    if only_if_no_open {
        let refs = references::statuses(core, target).await?;
        let orders = crm
            .api
            .orders_by_customer(contact_id, site)
            .await
            .map_err(|e| StepError::upstream(&e))?;
        if let Some(open) = orders
            .iter()
            .filter(|o| !refs.is_final(&o.status))
            .max_by_key(|o| o.id)
        {
            return Ok(deal_outputs(open));
        }
    }
    let mut extra = Map::new();
    if let Some(src) = optional(inputs, "source") {
        extra.insert("source".into(), json!({"source": src}));
    }
    let order = NewOrder {
        external_id: Some(idem.to_string()),
        phone: Some(format!("+{phone}")),
        customer: Some(CustomerRef {
            id: Some(contact_id),
            external_id: None,
        }),
        customer_comment: optional(inputs, "comment").map(str::to_string),
        extra,
        ..Default::default()
    };
    let (_, created) = crm
        .api
        .order_create(&order, site)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(deal_outputs(&created))
}

pub async fn new_message(
    core: &Core,
    target: &Provider,
    inputs: &Inputs,
    attempt: &Attempt<'_>,
) -> Result<Outputs, StepError> {
    let origin = attempt;
    let contact_id = parse_id(input(inputs, "contact_id")?, "contact_id")?;
    let text = input(inputs, "text")?;
    let crm = clients::retailcrm(core, target)?;
    let (Some(mg), Some(channel)) = (crm.mg.as_ref(), crm.settings.mg_channel(origin.messenger))
    else {
        return Err(StepError::permanent(Reason::ChatsNotRegistered));
    };
    let customer_ext = format!("crm_{contact_id}");
    // Before the message appears in the chat, so the operator's reply always finds its way.
    if let (Some(source), Some(chat)) = (origin.source_provider_id, origin.chat_id) {
        let route = Route {
            messenger_provider_id: source,
            chat_id: chat.to_owned(),
            customer_at: origin
                .customer_time
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.naive_utc()),
        };
        let (crm_id, user) = (target.id, customer_ext.clone());
        core.db(move |c| routes::record(c, crm_id, channel, &user, &route))
            .await
            .map_err(|e| {
                StepError::transient(Reason::Database {
                    detail: e.to_string(),
                })
            })?;
    }
    let customer = crm
        .api
        .customer_get(contact_id, Some(&crm.site))
        .await
        .map_err(|e| StepError::upstream(&e))?;
    let phone = customer.phones.first().map(|p| p.number.clone());
    let name = [
        customer.first_name.as_deref(),
        customer.last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let nickname = if !name.trim().is_empty() {
        name.clone()
    } else {
        phone
            .clone()
            .unwrap_or_else(|| format!("Customer {contact_id}"))
    };
    let message = InboundMessage {
        channel,
        external_chat_id: format!("svz_{contact_id}"),
        customer: MgCustomer {
            external_id: customer_ext,
            nickname,
            first_name: customer.first_name.clone(),
            phone,
        },
        // Boxed: the upload's future is large, and the engine's run future carries every step's.
        message: Box::pin(super::media::message(core, mg, attempt, text)).await?,
    };
    let id = mg
        .send_message(&message)
        .await
        .map_err(|e| StepError::upstream(&e))?;
    Ok(outputs(json!({"message_id": id})))
}
