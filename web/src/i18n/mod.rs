//! Russian (the users' language, default) and English: every word an admin reads. Labels live
//! in tables, one per screen, so a missing translation is a missing row, visible in review;
//! `reasons` words the typed reasons core reports, `catalog` the catalog's keys.

pub mod alerts;
mod auth;
mod base;
mod bundles;
pub mod catalog;
mod events;
mod home;
mod msg;
mod providers;
pub mod reasons;
mod replies;
mod runs;

use actix_web::HttpRequest;

pub use msg::Msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

pub const COOKIE: &str = "lang";

/// One label: key, Russian, English.
pub(crate) type Row = (&'static str, &'static str, &'static str);

const TABLES: &[&[Row]] = &[
    base::LABELS,
    providers::LABELS,
    bundles::LABELS,
    runs::LABELS,
    reasons::LABELS,
    auth::LABELS,
    home::LABELS,
    events::LABELS,
    replies::LABELS,
    alerts::LABELS,
];

impl Lang {
    pub fn from_request(req: &HttpRequest) -> Lang {
        match req.cookie(COOKIE).as_ref().map(|c| c.value()) {
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    fn pick(self, row: &Row) -> &'static str {
        match self {
            Lang::Ru => row.1,
            Lang::En => row.2,
        }
    }

    /// The label for `key`; "?" when the table has no row (and a warning in the log).
    pub fn t(self, key: &str) -> &'static str {
        match TABLES.iter().flat_map(|t| t.iter()).find(|r| r.0 == key) {
            Some(row) => self.pick(row),
            None => {
                tracing::warn!(key, "missing translation");
                "?"
            }
        }
    }

    /// The label for `key` with its `{name}` placeholders filled in.
    pub fn f(self, key: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
        let mut text = self.t(key).to_string();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), &value.to_string());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_are_filled() {
        let mut seen = std::collections::HashSet::new();
        for row in TABLES.iter().flat_map(|t| t.iter()) {
            assert!(seen.insert(row.0), "duplicate key {}", row.0);
            assert!(!row.1.is_empty() && !row.2.is_empty(), "{}", row.0);
        }
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            Lang::Ru.f("len_between", &[("min", &5), ("max", &100)]),
            "от 5 до 100 символов"
        );
        assert_eq!(
            Lang::Ru.f("no_step", &[("number", &3)]),
            "Нет шага 3. Обновите страницу."
        );
    }
}
