//! RetailCRM API v5 and Message Gateway (chats) client.
//!
//! * [`normalize_domain`] turns what the admin typed into the account URL.
//! * [`RetailCrm`] calls API v5 with one account's key: references, orders, customers and the
//!   registration of our chat transport ([`RetailCrm::integration_module_edit`]).
//! * [`MgTransport`] calls the MG transport API with the endpoint and token that registration
//!   returned: create our channel, deliver customers' messages.
//!
//! Errors are [`RetailCrmError`] and [`MgError`]; both implement
//! [`crate::upstream::UpstreamFailure`] (timeouts, network errors, 5xx and rate limiting are
//! transient, everything else permanent) and keep RetailCRM's own error text for the admin.
//!
//! # Rate limiting
//!
//! RetailCRM allows 10 requests per second per API key and answers an excess with 503. Every
//! [`RetailCrm`] of the same account and key in this process shares one limiter, so the whole
//! process stays within the budget however many clients and tasks use the key; a 503/429 that
//! still happens is retried by the client itself (3 times, 100/200/400 ms apart, like the
//! official GO client) before it surfaces as [`RetailCrmError::RateLimited`].
//!
//! The in-process limiter cannot see other processes. In queue mode the engine's clients take
//! their slots from a budget shared through Redis instead ([`shared_budget`],
//! [`RetailCrm::with_shared_budget`]), so any number of worker processes together stay within
//! the key's rate. Without it, [`set_default_rate_limit`] at start-up sets the per-process rate
//! for every key, or [`RetailCrm::with_rate_limit`] for one key. The MG transport API gets its own limiter of 100 requests per second per token, as
//! in the official transport client.

mod client;
mod domain;
mod error;
mod mg;
pub mod mg_webhook;
mod rate_limit;
pub mod shared_budget;
mod types;

pub use client::{DEFAULT_TIMEOUT, RetailCrm};
pub use domain::{DEFAULT_SAAS_DOMAIN, DomainError, normalize_domain};
pub use error::{FieldError, RetailCrmError};
pub use mg::{
    Channel, ChannelSettings, InboundMessage, MgCustomer, MgError, MgFile, MgItem, MgMessage,
    MgTransport, StatusSettings, TextSettings,
};
pub use rate_limit::{DEFAULT_RPS, set_default_rate_limit};
pub use types::{
    Credentials, Customer, CustomerRef, IntegrationModule, Integrations, MgTransportConfig,
    MgTransportInfo, NewCustomer, NewOrder, NewOrderItem, OfferRef, Order, OrderCustomer, Payment,
    Phone, Site, SiteAccess, Status, StatusGroup,
};
