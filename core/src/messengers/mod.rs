//! WhatsApp (ChatAPI family) and Telegram bot clients and webhook parsers.

pub mod chatapi;
pub mod greenapi;
pub mod incoming;
pub(crate) mod multipart;
pub mod phone;
pub mod telegram;
pub mod templates;
pub mod wacloud;
pub mod window;

/// What a WhatsApp gateway answered over HTTP, before any interpretation.
pub(crate) struct Reply {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) retry_after: Option<std::time::Duration>,
    pub(crate) body: Vec<u8>,
}

/// Why a gateway's answer could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error(transparent)]
    Network(reqwest::Error),
    #[error("the answer is larger than {} MiB", crate::upstream::MAX_BODY / 1024 / 1024)]
    TooLarge { status: u16 },
}

/// Sends a gateway request and reads its answer whole (capped, see
/// [`crate::upstream::read_body`]). An answer that is not JSON — or, with `log_refusals`, any
/// non-2xx answer — is logged for the operator with `secrets` blanked out; the caller words the
/// error.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    service: &'static str,
    secrets: &[&str],
    log_refusals: bool,
) -> Result<Reply, ExchangeError> {
    use crate::upstream::{self, BodyError};
    let response = request.send().await.map_err(ExchangeError::Network)?;
    let status = response.status();
    let retry_after = retry_after_header(response.headers());
    let body = upstream::read_body(response).await.map_err(|e| match e {
        BodyError::Transport(e) => ExchangeError::Network(e),
        BodyError::TooLarge => ExchangeError::TooLarge {
            status: status.as_u16(),
        },
    })?;
    if (log_refusals && !status.is_success())
        || serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
    {
        upstream::log_unexpected_body(service, status.as_u16(), &body, secrets);
    }
    Ok(Reply {
        status,
        retry_after,
        body,
    })
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
