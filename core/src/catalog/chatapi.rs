use super::FieldType::*;
use super::{ActionDef, EventDef, f, p};

pub const EVENTS: &[EventDef] = &[EventDef {
    key: "incoming_message",
    fields: &[
        f("sender_id", Phone, "79991234567"),
        f("sender_name", Text, "Иван"),
        f("text", Text, "Здравствуйте! Хочу сделать заказ"),
        // For media: its kind's code (photo, document, voice, audio, video, sticker, location)
        // and the file's name; empty for text. `text` then holds the caption or a marker.
        f("media", Text, ""),
        f("media_name", Text, ""),
        f("chat_id", Text, "79991234567@c.us"),
        f("message_id", Text, "false_79991234567@c.us_3A59"),
        f("time", Number, "1764410000"),
        // Which RetailCRM chat channel the conversation belongs to.
        f("messenger", Text, "whatsapp"),
        f("provider_type", Text, "WhatsApp (1msg.io / ChatAPI)"),
        f("provider_name", Text, "WhatsApp магазина"),
    ],
    status_filter: false,
}];

pub const ACTIONS: &[ActionDef] = &[ActionDef {
    key: "send_message",
    params: &[p("recipient", Phone, true), p("text", Text, true)],
    outputs: &[f("message_id", Text, "true_79991234567@c.us_DF38")],
}];
