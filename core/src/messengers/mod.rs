//! WhatsApp (ChatAPI family) and Telegram bot clients and webhook parsers.

pub mod chatapi;
pub mod incoming;
pub mod phone;
pub mod telegram;

/// Upstream error bodies end up in the admin's run log; an HTML error page from a proxy would
/// drown it, so only its start is kept.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Seconds from a `Retry-After` header; the HTTP-date form is not used by either upstream.
pub(crate) fn retry_after_header(
    headers: &reqwest::header::HeaderMap,
) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}
