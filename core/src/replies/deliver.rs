//! Delivering an operator's reply to the customer's messenger, and telling MG the outcome.
//!
//! The webhook request stores the reply and tries it at once ([`in_request`]); when the
//! messenger answers within [`REQUEST_BUDGET`] MG gets the outcome in the answer, otherwise
//! `async` and, later, `POST /messages/ack`. Transient messenger failures are retried by the
//! workers with the configured backoff ([`process`]); when the attempts are used up the reply
//! fails with the reason, acknowledged to MG as an error.

use std::time::Duration;

use super::routes::{self, Route};
use super::{Reply, errors};
use crate::Core;
use crate::db::DbError;
use crate::engine::{StepError, clients};
use crate::messengers::greenapi::{GreenApi, HistoryMessage};
use crate::messengers::phone::WaRecipient;
use crate::messengers::wacloud::CloudApi;
use crate::providers::{ProviderError, ProviderKind};
use crate::reason::Reason;
use crate::retailcrm::mg_webhook::{Ack, AckMessage, ErrorCode, SendingError, SentAnswer};

/// How long the webhook request waits for the messenger before answering `async`. MG's own
/// timeout is not documented; a few seconds keeps well inside any sensible one.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(8);

/// How far before the earlier attempt's start the gateway's history is searched: the gateway
/// stamps messages with its own clock.
const CLOCK_SKEW_SECS: i64 = 120;

/// Delivers a reply the request has just stored (and holds the lease of), waiting at most
/// [`REQUEST_BUDGET`]; answers what MG is told. The delivery goes on after an `async` answer.
pub async fn in_request(core: &Core, reply: Reply) -> Result<SentAnswer, DbError> {
    let id = reply.id;
    let task = {
        let core = core.clone();
        tokio::spawn(async move { attempt(&core, reply, false).await })
    };
    match tokio::time::timeout(REQUEST_BUDGET, task).await {
        Ok(Ok(Err(e))) => tracing::warn!(reply = id, error = %e, "reply delivery interrupted"),
        Ok(Err(e)) => tracing::warn!(reply = id, error = %e, "reply delivery task failed"),
        Ok(Ok(Ok(()))) | Err(_) => {}
    }
    answer(core, id).await
}

/// What MG is told about a stored reply now (also for a repeated webhook): its outcome when
/// decided, else `async` (and then it is acknowledged when decided).
pub async fn answer(core: &Core, id: i64) -> Result<SentAnswer, DbError> {
    Ok(core
        .db(move |c| super::answer_or_defer(c, id))
        .await?
        .unwrap_or(SentAnswer::Async))
}

/// A worker's attempt: claims the reply (due, or abandoned by a dead holder) and works on it.
pub async fn process(core: &Core, id: i64) -> Result<(), DbError> {
    let lease = core.lease();
    let Some(reply) = core.db(move |c| super::claim(c, id, lease)).await? else {
        return Ok(());
    };
    attempt(core, reply, true).await
}

/// The delivery's decided outcome.
enum Decided {
    Sent(String),
    /// What MG is told, and our reason (JSON of `Reason`).
    Failed(SendingError, String),
}

async fn attempt(core: &Core, reply: Reply, from_worker: bool) -> Result<(), DbError> {
    let id = reply.id;
    let decided = if let Some(ext) = &reply.external_message_id {
        // Delivered by an earlier attempt: only MG's acknowledgement is left.
        Decided::Sent(ext.clone())
    } else if let Some(e) = reply.sending_error() {
        Decided::Failed(e, reply.error.clone().unwrap_or_default())
    } else {
        match send(core, &reply).await? {
            Ok(ext) => Decided::Sent(ext),
            Err((step, sending)) => {
                if let Some(at) =
                    crate::db::lease::retry_at(&core.config, reply.attempts, &step.retry)
                {
                    tracing::info!(reply = id, attempt = reply.attempts, error = %step, "reply will be retried");
                    let error = step.stored();
                    let unknown = outcome_unknown(&step, &reply);
                    return core
                        .db(move |c| super::retry_send_later(c, id, &error, at, unknown))
                        .await;
                }
                tracing::warn!(reply = id, error = %step, "reply failed");
                Decided::Failed(sending, step.stored())
            }
        }
    };
    let waits = {
        let decided = match &decided {
            Decided::Sent(ext) => Ok(ext.clone()),
            Decided::Failed(e, reason) => Err((e.clone(), reason.clone())),
        };
        core.db(move |c| {
            let outcome = match &decided {
                Ok(ext) => Ok(ext.as_str()),
                Err((e, reason)) => Err((e, reason.as_str())),
            };
            super::record_outcome(c, id, outcome, from_worker)
        })
        .await?
    };
    if waits {
        acknowledge(core, &reply, &decided).await?;
    }
    Ok(())
}

