//! Words for the typed reasons core reports: upstream failures (the upstream's own message
//! quoted), run and step failures, provider-form problems, template errors, bad addresses.

use svyazka_core::bundles::template::{RenderFailure, Syntax, TemplateError, Token};
use svyazka_core::bundles::template_limits::Forbidden;
use svyazka_core::bundles::validate::ParamIssue;
use svyazka_core::messengers::chatapi::AccountState;
use svyazka_core::messengers::phone::PhoneProblem;
use svyazka_core::providers::ProviderKind;
use svyazka_core::providers::connect::CheckFailure;
use svyazka_core::reason::{
    FieldProblem, Reason, Service, ServiceFailure, Stored, Upstream, read_stored,
};
use svyazka_core::retailcrm::DomainError;
use svyazka_core::upstream::{AddressClass, Refused};

use super::{Lang, Msg, Row, catalog};

#[rustfmt::skip]
pub(super) const LABELS: &[Row] = &[
    // Services, as the subject of a message.
    ("svc_retailcrm", "RetailCRM", "RetailCRM"),
    ("svc_retailcrm_chats", "Чаты RetailCRM", "RetailCRM chats"),
    ("svc_chatapi", "Шлюз WhatsApp", "The WhatsApp gateway"),
    ("svc_telegram", "Telegram", "Telegram"),
    ("svc_greenapi", "Green-API", "Green-API"),
    ("svc_wacloud", "WhatsApp Cloud API", "WhatsApp Cloud API"),
    ("answer", " Ответ: ", " Answer: "),
    ("details", " Подробности: ", " Details: "),
    // What an upstream answered.
    ("up_credentials", "ключ или токен не принят — проверьте его в настройках провайдера.", "the key or token was refused — check it in the provider's settings."),
    ("up_access_denied", "доступ запрещён: ключу не хватает прав или магазина, нужных для этого действия.", "access denied: the key lacks a permission or store this action needs."),
    ("up_no_account", "по этому адресу нет аккаунта (HTTP {status}) — проверьте адрес.", "no account answers at this address (HTTP {status}) — check the address."),
    ("up_not_found", "не найдено.", "not found."),
    ("up_refused", "запрос отклонён.", "the request was refused."),
    ("up_refused_status", "запрос отклонён (HTTP {status}).", "the request was refused (HTTP {status})."),
    ("up_rate_limited", "слишком много запросов; попробуем позже.", "too many requests; will try again later."),
    ("up_server", "ошибка на стороне сервиса (HTTP {status}).", "the service failed (HTTP {status})."),
    ("up_timeout", "не ответил вовремя.", "did not answer in time."),
    ("up_unreachable", "не удалось соединиться.", "cannot connect."),
    ("up_unexpected", "неожиданный ответ.", "unexpected answer."),
    ("up_unexpected_status", "неожиданный ответ (HTTP {status}).", "unexpected answer (HTTP {status})."),
    ("up_not_paid", "инстанс не оплачен — оплатите его в кабинете шлюза.", "the instance is not paid — pay for it in the gateway's dashboard."),
    ("up_not_ready", "инстанс не готов отправлять сообщения, его статус: ", "the instance cannot send messages yet, its status: "),
    ("up_account_state", "аккаунт WhatsApp не готов отправлять сообщения, его состояние: ", "the WhatsApp account cannot send messages yet, its state: "),
    ("gstate_not_authorized", "WhatsApp не привязан: откройте инстанс в консоли Green-API и отсканируйте QR-код в WhatsApp на телефоне магазина.", "WhatsApp is not linked: open the instance in the Green-API console and scan the QR code with WhatsApp on the shop's phone."),
    ("gstate_starting", "инстанс запускается; попробуйте через минуту.", "the instance is starting; try again in a minute."),
    ("gstate_sleep", "телефон магазина не в сети; включите его — через несколько минут аккаунт снова станет авторизован.", "the shop's phone is offline; switch it on — the account becomes authorized again within minutes."),
    ("gstate_blocked", "аккаунт заблокирован WhatsApp.", "WhatsApp has blocked the account."),
    ("gstate_yellow_card", "отправка приостановлена за подозрение в спаме; перезагрузите инстанс в консоли Green-API.", "sending is suspended for suspected spam; reboot the instance in the Green-API console."),
    ("gstate_other", "проверьте инстанс в консоли Green-API.", "check the instance in the Green-API console."),
    ("up_quota", "исчерпан лимит тарифа (HTTP 466) — смените тариф в консоли Green-API.", "the plan's limit is used up (HTTP 466) — change the plan in the Green-API console."),
    ("up_no_whatsapp", "у получателя нет WhatsApp.", "the recipient has no WhatsApp."),
    ("up_bad_settings", "настройки провайдера не подходят.", "the provider's settings cannot be used."),
    ("state_authenticated", "инстанс подключён к WhatsApp.", "the instance is connected to WhatsApp."),
    ("state_qr", "WhatsApp не привязан: откройте инстанс в кабинете шлюза и отсканируйте QR-код в WhatsApp на телефоне магазина (код действует минуту).", "WhatsApp is not linked: open the instance in the gateway's dashboard and scan the QR code with WhatsApp on the shop's phone (a code is valid for one minute)."),
    ("state_loading", "инстанс запускается; попробуйте через минуту.", "the instance is starting; try again in a minute."),
    ("state_init", "инстанс просыпается; попробуйте через минуту.", "the instance is waking up; try again in a minute."),
    ("state_not_paid", "инстанс не оплачен; оплатите его в кабинете шлюза.", "the instance is not paid; pay for it in the gateway's dashboard."),
    ("state_other", "шлюз сообщил неизвестный статус; проверьте инстанс в кабинете шлюза.", "the gateway reported an unknown status; check the instance in its dashboard."),
    // Why a run or a step failed.
    ("r_empty_param", "параметр «{param}» пуст.", "the parameter «{param}» is empty."),
    ("r_not_https_link", "параметр «{param}» — не ссылка https: «{value}». WhatsApp берёт файл заголовка шаблона только по https.", "the parameter «{param}» is not an https link: «{value}». WhatsApp takes a template header's file over https only."),
    ("r_not_a_number", "параметр «{param}» должен быть числом, а пришло «{value}».", "the parameter «{param}» must be a number, got «{value}»."),
    ("r_not_a_phone", "«{input}» — не номер телефона: {problem}.", "«{input}» is not a phone number: {problem}."),
    ("r_missing_event_field", "в событии нет поля {field}.", "the event has no field {field}."),
    ("r_missing_output", "у шага {step} нет результата {field}.", "step {step} has no output {field}."),
    ("r_no_such_action", "у провайдера {kind} нет действия {action}.", "{kind} has no action {action}."),
    ("r_secrets", "ключи провайдера «{provider}» не читаются (сменился ключ шифрования?) — введите их заново в настройках провайдера.", "the keys of the provider «{provider}» cannot be read (was the secret key changed?) — enter them again in the provider's settings."),
    ("r_settings_mismatch", "настройки провайдера «{provider}» от провайдера другого типа.", "the settings of the provider «{provider}» belong to another kind of provider."),
    ("r_provider_gone", "провайдер связки удалён.", "the bundle's provider was deleted."),
    ("r_provider_unreadable", "настройки провайдера связки не читаются.", "the settings of the bundle's provider cannot be read."),
    ("r_chats_not_registered", "чаты RetailCRM не подключены для этого провайдера: откройте провайдера и сохраните его ещё раз.", "RetailCRM chats are not connected for this provider: open the provider and save it again."),
    ("r_interrupted", "обработчик остановился во время отправки этого сообщения; возможно, оно доставлено. Проверьте чат и, если нужно, нажмите «Повторить».", "the worker stopped while this message was being sent; it may have been delivered. Check the chat, then use Replay if needed."),
    ("r_definition", "сохранённое описание связки не читается.", "the stored bundle definition cannot be read."),
    ("r_payload", "сохранённое событие не читается.", "the stored event cannot be read."),
    ("r_inbox_kind", "событие неизвестного вида {kind}.", "an event of unknown kind {kind}."),
    ("r_database", "база данных недоступна; попробуем позже.", "the database is unavailable; will try again later."),
    // Phone numbers.
    ("ph_bad_group_id", "id группы — это цифры и дефисы перед @g.us", "a group id is digits and dashes before @g.us"),
    ("ph_bad_chat_id", "id чата — это цифры перед @c.us", "a chat id is digits before @c.us"),
    ("ph_too_short", "слишком короткий: нужен код страны, не меньше 10 цифр", "too short: a number needs its country code, at least 10 digits"),
    ("ph_too_long", "слишком длинный: не больше 15 цифр", "too long: at most 15 digits"),
    ("ph_bad_characters", "допустимы только цифры, пробелы, дефисы, точки, скобки и + в начале", "only digits, spaces, dashes, dots, brackets and a leading + are allowed"),
    ("ph_no_digits", "нет цифр", "no digits"),
    // Templates.
    ("tpl_syntax", "ошибка в шаблоне, строка {line}: ", "template error, line {line}: "),
    ("tpl_expected_found", "ожидалось: {expected}, а встретилось: {found}", "expected {expected}, found {found}"),
    ("tpl_unexpected", "неожиданно: {found}", "unexpected: {found}"),
    ("tpl_bad_character", "недопустимый символ", "a character that cannot be used here"),
    ("tpl_unterminated_string", "не закрыта кавычка строки", "a string is not closed"),
    ("tpl_unterminated_comment", "не закрыт комментарий {# … #}", "a comment {# … #} is not closed"),
    ("tpl_trailing", "лишний текст после выражения", "extra text after the expression"),
    ("tpl_unknown_statement", "неизвестная команда «{name}»", "unknown statement «{name}»"),
    ("tpl_engine_says", "шаблонизатор сообщает: ", "the template engine says: "),
    ("tpl_unknown", "неизвестный параметр {{ {name} }}", "unknown parameter {{ {name} }}"),
    ("tpl_render", "шаблон не удалось заполнить, строка {line}: ", "the template could not be filled in, line {line}: "),
    ("tpl_unknown_filter", "неизвестный фильтр", "unknown filter"),
    ("tpl_unknown_test", "неизвестная проверка", "unknown test"),
    ("tpl_unknown_function", "неизвестная функция", "unknown function"),
    ("tpl_unknown_method", "неизвестный метод", "unknown method"),
    ("tpl_wrong_arguments", "неверные аргументы", "wrong arguments"),
    ("tpl_too_much_work", "слишком много работы (бесконечный цикл?)", "too much work (an endless loop?)"),
    ("tpl_invalid_operation", "недопустимая операция: ", "invalid operation: "),
    ("tpl_too_long", "шаблон длиннее {max} символов", "the template is longer than {max} characters"),
    ("tpl_output_too_long", "заполненный шаблон длиннее {max} байт", "the filled-in template is longer than {max} bytes"),
    ("body_empty", "(пустой ответ)", "(an empty body)"),
    ("r_other_store_in_trigger", "триггер прислал заказ магазина «{order_site}», а ключ провайдера видит только магазин «{site}»: заказ другого магазина пропущен, RetailCRM не запрашивался. Чтобы такие триггеры не приходили, добавьте в условие триггера магазин (см. страницу провайдера).", "the trigger sent an order of the store «{order_site}», and the provider's key sees only the store «{site}»: an order of another store is skipped, without asking RetailCRM. To stop such triggers, add the store to the trigger's condition (see the provider's page)."),
    ("r_other_store", "ключ провайдера видит только магазин «{site}», а этот заказ в нём не найден: заказ другого магазина пропущен. Чтобы такие триггеры не приходили, добавьте в условие триггера магазин (см. страницу провайдера). RetailCRM ответил: ", "the provider's key sees only the store «{site}» and the order is not found there: an order of another store is skipped. To stop such triggers, add the store to the trigger's condition (see the provider's page). RetailCRM answered: "),
    ("r_window_never", "клиент не писал на этот номер WhatsApp: официальный WhatsApp принимает свободный текст только в течение 24 часов после сообщения клиента — используйте «Отправить шаблон»", "the customer has not written to this WhatsApp number: official WhatsApp takes free text only within 24 hours of the customer's message — use «Send template»"),
    ("r_reply_window_closed", "клиент последний раз писал {at} (UTC), больше 24 часов назад: официальный WhatsApp не принимает свободный текст после 24 часов, нужен шаблон", "the customer last wrote at {at} (UTC), more than 24 hours ago: official WhatsApp refuses free text after 24 hours, a template is needed"),
    ("r_reply_no_route", "ответ оператора некуда доставить: сообщения этого клиента не приходили в чаты RetailCRM через Связку", "the operator's reply has nowhere to go: this customer's messages never reached RetailCRM's chats through Svyazka"),
    ("r_media_unavailable", "файл клиента ({kind}) не получить: подключение мессенджера, через которое он пришёл, удалено или не отдаёт файлы", "the customer's file ({kind}) cannot be fetched: the messenger connection it came through is gone or hands out no files"),
    ("r_reply_unsupported", "сообщения типа «{kind}» пока не доставляются в мессенджер; доставляется только текст", "messages of type «{kind}» are not delivered to the messenger yet; only text is"),
    ("r_contact_being_created", "этот контакт сейчас создаёт другой запуск; этот проверит ещё раз чуть позже", "another run is creating this contact right now; this one will look again shortly"),
    ("up_blocked", "адрес не вызывается", "the address is not called"),
    ("f_retype_secret", "адрес изменён: введите ключ заново (сохранённый ключ отправляется только на тот адрес, для которого он был введён)", "the address changed: enter the key again (a stored key is only sent to the address it was entered for)"),
    ("ref_not_url", "это не адрес", "not a valid address"),
    ("ref_no_host", "в адресе нет имени сервера", "the address has no host"),
    ("ref_scheme", "адрес должен начинаться с https://", "the address must use https://"),
    ("ref_user_info", "адрес не должен содержать имя пользователя или пароль", "the address must not contain a user name or password"),
    ("ref_fragment", "уберите из адреса часть «#…»", "remove the \"#…\" part from the address"),
    ("ref_address", "{ip} — не публичный адрес ({class}); Связка обращается только к публичным адресам", "{ip} is a {class} address; Svyazka calls only public addresses"),
    ("ref_resolved", "{host} указывает только на непубличные адреса ({ips}); Связка обращается только к публичным адресам", "{host} resolves only to non-public addresses ({ips}); Svyazka calls only public addresses"),
    ("ref_dns", "имя {host} не найдено в DNS: {reason}", "{host} does not resolve: {reason}"),
    ("addr_public", "публичный", "public"),
    ("addr_loopback", "локальный (loopback)", "loopback"),
    ("addr_private", "адрес частной сети", "private network"),
    ("addr_link_local", "link-local, адрес метаданных облака", "link-local (cloud metadata)"),
    ("addr_cgnat", "CGNAT-адрес провайдера", "carrier-grade NAT"),
    ("addr_unique_local", "уникальный локальный IPv6", "unique-local"),
    ("addr_multicast", "групповой (multicast)", "multicast"),
    ("addr_reserved", "зарезервированный", "reserved"),
    ("body_html", "(вместо ответа API пришла HTML-страница)", "(an HTML page instead of an API answer)"),
    ("body_not_json", "(ответ не в формате JSON)", "(a body that is not JSON)"),
    ("tpl_no_multiplication", "в шаблонах нельзя умножать («*»); напишите текст полностью", "templates cannot multiply (\"*\"); write the text out instead"),
    ("tpl_no_statement", "в шаблонах нельзя использовать {% {name} %}; доступны {{ … }}, if и for", "templates cannot use {% {name} %}; use {{ … }}, if and for"),
    ("tok_end", "конец шаблона", "the end of the template"),
    ("tok_variable_start", "начало параметра {{", "the start of a parameter {{"),
    ("tok_variable_end", "конец параметра }}", "the end of a parameter }}"),
    ("tok_block_start", "начало блока {%", "the start of a block {%"),
    ("tok_block_end", "конец блока %}", "the end of a block %}"),
    ("tok_name", "имя", "a name"),
    ("tok_string", "строка", "a string"),
    ("tok_number", "число", "a number"),
    ("tok_text", "текст", "text"),
    ("tok_expression", "выражение", "an expression"),
    ("tok_keyword", "ключевое слово", "a keyword"),
    // RetailCRM addresses.
    ("dom_empty", "укажите адрес RetailCRM, например shop.retailcrm.ru", "enter the RetailCRM address, e.g. shop.retailcrm.ru"),
    ("dom_whitespace", "в адресе RetailCRM не должно быть пробелов", "the RetailCRM address must not contain spaces"),
    ("dom_invalid", "«{input}» — не адрес RetailCRM", "«{input}» is not a RetailCRM address"),
    ("dom_not_https", "адрес RetailCRM должен начинаться с https://", "the RetailCRM address must use https://"),
    ("dom_path", "уберите «{path}» из адреса: нужен только адрес аккаунта, например https://shop.retailcrm.ru", "remove «{path}» from the address: enter only the account address, e.g. https://shop.retailcrm.ru"),
    ("dom_query", "уберите из адреса RetailCRM часть «?…» или «#…»", "remove the «?…» or «#…» part from the RetailCRM address"),
    ("dom_user_info", "в адресе RetailCRM не должно быть имени пользователя или пароля", "the RetailCRM address must not contain a user name or password"),
    ("dom_port", "в адресе RetailCRM не должно быть порта", "the RetailCRM address must not contain a port"),
    ("dom_ip", "укажите доменное имя аккаунта, а не IP-адрес", "enter the account's domain name, not an IP address"),
    // Form fields.
    ("field_required", "заполните это поле", "fill in this field"),
    ("field_required_api_key", "укажите apiKey", "enter the API key"),
    ("field_required_api_url", "укажите API URL инстанса", "enter the instance API URL"),
    ("field_required_token", "укажите токен", "enter the token"),
    ("field_required_instance_id", "укажите idInstance", "enter the idInstance"),
    ("field_required_phone_number_id", "укажите Phone number ID", "enter the Phone number ID"),
    ("field_required_app_secret", "укажите секрет приложения", "enter the app secret"),
    ("len_between", "от {min} до {max} символов", "{min} to {max} characters"),
    ("len_min", "не короче {min} символов", "at least {min} characters"),
    ("len_max", "не длиннее {max} символов", "at most {max} characters"),
    ("field_must_match", "не совпадает", "does not match"),
    ("field_invalid", "значение не подходит", "the value cannot be used"),
    ("f_not_retailcrm", "по этому адресу не отвечает RetailCRM: ", "this address does not answer as RetailCRM: "),
    ("f_no_account", "по этому адресу не отвечает RetailCRM (HTTP {status}).", "this address does not answer as RetailCRM (HTTP {status})."),
    ("f_api_unavailable", "API недоступен для этого аккаунта или ключа (работа с API доступна только на платных тарифах или в тестовом периоде).", "the API is unavailable for this account or key (the API works only on paid plans or during the trial)."),
    ("f_missing_scopes", "ключу не хватает прав, нужных связкам: {scopes}. Включите их для ключа в RetailCRM.", "the key lacks permissions the bundles need: {scopes}. Enable them for the key in RetailCRM."),
    ("f_not_one_store", "ключ даёт доступ к: {reach}. Ключ должен быть ограничен ровно одним магазином (тип доступа «Доступ к отдельным магазинам»); для каждого магазина создайте отдельный ключ.", "the key reaches {reach}. A key must be restricted to exactly one store (access type «Access to selected stores»); create one key per store."),
    ("f_all_stores", "все магазины", "all stores"),
    ("f_chats_unavailable", "не удалось подключить чаты RetailCRM — проверьте, что для ключа активированы «Чаты».", "could not connect RetailCRM chats — check that «Chats» is activated for this key."),
    // A provider's last check.
    ("chk_webhook_not_set", "адрес вебхука не установлен ({why}); установите его вручную: {url}", "the webhook address was not set ({why}); set it by hand: {url}"),
    ("chk_webhook_not_removed", "Telegram не снял чужой вебхук, поэтому опрос getUpdates не работает: ", "Telegram kept a webhook set by someone else, so getUpdates polling cannot work: "),
    ("chk_secrets", "сохранённые ключи не читаются (сменился ключ шифрования?) — введите их заново.", "the stored keys cannot be read (was the secret key changed?) — enter them again."),
];

