//! Failure alerts: the settings page, the home page's «needs attention» list, the bundles'
//! self-pause notes, and the words of the alerts themselves (Telegram and e-mail).

use svyazka_core::alerts::AlertKind;
use svyazka_core::alerts::deliver::SendFailure;
use svyazka_core::alerts::settings::Language;
use svyazka_core::alerts::wording::{Outgoing, Worded};

use super::{Lang, Msg, Row, reasons};

#[rustfmt::skip]
pub const LABELS: &[Row] = &[
    ("alerts", "Оповещения", "Alerts"),
    ("alerts_intro", "Куда сообщать о сбоях: связка падает с ошибкой, проверка провайдера перестала проходить, связка остановилась сама.", "Where failures are reported: a bundle's runs fail, a provider's check starts failing, a bundle stops itself."),
    ("alerts_channel", "Способ", "Send by"),
    ("alerts_off", "не отправлять", "do not send"),
    ("alerts_telegram", "Telegram-бот", "Telegram bot"),
    ("alerts_smtp", "Электронная почта (SMTP)", "E-mail (SMTP)"),
    ("alerts_language", "Язык оповещений", "Language of alerts"),
    ("alerts_bot", "Бот (провайдер Telegram)", "Bot (Telegram provider)"),
    ("alerts_no_bots", "Нет ни одного провайдера Telegram — сначала добавьте бота.", "There is no Telegram provider — add a bot first."),
    ("alerts_chat", "ID чата (число; у групп — отрицательное) или @имя канала", "Chat id (a number; negative for groups) or @channel name"),
    ("alerts_chat_hint", "Бот должен быть участником этого чата; в личном чате напишите боту /start.", "The bot must be a member of that chat; in a private chat, send the bot /start first."),
    ("alerts_smtp_host", "SMTP-сервер", "SMTP server"),
    ("alerts_smtp_port", "Порт", "Port"),
    ("alerts_smtp_security", "Шифрование", "Encryption"),
    ("alerts_starttls", "STARTTLS (обычно порт 587)", "STARTTLS (usually port 587)"),
    ("alerts_tls", "TLS (обычно порт 465)", "TLS (usually port 465)"),
    ("alerts_plain", "без шифрования (только локальный сервер в режиме разработки)", "none (only a local server in development mode)"),
    ("alerts_smtp_user", "Пользователь", "User name"),
    ("alerts_smtp_password", "Пароль", "Password"),
    ("alerts_password_saved", "Пароль сохранён; оставьте поле пустым, чтобы не менять его.", "A password is saved; leave the field empty to keep it."),
    ("alerts_from", "От кого (адрес)", "From (address)"),
    ("alerts_to", "Кому (адрес)", "To (address)"),
    ("alerts_pause_after", "Останавливать связку после стольких ошибок подряд (0 — никогда)", "Stop a bundle after this many failures in a row (0 — never)"),
    ("alerts_coalesce", "Не чаще одного оповещения об ошибках связки за столько минут", "At most one failure alert per bundle in this many minutes"),
    ("alerts_save", "Сохранить", "Save"),
    ("alerts_saved", "Настройки оповещений сохранены.", "Alert settings saved."),
    ("alerts_test", "Отправить тестовое оповещение", "Send test alert"),
    ("alerts_test_sent", "Тестовое оповещение отправлено.", "Test alert sent."),
    ("alerts_test_failed", "Тестовое оповещение не отправлено: ", "The test alert was not sent: "),
    ("alerts_recent", "Последние оповещения", "Recent alerts"),
    ("alerts_status_pending", "ждёт отправки", "waiting"),
    ("alerts_status_sending", "отправляется", "sending"),
    ("alerts_status_sent", "отправлено", "sent"),
    ("alerts_status_failed", "не отправлено", "not sent"),
    ("alerts_status_dropped", "не отправлялось (оповещения выключены)", "not sent (alerts off)"),
    // Why sending failed.
    ("send_off", "оповещения выключены.", "alerts are off."),
    ("send_provider_gone", "выбранный провайдер Telegram удалён.", "the chosen Telegram provider was deleted."),
    ("send_bad_address", "адрес «{field}» — не адрес электронной почты.", "the «{field}» address is not an e-mail address."),
    ("send_smtp", "SMTP-сервер ответил ошибкой.", "the SMTP server answered with an error."),
    ("send_smtp_code", "SMTP-сервер ответил ошибкой {code}.", "the SMTP server answered with error {code}."),
    ("send_secrets", "сохранённый пароль SMTP не читается (сменился ключ шифрования?) — введите его заново.", "the saved SMTP password cannot be read (was the secret key changed?) — enter it again."),
    ("send_no_wording", "процесс ещё не готов, попробуйте снова.", "the process is not ready yet; try again."),
    ("send_unavailable", "не удалось прочитать настройки из базы данных.", "the settings could not be read from the database."),
    // Home page.
    ("attention", "Требует внимания", "Needs attention"),
    ("attention_paused", "Связка «{name}» остановилась сама после {count} ошибок подряд.", "The bundle «{name}» stopped itself after {count} failures in a row."),
    ("attention_failing", "Связка «{name}»: {count} ошибок подряд.", "The bundle «{name}»: {count} failures in a row."),
    ("attention_provider", "Провайдер «{name}» не проходит проверку.", "The provider «{name}» fails its check."),
    ("attention_last_error", "Последняя ошибка: ", "Last error: "),
    ("attention_runs", "Запуски с ошибкой", "Failed runs"),
    ("attention_open", "Открыть", "Open"),
    // Bundles.
    ("bundle_auto_paused", "Остановлена автоматически после {count} ошибок подряд. Исправьте причину и запустите связку снова.", "Stopped automatically after {count} failures in a row. Fix the cause and start the bundle again."),
    ("bundle_paused_badge", "остановлена из-за ошибок", "stopped after failures"),
    // The alerts themselves.
    ("alert_subject_failed", "Связка: ошибка в связке «{name}»", "Svyazka: the bundle «{name}» failed"),
    ("alert_body_failed", "Запуск связки «{name}» завершился ошибкой.", "A run of the bundle «{name}» failed."),
    ("alert_body_failed_many", "Запусков связки «{name}» с ошибкой: {count}.", "Runs of the bundle «{name}» failed: {count}."),
    ("alert_subject_paused", "Связка: связка «{name}» остановлена", "Svyazka: the bundle «{name}» stopped"),
    ("alert_body_paused", "Связка «{name}» остановилась сама после {count} ошибок подряд. Она не будет обрабатывать события, пока вы не запустите её снова.", "The bundle «{name}» stopped itself after {count} failures in a row. It handles no events until you start it again."),
    ("alert_subject_provider", "Связка: провайдер «{name}» не проходит проверку", "Svyazka: the provider «{name}» fails its check"),
    ("alert_body_provider", "Проверка провайдера «{name}» перестала проходить.", "The check of the provider «{name}» started failing."),
    ("alert_subject_test", "Связка: тестовое оповещение", "Svyazka: test alert"),
    ("alert_body_test", "Это тестовое оповещение. Если вы его читаете, оповещения о сбоях будут приходить сюда.", "This is a test alert. If you can read it, failure alerts will arrive here."),
    ("alert_reason", "Причина: ", "Reason: "),
    ("alert_link", "Подробнее: ", "Details: "),
];

