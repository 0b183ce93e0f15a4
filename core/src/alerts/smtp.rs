//! Sending an alert by e-mail (lettre over rustls). The server's address goes through the
//! outbound policy like every upstream call: its name is resolved here, each address checked,
//! and lettre connects to the checked address while TLS verifies the name.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::deliver::SendFailure;
use super::settings::{Smtp, SmtpSecurity};
use super::wording::Worded;
use crate::upstream::{OutboundPolicy, Refused, Retry};

/// Sends `text` to the configured recipient.
pub async fn send(
    policy: OutboundPolicy,
    timeout: Duration,
    smtp: &Smtp,
    password: &str,
    text: &Worded,
) -> Result<(), (SendFailure, Retry)> {
    let permanent = |f| (f, Retry::Permanent);
    let from = smtp.from.parse().map_err(|_| {
        permanent(SendFailure::BadAddress {
            field: "from".into(),
        })
    })?;
    let to = smtp
        .to
        .parse()
        .map_err(|_| permanent(SendFailure::BadAddress { field: "to".into() }))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(&text.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(text.body.clone())
        .map_err(|_| permanent(SendFailure::BadAddress { field: "to".into() }))?;
    let ip = resolve(policy, &smtp.host, smtp.port).await?;
    let tls = match smtp.security {
        SmtpSecurity::Plain if policy.allow_loopback && ip.is_loopback() => Tls::None,
        SmtpSecurity::Plain => {
            return Err(permanent(SendFailure::Refused {
                refused: Refused::Scheme,
            }));
        }
        security => {
            let params = TlsParameters::new(smtp.host.clone()).map_err(|e| {
                permanent(SendFailure::Smtp {
                    code: None,
                    message: e.to_string(),
                })
            })?;
            if security == SmtpSecurity::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if !smtp.user.is_empty() {
        builder = builder.credentials(Credentials::new(smtp.user.clone(), password.to_string()));
    }
    let transport = builder.build();
    transport.send(message).await.map(|_| ()).map_err(|e| {
        // 4xx answers and broken connections may pass; a 5xx answer will not.
        let retry = if e.is_permanent() {
            Retry::Permanent
        } else {
            Retry::Transient { after: None }
        };
        (
            SendFailure::Smtp {
                code: e.status().map(u16::from),
                message: e.to_string(),
            },
            retry,
        )
    })
}

/// The server's first address the policy allows.
async fn resolve(
    policy: OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<IpAddr, (SendFailure, Retry)> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            (
                SendFailure::Refused {
                    refused: Refused::Dns {
                        host: host.to_string(),
                        reason: e.to_string(),
                    },
                },
                Retry::Transient { after: None },
            )
        })?
        .collect();
    let mut refusal = None;
    for a in &addrs {
        match policy.allows_ip(a.ip()) {
            Ok(()) => return Ok(a.ip()),
            Err(r) => refusal = Some(r),
        }
    }
    Err((
        SendFailure::Refused {
            refused: refusal.unwrap_or(Refused::NoHost),
        },
        Retry::Permanent,
    ))
}
