use super::FieldType::*;
use super::{ActionDef, EventDef, f, p};

pub const EVENTS: &[EventDef] = &[EventDef {
    key: "incoming_message",
    ru: "Входящие сообщения",
    en: "Incoming messages",
    fields: &[
        f(
            "sender_id",
            "id отправителя",
            "Sender id",
            Phone,
            "79991234567",
        ),
        f(
            "sender_name",
            "Имя отправителя",
            "Sender name",
            Text,
            "Иван",
        ),
        f(
            "text",
            "Текст сообщения",
            "Message text",
            Text,
            "Здравствуйте! Хочу сделать заказ",
        ),
        f("chat_id", "ID чата", "Chat id", Text, "79991234567@c.us"),
        f(
            "message_id",
            "ID сообщения",
            "Message id",
            Text,
            "false_79991234567@c.us_3A59",
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
        p("recipient", "Получатель", "Recipient", Phone, true),
        p("text", "Текст сообщения", "Message text", Text, true),
    ],
    outputs: &[f(
        "message_id",
        "ID сообщения",
        "Message id",
        Text,
        "true_79991234567@c.us_DF38",
    )],
}];
