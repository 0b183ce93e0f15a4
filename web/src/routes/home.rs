//! The home page: is execution healthy right now? How many workers are alive, how much work
//! waits and since when, and a loud warning when work waits with no worker to do it. Then, per
//! bundle, its runs per hour over the last day (a server-drawn SVG, failures marked), and when
//! each provider's webhook last delivered; each links to the matching runs or provider.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use svyazka_core::alerts::active::Active;
use svyazka_core::dashboard::{self, BundleActivity};
use svyazka_core::reachability::{self, Unreachable};
use svyazka_core::workers::{self, Health};

use crate::error::WebError;
use crate::i18n::{Lang, Msg, reasons};
use crate::page::{PageCtx, ok};
use crate::state::AppState;

/// What the admin reads when the upstreams cannot reach our public address; `None` when they can.
pub(crate) fn reach_warning(lang: Lang, public_url: &str) -> Option<String> {
    let key = match reachability::check(public_url)? {
        Unreachable::Localhost => "reach_localhost",
        Unreachable::Private => "reach_private",
        Unreachable::PlainHttp => "reach_http",
        Unreachable::Invalid => "reach_invalid",
    };
    Some(format!(
        "{} {}",
        lang.f(key, &[("url", &public_url as &dyn std::fmt::Display)]),
        lang.t("reach_fix")
    ))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    reach: Option<String>,
    health: Health,
    queue_mode: bool,
    /// Whole seconds the oldest due item has waited.
    oldest_secs: u64,
    activity: Vec<ActivityView>,
    providers: Vec<ProviderView>,
    attention: Vec<AttentionView>,
}

/// One line of «needs attention»: what is wrong (HTML), and where to look.
struct AttentionView {
    kind: &'static str,
    text: String,
    href: String,
}

fn attention_views(lang: Lang, a: &Active) -> Vec<AttentionView> {
    let line = |key: &str, name: &str, count: i32, last: Option<Msg>| {
        let m = Msg::new(lang.f(
            key,
            &[("name", &name as &dyn std::fmt::Display), ("count", &count)],
        ));
        match last.filter(|l| !l.is_empty()) {
            Some(l) => m.text(" ").text(lang.t("attention_last_error")).then(l),
            None => m,
        }
        .to_string()
    };
    let paused = a.paused.iter().map(|b| AttentionView {
        kind: "paused",
        text: line(
            "attention_paused",
            &b.name,
            b.pause.failures,
            b.pause
                .last_error
                .as_deref()
                .map(|e| reasons::stored(lang, e, None)),
        ),
        href: format!("/bundles/{}", b.id),
    });
    let failing = a.failing_bundles.iter().map(|b| AttentionView {
        kind: "failing",
        text: line("attention_failing", &b.name, b.failures, None),
        href: format!("/runs?bundle_id={}&status=failed", b.id),
    });
    let providers = a.failing_providers.iter().map(|p| AttentionView {
        kind: "provider",
        text: line(
            "attention_provider",
            &p.name,
            0,
            p.message.as_deref().map(|m| reasons::check(lang, m)),
        ),
        href: format!("/providers/{}", p.id),
    });
    paused.chain(failing).chain(providers).collect()
}

/// Chart geometry: one bar per hour.
const BAR_W: u32 = 10;
const CHART_H: u32 = 40;
const TIME: &str = "%Y-%m-%d %H:%M";

struct Bar {
    x: u32,
    /// The whole bar (all runs of the hour), from the bottom.
    y: u32,
    h: u32,
    /// Its failed part, drawn over the bottom of the bar.
    fy: u32,
    fh: u32,
    title: String,
    href: String,
}

struct ActivityView {
    id: i64,
    name: String,
    running: bool,
    runs: i64,
    failed: i64,
    width: u32,
    bars: Vec<Bar>,
}

struct ProviderView {
    id: i64,
    name: String,
    last_ok: Option<String>,
    last_error: Option<String>,
}

fn scaled(n: i64, max: i64) -> u32 {
    let h = n.saturating_mul(i64::from(CHART_H - 2)) / max.max(1);
    // A hour with runs never disappears into a zero-height bar.
    let h = if n > 0 { h.max(2) } else { 0 };
    u32::try_from(h).unwrap_or(CHART_H)
}

fn activity_view(ctx: &PageCtx, a: BundleActivity, max: i64) -> ActivityView {
    let bars = a
        .hours
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (height, failed) = (
                scaled(h.runs, max),
                scaled(h.failed, max).min(scaled(h.runs, max)),
            );
            let end = h.start + chrono::Duration::minutes(59);
            Bar {
                x: u32::try_from(i).unwrap_or(0) * BAR_W,
                y: CHART_H - height,
                h: height,
                fy: CHART_H - failed,
                fh: failed,
                title: ctx.lang.f(
                    "activity_hour",
                    &[
                        ("hour", &h.start.format("%H:00") as &dyn std::fmt::Display),
                        ("runs", &h.runs),
                        ("failed", &h.failed),
                    ],
                ),
                href: format!(
                    "/runs?bundle_id={}&from={}&to={}",
                    a.bundle_id,
                    h.start.format("%Y-%m-%dT%H:%M"),
                    end.format("%Y-%m-%dT%H:%M")
                ),
            }
        })
        .collect::<Vec<_>>();
    ActivityView {
        runs: a.runs(),
        failed: a.failed(),
        id: a.bundle_id,
        name: a.name,
        running: a.running,
        width: u32::try_from(dashboard::HOURS).unwrap_or(24) * BAR_W,
        bars,
    }
}

/// Whether work waits with no live worker (pages then show `_stall.html`).
pub async fn stalled(state: &AppState) -> Result<bool, WebError> {
    let stall_after = state.core.config.stall_after;
    Ok(state
        .core
        .db(move |c| workers::health(c, stall_after))
        .await?
        .stalled)
}

#[get("/")]
pub async fn home(ctx: PageCtx, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let stall_after = state.core.config.stall_after;
    let health = state
        .core
        .db(move |c| workers::health(c, stall_after))
        .await?;
    let now = svyazka_core::db::now();
    let oldest_secs = health.backlog.age(now).as_secs();
    let (activity, providers, deliveries, active) = state
        .core
        .db(move |c| {
            Ok::<_, WebError>((
                dashboard::activity(c, now)?,
                svyazka_core::providers::list(c)?,
                dashboard::deliveries(c)?,
                svyazka_core::alerts::active::active(c)?,
            ))
        })
        .await?;
    // One scale for every bundle, so their bars compare.
    let max = activity
        .iter()
        .flat_map(|a| a.hours.iter().map(|h| h.runs))
        .max()
        .unwrap_or(0);
    let activity = activity
        .into_iter()
        .map(|a| activity_view(&ctx, a, max))
        .collect();
    let providers = providers
        .into_iter()
        .map(|p| {
            let log = deliveries.get(&p.id);
            ProviderView {
                id: p.id,
                name: p.name,
                last_ok: log
                    .and_then(|l| l.last_ok_at)
                    .map(|t| t.format(TIME).to_string()),
                last_error: log
                    .and_then(|l| l.last_error_at)
                    .map(|t| t.format(TIME).to_string()),
            }
        })
        .collect();
    ok(&HomePage {
        attention: attention_views(ctx.lang, &active),
        activity,
        providers,
        reach: reach_warning(ctx.lang, &state.core.config.public_url),
        ctx,
        health,
        queue_mode: !state.core.config.is_embedded(),
        oldest_secs,
    })
}
