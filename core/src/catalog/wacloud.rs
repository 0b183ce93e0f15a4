//! The WhatsApp Cloud API: the same incoming messages and free-text send as the gateways, and
//! approved templates (the only thing that may start a conversation outside the 24-hour window).

use super::FieldType::*;
use super::{ActionDef, ParamDef, f, p};

/// A template's body parameters `{{1}}`…`{{5}}`, each mapped like any other parameter.
const fn param(key: &'static str) -> ParamDef {
    p(key, Text, false)
}

pub const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "send_message",
        params: &[p("recipient", Phone, true), p("text", Text, true)],
        outputs: &[f("message_id", Text, "wamid.HBgLNzk5OTEyMzQ1NjcVAgARGBI")],
    },
    ActionDef {
        key: "send_template",
        params: &[
            p("recipient", Phone, true),
            // Names, not text: typed as literals (the editor suggests the approved ones).
            p("template", Id, true),
            ParamDef {
                key: "language",
                ty: Id,
                required: true,
                default: Some("ru"),
            },
            param("param1"),
            param("param2"),
            param("param3"),
            param("param4"),
            param("param5"),
        ],
        outputs: &[f("message_id", Text, "wamid.HBgLNzk5OTEyMzQ1NjcVAgARGBI")],
    },
];
