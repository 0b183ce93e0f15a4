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

/// Feeds every truncation of `sample` and single-byte mutations of it to `parse`, which must
/// not panic: webhook bodies come from the internet.
#[cfg(test)]
pub(crate) fn assert_never_panics(sample: &[u8], parse: impl Fn(&[u8])) {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for cut in 0..sample.len() {
        parse(&sample[..cut]);
    }
    for _ in 0..2_000 {
        let mut mutated = sample.to_vec();
        let at = rng.random_range(0..mutated.len());
        mutated[at] = rng.random();
        parse(&mutated);
    }
}
