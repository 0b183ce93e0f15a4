//! Запуски: the run history (filters by bundle, status and dates, 50 a page, newest first), a
//! run's page (trigger payload, each step's resolved inputs, outputs, error, attempt, time, and
//! its place in its conversation: which run it waits for, how many wait for it), "Replay" of a
//! failed or retrying run, which resumes it at the failed step now, and "Skip", which gives a
//! run up so that the runs behind it in its conversation go on.
//!
//! Bad query input never fails the page: the filter it belongs to is dropped and a note says
//! so. While a listed run (or the shown run) is queued or running, htmx re-fetches the page
//! every few seconds and swaps in only the table (or the run) with `hx-select`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value as Json};
use svyazka_core::catalog;
use svyazka_core::jobs::Job;
use svyazka_core::providers::{self, ProviderError, ProviderKind};
use svyazka_core::runs::{self, Run, RunFilter, RunStatus, StepRecord, StepStatus};

use super::pager::{self, PER_PAGE, Pager};
use crate::error::WebError;
use crate::i18n::{self, Lang, Msg, reasons};
use crate::page::{PageCtx, ok, render, see_other};
use crate::session::CsrfOnly;
use crate::state::AppState;

/// Longest error shown in a list row; the run page shows it whole.
pub(crate) const EXCERPT_CHARS: usize = 140;
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(show)
        .service(replay)
        .service(skip);
}

pub(crate) fn status_label(ctx: &PageCtx, st: RunStatus) -> &'static str {
    match st {
        RunStatus::Queued => ctx.t("run_status_queued"),
        RunStatus::Running => ctx.t("run_status_running"),
        RunStatus::Succeeded => ctx.t("run_status_succeeded"),
        RunStatus::Failed => ctx.t("run_status_failed"),
        RunStatus::Skipped => ctx.t("run_status_skipped"),
    }
}

fn step_status_label(ctx: &PageCtx, st: StepStatus) -> &'static str {
    match st {
        StepStatus::Running => ctx.t("run_status_running"),
        StepStatus::Succeeded => ctx.t("run_status_succeeded"),
        StepStatus::Failed => ctx.t("run_status_failed"),
    }
}

pub(crate) fn fmt_time(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

fn fmt_opt(t: Option<NaiveDateTime>) -> String {
    t.map(fmt_time).unwrap_or_default()
}

pub(crate) fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= EXCERPT_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(EXCERPT_CHARS).collect();
    format!("{}…", head.trim_end())
}

// ---------------------------------------------------------------------------------------------
// The list

/// The raw query: every value kept as text so nothing the user typed can fail extraction.
#[derive(Debug, Default, Clone)]
struct RawQuery {
    bundle_id: String,
    status: String,
    from: String,
    to: String,
    page: String,
}

impl RawQuery {
    fn parse(query_string: &str) -> RawQuery {
        let pairs: Vec<(String, String)> =
            serde_html_form::from_str(query_string).unwrap_or_default();
        let mut q = RawQuery::default();
        for (k, v) in pairs {
            let v = v.trim().to_string();
            match k.as_str() {
                "bundle_id" => q.bundle_id = v,
                "status" => q.status = v,
                "from" => q.from = v,
                "to" => q.to = v,
                "page" => q.page = v,
                _ => {}
            }
        }
        q
    }
}

/// `YYYY-MM-DD` (the date input), or with a time (`YYYY-MM-DDTHH:MM[:SS]`, also with a space).
/// A bound without seconds or time covers the whole minute or day it names.
pub fn parse_bound(s: &str, end: bool) -> Option<NaiveDateTime> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = if end {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)?
        } else {
            NaiveTime::MIN
        };
        return Some(d.and_time(t));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(if end {
                t + chrono::Duration::microseconds(59_999_999)
            } else {
                t
            });
        }
    }
    None
}

/// The filters that were understood, with the text to echo in the form.
#[derive(Debug, Default, Clone)]
struct Filters {
    filter: RunFilter,
    /// Echoed back into the form (only the accepted values).
    from: String,
    to: String,
    page: i64,
}

