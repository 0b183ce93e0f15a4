//! «Отправить сообщение» of official WhatsApp (the Cloud API, 1msg.io / ChatAPI): free text,
//! delivered only inside the 24-hour window, or an approved template, which may also start a
//! conversation outside it. One action with two modes, so a bundle switches between them
//! without losing its recipient.

use super::FieldType::*;
use super::{ActionDef, MODE, MODE_TEMPLATE, MODE_TEXT, ParamDef, f, in_mode, p};

/// A template's body variables `{{1}}`…`{{10}}`, in order, each mapped like any parameter.
const fn var(key: &'static str) -> ParamDef {
    in_mode(MODE_TEMPLATE, p(key, Text, false))
}

const SEND_PARAMS: &[ParamDef] = &[
    p("recipient", Phone, true),
    ParamDef {
        key: MODE,
        ty: Id,
        required: false,
        default: Some(MODE_TEXT),
        mode: None,
    },
    in_mode(MODE_TEXT, p("text", Text, true)),
    // Names, not text: chosen from the approved templates the editor reads live.
    in_mode(MODE_TEMPLATE, p("template", Id, true)),
    in_mode(
        MODE_TEMPLATE,
        ParamDef {
            key: "language",
            ty: Id,
            required: true,
            default: Some("ru"),
            mode: None,
        },
    ),
    // 1msg.io's template namespace, from its template list; the Cloud API needs none.
    in_mode(MODE_TEMPLATE, p("namespace", Id, false)),
    // What the chosen template needs beyond its body (header value, URL buttons), set with
    // the template: see `messengers::templates::Shape`.
    in_mode(MODE_TEMPLATE, p("shape", Id, false)),
    // A text header's `{{1}}`, or the https link of a media header's file.
    var("header_param"),
    var("header_media"),
    var("param1"),
    var("param2"),
    var("param3"),
    var("param4"),
    var("param5"),
    var("param6"),
    var("param7"),
    var("param8"),
    var("param9"),
    var("param10"),
    // The variable ending the address of the template's first and second URL buttons.
    var("button1"),
    var("button2"),
];

pub const CHATAPI_ACTIONS: &[ActionDef] = &[ActionDef {
    key: "send_message",
    params: SEND_PARAMS,
    outputs: &[f("message_id", Text, "true_79991234567@c.us_DF38")],
}];

pub const WACLOUD_ACTIONS: &[ActionDef] = &[ActionDef {
    key: "send_message",
    params: SEND_PARAMS,
    outputs: &[f("message_id", Text, "wamid.HBgLNzk5OTEyMzQ1NjcVAgARGBI")],
}];