/// `POST /messages/ack` with the outcome; a transient MG failure is retried like a send.
async fn acknowledge(core: &Core, reply: &Reply, decided: &Decided) -> Result<(), DbError> {
    let id = reply.id;
    let delivered = matches!(decided, Decided::Sent(_));
    let Some(mg_id) = reply.mg_message_id else {
        // An MG too old to name its messages cannot be acknowledged; the operator sees the
        // message as not confirmed.
        tracing::warn!(reply = id, "MG sent no message id; cannot acknowledge");
        return core
            .db(move |c| super::settle(c, id, delivered, false))
            .await;
    };
    let ack = Ack {
        channel: reply.channel_id,
        message: AckMessage { id: mg_id },
        transport_message_id: match decided {
            Decided::Sent(ext) => Some(ext.clone()),
            Decided::Failed(..) => None,
        },
        error: match decided {
            Decided::Sent(_) => None,
            Decided::Failed(e, _) => Some(e.clone()),
        },
    };
    let result = match crm_transport(core, reply.provider_id).await {
        Ok(mg) => mg.ack(&ack).await.map_err(|e| StepError::upstream(&e)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            core.db(move |c| super::settle(c, id, delivered, true))
                .await
        }
        Err(e) => match crate::db::lease::retry_at(&core.config, reply.attempts, &e.retry) {
            Some(at) => {
                tracing::info!(reply = id, error = %e, "acknowledgement to MG will be retried");
                let error = e.stored();
                core.db(move |c| super::retry_later(c, id, &error, at))
                    .await
            }
            None => {
                tracing::warn!(reply = id, error = %e, "acknowledgement to MG failed");
                core.db(move |c| super::settle(c, id, delivered, false))
                    .await
            }
        },
    }
}

pub(crate) async fn crm_transport(
    core: &Core,
    provider_id: i64,
) -> Result<crate::retailcrm::MgTransport, StepError> {
    let provider = core.provider(provider_id).await.map_err(provider_error)?;
    clients::retailcrm(core, &provider)?
        .mg
        .ok_or_else(|| StepError::permanent(Reason::ChatsNotRegistered))
}

pub(super) fn provider_error(e: ProviderError) -> StepError {
    match e {
        ProviderError::Db(d) => StepError::transient(Reason::Database {
            detail: d.to_string(),
        }),
        ProviderError::NotFound => StepError::permanent(Reason::ProviderGone),
        _ => StepError::permanent(Reason::ProviderUnreadable),
    }
}

pub(super) type Failure = (StepError, SendingError);