fn service(lang: Lang, s: Service) -> &'static str {
    lang.t(match s {
        Service::Retailcrm => "svc_retailcrm",
        Service::RetailcrmChats => "svc_retailcrm_chats",
        Service::Chatapi => "svc_chatapi",
        Service::Telegram => "svc_telegram",
        Service::Greenapi => "svc_greenapi",
        Service::Wacloud => "svc_wacloud",
    })
}

/// What an upstream answered, without naming the service.
pub fn upstream_detail(lang: Lang, f: &Upstream) -> Msg {
    let answer =
        |key: &str, message: &str| Msg::new(lang.t(key)).text(lang.t("answer")).quote(message);
    match f {
        Upstream::Credentials { message } => answer("up_credentials", message),
        Upstream::AccessDenied { message } => answer("up_access_denied", message),
        Upstream::NoAccount { status, message } => {
            let m = Msg::new(lang.f("up_no_account", &[("status", status)]));
            match message {
                Some(text) => m.text(lang.t("answer")).quote(text),
                None => m,
            }
        }
        Upstream::NotFound { message } => answer("up_not_found", message),
        Upstream::Refused {
            status,
            message,
            details,
        } => {
            let head = match status {
                Some(s) => lang.f("up_refused_status", &[("status", s)]),
                None => lang.t("up_refused").to_string(),
            };
            let mut m = match body_kind(lang, message) {
                Some(kind) => Msg::new(head).text(kind),
                None => Msg::new(head).text(lang.t("answer")).quote(message),
            };
            for d in details {
                m = m.text("; ").quote(d);
            }
            m
        }
        Upstream::RateLimited => Msg::new(lang.t("up_rate_limited")),
        Upstream::Server { status, message } => {
            let head = Msg::new(lang.f("up_server", &[("status", status)]));
            match body_kind(lang, message) {
                Some(kind) => head.text(kind),
                None => head.text(lang.t("answer")).quote(message),
            }
        }
        Upstream::Timeout => Msg::new(lang.t("up_timeout")),
        Upstream::Blocked { refused: r } => Msg::new(lang.t("up_blocked")).then(refused(lang, r)),
        Upstream::Unreachable { detail } => Msg::new(lang.t("up_unreachable"))
            .text(lang.t("details"))
            .quote(detail),
        Upstream::Unexpected { status, detail } => {
            let head = match status {
                Some(s) => lang.f("up_unexpected_status", &[("status", s)]),
                None => lang.t("up_unexpected").to_string(),
            };
            match body_kind(lang, detail) {
                Some(kind) => Msg::new(head).text(kind),
                None => Msg::new(head).text(lang.t("details")).quote(detail),
            }
        }
        Upstream::NotPaid { message } => answer("up_not_paid", message),
        Upstream::NotReady { status } => {
            let advice = match AccountState::from_status(status) {
                AccountState::Authenticated => "state_authenticated",
                AccountState::GotQrCode => "state_qr",
                AccountState::Loading => "state_loading",
                AccountState::Init => "state_init",
                AccountState::NotPaid => "state_not_paid",
                AccountState::Other(_) => "state_other",
            };
            Msg::new(lang.t("up_not_ready"))
                .quote(status)
                .text(" — ")
                .text(lang.t(advice))
        }
        Upstream::AccountState { state } => {
            let advice = match state.as_str() {
                "notAuthorized" => "gstate_not_authorized",
                "starting" => "gstate_starting",
                "sleepMode" => "gstate_sleep",
                "blocked" => "gstate_blocked",
                "yellowCard" => "gstate_yellow_card",
                _ => "gstate_other",
            };
            Msg::new(lang.t("up_account_state"))
                .quote(state)
                .text(" — ")
                .text(lang.t(advice))
        }
        Upstream::QuotaExceeded { message } => answer("up_quota", message),
        Upstream::NoWhatsapp { message } => answer("up_no_whatsapp", message),
        Upstream::BadSettings { detail } => Msg::new(lang.t("up_bad_settings"))
            .text(lang.t("details"))
            .quote(detail),
    }
}

