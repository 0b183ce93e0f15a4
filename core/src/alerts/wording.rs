//! The words of an alert. Core knows what happened (kind, subject, count, stored reason); the
//! web crate's i18n words it in the admin's language, as for every other admin-facing text.
//! The process installs the web crate's wording at start; delivery waits until it has one.

use std::sync::OnceLock;

use super::AlertKind;
use super::settings::Language;

/// What an alert says, as data.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub kind: AlertKind,
    pub subject_id: i64,
    pub subject_name: &'a str,
    /// The stored reason of the (latest) failure.
    pub reason: Option<&'a str>,
    pub count: i32,
    /// The address the admin opens Svyazka at, for links.
    pub public_url: &'a str,
}

/// The text sent: a subject line (e-mail) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worded {
    pub subject: String,
    pub body: String,
}

pub type Wording = fn(&Outgoing<'_>, Language) -> Worded;

static WORDING: OnceLock<Wording> = OnceLock::new();

/// Called once at start by the process that assembles core and web.
pub fn install(wording: Wording) {
    let _ = WORDING.set(wording);
}

/// The alert's words, when a wording is installed.
pub fn word(out: &Outgoing<'_>, lang: Language) -> Option<Worded> {
    WORDING.get().map(|w| w(out, lang))
}