/// One messenger call (or the discovery that an interrupted earlier one went out). Outer
/// `Err`: the database failed.
async fn send(core: &Core, reply: &Reply) -> Result<Result<String, Failure>, DbError> {
    let (provider_id, channel, user) = (
        reply.provider_id,
        reply.channel_id,
        reply.external_user_id.clone(),
    );
    let route = core
        .db(move |c| routes::find(c, provider_id, channel, &user))
        .await?;
    let Some(route) = route else {
        return Ok(Err((
            StepError::permanent(Reason::ReplyNoRoute),
            SendingError::new(
                ErrorCode::CustomerNotExists,
                "Svyazka has no conversation with this customer in this messenger",
            ),
        )));
    };
    let text = reply.content.trim();
    // The media futures are boxed: large, and nested in every delivery's future.
    let outgoing = match Box::pin(super::media::outgoing(core, reply)).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Ok(Err((
                StepError::permanent(Reason::ReplyUnsupported {
                    kind: reply.kind.clone(),
                }),
                SendingError::new(
                    ErrorCode::General,
                    format!("Svyazka cannot deliver messages of type \"{}\"", reply.kind),
                ),
            )));
        }
        Err(failure) => return Ok(Err(failure)),
    };
    let provider = match core.provider(route.messenger_provider_id).await {
        Ok(p) => p,
        Err(ProviderError::Db(e)) => return Err(e),
        Err(e) => {
            let step = provider_error(e);
            let sending = SendingError::new(
                ErrorCode::General,
                "the messenger connection is gone from Svyazka",
            );
            return Ok(Err((step, sending)));
        }
    };
    let earlier = reply.send_started_at;
    let result = match (provider.kind, &outgoing) {
        (ProviderKind::Chatapi, Outgoing::Text) => {
            send_whatsapp(core, reply, &provider, &route, text, earlier).await?
        }
        (ProviderKind::Chatapi | ProviderKind::Telegram, Outgoing::File(_))
            if earlier.is_some() =>
        {
            // Neither messenger's history tells whether an interrupted file went out.
            Err(interrupted())
        }
        (ProviderKind::Chatapi, Outgoing::File(file)) => {
            Box::pin(super::media::send_whatsapp(
                core, reply, &provider, &route, file,
            ))
            .await?
        }
        (ProviderKind::Telegram, Outgoing::File(file)) => {
            Box::pin(super::media::send_telegram(
                core, reply, &provider, &route, file,
            ))
            .await?
        }
        (ProviderKind::Greenapi, Outgoing::Text) => {
            send_greenapi(core, reply, &provider, &route, text, earlier).await?
        }
        (ProviderKind::Wacloud, Outgoing::Text) => {
            send_wacloud(core, reply, &provider, &route, text, earlier).await?
        }
        (ProviderKind::Greenapi, Outgoing::File(file)) => {
            Box::pin(super::media::send_greenapi(
                core, reply, &provider, &route, file, earlier,
            ))
            .await?
        }
        (ProviderKind::Wacloud, Outgoing::File(file)) => {
            Box::pin(super::media::send_wacloud(
                core, reply, &provider, &route, file, earlier,
            ))
            .await?
        }
        (ProviderKind::Telegram, Outgoing::Text) => {
            if earlier.is_some() {
                // A worker died during the call: Telegram cannot tell whether the bot sent it,
                // and sending again could reach the customer twice.
                Err(interrupted())
            } else {
                send_telegram(core, reply, &provider, &route, text).await?
            }
        }
        (ProviderKind::Retailcrm, _) => Err((
            StepError::permanent(Reason::ReplyNoRoute),
            SendingError::new(ErrorCode::General, "not a messenger"),
        )),
    };
    Ok(result)
}

/// What an operator's reply is, for the messenger.
pub(super) enum Outgoing {
    /// `content`.
    Text,
    File(super::media::OutgoingFile),
}

/// A failure of ours (settings, a gone provider, …): MG's `general`, with our reason in English.
pub(super) fn general(step: StepError) -> Failure {
    let message = step.reason.to_string();
    (step, SendingError::new(ErrorCode::General, message))
}

/// Whether a transient failure leaves it unknown if the gateway sent the message: no answer
/// came (a timeout or a dropped connection). Green-API's history tells on the retry, and so
/// does ChatAPI's for a text; a connection that never opened costs the retry one history call,
/// nothing more. A ChatAPI file's lost answer is decided at the call ([`chatapi_file_failure`]),
/// so its other network failures (no connection) are plain retries.
fn outcome_unknown(step: &StepError, reply: &Reply) -> bool {
    use crate::reason::{Service, ServiceFailure, Upstream};
    let Reason::Upstream(ServiceFailure { service, failure }) = &step.reason else {
        return false;
    };
    let lost = matches!(failure, Upstream::Unreachable { .. } | Upstream::Timeout);
    match service {
        Service::Greenapi => lost,
        Service::Chatapi => lost && reply.kind == "text",
        _ => false,
    }
}

/// A ChatAPI `sendFile` failure. The history names a file by a download URL, not known to be
/// the link we sent, so it cannot tell whether the file went out: when the gateway took the
/// request but its answer was lost the file is not sent again (at most once, as the Cloud
/// API's are).
// Unconfirmed: whether a sent file's `body` in `GET /messages` is our URL or the gateway's copy.
pub(super) fn chatapi_file_failure(e: &crate::messengers::chatapi::ChatApiError) -> Failure {
    use crate::messengers::chatapi::ChatApiError;
    match e {
        ChatApiError::Network(n) if !n.is_connect() => interrupted(),
        other => (StepError::upstream(other), errors::from_chatapi(other)),
    }
}

