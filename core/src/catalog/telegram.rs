use super::FieldType::*;
use super::{ActionDef, EventDef, f, p};

pub const EVENTS: &[EventDef] = &[EventDef {
    key: "incoming_message",
    fields: &[
        f("sender_id", Id, "5123456789"),
        f("sender_name", Text, "Анна"),
        f("sender_phone", Phone, "79991234567"),
        f("text", Text, "Где мой заказ?"),
        // For media: its kind's code (photo, document, voice, audio, video, sticker, location)
        // and the file's name; empty for text. `text` then holds the caption or a marker.
        f("media", Text, ""),
        f("media_name", Text, ""),
        f("chat_id", Id, "5123456789"),
        f("message_id", Text, "5123456789:55"),
        f("time", Number, "1764410000"),
        // Which RetailCRM chat channel the conversation belongs to.
        f("messenger", Text, "telegram"),
        f("provider_type", Text, "Telegram"),
        f("provider_name", Text, "Telegram бот"),
    ],
    status_filter: false,
}];

pub const ACTIONS: &[ActionDef] = &[ActionDef {
    key: "send_message",
    params: &[p("chat_id", Id, true), p("text", Text, true)],
    outputs: &[f("message_id", Id, "56")],
}];
