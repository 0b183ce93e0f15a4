//! Executing a run: steps in order from the first unfinished one; each step's outcome is
//! committed before the next starts, so a retry or a resumed run never repeats a step that
//! already succeeded.

use std::time::Instant;

use diesel::Connection;
use serde_json::{Map, Value as Json};

use super::{StepError, actions};
use crate::Core;
use crate::bundles::resolve::{ResolveError, RunContext, resolve_step};
use crate::db::{DbError, now};
use crate::providers;
use crate::reason::Reason;
use crate::runs::{self, Run, StepOutcome, StepRecord, StepStatus};

/// Claims the run (queued and due, or abandoned by a dead worker, and its conversation's
/// turn) and executes it, then the runs of its conversation it hands on to.
pub async fn execute(core: &Core, id: i64) -> Result<(), DbError> {
    let next = claim_and_run(core, id).await?;
    follow(core, next).await
}

/// Executes a run this worker holds the lease of, from its first unfinished step (`done`:
/// the step records so far), then the runs of its conversation it hands on to.
pub async fn execute_claimed(core: &Core, run: &Run, done: &[StepRecord]) -> Result<(), DbError> {
    let next = run_once(core, run, done).await?;
    follow(core, next).await
}

/// Executes `next`, handed on by a run that settled, and whatever it hands on in turn. A
/// stopping worker starts none of them: it hands the next back, for any worker's sweeper.
async fn follow(core: &Core, mut next: Option<i64>) -> Result<(), DbError> {
    while let Some(id) = next.take() {
        if core.closing.is_set() {
            core.db(move |c| crate::shutdown::hand_back(c, &[], &[id]))
                .await?;
            break;
        }
        next = claim_and_run(core, id).await?;
    }
    Ok(())
}

/// Claims and executes one run; answers the run it hands on to.
async fn claim_and_run(core: &Core, id: i64) -> Result<Option<i64>, DbError> {
    let lease = core.lease();
    let claimed = core
        .db(move |c| {
            let Some(run) = runs::claim_or_wait(c, id, lease)? else {
                return Ok::<_, DbError>(None);
            };
            let done = runs::steps(c, id)?;
            Ok(Some((run, done)))
        })
        .await?;
    match claimed {
        Some((run, done)) => run_once(core, &run, &done).await,
        None => Ok(None),
    }
}

/// Executes a claimed run; answers the next run of its conversation when this one settled and
/// another waits behind it.
async fn run_once(core: &Core, run: &Run, done: &[StepRecord]) -> Result<Option<i64>, DbError> {
    let id = run.id;
    let (conversation, inbox_id) = (run.conversation.clone(), run.inbox_id);
    let next = match run_steps(core, run, done).await? {
        Ok(Finished::Recorded(next)) => next,
        Ok(Finished::NotYet) => {
            core.db(move |c| {
                if runs::succeed(c, id)? {
                    runs::hand_on(c, conversation.as_deref(), inbox_id)
                } else {
                    Ok(None)
                }
            })
            .await?
        }
        Ok(Finished::Released) => {
            tracing::info!(run = id, "worker stopping; run released for another worker");
            core.db(move |c| runs::release(c, id)).await?;
            None
        }
        Err(e) => match crate::db::lease::retry_at(&core.config, run.attempts, &e.retry) {
            // Still queued: the runs behind it keep waiting for it.
            Some(retry_at) => {
                tracing::info!(run = id, attempt = run.attempts, error = %e, "run will be retried");
                let error = e.stored();
                core.db(move |c| runs::retry_later(c, id, &error, retry_at))
                    .await?;
                None
            }
            None => {
                tracing::warn!(run = id, error = %e, "run failed");
                let error = e.stored();
                let bundle_id = run.bundle_id;
                core.db(move |c| {
                    // The failure, its count on the bundle (which may pause it) and the alert
                    // are one commit: none without the others.
                    c.transaction::<_, DbError, _>(|c| {
                        runs::fail(c, id, &error)?;
                        crate::alerts::on_run_failed(c, bundle_id, &error)
                    })?;
                    runs::hand_on(c, conversation.as_deref(), inbox_id)
                })
                .await?
            }
        },
    };
    Ok(next)
}

/// Whether the run's success is already committed (with its last step, in one transaction).
enum Finished {
    /// Committed; with the next run of its conversation, if one waits.
    Recorded(Option<i64>),
    NotYet,
    /// The worker is stopping: steps left are for another worker.
    Released,
}

