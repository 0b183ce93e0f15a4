//! Labels of the catalog's keys (events, actions, their fields and parameters) per provider
//! kind, and the sample values a template preview fills in where a sample is human text.

use svyazka_core::catalog::{self, FieldDef};
use svyazka_core::providers::ProviderKind;

use super::Lang;

/// `kind.event.key`, `kind.action.key`, `kind.field.key` (fields, parameters and outputs of a
/// kind share one label per key).
#[rustfmt::skip]
const LABELS: &[super::Row] = &[
    ("retailcrm.field.provider_type", "Тип провайдера", "Provider type"),
    ("retailcrm.field.provider_name", "Название провайдера", "Provider name"),
    ("retailcrm.event.new_deal", "Новая сделка", "New deal"),
    ("retailcrm.event.deal_status_changed", "Смена статуса сделки", "Deal status changed"),
    ("retailcrm.action.new_contact", "Новый контакт", "New contact"),
    ("retailcrm.action.new_deal", "Новая сделка", "New deal"),
    ("retailcrm.action.new_message", "Новое сообщение", "New message"),
    ("retailcrm.field.order_id", "ID сделки", "Deal ID"),
    ("retailcrm.field.number", "Номер сделки", "Deal number"),
    ("retailcrm.field.status", "Статус сделки", "Deal status"),
    ("retailcrm.field.phone", "Телефон контакта", "Contact phone"),
    ("retailcrm.field.contact_id", "ID контакта", "Contact ID"),
    ("retailcrm.field.first_name", "Имя", "First name"),
    ("retailcrm.field.last_name", "Фамилия", "Last name"),
    ("retailcrm.field.email", "Email", "Email"),
    ("retailcrm.field.total", "Сумма", "Total"),
    ("retailcrm.field.site", "Магазин", "Store"),
    ("retailcrm.field.created_at", "Создана", "Created at"),
    ("retailcrm.field.name", "Имя контакта", "Contact name"),
    ("retailcrm.field.source", "Источник", "Source"),
    ("retailcrm.field.contact_phone", "Телефон контакта", "Contact phone"),
    ("retailcrm.field.contact_name", "Имя контакта", "Contact name"),
    ("retailcrm.field.comment", "Комментарий", "Comment"),
    ("retailcrm.field.deal_id", "ID сделки", "Deal ID"),
    ("retailcrm.field.deal_number", "Номер сделки", "Deal number"),
    ("retailcrm.field.deal_status", "Статус сделки", "Deal status"),
    ("retailcrm.field.text", "Текст сообщения", "Message text"),
    ("retailcrm.field.message_id", "ID сообщения", "Message ID"),
    ("retailcrm.field.only_if_no_open_deal", "Только если у контакта нет открытой сделки", "Only when the contact has no open deal"),
    ("chatapi.field.provider_type", "Тип провайдера", "Provider type"),
    ("chatapi.field.provider_name", "Название провайдера", "Provider name"),
    ("chatapi.event.incoming_message", "Входящие сообщения", "Incoming messages"),
    ("chatapi.action.send_message", "Отправить сообщение", "Send message"),
    ("chatapi.field.sender_id", "id отправителя", "Sender id"),
    ("chatapi.field.sender_name", "Имя отправителя", "Sender name"),
    ("chatapi.field.text", "Текст сообщения", "Message text"),
    ("chatapi.field.media", "Тип вложения", "Attachment type"),
    ("chatapi.field.media_name", "Имя файла вложения", "Attachment file name"),
    ("chatapi.field.chat_id", "ID чата", "Chat id"),
    ("chatapi.field.message_id", "ID сообщения", "Message id"),
    ("chatapi.field.time", "Время", "Time"),
    ("chatapi.field.messenger", "Мессенджер", "Messenger"),
    ("chatapi.field.recipient", "Получатель", "Recipient"),
    ("chatapi.field.mode", "Что отправить", "What to send"),
    ("chatapi.field.template", "Шаблон", "Template"),
    ("chatapi.field.language", "Язык шаблона", "Template language"),
    ("chatapi.field.namespace", "Пространство имён шаблона", "Template namespace"),
    ("chatapi.field.shape", "Состав шаблона", "Template layout"),
    ("chatapi.field.header_param", "Заголовок: переменная {{1}}", "Header: variable {{1}}"),
    ("chatapi.field.header_media", "Заголовок: ссылка на файл (https)", "Header: file link (https)"),
    ("chatapi.field.button1", "Кнопка-ссылка 1: окончание адреса", "Link button 1: end of the address"),
    ("chatapi.field.button2", "Кнопка-ссылка 2: окончание адреса", "Link button 2: end of the address"),
    ("chatapi.field.param1", "Переменная {{1}}", "Variable {{1}}"),
    ("chatapi.field.param2", "Переменная {{2}}", "Variable {{2}}"),
    ("chatapi.field.param3", "Переменная {{3}}", "Variable {{3}}"),
    ("chatapi.field.param4", "Переменная {{4}}", "Variable {{4}}"),
    ("chatapi.field.param5", "Переменная {{5}}", "Variable {{5}}"),
    ("chatapi.field.param6", "Переменная {{6}}", "Variable {{6}}"),
    ("chatapi.field.param7", "Переменная {{7}}", "Variable {{7}}"),
    ("chatapi.field.param8", "Переменная {{8}}", "Variable {{8}}"),
    ("chatapi.field.param9", "Переменная {{9}}", "Variable {{9}}"),
    ("chatapi.field.param10", "Переменная {{10}}", "Variable {{10}}"),
    ("telegram.field.provider_type", "Тип провайдера", "Provider type"),
    ("telegram.field.provider_name", "Название провайдера", "Provider name"),
    ("telegram.event.incoming_message", "Входящие сообщения", "Incoming messages"),
    ("telegram.action.send_message", "Отправить сообщение", "Send message"),
    ("telegram.field.sender_id", "ID пользователя", "User id"),
    ("telegram.field.sender_name", "Имя отправителя", "Sender name"),
    ("telegram.field.sender_phone", "Телефон (если поделился)", "Phone (if shared)"),
    ("telegram.field.text", "Текст сообщения", "Message text"),
    ("telegram.field.media", "Тип вложения", "Attachment type"),
    ("telegram.field.media_name", "Имя файла вложения", "Attachment file name"),
    ("telegram.field.chat_id", "ID чата", "Chat id"),
    ("telegram.field.message_id", "ID сообщения", "Message id"),
    ("telegram.field.time", "Время", "Time"),
    ("telegram.field.messenger", "Мессенджер", "Messenger"),
];

