//! The operators' replies page.

use super::Row;

pub(crate) const LABELS: &[Row] = &[
    ("replies", "Ответы операторов", "Operators' replies"),
    (
        "replies_intro",
        "Сообщения, которые операторы написали клиентам в чатах RetailCRM, и их доставка в WhatsApp и Telegram (последние 100).",
        "Messages operators wrote to customers in RetailCRM's chats, and their delivery to WhatsApp and Telegram (the latest 100).",
    ),
    (
        "replies_empty",
        "Операторы ещё не отвечали из чатов RetailCRM.",
        "Operators have not answered from RetailCRM's chats yet.",
    ),
    ("replies_to", "Кому", "To"),
    ("replies_text", "Текст", "Text"),
    ("replies_waiting", "Ждёт повтора", "Waiting to retry"),
    ("replies_sending", "Отправляется", "Sending"),
    ("replies_sent", "Доставлен", "Delivered"),
    ("replies_failed", "Не доставлен", "Not delivered"),
];
