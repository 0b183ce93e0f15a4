//! Faithful test doubles of the services Svyazka talks to (RetailCRM + MG, ChatAPI, Telegram,
//! an SMTP server for alerts).
//! Each fake is a real HTTP server on loopback with in-memory state; tests and the `testkit`
//! binary start them the same way.

pub mod chatapi;
pub mod files;
pub mod retailcrm;
pub mod server;
pub mod smtp;
pub mod telegram;
