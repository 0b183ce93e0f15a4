//! WhatsApp (ChatAPI family) and Telegram bot clients and webhook parsers.

pub mod chatapi;
pub mod greenapi;
pub mod incoming;
pub mod phone;
pub mod telegram;
pub mod wacloud;

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
