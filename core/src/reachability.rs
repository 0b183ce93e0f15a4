//! Can the upstreams (RetailCRM, ChatAPI, Telegram) reach our public address at all? Their
//! servers call it from the internet: a localhost, private or plain-http address never works.

use url::{Host, Url};

use crate::upstream::{AddressClass, classify};

/// Why the configured public address cannot be reached from the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// `localhost`, `*.localhost` or a loopback address.
    Localhost,
    /// A private, link-local, shared or otherwise non-public IP address.
    Private,
    /// A public address over plain http: upstreams post only to https.
    PlainHttp,
    /// Not a URL with a host.
    Invalid,
}

/// `None` when the address looks reachable (a public name or address over https).
pub fn check(public_url: &str) -> Option<Unreachable> {
    let Ok(url) = Url::parse(public_url.trim()) else {
        return Some(Unreachable::Invalid);
    };
    let class = match url.host() {
        None => return Some(Unreachable::Invalid),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") {
                AddressClass::Loopback
            } else {
                AddressClass::Public
            }
        }
        Some(Host::Ipv4(ip)) => classify(ip.into()),
        Some(Host::Ipv6(ip)) => classify(ip.into()),
    };
    match class {
        AddressClass::Public if url.scheme() == "https" => None,
        AddressClass::Public => Some(Unreachable::PlainHttp),
        AddressClass::Loopback => Some(Unreachable::Localhost),
        _ => Some(Unreachable::Private),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_why_an_address_is_unreachable() {
        assert_eq!(check("https://svyazka.example.com"), None);
        assert_eq!(check("https://203.0.114.7"), None);
        assert_eq!(check("http://localhost:8080"), Some(Unreachable::Localhost));
        assert_eq!(check("https://127.0.0.1"), Some(Unreachable::Localhost));
        assert_eq!(check("http://192.168.1.5"), Some(Unreachable::Private));
        assert_eq!(check("https://10.0.0.2:8443"), Some(Unreachable::Private));
        assert_eq!(
            check("http://svyazka.example.com"),
            Some(Unreachable::PlainHttp)
        );
        assert_eq!(check("not a url"), Some(Unreachable::Invalid));
    }
}