/// "Service: what it answered."
/// Why the approved templates could not be read.
pub fn templates_failure(lang: Lang, f: &svyazka_core::messengers::templates::ListFailure) -> Msg {
    use svyazka_core::messengers::templates::ListFailure;
    match f {
        ListFailure::NoBusinessAccount => Msg::new(lang.t("wacloud_no_waba")),
        ListFailure::Settings(r) => reason(lang, r, None),
        ListFailure::Upstream(u) => upstream(lang, u),
    }
}

pub fn upstream(lang: Lang, u: &ServiceFailure) -> Msg {
    Msg::new(format!("{}: ", service(lang, u.service))).then(upstream_detail(lang, &u.failure))
}

pub fn phone(lang: Lang, p: PhoneProblem) -> &'static str {
    lang.t(match p {
        PhoneProblem::BadGroupId => "ph_bad_group_id",
        PhoneProblem::BadChatId => "ph_bad_chat_id",
        PhoneProblem::TooShort => "ph_too_short",
        PhoneProblem::TooLong => "ph_too_long",
        PhoneProblem::BadCharacters => "ph_bad_characters",
        PhoneProblem::NoDigits => "ph_no_digits",
    })
}

/// Why a run or step failed. `target`: the kind of the bundle's target provider, when known,
/// to name parameters by their labels.
pub fn reason(lang: Lang, r: &Reason, target: Option<ProviderKind>) -> Msg {
    let param = |key: &str| match target {
        Some(kind) => catalog::field(lang, kind, key).to_string(),
        None => key.to_string(),
    };
    match r {
        Reason::Upstream(u) => upstream(lang, u),
        Reason::EmptyParam { param: p } => {
            Msg::new(lang.f("r_empty_param", &[("param", &param(p))]))
        }
        Reason::NotHttpsLink { param: p, value } => Msg::new(lang.f(
            "r_not_https_link",
            &[("param", &param(p)), ("value", value)],
        )),
        Reason::NotANumber { param: p, value } => {
            Msg::new(lang.f("r_not_a_number", &[("param", &param(p)), ("value", value)]))
        }
        Reason::NotAPhone { input, problem } => Msg::new(lang.f(
            "r_not_a_phone",
            &[("input", input), ("problem", &phone(lang, *problem))],
        )),
        Reason::MissingEventField { field } => {
            Msg::new(lang.f("r_missing_event_field", &[("field", field)]))
        }
        Reason::MissingOutput { step, field } => {
            Msg::new(lang.f("r_missing_output", &[("step", step), ("field", field)]))
        }
        Reason::Template { error } => template(lang, error),
        Reason::NoSuchAction { kind, action } => Msg::new(lang.f(
            "r_no_such_action",
            &[("kind", &kind.title()), ("action", action)],
        )),
        Reason::SecretsUnreadable { provider } => {
            Msg::new(lang.f("r_secrets", &[("provider", provider)]))
        }
        Reason::SettingsMismatch { provider } => {
            Msg::new(lang.f("r_settings_mismatch", &[("provider", provider)]))
        }
        Reason::ProviderGone => Msg::new(lang.t("r_provider_gone")),
        Reason::ProviderUnreadable => Msg::new(lang.t("r_provider_unreadable")),
        Reason::ChatsNotRegistered => Msg::new(lang.t("r_chats_not_registered")),
        Reason::InterruptedSend => Msg::new(lang.t("r_interrupted")),
        Reason::DefinitionUnreadable { .. } => Msg::new(lang.t("r_definition")),
        Reason::PayloadUnreadable { .. } => Msg::new(lang.t("r_payload")),
        Reason::UnknownInboxKind { kind } => Msg::new(lang.f("r_inbox_kind", &[("kind", kind)])),
        Reason::ProviderAddress { error } => domain(lang, error),
        Reason::Database { .. } => Msg::new(lang.t("r_database")),
        Reason::ContactBeingCreated => Msg::new(lang.t("r_contact_being_created")),
        Reason::OtherStore { site, message } => {
            Msg::new(lang.f("r_other_store", &[("site", site)])).quote(message)
        }
        Reason::ReplyNoRoute => Msg::new(lang.t("r_reply_no_route")),
        Reason::ReplyWindowClosed {
            last_customer_message,
        } if last_customer_message.is_empty() => Msg::new(lang.t("r_window_never")),
        Reason::ReplyWindowClosed {
            last_customer_message,
        } => Msg::new(lang.f("r_reply_window_closed", &[("at", last_customer_message)])),
        Reason::ReplyUnsupported { kind } => {
            Msg::new(lang.f("r_reply_unsupported", &[("kind", kind)]))
        }
        Reason::MediaUnavailable { kind } => {
            Msg::new(lang.f("r_media_unavailable", &[("kind", kind)]))
        }
        Reason::OtherStoreInTrigger { site, order_site } => Msg::new(lang.f(
            "r_other_store_in_trigger",
            &[("site", site), ("order_site", order_site)],
        )),
    }
}

