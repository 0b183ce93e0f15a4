//! События: every stored webhook delivery and trigger with what came of it: the bundles it
//! started (with their runs), that no running bundle listens to it, that it was an order of
//! another store (skipped), or why it could not become an event. Filters by provider and
//! outcome, 50 a page, newest first, like Запуски; each event has its own page with the
//! payload as it arrived.
//!
//! Bad query input never fails the page: the filter it belongs to is dropped and a note says so.

use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;
use svyazka_core::inbox::InboxOutcome;
use svyazka_core::inbox::history::{self, EventFilter, EventItem, OutcomeFilter, Subject};

use super::pager::{self, PER_PAGE, Pager};
use super::runs::{EXCERPT_CHARS, excerpt, fmt_time, status_label};
use crate::error::WebError;
use crate::i18n::{self, Msg, reasons};
use crate::page::{PageCtx, ok};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(show);
}

/// The outcomes the filter offers, in the order an admin looks for them.
const OUTCOMES: &[OutcomeFilter] = &[
    OutcomeFilter::Is(InboxOutcome::Started),
    OutcomeFilter::Is(InboxOutcome::NotListened),
    OutcomeFilter::Is(InboxOutcome::NoMatch),
    OutcomeFilter::Is(InboxOutcome::OtherStore),
    OutcomeFilter::Is(InboxOutcome::Failed),
    OutcomeFilter::Waiting,
];

fn outcome_label(ctx: &PageCtx, o: OutcomeFilter) -> &'static str {
    match o {
        OutcomeFilter::Is(InboxOutcome::Started) => ctx.t("ev_started"),
        OutcomeFilter::Is(InboxOutcome::NotListened) => ctx.t("ev_not_listened"),
        OutcomeFilter::Is(InboxOutcome::NoMatch) => ctx.t("ev_no_match"),
        OutcomeFilter::Is(InboxOutcome::OtherStore) => ctx.t("ev_other_store"),
        OutcomeFilter::Is(InboxOutcome::Failed) => ctx.t("ev_failed"),
        OutcomeFilter::Waiting => ctx.t("ev_waiting"),
    }
}

pub struct RunLink {
    pub id: i64,
    pub bundle_name: String,
    pub status: String,
    pub status_label: &'static str,
}

/// One event as both pages show it.
pub struct EventRow {
    pub id: i64,
    pub provider_id: i64,
    pub provider_name: String,
    pub received: String,
    /// The event as the bundles' editor names it («Новая сделка», «Входящее сообщение»).
    pub event_label: String,
    /// What it is about: the order and its status, or the message.
    pub subject: String,
    /// The filter's word for the outcome (also the badge's class).
    pub outcome: &'static str,
    pub outcome_label: &'static str,
    /// Why: the skip's or failure's reason, the status no bundle wanted, a pending retry.
    pub detail: Option<Msg>,
    pub runs: Vec<RunLink>,
    pub attempts: i32,
}

fn row(ctx: &PageCtx, e: &EventItem, full: bool) -> EventRow {
    let lang = ctx.lang;
    let outcome = match e.item.outcome {
        Some(o) => OutcomeFilter::Is(o),
        None => OutcomeFilter::Waiting,
    };
    let event_label = |key: &str| match e.provider_kind {
        Some(kind) => i18n::catalog::event(lang, kind, key),
        None => key.to_string(),
    };
    let (event_label, subject) = match e.subject() {
        Subject::Order {
            order_id,
            event_type,
            status,
        } => {
            let mut s = format!("{} {order_id}", ctx.t("ev_order"));
            if !status.is_empty() {
                s.push_str(&format!(" · {} «{status}»", ctx.t("ev_status")));
            }
            (event_label(event_type), s)
        }
        Subject::Message {
            event_type,
            sender,
            text,
        } => (
            event_label(event_type),
            format!("{sender}: {}", if full { text } else { excerpt(&text) }),
        ),
        Subject::Unreadable { kind } => (kind, String::new()),
    };
    let reason = e
        .item
        .error
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let m = reasons::stored(lang, s, e.provider_kind);
            if full { m } else { m.excerpt(EXCERPT_CHARS) }
        });
    let detail = match outcome {
        OutcomeFilter::Is(InboxOutcome::NoMatch) => Some(Msg::new(match e.event_status() {
            Some(st) => lang.f("ev_no_match_status", &[("status", &st)]),
            None => lang.t("ev_no_match_detail").to_string(),
        })),
        OutcomeFilter::Is(InboxOutcome::NotListened) => {
            Some(Msg::new(lang.t("ev_not_listened_detail")))
        }
        // A failed attempt that will be tried again.
        OutcomeFilter::Waiting => reason.map(|r| Msg::new(lang.t("ev_retrying")).then(r)),
        _ => reason,
    };
    EventRow {
        id: e.item.id,
        provider_id: e.item.provider_id,
        provider_name: e.provider_name.clone(),
        received: fmt_time(e.item.created_at),
        event_label,
        subject,
        outcome: outcome.as_str(),
        outcome_label: outcome_label(ctx, outcome),
        detail,
        runs: e
            .runs
            .iter()
            .map(|r| RunLink {
                id: r.id,
                bundle_name: r.bundle_name.clone(),
                status: r.status.to_string(),
                status_label: status_label(ctx, r.status),
            })
            .collect(),
        attempts: e.item.attempts,
    }
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Debug, Default)]
struct Filters {
    filter: EventFilter,
    page: i64,
}

