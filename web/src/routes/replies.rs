//! Ответы операторов: the latest operators' replies from RetailCRM's chats, where each went,
//! whether it reached the customer and, if not, why (our reason and what MG was told).

use actix_web::{HttpResponse, get, web};
use askama::Template;
use svyazka_core::providers::ProviderKind;
use svyazka_core::replies::{self, Reply, ReplyStatus};

use crate::error::WebError;
use crate::i18n::{Msg, reasons};
use crate::page::{PageCtx, ok};
use crate::state::AppState;

const SHOWN: i64 = 100;
const TEXT_CHARS: usize = 140;

struct Row {
    id: i64,
    created: String,
    to: String,
    text: String,
    status: &'static str,
    badge: &'static str,
    status_label: &'static str,
    attempts: i32,
    error: Option<Msg>,
}

#[derive(Template)]
#[template(path = "replies/list.html")]
struct ListPage {
    ctx: PageCtx,
    rows: Vec<Row>,
    live: bool,
}

fn label(ctx: &PageCtx, st: ReplyStatus) -> (&'static str, &'static str) {
    match st {
        ReplyStatus::Waiting => ("queued", ctx.t("replies_waiting")),
        ReplyStatus::Sending => ("running", ctx.t("replies_sending")),
        ReplyStatus::Sent => ("succeeded", ctx.t("replies_sent")),
        ReplyStatus::Failed => ("failed", ctx.t("replies_failed")),
    }
}

fn row(ctx: &PageCtx, r: Reply, names: &[(i64, String, ProviderKind)]) -> Row {
    let (badge, status_label) = label(ctx, r.status);
    let to = match (r.messenger_provider_id, &r.chat_id) {
        (Some(p), Some(chat)) => {
            let name = names
                .iter()
                .find(|(id, ..)| *id == p)
                .map(|(_, n, _)| n.as_str())
                .unwrap_or_default();
            format!("{name} · {chat}")
        }
        _ => r.external_user_id.clone(),
    };
    let text: String = r.content.chars().take(TEXT_CHARS).collect();
    let error = match (r.error.as_deref(), r.sending_error()) {
        (Some(e), _) if !e.trim().is_empty() => Some(reasons::stored(ctx.lang, e, None)),
        (_, Some(mg)) => Some(Msg::new(mg.message)),
        _ => None,
    };
    Row {
        id: r.id,
        created: r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        to,
        text,
        status: r.status.as_str(),
        badge,
        status_label,
        attempts: r.attempts,
        error,
    }
}

#[get("/replies")]
pub async fn list(ctx: PageCtx, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let (items, providers) = state
        .core
        .db(|c| {
            let items = replies::recent(c, SHOWN)?;
            let providers =
                svyazka_core::providers::list(c).map_err(|e| WebError::Internal(e.to_string()))?;
            Ok::<_, WebError>((items, providers))
        })
        .await?;
    let names: Vec<(i64, String, ProviderKind)> = providers
        .into_iter()
        .map(|p| (p.id, p.name, p.kind))
        .collect();
    let live = items
        .iter()
        .any(|r| matches!(r.status, ReplyStatus::Waiting | ReplyStatus::Sending));
    let rows = items.into_iter().map(|r| row(&ctx, r, &names)).collect();
    ok(&ListPage { ctx, rows, live })
}