/// A reason as stored in an `error` column; text from before reasons were typed is shown as
/// it was written, quoted.
pub fn stored(lang: Lang, text: &str, target: Option<ProviderKind>) -> Msg {
    match read_stored::<Reason>(text) {
        Stored::Typed(r) => reason(lang, &r, target),
        Stored::Text(t) => Msg::default().quote(t),
    }
}

fn token(lang: Lang, t: &Token) -> Msg {
    let key = match t {
        Token::End => "tok_end",
        Token::VariableStart => "tok_variable_start",
        Token::VariableEnd => "tok_variable_end",
        Token::BlockStart => "tok_block_start",
        Token::BlockEnd => "tok_block_end",
        Token::Name => "tok_name",
        Token::String => "tok_string",
        Token::Number => "tok_number",
        Token::Text => "tok_text",
        Token::Expression => "tok_expression",
        Token::Keyword => "tok_keyword",
        Token::Symbol(s) => return Msg::new(format!("«{s}»")),
        Token::Other(s) => return Msg::default().quote(s),
    };
    Msg::new(lang.t(key))
}

fn syntax(lang: Lang, s: &Syntax) -> Msg {
    match s {
        Syntax::Unexpected { found, expected } => {
            let found = token(lang, found);
            match expected {
                // Tokens may quote the engine's own words, so the sentence is put together here.
                Some(e) => {
                    let template = lang.t("tpl_expected_found");
                    let (a, rest) = template.split_once("{expected}").unwrap_or((template, ""));
                    let (b, c) = rest.split_once("{found}").unwrap_or((rest, ""));
                    Msg::new(a).then(token(lang, e)).text(b).then(found).text(c)
                }
                None => {
                    let template = lang.t("tpl_unexpected");
                    let (a, b) = template.split_once("{found}").unwrap_or((template, ""));
                    Msg::new(a).then(found).text(b)
                }
            }
        }
        Syntax::UnexpectedCharacter => Msg::new(lang.t("tpl_bad_character")),
        Syntax::UnterminatedString => Msg::new(lang.t("tpl_unterminated_string")),
        Syntax::UnterminatedComment => Msg::new(lang.t("tpl_unterminated_comment")),
        Syntax::TrailingInput => Msg::new(lang.t("tpl_trailing")),
        Syntax::UnknownStatement { name } => {
            Msg::new(lang.f("tpl_unknown_statement", &[("name", name)]))
        }
        Syntax::Other { detail } => Msg::new(lang.t("tpl_engine_says")).quote(detail),
    }
}

