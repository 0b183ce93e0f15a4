//! Faithful test doubles of the services Svyazka talks to (RetailCRM + MG, ChatAPI, Green-API,
//! WhatsApp Cloud API, Telegram, a file host, an SMTP server for alerts).
//! Each fake is a real HTTP server on loopback with in-memory state; tests and the `testkit`
//! binary start them the same way.

pub mod chatapi;
pub mod files;
pub mod greenapi;
pub mod multipart;
pub mod retailcrm;
pub mod server;
pub mod smtp;
pub mod telegram;
pub mod wa_template;
pub mod wacloud;
