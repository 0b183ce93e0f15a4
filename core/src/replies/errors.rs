//! A messenger's refusal in MG's terms (`customer_not_exists`, `reply_timed_out`,
//! `spam_suspicion`, `access_restricted`, `general`), with the messenger's own words and code,
//! so the operator sees why the reply did not reach the customer.

use crate::messengers::chatapi::ChatApiError;
use crate::messengers::greenapi::GreenApiError;
use crate::messengers::telegram::TelegramError;
use crate::messengers::wacloud::CloudApiError;
use crate::retailcrm::mg_webhook::{ErrorCode, SendingError};

/// WhatsApp Cloud API codes that 1msg.io and similar gateways pass through
/// (shared/reference/messaging-next.md §2.3).
fn whatsapp_code(code: &str) -> Option<ErrorCode> {
    Some(match code {
        "131047" => ErrorCode::ReplyTimedOut,
        "131026" => ErrorCode::CustomerNotExists,
        "131048" => ErrorCode::SpamSuspicion,
        "131031" | "368" | "130497" | "131050" => ErrorCode::AccessRestricted,
        _ => return None,
    })
}

/// The first run of 3–6 digits in the gateway's text that is a known WhatsApp code.
fn code_in(text: &str) -> Option<(String, ErrorCode)> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| (3..=6).contains(&w.len()))
        .find_map(|w| whatsapp_code(w).map(|c| (w.to_owned(), c)))
}

pub fn from_chatapi(e: &ChatApiError) -> SendingError {
    let words = e.upstream_error().unwrap_or_default().to_owned();
    let lower = words.to_lowercase();
    let status = match e {
        ChatApiError::Http { status, .. } | ChatApiError::Unauthorized { status, .. } => {
            Some(status.to_string())
        }
        _ => None,
    };
    let message = if words.is_empty() {
        e.to_string()
    } else {
        words.clone()
    };
    if let Some((code, mapped)) = code_in(&words) {
        return SendingError::new(mapped, message).with_code(Some(code));
    }
    // 1msg: free text "only if the dialogue has an open session" (24 hours since the
    // customer last wrote).
    let mapped = if lower.contains("session") || lower.contains("24 hour") {
        ErrorCode::ReplyTimedOut
    } else if lower.contains("not on whatsapp")
        || lower.contains("not exist")
        || lower.contains("no account")
        || lower.contains("noaccount")
    {
        ErrorCode::CustomerNotExists
    } else if lower.contains("spam") || lower.contains("yellowcard") {
        ErrorCode::SpamSuspicion
    } else if lower.contains("blocked") || lower.contains("banned") {
        ErrorCode::AccessRestricted
    } else {
        ErrorCode::General
    };
    SendingError::new(mapped, message).with_code(status)
}

pub fn from_greenapi(e: &GreenApiError) -> SendingError {
    let status = match e {
        GreenApiError::Http { status, .. } | GreenApiError::Unauthorized { status, .. } => {
            Some(status.to_string())
        }
        GreenApiError::Quota { .. } => Some("466".to_owned()),
        _ => None,
    };
    let message = e
        .upstream_error()
        .map(str::to_owned)
        .unwrap_or_else(|| e.to_string());
    let mapped = match e {
        GreenApiError::NotAuthorized { state } if state == "yellowCard" => ErrorCode::SpamSuspicion,
        GreenApiError::NotAuthorized { state } if state == "blocked" => ErrorCode::AccessRestricted,
        _ => ErrorCode::General,
    };
    SendingError::new(mapped, message).with_code(status)
}

pub fn from_wacloud(e: &CloudApiError) -> SendingError {
    let message = e
        .upstream_error()
        .map(str::to_owned)
        .unwrap_or_else(|| e.to_string());
    match e.code() {
        Some(code) => {
            let code = code.to_string();
            let mapped = whatsapp_code(&code).unwrap_or(ErrorCode::General);
            SendingError::new(mapped, message).with_code(Some(code))
        }
        None => SendingError::new(ErrorCode::General, message),
    }
}

pub fn from_telegram(e: &TelegramError) -> SendingError {
    let code = e.error_code().map(|c| c.to_string());
    let Some(description) = e.description() else {
        return SendingError::new(ErrorCode::General, e.to_string()).with_code(code);
    };
    let lower = description.to_lowercase();
    let mapped = if lower.contains("blocked by the user") || lower.contains("kicked") {
        ErrorCode::AccessRestricted
    } else if lower.contains("chat not found")
        || lower.contains("user is deactivated")
        || lower.contains("user not found")
    {
        ErrorCode::CustomerNotExists
    } else {
        ErrorCode::General
    };
    SendingError::new(mapped, description).with_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg(code: u16, description: &str) -> TelegramError {
        TelegramError::Api {
            code,
            description: description.into(),
            retry_after: None,
            migrate_to_chat_id: None,
        }
    }

    #[test]
    fn telegram_refusals_map_to_mg_codes() {
        let e = from_telegram(&tg(403, "Forbidden: bot was blocked by the user"));
        assert_eq!(e.code, ErrorCode::AccessRestricted);
        assert_eq!(e.external_code.as_deref(), Some("403"));
        assert_eq!(e.message, "Forbidden: bot was blocked by the user");
        assert_eq!(
            from_telegram(&tg(400, "Bad Request: chat not found")).code,
            ErrorCode::CustomerNotExists
        );
        assert_eq!(
            from_telegram(&tg(400, "Bad Request: message text is empty")).code,
            ErrorCode::General
        );
    }

    #[test]
    fn whatsapp_refusals_map_to_mg_codes() {
        let http = |message: &str| ChatApiError::Http {
            status: 400,
            message: message.into(),
            retry_after: None,
        };
        let e = from_chatapi(&http(
            "(#131047) Re-engagement message: more than 24 hours have passed",
        ));
        assert_eq!(e.code, ErrorCode::ReplyTimedOut);
        assert_eq!(e.external_code.as_deref(), Some("131047"));
        assert_eq!(
            from_chatapi(&http("Only if the dialogue has an Open Session")).code,
            ErrorCode::ReplyTimedOut
        );
        assert_eq!(
            from_chatapi(&http("error 131026: message undeliverable")).code,
            ErrorCode::CustomerNotExists
        );
        let other = from_chatapi(&http("Wrong chatId"));
        assert_eq!(other.code, ErrorCode::General);
        assert_eq!(other.external_code.as_deref(), Some("400"));
    }
}