pub fn template(lang: Lang, e: &TemplateError) -> Msg {
    match e {
        TemplateError::Syntax { line, syntax: s } => {
            Msg::new(lang.f("tpl_syntax", &[("line", line)])).then(syntax(lang, s))
        }
        TemplateError::Unknown { name } => Msg::new(lang.f("tpl_unknown", &[("name", name)])),
        TemplateError::Render { line, failure } => {
            let head = Msg::new(lang.f("tpl_render", &[("line", line)]));
            let what = match failure {
                RenderFailure::UnknownFilter => Msg::new(lang.t("tpl_unknown_filter")),
                RenderFailure::UnknownTest => Msg::new(lang.t("tpl_unknown_test")),
                RenderFailure::UnknownFunction => Msg::new(lang.t("tpl_unknown_function")),
                RenderFailure::UnknownMethod => Msg::new(lang.t("tpl_unknown_method")),
                RenderFailure::WrongArguments => Msg::new(lang.t("tpl_wrong_arguments")),
                RenderFailure::TooMuchWork => Msg::new(lang.t("tpl_too_much_work")),
                RenderFailure::InvalidOperation { detail } => {
                    Msg::new(lang.t("tpl_invalid_operation")).quote(detail)
                }
                RenderFailure::Other { detail } => {
                    Msg::new(lang.t("tpl_engine_says")).quote(detail)
                }
            };
            head.then(what)
        }
        TemplateError::TooLong { max } => Msg::new(lang.f("tpl_too_long", &[("max", max)])),
        TemplateError::OutputTooLong { max } => {
            Msg::new(lang.f("tpl_output_too_long", &[("max", max)]))
        }
        TemplateError::Unsupported { forbidden } => Msg::new(match forbidden {
            Forbidden::Multiplication => lang.t("tpl_no_multiplication").to_string(),
            Forbidden::Statement(name) => lang.f("tpl_no_statement", &[("name", name)]),
        }),
    }
}

