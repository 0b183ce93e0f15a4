use super::FieldType::*;
use super::{ActionDef, EventDef, FieldDef, ParamDef, f, p};

const ORDER_FIELDS: &[FieldDef] = &[
    f("order_id", Id, "7146"),
    f("number", Text, "7146C"),
    f("status", Text, "send-to-delivery"),
    f("phone", Phone, "79991234567"),
    f("contact_id", Id, "4924"),
    f("first_name", Text, "Анна"),
    f("last_name", Text, "Петрова"),
    f("email", Text, "anna@example.com"),
    f("total", Number, "2490"),
    f("site", Text, "shop"),
    f("created_at", Text, "2026-11-29 10:00:00"),
    f("provider_type", Text, "RetailCRM"),
    f("provider_name", Text, "Мой RetailCRM"),
];

pub const EVENTS: &[EventDef] = &[
    EventDef {
        key: "new_deal",
        fields: ORDER_FIELDS,
        status_filter: true,
    },
    EventDef {
        key: "deal_status_changed",
        fields: ORDER_FIELDS,
        status_filter: true,
    },
];

pub const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "new_contact",
        params: &[
            p("phone", Phone, true),
            p("name", Text, false),
            p("source", Text, false),
        ],
        outputs: &[
            f("contact_id", Id, "4924"),
            f("contact_phone", Phone, "79991234567"),
            f("contact_name", Text, "Иван"),
        ],
    },
    ActionDef {
        key: "new_deal",
        params: &[
            p("phone", Phone, true),
            p("contact_id", Id, true),
            p("source", Text, false),
            p("comment", Text, false),
            ParamDef {
                key: "only_if_no_open_deal",
                ty: Bool,
                required: false,
                default: Some("true"),
                mode: None,
            },
        ],
        outputs: &[
            f("deal_id", Id, "7146"),
            f("deal_number", Text, "7146C"),
            f("deal_status", Text, "new"),
        ],
    },
    ActionDef {
        key: "new_message",
        params: &[p("contact_id", Id, true), p("text", Text, true)],
        outputs: &[f("message_id", Id, "123")],
    },
];