pub fn lang_of(l: Language) -> Lang {
    match l {
        Language::Ru => Lang::Ru,
        Language::En => Lang::En,
    }
}

/// Why sending failed, quoting the upstream's own words.
pub fn send_failure(lang: Lang, f: &SendFailure) -> Msg {
    match f {
        SendFailure::Off => Msg::new(lang.t("send_off")),
        SendFailure::ProviderGone => Msg::new(lang.t("send_provider_gone")),
        SendFailure::Telegram { reason } => reasons::reason(lang, reason, None),
        SendFailure::Refused { refused } => reasons::refused(lang, refused),
        SendFailure::BadAddress { field } => {
            let label = lang.t(if field == "from" {
                "alerts_from"
            } else {
                "alerts_to"
            });
            Msg::new(lang.f("send_bad_address", &[("field", &label)]))
        }
        SendFailure::Smtp { code, message } => {
            let m = match code {
                Some(code) => Msg::new(lang.f("send_smtp_code", &[("code", code)])),
                None => Msg::new(lang.t("send_smtp")),
            };
            m.text(lang.t("answer")).quote(message)
        }
        SendFailure::Secrets => Msg::new(lang.t("send_secrets")),
        SendFailure::NoWording => Msg::new(lang.t("send_no_wording")),
        SendFailure::Unavailable => Msg::new(lang.t("send_unavailable")),
    }
}

/// The words of an alert in the admin's chosen language; installed into core at start.
pub fn word(out: &Outgoing<'_>, language: Language) -> Worded {
    let lang = lang_of(language);
    let name: &dyn std::fmt::Display = &out.subject_name;
    let count: &dyn std::fmt::Display = &out.count;
    let args = [("name", name), ("count", count)];
    let base = out.public_url.trim_end_matches('/');
    let (subject, body, reason, link) = match out.kind {
        AlertKind::BundleFailed => (
            "alert_subject_failed",
            if out.count > 1 {
                "alert_body_failed_many"
            } else {
                "alert_body_failed"
            },
            out.reason.map(|r| reasons::stored(lang, r, None)),
            format!("{base}/runs?bundle_id={}&status=failed", out.subject_id),
        ),
        AlertKind::BundlePaused => (
            "alert_subject_paused",
            "alert_body_paused",
            out.reason.map(|r| reasons::stored(lang, r, None)),
            format!("{base}/bundles/{}", out.subject_id),
        ),
        AlertKind::ProviderFailing => (
            "alert_subject_provider",
            "alert_body_provider",
            out.reason.map(|r| reasons::check(lang, r)),
            format!("{base}/providers/{}", out.subject_id),
        ),
        AlertKind::Test => (
            "alert_subject_test",
            "alert_body_test",
            None,
            format!("{base}/"),
        ),
    };
    let mut text = lang.f(body, &args);
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        text.push('\n');
        text.push_str(lang.t("alert_reason"));
        text.push_str(&r.plain());
    }
    text.push('\n');
    text.push_str(lang.t("alert_link"));
    text.push_str(&link);
    Worded {
        subject: lang.f(subject, &args),
        body: text,
    }
}