/// Previews show these instead of the catalog's samples for fields that hold human text.
#[rustfmt::skip]
const SAMPLES: &[super::Row] = &[
    ("first_name", "Анна", "Anna"),
    ("last_name", "Петрова", "Peterson"),
    ("sender_name", "Иван", "John"),
    ("contact_name", "Иван", "John"),
    ("text", "Здравствуйте! Хочу сделать заказ", "Hello! I would like to order"),
    ("provider_name", "Мой провайдер", "My provider"),
];

fn find(lang: Lang, key: &str) -> Option<&'static str> {
    LABELS.iter().find(|r| r.0 == key).map(|r| lang.pick(r))
}

/// Whose labels a kind uses: the WhatsApp kinds share the ChatAPI gateway's events and actions.
/// Cloud API labels its own template action and falls back to the ChatAPI ones.
fn labels_of(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Greenapi | ProviderKind::Wacloud => ProviderKind::Chatapi.as_str(),
        other => other.as_str(),
    }
}

fn find_label(lang: Lang, kind: ProviderKind, what: &str, key: &str) -> Option<&'static str> {
    find(lang, &format!("{}.{what}.{key}", kind.as_str()))
        .or_else(|| find(lang, &format!("{}.{what}.{key}", labels_of(kind))))
}

fn label(lang: Lang, kind: ProviderKind, what: &str, key: &str) -> String {
    find_label(lang, kind, what, key).map_or_else(
        || {
            tracing::warn!(kind = kind.as_str(), what, key, "missing catalog label");
            key.to_string()
        },
        str::to_string,
    )
}

pub fn event(lang: Lang, kind: ProviderKind, key: &str) -> String {
    label(lang, kind, "event", key)
}

pub fn action(lang: Lang, kind: ProviderKind, key: &str) -> String {
    label(lang, kind, "action", key)
}

/// An event field, an action parameter or an output.
pub fn field(lang: Lang, kind: ProviderKind, key: &str) -> String {
    label(lang, kind, "field", key)
}

/// The value a template preview uses for `f`.
pub fn sample(lang: Lang, f: &FieldDef) -> String {
    SAMPLES
        .iter()
        .find(|r| r.0 == f.key && f.ty == catalog::FieldType::Text)
        .map_or(f.sample, |r| lang.pick(r))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the catalog declares has a label in both languages.
    #[test]
    fn every_catalog_key_is_labelled() {
        for kind in ProviderKind::ALL {
            let mut keys = Vec::new();
            for e in catalog::events(kind) {
                keys.push(("event", e.key));
                keys.extend(e.fields.iter().map(|f| ("field", f.key)));
            }
            for a in catalog::actions(kind) {
                keys.push(("action", a.key));
                keys.extend(a.params.iter().map(|p| ("field", p.key)));
                keys.extend(a.outputs.iter().map(|o| ("field", o.key)));
            }
            for (what, key) in keys {
                assert!(
                    find_label(Lang::Ru, kind, what, key).is_some(),
                    "no label for {}.{what}.{key}",
                    kind.as_str()
                );
            }
        }
    }

    #[test]
    fn samples_follow_the_language() {
        let event = catalog::event(ProviderKind::Retailcrm, "new_deal").expect("event");
        let first = event
            .fields
            .iter()
            .find(|f| f.key == "first_name")
            .expect("field");
        assert_eq!(sample(Lang::Ru, first), "Анна");
        assert_eq!(sample(Lang::En, first), "Anna");
        let phone = event
            .fields
            .iter()
            .find(|f| f.key == "phone")
            .expect("field");
        assert_eq!(sample(Lang::En, phone), phone.sample);
    }
}
