//! What each provider kind offers: its events (with the fields they carry) and its actions
//! (with their parameters and outputs). The bundle editor's pickers, save-time validation and
//! the engine all read these declarations, so a new provider kind is one new module here plus
//! its executor (and the labels of its keys in the web app).
//!
//! Keys are stable identifiers; what an admin reads for them is the web app's business.

mod chatapi;
mod official;
mod retailcrm;
mod telegram;

use serde::Serialize;

use crate::providers::ProviderKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Phone,
    Id,
    Number,
    Bool,
}

/// A value an event or an action output carries.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FieldDef {
    pub key: &'static str,
    pub ty: FieldType,
    /// An example value for template previews (the web app replaces the ones that are human
    /// text with samples in the admin's language).
    pub sample: &'static str,
}

/// An input of an action.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ParamDef {
    pub key: &'static str,
    pub ty: FieldType,
    pub required: bool,
    /// Literal used when a new step is added (e.g. "true" for the open-deal guard).
    pub default: Option<&'static str>,
    /// For an action with modes (see [`MODE`]): the mode this parameter belongs to; it is
    /// shown, required and sent only in that mode. `None`: in every mode.
    pub mode: Option<&'static str>,
}

/// The parameter that picks an action's mode, when it has modes: «Отправить сообщение» of
/// official WhatsApp sends free text ([`MODE_TEXT`], the default) or an approved template
/// ([`MODE_TEMPLATE`]).
pub const MODE: &str = "mode";
pub const MODE_TEXT: &str = "text";
pub const MODE_TEMPLATE: &str = "template";

/// Every event also carries its provider's type and name (`provider_type`, `provider_name`):
/// what «Источник» of a new contact is usually filled with.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EventDef {
    pub key: &'static str,
    pub fields: &'static [FieldDef],
    /// RetailCRM events can be limited to chosen order statuses.
    pub status_filter: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ActionDef {
    pub key: &'static str,
    pub params: &'static [ParamDef],
    pub outputs: &'static [FieldDef],
}

pub fn events(kind: ProviderKind) -> &'static [EventDef] {
    match kind {
        ProviderKind::Retailcrm => retailcrm::EVENTS,
        // Green-API carries the same WhatsApp messages as the ChatAPI gateways.
        ProviderKind::Chatapi | ProviderKind::Greenapi | ProviderKind::Wacloud => chatapi::EVENTS,
        ProviderKind::Telegram => telegram::EVENTS,
    }
}

pub fn actions(kind: ProviderKind) -> &'static [ActionDef] {
    match kind {
        ProviderKind::Retailcrm => retailcrm::ACTIONS,
        ProviderKind::Chatapi => official::CHATAPI_ACTIONS,
        ProviderKind::Greenapi => chatapi::ACTIONS,
        ProviderKind::Wacloud => official::WACLOUD_ACTIONS,
        ProviderKind::Telegram => telegram::ACTIONS,
    }
}

pub fn event(kind: ProviderKind, key: &str) -> Option<&'static EventDef> {
    events(kind).iter().find(|e| e.key == key)
}

pub fn action(kind: ProviderKind, key: &str) -> Option<&'static ActionDef> {
    actions(kind).iter().find(|a| a.key == key)
}

impl ActionDef {
    pub fn param(&self, key: &str) -> Option<&'static ParamDef> {
        self.params.iter().find(|p| p.key == key)
    }

    /// Whether the action has modes (a [`MODE`] parameter).
    pub fn has_modes(&self) -> bool {
        self.param(MODE).is_some()
    }

    /// The parameters that count in `mode` (the step's [`MODE`] value; `None` or an unknown
    /// one means the default).
    pub fn params_in<'a>(
        &'a self,
        mode: Option<&'a str>,
    ) -> impl Iterator<Item = &'static ParamDef> + 'a {
        let default = self.param(MODE).and_then(|p| p.default);
        let mode = mode
            .filter(|m| self.params.iter().any(|p| p.mode == Some(*m)))
            .or(default);
        self.params
            .iter()
            .filter(move |p| p.mode.is_none() || p.mode == mode)
    }
}

/// Shorthand for the declaration tables.
pub(crate) const fn f(key: &'static str, ty: FieldType, sample: &'static str) -> FieldDef {
    FieldDef { key, ty, sample }
}

pub(crate) const fn p(key: &'static str, ty: FieldType, required: bool) -> ParamDef {
    ParamDef {
        key,
        ty,
        required,
        default: None,
        mode: None,
    }
}

/// A parameter of one mode only (see [`ParamDef::mode`]).
pub(crate) const fn in_mode(mode: &'static str, def: ParamDef) -> ParamDef {
    ParamDef {
        mode: Some(mode),
        ..def
    }
}
