//! Turning whatever an admin typed as "RetailCRM address" into the account's base URL.
//!
//! RetailCRM accounts live at `https://<sub>.retailcrm.ru` (or `.pro`, `.es`, `simla.com`) or at
//! an own domain such as `https://crm.myshop.ru`. The official transport core only accepts
//! `https` account URLs without port, path, query, fragment or userinfo, so we apply the same
//! rules: anything else is either a typo or an attempt to make the server call somewhere odd.

use std::net::IpAddr;

use url::{Host, Url};

use crate::upstream::OutboundPolicy;

/// Domain appended to a bare account name ("shop" → "shop.retailcrm.ru"): the Russian SaaS
/// cloud is where almost all of our admins' accounts live.
pub const DEFAULT_SAAS_DOMAIN: &str = "retailcrm.ru";

/// Why an address cannot be a RetailCRM account URL. The messages are English, for logs; the
/// web app words each for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "problem", content = "part", rename_all = "snake_case")]
pub enum DomainError {
    #[error("enter the RetailCRM address, e.g. shop.retailcrm.ru")]
    Empty,
    #[error("the RetailCRM address must not contain spaces")]
    Whitespace,
    #[error("\"{0}\" is not a valid RetailCRM address")]
    Invalid(String),
    #[error("the RetailCRM address must use https://")]
    NotHttps,
    #[error(
        "remove \"{0}\" from the address: enter only the account address, e.g. https://shop.retailcrm.ru"
    )]
    Path(String),
    #[error("remove the \"?…\" or \"#…\" part from the RetailCRM address")]
    QueryOrFragment,
    #[error("the RetailCRM address must not contain a user name or password")]
    UserInfo,
    #[error("the RetailCRM address must not contain a port")]
    Port,
    #[error("enter the account's domain name, not an IP address")]
    IpAddress,
}