impl Filters {
    fn url(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(p) = self.filter.provider_id {
            pairs.push(("provider_id", p.to_string()));
        }
        if let Some(o) = self.filter.outcome {
            pairs.push(("outcome", o.as_str().to_string()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if q.is_empty() {
            "/events".to_string()
        } else {
            format!("/events?{q}")
        }
    }
}

/// Reads the query; a part that cannot be used is dropped with a note.
fn read_filters(ctx: &PageCtx, query: &str, provider_ids: &[i64]) -> (Filters, Vec<String>) {
    let pairs: Vec<(String, String)> = serde_html_form::from_str(query).unwrap_or_default();
    let mut f = Filters {
        page: 1,
        ..Default::default()
    };
    let mut notes = Vec::new();
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let mut note = |key: &str| notes.push(format!("{}: «{}»", ctx.t(key), excerpt(v)));
        match k.as_str() {
            "provider_id" => match v.parse::<i64>() {
                Ok(id) if provider_ids.contains(&id) => f.filter.provider_id = Some(id),
                _ => note("ev_bad_provider"),
            },
            "outcome" => match OutcomeFilter::parse(v) {
                Some(o) => f.filter.outcome = Some(o),
                None => note("ev_bad_outcome"),
            },
            "page" => match v.parse::<i64>() {
                Ok(p) if (1..=1_000_000).contains(&p) => f.page = p,
                _ => note("runs_bad_page"),
            },
            _ => {}
        }
    }
    (f, notes)
}

pub struct ProviderOption {
    pub id: i64,
    pub name: String,
}

/// A provider's last refused delivery (not stored: its body could not be read).
pub struct Refusal {
    pub provider_id: i64,
    pub provider_name: String,
    pub at: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "events/list.html")]
struct ListPage {
    ctx: PageCtx,
    providers: Vec<ProviderOption>,
    provider_id: Option<i64>,
    outcome: Option<&'static str>,
    outcomes: Vec<(&'static str, &'static str)>,
    notes: Vec<String>,
    refusals: Vec<Refusal>,
    t: EventsTable,
}

pub struct EventsTable {
    pub rows: Vec<EventRow>,
    pub pager: Pager,
    /// This page's own URL, re-fetched by htmx while `live`.
    pub self_url: String,
    pub live: bool,
    pub filtered: bool,
}

impl ListPage {
    fn is_selected_provider(&self, id: &i64) -> bool {
        self.provider_id == Some(*id)
    }

    fn is_selected_outcome(&self, o: &str) -> bool {
        self.outcome == Some(o)
    }
}

#[get("/events")]
pub async fn list(
    req: HttpRequest,
    ctx: PageCtx,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let providers: Vec<ProviderOption> = state
        .core
        .db(svyazka_core::providers::list)
        .await?
        .into_iter()
        .map(|p| ProviderOption {
            id: p.id,
            name: p.name,
        })
        .collect();
    let ids: Vec<i64> = providers.iter().map(|p| p.id).collect();
    let (f, notes) = read_filters(&ctx, req.query_string(), &ids);
    let refusals = state
        .core
        .db(svyazka_core::hook_log::refusals)
        .await?
        .into_iter()
        .filter(|h| f.filter.provider_id.is_none_or(|p| p == h.provider_id))
        .filter_map(|h| {
            let name = providers
                .iter()
                .find(|p| p.id == h.provider_id)?
                .name
                .clone();
            Some(Refusal {
                provider_id: h.provider_id,
                provider_name: name,
                at: h.last_error_at.map(fmt_time).unwrap_or_default(),
                error: h.last_error.unwrap_or_default(),
            })
        })
        .collect();
    let filter = f.filter.clone();
    let page = f.page;
    let (items, total, page) = state
        .core
        .db(move |c| pager::load(page, |p| history::list(c, &filter, p, PER_PAGE)))
        .await?;
    let live = items
        .iter()
        .any(|e| e.is_waiting() || e.runs.iter().any(|r| !r.status.is_settled()));
    let rows = items.iter().map(|e| row(&ctx, e, false)).collect();
    let pager = Pager::new(page, total, |p| f.url(p), "ev_total", "events-page");
    let outcomes = OUTCOMES
        .iter()
        .map(|o| (o.as_str(), outcome_label(&ctx, *o)))
        .collect();
    ok(&ListPage {
        providers,
        provider_id: f.filter.provider_id,
        outcome: f.filter.outcome.map(OutcomeFilter::as_str),
        outcomes,
        notes,
        refusals,
        t: EventsTable {
            rows,
            pager,
            self_url: f.url(page),
            live,
            filtered: f.filter.provider_id.is_some() || f.filter.outcome.is_some(),
        },
        ctx,
    })
}

// ---------------------------------------------------------------------------------------------
// An event's page

#[derive(Template)]
#[template(path = "events/show.html")]
struct ShowPage {
    ctx: PageCtx,
    r: EventRow,
    kind: String,
    /// The payload as stored, pretty-printed when it is JSON.
    payload: String,
    live: bool,
}

#[get("/events/{id:\\d+}")]
pub async fn show(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let item = state
        .core
        .db(move |c| history::get(c, id))
        .await?
        .ok_or(WebError::NotFound)?;
    let payload = serde_json::from_str::<serde_json::Value>(&item.item.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| item.item.payload.clone());
    let live = item.is_waiting() || item.runs.iter().any(|r| !r.status.is_settled());
    ok(&ShowPage {
        r: row(&ctx, &item, true),
        kind: item.item.kind.clone(),
        payload,
        live,
        ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_a_filter_word_that_reads_back() {
        for o in OUTCOMES {
            assert_eq!(OutcomeFilter::parse(o.as_str()), Some(*o));
        }
        assert_eq!(OutcomeFilter::parse("bogus"), None);
    }
}
