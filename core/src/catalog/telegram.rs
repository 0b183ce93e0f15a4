use super::FieldType::*;
use super::{ActionDef, EventDef, f, p};

pub const EVENTS: &[EventDef] = &[EventDef {
    key: "incoming_message",
    ru: "Входящие сообщения",
    en: "Incoming messages",
    fields: &[
        f("sender_id", "ID пользователя", "User id", Id, "5123456789"),
        f(
            "sender_name",
            "Имя отправителя",
            "Sender name",
            Text,
            "Анна",
        ),
        f(
            "sender_phone",
            "Телефон (если поделился)",
            "Phone (if shared)",
            Phone,
            "79991234567",
        ),
        f(
            "text",
            "Текст сообщения",
            "Message text",
            Text,
            "Где мой заказ?",
        ),
        f("chat_id", "ID чата", "Chat id", Id, "5123456789"),
        f(
            "message_id",
            "ID сообщения",
            "Message id",
            Text,
            "5123456789:55",
        ),
        f("time", "Время", "Time", Number, "1764410000"),
    ],
    status_filter: false,
}];

pub const ACTIONS: &[ActionDef] = &[ActionDef {
    key: "send_message",
    ru: "Отправить сообщение",
    en: "Send message",
    params: &[
        p("chat_id", "ID чата", "Chat id", Id, true),
        p("text", "Текст сообщения", "Message text", Text, true),
    ],
    outputs: &[f("message_id", "ID сообщения", "Message id", Id, "56")],
}];
