use super::FieldType::*;
use super::{ActionDef, EventDef, FieldDef, ParamDef, f, p};

const ORDER_FIELDS: &[FieldDef] = &[
    f("order_id", "ID сделки", "Deal ID", Id, "7146"),
    f("number", "Номер сделки", "Deal number", Text, "7146C"),
    f(
        "status",
        "Статус сделки",
        "Deal status",
        Text,
        "send-to-delivery",
    ),
    f(
        "phone",
        "Телефон контакта",
        "Contact phone",
        Phone,
        "79991234567",
    ),
    f("contact_id", "ID контакта", "Contact ID", Id, "4924"),
    f("first_name", "Имя", "First name", Text, "Анна"),
    f("last_name", "Фамилия", "Last name", Text, "Петрова"),
    f("email", "Email", "Email", Text, "anna@example.com"),
    f("total", "Сумма", "Total", Number, "2490"),
    f("site", "Магазин", "Store", Text, "shop"),
    f(
        "created_at",
        "Создана",
        "Created at",
        Text,
        "2026-11-29 10:00:00",
    ),
];

pub const EVENTS: &[EventDef] = &[
    EventDef {
        key: "new_deal",
        ru: "Новая сделка",
        en: "New deal",
        fields: ORDER_FIELDS,
        status_filter: true,
    },
    EventDef {
        key: "deal_status_changed",
        ru: "Смена статуса сделки",
        en: "Deal status changed",
        fields: ORDER_FIELDS,
        status_filter: true,
    },
];

pub const ACTIONS: &[ActionDef] = &[
    ActionDef {
        key: "new_contact",
        ru: "Новый контакт",
        en: "New contact",
        params: &[
            p("phone", "Телефон контакта", "Contact phone", Phone, true),
            p("name", "Имя контакта", "Contact name", Text, false),
            p("source", "Источник", "Source", Text, false),
        ],
        outputs: &[
            f("contact_id", "ID контакта", "Contact ID", Id, "4924"),
            f(
                "contact_phone",
                "Телефон контакта",
                "Contact phone",
                Phone,
                "79991234567",
            ),
            f("contact_name", "Имя контакта", "Contact name", Text, "Иван"),
        ],
    },
    ActionDef {
        key: "new_deal",
        ru: "Новая сделка",
        en: "New deal",
        params: &[
            p("phone", "Телефон контакта", "Contact phone", Phone, true),
            p("contact_id", "ID контакта", "Contact ID", Id, true),
            p("source", "Источник", "Source", Text, false),
            p("comment", "Комментарий", "Comment", Text, false),
            ParamDef {
                key: "only_if_no_open_deal",
                ru: "Только если у контакта нет открытой сделки",
                en: "Only when the contact has no open deal",
                ty: Bool,
                required: false,
                default: Some("true"),
            },
        ],
        outputs: &[
            f("deal_id", "ID сделки", "Deal ID", Id, "7146"),
            f("deal_number", "Номер сделки", "Deal number", Text, "7146C"),
            f("deal_status", "Статус сделки", "Deal status", Text, "new"),
        ],
    },
    ActionDef {
        key: "new_message",
        ru: "Новое сообщение",
        en: "New message",
        params: &[
            p("contact_id", "ID контакта", "Contact ID", Id, true),
            p("text", "Текст сообщения", "Message text", Text, true),
        ],
        outputs: &[f("message_id", "ID сообщения", "Message ID", Id, "123")],
    },
];