/// Outer `Err`: the database failed (the job is retried as a whole). Inner `Err`: a step failed.
async fn run_steps(
    core: &Core,
    run: &Run,
    done: &[StepRecord],
) -> Result<Result<Finished, StepError>, DbError> {
    let bundle = match run.snapshot() {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(StepError::permanent(Reason::DefinitionUnreadable {
                detail: e.to_string(),
            })));
        }
    };
    let run_id = run.id;
    let target_id = bundle.target_provider_id;
    let target = match core.provider(target_id).await {
        Ok(p) => p,
        Err(providers::ProviderError::Db(e)) => return Err(e),
        Err(providers::ProviderError::NotFound) => {
            return Ok(Err(StepError::permanent(Reason::ProviderGone)));
        }
        Err(e) => {
            tracing::warn!(provider = target_id, error = %e, "target provider unreadable");
            return Ok(Err(StepError::permanent(Reason::ProviderUnreadable)));
        }
    };
    let mut ctx = RunContext {
        event: run.event_fields(),
        outputs: Vec::new(),
    };
    for (i, step) in bundle.steps.iter().enumerate() {
        let position = i32::try_from(i).unwrap_or(i32::MAX);
        if let Some(rec) = done
            .iter()
            .find(|r| r.position == position && r.status == StepStatus::Succeeded)
        {
            let out: Map<String, Json> = rec
                .outputs
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or_default();
            ctx.outputs.push(out);
            continue;
        }
        // Between steps is the one safe place to stop: nothing is half sent.
        if core.closing.is_set() {
            return Ok(Ok(Finished::Released));
        }
        let repeatable = actions::repeatable(target.kind, &step.action);
        let earlier = done.iter().find(|r| r.position == position);
        if !repeatable
            && !actions::confirmable(target.kind, &step.action)
            && earlier.is_some_and(|r| r.status == StepStatus::Running)
        {
            // A worker died during this call: the upstream may or may not have sent it, and
            // sending again could reach the customer twice. Stop and let the admin decide.
            return Ok(Err(StepError::permanent(Reason::InterruptedSend)));
        }
        let started_at = now();
        let clock = Instant::now();
        let (inputs, result) = match resolve_step(step, &ctx, target.kind) {
            Ok(inputs) => {
                if !repeatable {
                    let (action, attempt) = (step.action.clone(), run.attempts);
                    let inputs_json = serde_json::to_value(&inputs).unwrap_or(Json::Null);
                    core.grouped(move |c| {
                        runs::mark_step_started(c, run_id, position, &action, &inputs_json, attempt)
                    })
                    .await?;
                }
                // Which messenger the event came from picks the RetailCRM chat channel.
                let messenger = ctx.event.get("messenger").and_then(Json::as_str);
                let attempt = actions::Attempt {
                    run_id,
                    idem: &format!("svz-{}-{}", run.id, i + 1),
                    // Anything an earlier attempt sent went out after the run first started.
                    earlier: earlier.map(|r| run.started_at.unwrap_or(r.started_at)),
                    messenger,
                    // Its chat is where an operator's reply goes back to.
                    source_provider_id: messenger.map(|_| bundle.source_provider_id),
                    chat_id: ctx.event.get("chat_id").and_then(Json::as_str),
                    customer_time: ctx.event.get("time").and_then(Json::as_i64),
                    media: ctx
                        .event
                        .get(super::events::ATTACHMENT_FIELD)
                        .filter(|m| !m.is_null())
                        .and_then(|m| serde_json::from_value(m.clone()).ok()),
                };
                let result = actions::execute(core, &target, &step.action, &inputs, &attempt).await;
                (inputs, result)
            }
            Err(e) => (
                Default::default(),
                Err(StepError::permanent(resolve_reason(e))),
            ),
        };
        let took = clock.elapsed();
        crate::metrics::get().step(
            &step.action,
            target.kind.as_str(),
            target.id,
            took,
            result.as_ref().err().map(|e| (&e.reason, e.is_transient())),
        );
        let inputs_json = serde_json::to_value(&inputs).unwrap_or(Json::Null);
        let duration_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        let outputs = result.as_ref().ok().map(|o| Json::Object(o.clone()));
        let error = result.as_ref().err().map(StepError::stored);
        let action = step.action.clone();
        let attempt = run.attempts;
        let run_done = result.is_ok() && i + 1 == bundle.steps.len();
        let conversation = run.conversation.clone();
        let inbox_id = run.inbox_id;
        // The last step's success and the run's are one commit (shared with other runs').
        let waited_on = core
            .grouped(move |c| {
                runs::record_step(
                    c,
                    &StepOutcome {
                        run_id,
                        position,
                        action: &action,
                        inputs: &inputs_json,
                        result: match (&outputs, &error) {
                            (Some(o), _) => Ok(o),
                            (None, Some(e)) => Err(e.as_str()),
                            (None, None) => Err("no result"),
                        },
                        attempt,
                        duration_ms,
                        started_at,
                    },
                )?;
                if run_done {
                    return runs::succeed(c, run_id);
                }
                Ok(false)
            })
            .await?;
        // After the commit: see `runs::hand_on`.
        let next = if waited_on {
            let conversation = conversation.clone();
            core.db(move |c| runs::hand_on(c, conversation.as_deref(), inbox_id))
                .await?
        } else {
            None
        };
        match result {
            Ok(_) if run_done => return Ok(Ok(Finished::Recorded(next))),
            Ok(out) => ctx.outputs.push(out),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(Finished::NotYet))
}

fn resolve_reason(e: ResolveError) -> Reason {
    match e {
        ResolveError::MissingEventField(field) => Reason::MissingEventField { field },
        ResolveError::MissingOutput(step, field) => Reason::MissingOutput { step, field },
        ResolveError::Template(error) => Reason::Template { error },
    }
}