/// Why the outbound policy does not call an address.
pub fn refused(lang: Lang, r: &Refused) -> Msg {
    let class = |c: &AddressClass| {
        lang.t(match c {
            AddressClass::Public => "addr_public",
            AddressClass::Loopback => "addr_loopback",
            AddressClass::Private => "addr_private",
            AddressClass::LinkLocal => "addr_link_local",
            AddressClass::SharedCgnat => "addr_cgnat",
            AddressClass::UniqueLocal => "addr_unique_local",
            AddressClass::Multicast => "addr_multicast",
            AddressClass::Reserved => "addr_reserved",
        })
    };
    Msg::new(match r {
        Refused::NotUrl => lang.t("ref_not_url").to_string(),
        Refused::NoHost => lang.t("ref_no_host").to_string(),
        Refused::Scheme => lang.t("ref_scheme").to_string(),
        Refused::UserInfo => lang.t("ref_user_info").to_string(),
        Refused::Fragment => lang.t("ref_fragment").to_string(),
        Refused::Address { ip, class: c } => {
            lang.f("ref_address", &[("ip", ip), ("class", &class(c))])
        }
        Refused::Resolved { host, ips } => lang.f("ref_resolved", &[("host", host), ("ips", ips)]),
        Refused::Dns { host, reason } => lang.f("ref_dns", &[("host", host), ("reason", reason)]),
    })
}