/// Normalises an account address to `https://host` (lowercase, no trailing slash).
///
/// Accepted: `shop` → `https://shop.retailcrm.ru`; `shop.retailcrm.ru`, `https://Shop.RetailCRM.ru/`
/// → `https://shop.retailcrm.ru`; `crm.myshop.ru` → `https://crm.myshop.ru`.
///
/// Loopback exception, only when `policy` allows loopback (`SVYAZKA_DEV_ALLOW_LOOPBACK`, for
/// the bundled fakes and the tests): `http://127.0.0.1:PORT`, `http://localhost:PORT` and
/// `http://[::1]:PORT` are accepted as they are (scheme `http` and a port allowed). In
/// production they are refused like any other address that is not a public account.
pub fn normalize_domain(input: &str, policy: OutboundPolicy) -> Result<String, DomainError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(DomainError::Whitespace);
    }

    let candidate = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        // "shop/" is still the bare account name an admin meant.
        let bare = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if !bare.contains(['.', ':', '/', '@', '?', '#']) {
            format!("https://{bare}.{DEFAULT_SAAS_DOMAIN}")
        } else {
            format!("https://{trimmed}")
        }
    };

    let url = Url::parse(&candidate).map_err(|_| DomainError::Invalid(trimmed.to_owned()))?;
    let host = url
        .host()
        .ok_or_else(|| DomainError::Invalid(trimmed.to_owned()))?;
    let loopback = policy.allow_loopback && is_loopback(&host);

    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(DomainError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::UserInfo);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(DomainError::QueryOrFragment);
    }
    if !matches!(url.path(), "" | "/") {
        return Err(DomainError::Path(url.path().to_owned()));
    }
    // `Url` already drops a default port (":443" on https), so any port left is a real one.
    if url.port().is_some() && !loopback {
        return Err(DomainError::Port);
    }
    match &host {
        Host::Domain(name) if !loopback => check_hostname(name, trimmed)?,
        Host::Domain(_) => {}
        Host::Ipv4(_) | Host::Ipv6(_) if !loopback => return Err(DomainError::IpAddress),
        Host::Ipv4(_) | Host::Ipv6(_) => {}
    }

    let host_str = url
        .host_str()
        .ok_or_else(|| DomainError::Invalid(trimmed.to_owned()))?;
    Ok(match url.port() {
        Some(port) => format!("{}://{host_str}:{port}", url.scheme()),
        None => format!("{}://{host_str}", url.scheme()),
    })
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// A public account needs a real DNS name: at least two labels of letters, digits and hyphens
/// (after IDNA, so Cyrillic domains arrive here as `xn--…`).
fn check_hostname(name: &str, original: &str) -> Result<(), DomainError> {
    let invalid = || DomainError::Invalid(original.to_owned());
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 || name.len() > 253 {
        return Err(invalid());
    }
    for label in labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(invalid());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: OutboundPolicy = OutboundPolicy::DEVELOPMENT;
    const STRICT: OutboundPolicy = OutboundPolicy::STRICT;

    #[test]
    fn normalisation_table() {
        let ok = [
            ("shop", "https://shop.retailcrm.ru"),
            ("shop/", "https://shop.retailcrm.ru"),
            ("  shop  ", "https://shop.retailcrm.ru"),
            ("Shop", "https://shop.retailcrm.ru"),
            ("my-shop-2", "https://my-shop-2.retailcrm.ru"),
            ("shop.retailcrm.ru", "https://shop.retailcrm.ru"),
            ("shop.retailcrm.ru/", "https://shop.retailcrm.ru"),
            ("Shop.RetailCRM.ru", "https://shop.retailcrm.ru"),
            ("https://shop.retailcrm.ru", "https://shop.retailcrm.ru"),
            ("https://shop.retailcrm.ru/", "https://shop.retailcrm.ru"),
            ("HTTPS://SHOP.RETAILCRM.RU/", "https://shop.retailcrm.ru"),
            ("https://shop.retailcrm.ru:443", "https://shop.retailcrm.ru"),
            ("shop.retailcrm.pro", "https://shop.retailcrm.pro"),
            ("shop.simla.com", "https://shop.simla.com"),
            ("crm.myshop.ru", "https://crm.myshop.ru"),
            ("https://crm.myshop.ru", "https://crm.myshop.ru"),
            ("црм.магазин.рф", "https://xn--l1ahr.xn--80aairftm.xn--p1ai"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://LOCALHOST:3000", "http://localhost:3000"),
            ("http://[::1]:9000", "http://[::1]:9000"),
            ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ];
        for (input, expected) in ok {
            assert_eq!(
                normalize_domain(input, DEV).as_deref(),
                Ok(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rejections() {
        let bad: [(&str, DomainError); 17] = [
            ("", DomainError::Empty),
            ("   ", DomainError::Empty),
            ("my shop", DomainError::Whitespace),
            ("shop.retailcrm.ru\t/x", DomainError::Whitespace),
            ("http://shop.retailcrm.ru", DomainError::NotHttps),
            ("ftp://shop.retailcrm.ru", DomainError::NotHttps),
            (
                "https://shop.retailcrm.ru/api/v5",
                DomainError::Path("/api/v5".into()),
            ),
            (
                "shop.retailcrm.ru/admin/",
                DomainError::Path("/admin/".into()),
            ),
            (
                "https://shop.retailcrm.ru/?a=1",
                DomainError::QueryOrFragment,
            ),
            (
                "https://shop.retailcrm.ru#top",
                DomainError::QueryOrFragment,
            ),
            ("https://user:pw@shop.retailcrm.ru", DomainError::UserInfo),
            ("https://shop.retailcrm.ru:8443", DomainError::Port),
            ("shop.retailcrm.ru:8080", DomainError::Port),
            ("https://10.0.0.5", DomainError::IpAddress),
            ("http://10.0.0.5:8080", DomainError::NotHttps),
            ("https://[2001:db8::1]", DomainError::IpAddress),
            (
                "https://intranet",
                DomainError::Invalid("https://intranet".into()),
            ),
        ];
        for (input, expected) in bad {
            assert_eq!(
                normalize_domain(input, DEV),
                Err(expected.clone()),
                "input {input:?}"
            );
            assert_eq!(
                normalize_domain(input, STRICT),
                Err(expected),
                "input {input:?}"
            );
        }
        for input in [
            "sh_op",
            "-shop",
            "https://shop..ru",
            "https://",
            "shop.retailcrm.ru.:x",
        ] {
            assert!(
                matches!(normalize_domain(input, DEV), Err(DomainError::Invalid(_))),
                "input {input:?} gave {:?}",
                normalize_domain(input, DEV)
            );
        }
    }

    #[test]
    fn loopback_only_in_development() {
        for input in [
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://[::1]:9000",
            "https://127.0.0.1:8443",
        ] {
            assert!(normalize_domain(input, DEV).is_ok(), "{input}");
            assert!(normalize_domain(input, STRICT).is_err(), "{input}");
        }
        assert_eq!(
            normalize_domain("https://localhost", STRICT),
            Err(DomainError::Invalid("https://localhost".into()))
        );
    }

    #[test]
    fn normalised_output_is_a_fixed_point() {
        for input in ["shop", "crm.myshop.ru", "http://127.0.0.1:1234"] {
            let once = normalize_domain(input, DEV).expect("valid");
            assert_eq!(normalize_domain(&once, DEV).as_deref(), Ok(once.as_str()));
        }
    }
}
