//! WhatsApp recipients: turning what an operator or the CRM typed into the chat id a gateway accepts.
//!
//! ChatAPI-style gateways silently queue messages to malformed numbers forever ("messages to
//! phone numbers from 8 will not be delivered") and such messages clog the 400-slot queue, so
//! every number is normalised and rejected here, before it reaches the gateway.

use std::fmt;
use std::str::FromStr;

use crate::upstream::{Retry, UpstreamFailure};

/// E.164 allows at most 15 digits; fewer than 10 is a local number without a country code.
const MIN_DIGITS: usize = 10;
const MAX_DIGITS: usize = 15;

const PERSONAL_SUFFIX: &str = "@c.us";
/// Newer WhatsApp Web builds name people `<digits>@s.whatsapp.net`; gateways expect `@c.us`.
const PERSONAL_SUFFIX_NEW: &str = "@s.whatsapp.net";
const GROUP_SUFFIX: &str = "@g.us";

/// A number or chat id that cannot be a WhatsApp recipient. Retrying cannot fix the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a phone number: {input:?} ({reason})")]
pub struct PhoneError {
    pub input: String,
    pub reason: PhoneProblem,
}

/// What is wrong with a number; the web app words it for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneProblem {
    BadGroupId,
    BadChatId,
    TooShort,
    TooLong,
    BadCharacters,
    NoDigits,
}

impl fmt::Display for PhoneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadGroupId => "a group id is digits and dashes before @g.us",
            Self::BadChatId => "a chat id is digits before @c.us",
            Self::TooShort => "too short: a number needs its country code, at least 10 digits",
            Self::TooLong => "too long: at most 15 digits",
            Self::BadCharacters => {
                "only digits, spaces, dashes, dots, brackets and a leading + are allowed"
            }
            Self::NoDigits => "no digits",
        })
    }
}

impl UpstreamFailure for PhoneError {
    fn retry(&self) -> Retry {
        Retry::Permanent
    }
}

fn invalid(input: &str, reason: PhoneProblem) -> PhoneError {
    PhoneError {
        input: input.to_owned(),
        reason,
    }
}

/// Where a WhatsApp message goes: a person (by international digits) or a group chat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WaRecipient {
    digits: Option<String>,
    chat_id: String,
}

impl WaRecipient {
    /// Accepts what people type ("+7 (999) 123-45-67", "8 999 123-45-67", "79991234567") and
    /// gateway chat ids ("79991234567@c.us", "79991234567-1600000000@g.us").
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if let Some(local) = trimmed.strip_suffix(GROUP_SUFFIX) {
            return group(input, local);
        }
        let personal = trimmed
            .strip_suffix(PERSONAL_SUFFIX)
            .or_else(|| trimmed.strip_suffix(PERSONAL_SUFFIX_NEW));
        let digits = match personal {
            // A chat id is already international: no trunk-prefix guessing.
            Some(local) => chat_id_digits(input, local)?,
            None => typed_digits(input)?,
        };
        Ok(Self::person(digits))
    }

    fn person(digits: String) -> Self {
        let chat_id = format!("{digits}{PERSONAL_SUFFIX}");
        Self {
            digits: Some(digits),
            chat_id,
        }
    }

    /// International digits without "+", for people; `None` for groups.
    pub fn digits(&self) -> Option<&str> {
        self.digits.as_deref()
    }

    /// The gateway's chat id: "79991234567@c.us" or the group id as given.
    pub fn chat_id(&self) -> &str {
        &self.chat_id
    }

    pub fn is_group(&self) -> bool {
        self.digits.is_none()
    }
}

impl FromStr for WaRecipient {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for WaRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chat_id)
    }
}

fn group(input: &str, local: &str) -> Result<WaRecipient, PhoneError> {
    // Old groups are "<creator digits>-<unix time>", new ones a long run of digits.
    let well_formed = !local.is_empty()
        && local
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(invalid(input, PhoneProblem::BadGroupId));
    }
    Ok(WaRecipient {
        digits: None,
        chat_id: format!("{local}{GROUP_SUFFIX}"),
    })
}

fn chat_id_digits(input: &str, local: &str) -> Result<String, PhoneError> {
    if local.is_empty() || !local.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(input, PhoneProblem::BadChatId));
    }
    check_length(input, local.to_owned())
}