/// The words for a body code of `upstream::describe_body`, when `detail` is one.
fn body_kind(lang: Lang, detail: &str) -> Option<&'static str> {
    let [empty, html, not_json] = svyazka_core::upstream::BODY_CODES;
    Some(match detail {
        d if d == empty => lang.t("body_empty"),
        d if d == html => lang.t("body_html"),
        d if d == not_json => lang.t("body_not_json"),
        _ => return None,
    })
}

pub fn domain(lang: Lang, e: &DomainError) -> Msg {
    Msg::new(match e {
        DomainError::Empty => lang.t("dom_empty").to_string(),
        DomainError::Whitespace => lang.t("dom_whitespace").to_string(),
        DomainError::Invalid(input) => lang.f("dom_invalid", &[("input", input)]),
        DomainError::NotHttps => lang.t("dom_not_https").to_string(),
        DomainError::Path(path) => lang.f("dom_path", &[("path", path)]),
        DomainError::QueryOrFragment => lang.t("dom_query").to_string(),
        DomainError::UserInfo => lang.t("dom_user_info").to_string(),
        DomainError::Port => lang.t("dom_port").to_string(),
        DomainError::IpAddress => lang.t("dom_ip").to_string(),
    })
}

/// A validation rule, worded without the field's name.
pub fn rule(lang: Lang, field: &str, p: &FieldProblem) -> Msg {
    match p {
        FieldProblem::Required => Msg::new(lang.t(match field {
            "api_key" => "field_required_api_key",
            "api_url" => "field_required_api_url",
            "token" => "field_required_token",
            "instance_id" => "field_required_instance_id",
            "phone_number_id" => "field_required_phone_number_id",
            "app_secret" => "field_required_app_secret",
            _ => "field_required",
        })),
        FieldProblem::Length { min, max } => Msg::new(match (min, max) {
            (Some(min), Some(max)) => lang.f("len_between", &[("min", min), ("max", max)]),
            (Some(min), None) => lang.f("len_min", &[("min", min)]),
            (None, Some(max)) => lang.f("len_max", &[("max", max)]),
            (None, None) => lang.t("field_invalid").to_string(),
        }),
        FieldProblem::MustMatch { .. } => Msg::new(lang.t("field_must_match")),
        FieldProblem::Invalid { .. } => Msg::new(lang.t("field_invalid")),
        FieldProblem::Domain { error } => domain(lang, error),
        FieldProblem::NotRetailcrm {
            failure: Upstream::NoAccount { status, message },
        } => {
            let m = Msg::new(lang.f("f_no_account", &[("status", status)]));
            match message {
                Some(text) => m.text(lang.t("answer")).quote(text),
                None => m,
            }
        }
        FieldProblem::NotRetailcrm { failure } => {
            Msg::new(lang.t("f_not_retailcrm")).then(upstream_detail(lang, failure))
        }
        FieldProblem::ApiUnavailable { message } => Msg::new(lang.t("f_api_unavailable"))
            .text(lang.t("answer"))
            .quote(message),
        FieldProblem::MissingScopes { scopes } => {
            Msg::new(lang.f("f_missing_scopes", &[("scopes", &scopes.join(", "))]))
        }
        FieldProblem::NotOneStore { sites } => {
            let reach = if sites.is_empty() {
                lang.t("f_all_stores").to_string()
            } else {
                sites.join(", ")
            };
            Msg::new(lang.f("f_not_one_store", &[("reach", &reach)]))
        }
        FieldProblem::ChatsUnavailable { failure } => Msg::new(lang.t("f_chats_unavailable"))
            .text(" ")
            .then(upstream(lang, failure)),
        FieldProblem::Upstream { failure } => upstream(lang, failure),
        FieldProblem::Refused { refused: r } => refused(lang, r),
        FieldProblem::RetypeSecret => Msg::new(lang.t("f_retype_secret")),
    }
}

