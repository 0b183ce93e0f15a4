//! The 24-hour customer service window of official WhatsApp (the Cloud API, directly or
//! through 1msg.io): free text reaches a customer only within 24 hours of their last message;
//! outside it only an approved template does. Unofficial gateways have no window.

use chrono::NaiveDateTime;

use crate::providers::Settings;

/// Free text is accepted within this many hours of the customer's last message.
pub const WINDOW_HOURS: i64 = 24;

/// Hosts of official WhatsApp (Cloud API) gateways of the ChatAPI family.
const OFFICIAL_WHATSAPP_HOSTS: [&str; 1] = ["1msg.io"];

/// Whether a provider sends through official WhatsApp, where the window applies.
pub fn official(settings: &Settings) -> bool {
    match settings {
        Settings::Wacloud(_) => true,
        Settings::Chatapi(s) => url::Url::parse(&s.api_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| {
                OFFICIAL_WHATSAPP_HOSTS
                    .iter()
                    .any(|h| host == *h || host.ends_with(&format!(".{h}")))
            }),
        _ => false,
    }
}

/// Whether free text may still go to a customer who last wrote at `last` (`None`: never).
pub fn open(last: Option<NaiveDateTime>) -> bool {
    last.is_some_and(|t| crate::db::now() - t < chrono::Duration::hours(WINDOW_HOURS))
}