impl Filters {
    /// The query string for these filters on `page` (empty values left out).
    fn query(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(b) = self.filter.bundle_id {
            pairs.push(("bundle_id", b.to_string()));
        }
        if let Some(s) = &self.filter.status {
            pairs.push(("status", s.to_string()));
        }
        if !self.from.is_empty() {
            pairs.push(("from", self.from.clone()));
        }
        if !self.to.is_empty() {
            pairs.push(("to", self.to.clone()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    fn url(&self, page: i64) -> String {
        let q = self.query(page);
        if q.is_empty() {
            "/runs".to_string()
        } else {
            format!("/runs?{q}")
        }
    }
}

/// Validates the query; each part that cannot be used is dropped with a note.
fn read_filters(ctx: &PageCtx, raw: &RawQuery, bundle_ids: &[i64]) -> (Filters, Vec<String>) {
    let mut f = Filters {
        page: 1,
        ..Default::default()
    };
    let mut notes = Vec::new();
    let mut note =
        |key: &str, value: &str| notes.push(format!("{}: «{}»", ctx.t(key), excerpt(value)));
    if !raw.bundle_id.is_empty() {
        match raw.bundle_id.parse::<i64>() {
            Ok(id) if bundle_ids.contains(&id) => f.filter.bundle_id = Some(id),
            _ => note("runs_bad_bundle", &raw.bundle_id),
        }
    }
    if !raw.status.is_empty() {
        match raw.status.parse::<RunStatus>() {
            Ok(s) => f.filter.status = Some(s),
            Err(_) => note("runs_bad_status", &raw.status),
        }
    }
    if !raw.from.is_empty() {
        match parse_bound(&raw.from, false) {
            Some(t) => {
                f.filter.from = Some(t);
                f.from = raw.from.clone();
            }
            None => note("runs_bad_date", &raw.from),
        }
    }
    if !raw.to.is_empty() {
        match parse_bound(&raw.to, true) {
            Some(t) => {
                f.filter.to = Some(t);
                f.to = raw.to.clone();
            }
            None => note("runs_bad_date", &raw.to),
        }
    }
    if !raw.page.is_empty() {
        match raw.page.parse::<i64>() {
            Ok(p) if (1..=1_000_000).contains(&p) => f.page = p,
            _ => note("runs_bad_page", &raw.page),
        }
    }
    (f, notes)
}

pub struct RunRow {
    pub id: i64,
    pub bundle_id: i64,
    pub bundle_name: String,
    pub status: String,
    pub status_label: &'static str,
    pub attempts: i32,
    pub created: String,
    pub finished: String,
    pub error: Option<Msg>,
}

/// Everything `runs/table.html` shows.
pub struct RunsTable {
    pub rows: Vec<RunRow>,
    pub pager: Pager,
    /// This page's own URL, re-fetched by htmx while `live`.
    pub self_url: String,
    pub live: bool,
    pub filtered: bool,
}

pub struct BundleOption {
    pub id: i64,
    pub name: String,
}

#[derive(Template)]
#[template(path = "runs/list.html")]
struct ListPage {
    ctx: PageCtx,
    bundles: Vec<BundleOption>,
    bundle_id: Option<i64>,
    status: Option<RunStatus>,
    statuses: Vec<(&'static str, &'static str)>,
    from: String,
    to: String,
    notes: Vec<String>,
    t: RunsTable,
}

impl ListPage {
    fn is_selected_bundle(&self, id: &i64) -> bool {
        self.bundle_id == Some(*id)
    }

    fn is_selected_status(&self, s: &str) -> bool {
        self.status.is_some_and(|st| st.as_str() == s)
    }
}

#[get("/runs")]
pub async fn list(
    req: HttpRequest,
    ctx: PageCtx,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let raw = RawQuery::parse(req.query_string());
    let bundles: Vec<BundleOption> = state
        .core
        .db(svyazka_core::bundles::list)
        .await?
        .into_iter()
        .map(|b| BundleOption {
            id: b.id,
            name: b.name,
        })
        .collect();
    let ids: Vec<i64> = bundles.iter().map(|b| b.id).collect();
    let (f, notes) = read_filters(&ctx, &raw, &ids);

    let filter = f.filter.clone();
    let page = f.page;
    let (items, total, page) = state
        .core
        .db(move |c| pager::load(page, |p| runs::list(c, &filter, p, PER_PAGE)))
        .await?;
    let live = items.iter().any(|i| !i.run.status.is_settled());
    let rows: Vec<RunRow> = items
        .into_iter()
        .map(|i| RunRow {
            id: i.run.id,
            bundle_id: i.run.bundle_id,
            status_label: status_label(&ctx, i.run.status),
            attempts: i.run.attempts,
            created: fmt_time(i.run.created_at),
            finished: fmt_opt(i.run.finished_at),
            error: i
                .run
                .error
                .as_deref()
                .filter(|e| !e.trim().is_empty())
                .map(|e| reasons::stored(ctx.lang, e, None).excerpt(EXCERPT_CHARS)),
            status: i.run.status.to_string(),
            bundle_name: i.bundle_name,
        })
        .collect();
    let pager = Pager::new(page, total, |p| f.url(p), "runs_total", "runs-page");
    let filtered = f.filter.bundle_id.is_some()
        || f.filter.status.is_some()
        || f.filter.from.is_some()
        || f.filter.to.is_some();
    let statuses = RunStatus::ALL
        .iter()
        .map(|s| (s.as_str(), status_label(&ctx, *s)))
        .collect();
    let page = ListPage {
        bundles,
        bundle_id: f.filter.bundle_id,
        status: f.filter.status,
        statuses,
        from: f.from.clone(),
        to: f.to.clone(),
        notes,
        t: RunsTable {
            rows,
            pager,
            self_url: f.url(page),
            live,
            filtered,
        },
        ctx,
    };
    ok(&page)
}

// ---------------------------------------------------------------------------------------------
// A run's page

/// One row of a key/value table: the catalog's label when known, the key, the value as text.
pub struct FieldRow {
    pub label: String,
    pub key: String,
    pub value: String,
}

pub struct StepView {
    pub number: usize,
    pub label: String,
    pub status: String,
    pub status_label: &'static str,
    pub inputs: Vec<FieldRow>,
    pub outputs: Vec<FieldRow>,
    pub has_outputs: bool,
    pub error: Option<Msg>,
    pub attempt: Option<i32>,
    pub duration_ms: Option<i64>,
    pub started: String,
    pub finished: String,
}

#[derive(Template)]
#[template(path = "runs/show.html")]
struct ShowPage {
    ctx: PageCtx,
    run: Run,
    bundle_name: String,
    /// Set when the stored definition cannot be read.
    definition_error: Option<String>,
    run_error: Option<Msg>,
    status_label: &'static str,
    event_label: String,
    event: Vec<FieldRow>,
    steps: Vec<StepView>,
    can_replay: bool,
    can_skip: bool,
    live: bool,
    notice: Option<&'static str>,
    /// "чат 7999…@c.us" / "order 42", when the run belongs to a conversation.
    conversation: Option<String>,
    /// The earlier run of its conversation it waits for.
    waits_for: Option<i64>,
    /// Unfinished runs of its conversation after it.
    behind: i64,
    /// When a run waiting out a retry's back-off tries again.
    next_attempt: Option<String>,
}

impl ShowPage {
    fn created(&self) -> String {
        fmt_time(self.run.created_at)
    }

    fn started(&self) -> String {
        fmt_opt(self.run.started_at)
    }

    fn finished(&self) -> String {
        fmt_opt(self.run.finished_at)
    }
}

fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows in the catalog's order first (labelled), then any other keys as they are.
fn field_rows(
    map: &Map<String, Json>,
    known: impl Iterator<Item = (&'static str, String)>,
) -> Vec<FieldRow> {
    let mut rows = Vec::with_capacity(map.len());
    let mut seen = Vec::new();
    for (key, label) in known {
        if let Some(v) = map.get(key) {
            rows.push(FieldRow {
                label,
                key: key.to_string(),
                value: as_text(v),
            });
            seen.push(key);
        }
    }
    for (k, v) in map {
        if !seen.contains(&k.as_str()) {
            rows.push(FieldRow {
                label: k.clone(),
                key: k.clone(),
                value: as_text(v),
            });
        }
    }
    rows
}

/// The catalog's fields of `kind`, with their labels.
fn fields_of(
    lang: Lang,
    kind: ProviderKind,
    keys: impl Iterator<Item = &'static str>,
) -> impl Iterator<Item = (&'static str, String)> {
    keys.map(move |k| (k, i18n::catalog::field(lang, kind, k)))
}

fn json_object(s: Option<&str>) -> Map<String, Json> {
    match s.and_then(|s| serde_json::from_str::<Json>(s).ok()) {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    }
}

struct Loaded {
    run: Run,
    records: Vec<StepRecord>,
    source: Option<ProviderKind>,
    target: Option<ProviderKind>,
    waits_for: Option<i64>,
    behind: i64,
}

/// The conversation of a run as the admin reads it: its chat or its order.
fn conversation_label(ctx: &PageCtx, key: &str) -> String {
    // "b{bundle}:chat:{id}" / "b{bundle}:order:{id}" (see `conversations`).
    let rest = key.split_once(':').map_or(key, |(_, rest)| rest);
    match rest.split_once(':') {
        Some(("chat", id)) => format!("{} {id}", ctx.t("run_conversation_chat")),
        Some(("order", id)) => format!("{} {id}", ctx.t("run_conversation_order")),
        _ => rest.to_string(),
    }
}

fn kind_of(
    conn: &mut svyazka_core::db::AnyConnection,
    id: i64,
) -> Result<Option<ProviderKind>, WebError> {
    match providers::get(conn, id) {
        Ok(p) => Ok(Some(p.kind)),
        Err(ProviderError::Db(e)) => Err(e.into()),
        // Labels only: a deleted or unreadable provider leaves the keys unlabelled.
        Err(_) => Ok(None),
    }
}

async fn load(state: &AppState, id: i64) -> Result<Loaded, WebError> {
    state
        .core
        .db(move |c| {
            let run = runs::get(c, id)?.ok_or(WebError::NotFound)?;
            let records = runs::steps(c, id)?;
            let (source, target) = match run.snapshot() {
                Ok(b) => (
                    kind_of(c, b.source_provider_id)?,
                    kind_of(c, b.target_provider_id)?,
                ),
                Err(_) => (None, None),
            };
            let conversation = run.conversation.as_deref();
            let waits_for = if run.status == RunStatus::Queued {
                runs::waits_for(c, conversation, run.inbox_id)?
            } else {
                None
            };
            let behind = if run.status.is_settled() {
                0
            } else {
                runs::waiting_behind(c, conversation, run.inbox_id)?
            };
            Ok(Loaded {
                run,
                records,
                source,
                target,
                waits_for,
                behind,
            })
        })
        .await
}

fn show_page(ctx: PageCtx, loaded: Loaded, notice: Option<&'static str>) -> ShowPage {
    let lang = ctx.lang;
    let Loaded {
        run,
        records,
        source,
        target,
        waits_for,
        behind,
    } = loaded;
    let snapshot = run.snapshot();
    let (bundle_name, definition_error, event_type, planned) = match &snapshot {
        Ok(b) => (
            b.name.clone(),
            None,
            b.event_type.clone(),
            b.steps.iter().map(|s| s.action.clone()).collect(),
        ),
        Err(e) => (
            "—".to_string(),
            {
                tracing::warn!(run = run.id, error = %e, "run definition unreadable");
                Some(ctx.t("run_definition_unreadable").to_string())
            },
            String::new(),
            Vec::new(),
        ),
    };
    let event_def = source.and_then(|k| catalog::event(k, &event_type).map(|d| (k, d)));
    let (event_label, event) = match event_def {
        Some((kind, d)) => (
            i18n::catalog::event(lang, kind, d.key),
            field_rows(
                &run.event_fields(),
                fields_of(lang, kind, d.fields.iter().map(|f| f.key)),
            ),
        ),
        None => (
            event_type.clone(),
            field_rows(&run.event_fields(), std::iter::empty()),
        ),
    };

    // The snapshot's steps, each with its record when it has run; records beyond the snapshot
    // (cannot happen unless the definition is unreadable) are still shown.
    let count = planned.len().max(
        records
            .iter()
            .map(|r| usize::try_from(r.position).unwrap_or(0) + 1)
            .max()
            .unwrap_or(0),
    );
    let mut steps = Vec::with_capacity(count);
    for i in 0..count {
        let rec = records
            .iter()
            .find(|r| usize::try_from(r.position).ok() == Some(i));
        let action = rec
            .map(|r| r.action.clone())
            .or_else(|| planned.get(i).cloned())
            .unwrap_or_default();
        let def = target.and_then(|k| catalog::action(k, &action).map(|d| (k, d)));
        let label = def.map_or_else(
            || action.clone(),
            |(kind, d)| i18n::catalog::action(lang, kind, d.key),
        );
        let view = match rec {
            Some(r) => {
                let (inputs, outputs) = match def {
                    Some((kind, d)) => (
                        field_rows(
                            &json_object(Some(&r.inputs)),
                            fields_of(lang, kind, d.params.iter().map(|p| p.key)),
                        ),
                        field_rows(
                            &json_object(r.outputs.as_deref()),
                            fields_of(lang, kind, d.outputs.iter().map(|o| o.key)),
                        ),
                    ),
                    None => (
                        field_rows(&json_object(Some(&r.inputs)), std::iter::empty()),
                        field_rows(&json_object(r.outputs.as_deref()), std::iter::empty()),
                    ),
                };
                StepView {
                    number: i + 1,
                    label,
                    status_label: step_status_label(&ctx, r.status),
                    status: r.status.to_string(),
                    has_outputs: r.outputs.is_some(),
                    inputs,
                    outputs,
                    error: r
                        .error
                        .as_deref()
                        .filter(|e| !e.trim().is_empty())
                        .map(|e| reasons::stored(lang, e, target)),
                    attempt: Some(r.attempt),
                    duration_ms: Some(r.duration_ms),
                    started: fmt_time(r.started_at),
                    finished: fmt_opt(r.finished_at),
                }
            }
            None => StepView {
                number: i + 1,
                label,
                status: "not_run".into(),
                status_label: ctx.t("run_status_not_run"),
                inputs: Vec::new(),
                outputs: Vec::new(),
                has_outputs: false,
                error: None,
                attempt: None,
                duration_ms: None,
                started: String::new(),
                finished: String::new(),
            },
        };
        steps.push(view);
    }
    let retrying = run.status == RunStatus::Queued && run.error.is_some();
    ShowPage {
        run_error: run
            .error
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(|e| reasons::stored(lang, e, target)),
        status_label: status_label(&ctx, run.status),
        can_replay: runs::can_replay(&run),
        can_skip: runs::can_skip(&run),
        live: !run.status.is_settled(),
        conversation: run
            .conversation
            .as_deref()
            .map(|k| conversation_label(&ctx, k)),
        waits_for,
        behind,
        next_attempt: retrying.then(|| fmt_time(run.next_attempt_at)),
        bundle_name,
        definition_error,
        event_label,
        event,
        steps,
        notice,
        run,
        ctx,
    }
}

#[get("/runs/{id:\\d+}")]
pub async fn show(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let loaded = load(&state, *id).await?;
    ok(&show_page(ctx, loaded, None))
}

/// Back to queued (succeeded steps stay done), then a nudge to the queue. If the push fails
/// the row is still queued and the sweeper enqueues it.
#[post("/runs/{id:\\d+}/replay")]
pub async fn replay(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let replayed = state
        .core
        .db(move |c| {
            runs::get(c, id)?.ok_or(WebError::NotFound)?;
            Ok::<_, WebError>(runs::replay(c, id)?)
        })
        .await?;
    if !replayed {
        let loaded = load(&state, id).await?;
        let page = show_page(ctx, loaded, Some("run_replay_refused"));
        return render(&page, StatusCode::CONFLICT);
    }
    state
        .jobs
        .push_or_leave([Job::ExecuteRun { ids: vec![id] }])
        .await;
    Ok(see_other(&format!("/runs/{id}")))
}

/// Gives the run up; the next run of its conversation is enqueued at once (should the push
/// fail, it is marked for the sweeper).
#[post("/runs/{id:\\d+}/skip")]
pub async fn skip(
    ctx: PageCtx,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _form: CsrfOnly,
) -> Result<HttpResponse, WebError> {
    let id = *id;
    let skipped = state
        .core
        .db(move |c| {
            runs::get(c, id)?.ok_or(WebError::NotFound)?;
            Ok::<_, WebError>(runs::skip(c, id)?)
        })
        .await?;
    let Some(next) = skipped else {
        let loaded = load(&state, id).await?;
        let page = show_page(ctx, loaded, Some("run_skip_refused"));
        return render(&page, StatusCode::CONFLICT);
    };
    if let Some(next) = next {
        state.jobs.push_or_leave(Job::execute(&[next])).await;
    }
    Ok(see_other(&format!("/runs/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_the_day_or_minute() {
        let d = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok();
        assert_eq!(parse_bound("2026-11-29", false), d("2026-11-29 00:00:00.0"));
        assert_eq!(
            parse_bound("2026-11-29", true),
            d("2026-11-29 23:59:59.999999")
        );
        assert_eq!(
            parse_bound("2026-11-29T10:15", true),
            d("2026-11-29 10:15:59.999999")
        );
        assert_eq!(
            parse_bound("2026-11-29 10:15:30", false),
            d("2026-11-29 10:15:30.0")
        );
        for bad in ["yesterday", "2026-13-01", "29.11.2026", "2026-11-29T25:00"] {
            assert_eq!(parse_bound(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn raw_query_keeps_text_and_last_value() {
        let q = RawQuery::parse("status=bogus&bundle_id=x&from=%20&page=2&page=3&other=1");
        assert_eq!(
            (
                q.status.as_str(),
                q.bundle_id.as_str(),
                q.from.as_str(),
                q.page.as_str()
            ),
            ("bogus", "x", "", "3")
        );
        assert_eq!(RawQuery::parse("%%%&&=").status, "");
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(" short "), "short");
        let long = "ошибка ".repeat(100);
        let e = excerpt(&long);
        assert!(e.ends_with('…') && e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