/// A Cloud API send's failure. When Meta took the request but its answer was lost (a timeout
/// or a connection dropped after the request left) the message may have gone out, and the
/// Cloud API has no history to tell: it is not sent again (at most once, as runs do).
pub(super) fn wacloud_failure(e: &crate::messengers::wacloud::CloudApiError) -> Failure {
    use crate::messengers::wacloud::CloudApiError;
    match e {
        CloudApiError::Network(n) if !n.is_connect() => interrupted(),
        other => (StepError::upstream(other), errors::from_wacloud(other)),
    }
}

fn interrupted() -> Failure {
    (
        StepError::permanent(Reason::InterruptedSend),
        SendingError::new(
            ErrorCode::General,
            "delivery was interrupted; the message may have reached the customer and is not sent again",
        ),
    )
}

pub(super) async fn mark_started(core: &Core, reply: &Reply, route: &Route) -> Result<(), DbError> {
    let (id, provider, chat) = (reply.id, route.messenger_provider_id, route.chat_id.clone());
    core.db(move |c| super::mark_send_started(c, id, provider, &chat))
        .await
}

async fn send_whatsapp(
    core: &Core,
    reply: &Reply,
    provider: &crate::providers::Provider,
    route: &Route,
    text: &str,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<Result<String, Failure>, DbError> {
    if let Some(closed) = window_closed(provider, route) {
        return Ok(Err(closed));
    }
    let to = match WaRecipient::parse(&route.chat_id) {
        Ok(to) => to,
        Err(e) => return Ok(Err(general(StepError::permanent((&e).into())))),
    };
    let api = match clients::chatapi(core, provider) {
        Ok(api) => api,
        Err(e) => return Ok(Err(general(e))),
    };
    if let Some(at) = earlier {
        // An earlier attempt's answer was lost (a timeout, or a worker that died in the call):
        // the gateway's history of the chat says whether it went out. The newest message of
        // ours with this text that no other reply owns is that attempt's.
        let since = at - chrono::Duration::seconds(CLOCK_SKEW_SECS);
        let history = match api.sent_since(&to, since.and_utc().timestamp()).await {
            Ok(history) => history,
            Err(e) => return Ok(Err((StepError::upstream(&e), errors::from_chatapi(&e)))),
        };
        let (id, provider, chat) = (reply.id, route.messenger_provider_id, route.chat_id.clone());
        let others = core
            .db(move |c| super::sent_by_others(c, id, provider, &chat, since))
            .await?;
        if let Some(m) = history
            .iter()
            .rev()
            .find(|m| m.body.trim() == text && !others.contains(&m.id))
        {
            tracing::info!(reply = reply.id, message = %m.id, "an earlier attempt was delivered");
            return Ok(Ok(external_id(&m.id, reply)));
        }
    }
    mark_started(core, reply, route).await?;
    Ok(match api.send_text(&to, text).await {
        Ok(sent) => Ok(external_id(&sent.id, reply)),
        Err(e) => Err((StepError::upstream(&e), errors::from_chatapi(&e))),
    })
}

async fn send_greenapi(
    core: &Core,
    reply: &Reply,
    provider: &crate::providers::Provider,
    route: &Route,
    text: &str,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<Result<String, Failure>, DbError> {
    let sent = |m: &HistoryMessage| m.text_message.as_deref().map(str::trim) == Some(text);
    let (api, to) = match greenapi_start(core, reply, provider, route, earlier, sent).await {
        Ok(GreenStart::Send(api, to)) => (api, to),
        Ok(GreenStart::Delivered(id)) => return Ok(Ok(id)),
        Err(failure) => return Ok(Err(failure)),
    };
    mark_started(core, reply, route).await?;
    Ok(match api.send_text(&to, text).await {
        Ok(id) => Ok(external_id(&id, reply)),
        Err(e) => Err((StepError::upstream(&e), errors::from_greenapi(&e))),
    })
}

/// What a Green-API delivery starts from.
pub(super) enum GreenStart {
    /// Send through this client to this recipient.
    Send(GreenApi, WaRecipient),
    /// An earlier attempt (its answer lost) went out: this is its id for MG.
    Delivered(String),
}

/// The client and recipient of a Green-API delivery. When an earlier attempt's answer was
/// lost, the chat's history is asked first: a message of ours since then that `sent` accepts
/// is that attempt's.
pub(super) async fn greenapi_start(
    core: &Core,
    reply: &Reply,
    provider: &crate::providers::Provider,
    route: &Route,
    earlier: Option<chrono::NaiveDateTime>,
    sent: impl Fn(&HistoryMessage) -> bool,
) -> Result<GreenStart, Failure> {
    let to = WaRecipient::parse(&route.chat_id)
        .map_err(|e| general(StepError::permanent((&e).into())))?;
    let api = clients::greenapi(core, provider).map_err(general)?;
    if let Some(at) = earlier {
        let since = at.and_utc().timestamp() - CLOCK_SKEW_SECS;
        let history = api
            .sent_since(&to, since)
            .await
            .map_err(|e| (StepError::upstream(&e), errors::from_greenapi(&e)))?;
        if let Some(m) = history.iter().find(|m| sent(m)) {
            tracing::info!(reply = reply.id, "an earlier attempt was delivered");
            return Ok(GreenStart::Delivered(external_id(&m.id_message, reply)));
        }
    }
    Ok(GreenStart::Send(api, to))
}

/// The Cloud API keeps no history to check a lost answer against: a reply whose earlier
/// attempt may have gone out is not sent again.
async fn send_wacloud(
    core: &Core,
    reply: &Reply,
    provider: &crate::providers::Provider,
    route: &Route,
    text: &str,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<Result<String, Failure>, DbError> {
    let (api, digits) = match wacloud_start(core, provider, route, earlier) {
        Ok(start) => start,
        Err(failure) => return Ok(Err(*failure)),
    };
    mark_started(core, reply, route).await?;
    Ok(match api.send_text(&digits, text).await {
        Ok(id) => Ok(external_id(&id, reply)),
        Err(e) => Err(wacloud_failure(&e)),
    })
}

/// The client and the recipient's digits of a Cloud API delivery, unless the 24-hour window
/// is closed or an earlier attempt may have gone out (never sent twice).
pub(super) fn wacloud_start(
    core: &Core,
    provider: &crate::providers::Provider,
    route: &Route,
    earlier: Option<chrono::NaiveDateTime>,
) -> Result<(CloudApi, String), Box<Failure>> {
    if let Some(closed) = window_closed(provider, route) {
        return Err(Box::new(closed));
    }
    if earlier.is_some() {
        return Err(Box::new(interrupted()));
    }
    let to = WaRecipient::parse(&route.chat_id)
        .map_err(|e| Box::new(general(StepError::permanent((&e).into()))))?;
    let api = clients::wacloud(core, provider).map_err(|e| Box::new(general(e)))?;
    Ok((api, to.digits().unwrap_or_default().to_owned()))
}

/// Official WhatsApp (the Cloud API behind 1msg.io) takes free text only within 24 hours of
/// the customer's last message; after that the reply fails at once with `reply_timed_out`
/// rather than after a round trip the gateway would refuse. Unofficial gateways have no
/// window.
pub(super) fn window_closed(
    provider: &crate::providers::Provider,
    route: &Route,
) -> Option<Failure> {
    let last = route.customer_at?;
    if !crate::messengers::window::official(&provider.settings)
        || crate::messengers::window::open(Some(last))
    {
        return None;
    }
    let at = last.format("%Y-%m-%d %H:%M").to_string();
    Some((
        StepError::permanent(Reason::ReplyWindowClosed {
            last_customer_message: at.clone(),
        }),
        SendingError::new(
            ErrorCode::ReplyTimedOut,
            format!(
                "the customer last wrote at {at} UTC, more than {} hours ago: WhatsApp accepts only template messages now",
                crate::messengers::window::WINDOW_HOURS
            ),
        ),
    ))
}

async fn send_telegram(
    core: &Core,
    reply: &Reply,
    provider: &crate::providers::Provider,
    route: &Route,
    text: &str,
) -> Result<Result<String, Failure>, DbError> {
    let api = match clients::telegram(core, provider) {
        Ok(api) => api,
        Err(step) => {
            let message = step.reason.to_string();
            return Ok(Err((step, SendingError::new(ErrorCode::General, message))));
        }
    };
    mark_started(core, reply, route).await?;
    Ok(match api.send_message(route.chat_id.as_str(), text).await {
        Ok(m) => Ok(m.message_id.to_string()),
        Err(e) => Err((StepError::upstream(&e), errors::from_telegram(&e))),
    })
}

/// The messenger's id, or ours when a gateway confirmed the send without naming it (MG needs
/// some id for the message).
pub(super) fn external_id(id: &str, reply: &Reply) -> String {
    if id.trim().is_empty() {
        format!("svz-reply-{}", reply.id)
    } else {
        id.to_owned()
    }
}