/// "Label: rule." — the way the sign-up and name fields say it.
pub fn labelled(lang: Lang, label_key: &str, field: &str, p: &FieldProblem) -> Msg {
    if field == "password_repeat" && matches!(p, FieldProblem::MustMatch { .. }) {
        return Msg::new(lang.t("err_password_match"));
    }
    Msg::new(format!("{}: ", lang.t(label_key)))
        .then(rule(lang, field, p))
        .text(".")
}

/// A provider's last check, as stored in `check_message`.
pub fn check(lang: Lang, text: &str) -> Msg {
    match read_stored::<CheckFailure>(text) {
        Stored::Typed(CheckFailure::Fields { fields }) => {
            Msg::join(fields.iter().map(|(field, p)| rule(lang, field, p)), "; ")
        }
        Stored::Typed(CheckFailure::WebhookNotSet { url, failure }) => {
            let template = lang.f("chk_webhook_not_set", &[("url", &url)]);
            let (a, b) = template.split_once("{why}").unwrap_or((&template, ""));
            Msg::new(a).then(upstream(lang, &failure)).text(b)
        }
        Stored::Typed(CheckFailure::WebhookNotRemoved { failure }) => {
            Msg::new(lang.t("chk_webhook_not_removed"))
                .then(upstream_detail(lang, &failure.failure))
        }
        Stored::Typed(CheckFailure::SecretsUnreadable) => Msg::new(lang.t("chk_secrets")),
        Stored::Text(t) => Msg::default().quote(t),
    }
}

/// What is wrong with one parameter's mapping (the field's label is shown next to it).
pub fn param_issue(lang: Lang, issue: &ParamIssue) -> Msg {
    match issue {
        ParamIssue::Unmapped => Msg::new(lang.t("b_unmapped")),
        ParamIssue::NoEventField { field } => {
            Msg::new(lang.f("b_no_event_field", &[("field", field)]))
        }
        ParamIssue::NoStepOutput { step, field } => {
            Msg::new(lang.f("b_no_step_output", &[("step", step), ("field", field)]))
        }
        ParamIssue::Template { error } => template(lang, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_words_are_quoted_ours_translated() {
        let u = ServiceFailure {
            service: Service::Retailcrm,
            failure: Upstream::Credentials {
                message: "Wrong \"apiKey\" value.".into(),
            },
        };
        let ru = upstream(Lang::Ru, &u).plain();
        assert_eq!(
            ru,
            "RetailCRM: ключ или токен не принят — проверьте его в настройках провайдера. Ответ: «Wrong \"apiKey\" value.»"
        );
        assert!(upstream(Lang::En, &u).plain().contains("was refused"));
    }

    #[test]
    fn template_errors_in_both_languages() {
        let e = svyazka_core::bundles::template::check("Hi {{ name ", &Default::default())
            .expect_err("syntax");
        assert_eq!(
            template(Lang::Ru, &e).plain(),
            "ошибка в шаблоне, строка 1: ожидалось: конец параметра }}, а встретилось: конец шаблона"
        );
        assert_eq!(
            template(Lang::En, &e).plain(),
            "template error, line 1: expected the end of a parameter }}, found the end of the template"
        );
    }

    #[test]
    fn old_text_rows_are_shown_quoted() {
        assert_eq!(
            stored(Lang::Ru, "RetailCRM: Not found", None).plain(),
            "«RetailCRM: Not found»"
        );
    }
}