/// Digits of a number typed by a person or stored in the CRM.
fn typed_digits(input: &str) -> Result<String, PhoneError> {
    let trimmed = input.trim();
    let (explicit_plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = collect_digits(input, rest)?;
    // The Russian trunk prefix: "8 999 …" is how most Russians write +7 numbers. Only without a
    // "+", because "+84…" (Vietnam) and "+82…" (Korea) numbers are also 11 digits starting with 8.
    if !explicit_plus && digits.len() == 11 && digits.starts_with('8') {
        digits.replace_range(0..1, "7");
    }
    check_length(input, digits)
}

fn check_length(input: &str, digits: String) -> Result<String, PhoneError> {
    if digits.len() < MIN_DIGITS {
        return Err(invalid(input, PhoneProblem::TooShort));
    }
    if digits.len() > MAX_DIGITS {
        return Err(invalid(input, PhoneProblem::TooLong));
    }
    Ok(digits)
}

/// International digits of a phone a messenger reported ("+79991234567", "79991234567"), e.g. a
/// Telegram contact. These are always international, so no trunk-prefix rewriting is applied.
pub fn international_digits(input: &str) -> Result<String, PhoneError> {
    let trimmed = input.trim();
    let rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits = collect_digits(input, rest)?;
    check_length(input, digits)
}

fn collect_digits(input: &str, rest: &str) -> Result<String, PhoneError> {
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            // Usual visual separators in Russian and international notation.
            ' ' | '\u{a0}' | '-' | '(' | ')' | '.' => {}
            _ => {
                return Err(invalid(input, PhoneProblem::BadCharacters));
            }
        }
    }
    if digits.is_empty() {
        return Err(invalid(input, PhoneProblem::NoDigits));
    }
    Ok(digits)
}

/// The phone digits inside a gateway address such as "79991234567@c.us"; `None` for groups and
/// anything that is not a personal chat id.
pub fn chat_id_phone(chat_id: &str) -> Option<String> {
    let local = chat_id
        .strip_suffix(PERSONAL_SUFFIX)
        .or_else(|| chat_id.strip_suffix(PERSONAL_SUFFIX_NEW))?;
    chat_id_digits(chat_id, local).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_normalise_to_one_chat_id() {
        let table = [
            "+7 (999) 123-45-67",
            "89991234567",
            "8 (999) 123-45-67",
            "79991234567",
            "+79991234567",
            "79991234567@c.us",
            "79991234567@s.whatsapp.net",
            "  7.999.123.45.67  ",
            "+7\u{a0}999\u{a0}123\u{a0}45\u{a0}67",
        ];
        for input in table {
            let r = WaRecipient::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(r.digits(), Some("79991234567"), "{input:?}");
            assert_eq!(r.chat_id(), "79991234567@c.us", "{input:?}");
            assert!(!r.is_group());
        }
    }

    #[test]
    fn other_countries_keep_their_digits() {
        let table = [
            ("+1 650 555 1234", "16505551234"),
            ("+84 91 234 5678", "84912345678"),
            ("+82 2 1234 5678", "82212345678"),
            ("6591234567", "6591234567"),
            ("+491711234567890", "491711234567890"),
            // A chat id is international already: the trunk rule must not touch it.
            ("84912345678@c.us", "84912345678"),
        ];
        for (input, digits) in table {
            let r = WaRecipient::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(r.digits(), Some(digits), "{input:?}");
            assert_eq!(r.chat_id(), format!("{digits}@c.us"));
        }
    }

    #[test]
    fn groups_are_kept_as_chat_ids() {
        for id in ["79991234567-1479621234@g.us", "120363025246125486@g.us"] {
            let r = WaRecipient::parse(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
            assert!(r.is_group());
            assert_eq!(r.digits(), None);
            assert_eq!(r.chat_id(), id);
            assert_eq!(r.to_string(), id);
        }
    }

    #[test]
    fn rejects_what_is_not_a_phone() {
        let table = [
            ("", "no digits"),
            ("   ", "no digits"),
            ("+", "no digits"),
            ("abc", "only digits"),
            ("7999123456a", "only digits"),
            ("+7 999 123 45 67 ext 2", "only digits"),
            ("++79991234567", "only digits"),
            ("123456789", "too short"),
            ("8 999 12", "too short"),
            ("1234567890123456", "too long"),
            ("@c.us", "a chat id"),
            ("7999x234567@c.us", "a chat id"),
            ("@g.us", "a group id"),
            ("7999-@g.us", "a group id"),
            ("abc-123@g.us", "a group id"),
            ("123@c.us", "too short"),
        ];
        for (input, reason) in table {
            let err = WaRecipient::parse(input)
                .err()
                .unwrap_or_else(|| panic!("{input:?} accepted"));
            assert!(
                err.reason.to_string().contains(reason),
                "{input:?}: {}",
                err.reason
            );
            assert!(err.to_string().starts_with("not a phone number: "), "{err}");
            assert_eq!(err.retry(), Retry::Permanent);
        }
    }

    #[test]
    fn international_digits_never_rewrites_the_trunk_prefix() {
        assert_eq!(
            international_digits("+79991234567").ok().as_deref(),
            Some("79991234567")
        );
        assert_eq!(
            international_digits("79991234567").ok().as_deref(),
            Some("79991234567")
        );
        assert_eq!(
            international_digits("84912345678").ok().as_deref(),
            Some("84912345678")
        );
        assert!(international_digits("12345").is_err());
        assert!(international_digits("tel:79991234567").is_err());
    }

    #[test]
    fn chat_id_phone_reads_personal_ids_only() {
        assert_eq!(
            chat_id_phone("79991234567@c.us").as_deref(),
            Some("79991234567")
        );
        assert_eq!(chat_id_phone("79991234567-1479621234@g.us"), None);
        assert_eq!(chat_id_phone("79991234567"), None);
        assert_eq!(chat_id_phone("status@broadcast"), None);
    }
}
