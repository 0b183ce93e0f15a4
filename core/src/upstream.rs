//! What every upstream client (RetailCRM, MG, ChatAPI, Telegram) shares: one HTTP client with
//! one outbound policy, one way to read an answer, and one way to say whether a failure is
//! worth retrying.
//!
//! The server is reachable from the internet and calls addresses that admins (or RetailCRM)
//! typed, so every call obeys the same rules, whichever client makes it:
//! * https only; plain http solely to loopback, and only with `SVYAZKA_DEV_ALLOW_LOOPBACK`;
//! * never to a loopback, private, link-local (cloud metadata), CGNAT, unique-local,
//!   multicast or otherwise reserved address. Names are checked on the addresses the resolver
//!   returns, which are the ones the connection then uses, so a name that resolves to an
//!   internal address is refused as well as an IP literal;
//! * no redirects (they would forward the API key headers and bypass the checks above), no
//!   system proxy (the proxy, not us, would resolve the name);
//! * answers are read up to [`MAX_BODY`] bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Largest answer body any upstream call reads; RetailCRM's largest pages are well under it.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// How the engine should treat a failed upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Timeouts, 5xx, rate-limit answers: try again later (after `after` when the upstream said so).
    Transient { after: Option<Duration> },
    /// Validation errors, wrong keys, unknown chats: retrying cannot help.
    Permanent,
}

/// Implemented by each client's error type so the engine can decide retries without knowing the
/// client. What the admin reads is worded by web from the typed error, not here.
pub trait UpstreamFailure: std::error::Error {
    fn retry(&self) -> Retry;
}

/// Which destinations upstream calls may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboundPolicy {
    /// Loopback addresses (and plain http to them) are allowed: the bundled fakes, tests.
    pub allow_loopback: bool,
}

impl OutboundPolicy {
    /// Production: https to public addresses only.
    pub const STRICT: OutboundPolicy = OutboundPolicy {
        allow_loopback: false,
    };
    /// `SVYAZKA_DEV_ALLOW_LOOPBACK=true`: also loopback, over http or https.
    pub const DEVELOPMENT: OutboundPolicy = OutboundPolicy {
        allow_loopback: true,
    };

    /// Whether a connection to `ip` is allowed.
    pub fn allows_ip(self, ip: IpAddr) -> Result<(), Refused> {
        match classify(ip) {
            AddressClass::Public => Ok(()),
            AddressClass::Loopback if self.allow_loopback => Ok(()),
            class => Err(Refused::Address { ip, class }),
        }
    }

    /// Checks what can be checked before connecting: scheme, userinfo, fragment, and the
    /// address itself when the host is an IP literal (names are checked by the resolver).
    pub fn check_url(self, url: &Url) -> Result<(), Refused> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(Refused::Fragment);
        }
        let host = url.host().ok_or(Refused::NoHost)?;
        let loopback_host = match &host {
            Host::Domain(d) => is_localhost_name(d),
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::Ipv6(ip) => ip.is_loopback(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && loopback_host => {}
            _ => return Err(Refused::Scheme),
        }
        match host {
            Host::Ipv4(ip) => self.allows_ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => self.allows_ip(IpAddr::V6(ip)),
            Host::Domain(_) => Ok(()),
        }
    }

    /// Parses and checks an address an admin typed (an instance URL, a Bot API base).
    pub fn parse_base(self, input: &str) -> Result<Url, Refused> {
        let url = Url::parse(input.trim()).map_err(|_| Refused::NotUrl)?;
        if url.cannot_be_a_base() {
            return Err(Refused::NotUrl);
        }
        self.check_url(&url)?;
        Ok(url)
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost")
}

/// Why an address is not a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918, and 0.0.0.0/8 ("this network").
    Private,
    /// 169.254.0.0/16 and fe80::/10: where cloud metadata services answer.
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    SharedCgnat,
    /// fc00::/7.
    UniqueLocal,
    Multicast,
    /// Unspecified, broadcast, documentation, benchmarking, IETF-reserved ranges.
    Reserved,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private network",
            AddressClass::LinkLocal => "link-local (cloud metadata)",
            AddressClass::SharedCgnat => "carrier-grade NAT",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// The class of `ip`; IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4) are
/// classified as the IPv4 address they lead to.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// IPv4 ranges that are neither public nor one of the named classes: reserved and broadcast,
/// IETF protocol assignments, documentation (TEST-NET-1..3), benchmarking, 6to4 relay anycast.
const RESERVED_V4: [(Ipv4Addr, u8); 7] = [
    (Ipv4Addr::new(240, 0, 0, 0), 4),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24),
];

fn in_v4(ip: Ipv4Addr, (net, bits): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let in_net = |a, b, c, d, bits| in_v4(ip, (Ipv4Addr::new(a, b, c, d), bits));
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if in_net(10, 0, 0, 0, 8)
        || in_net(172, 16, 0, 0, 12)
        || in_net(192, 168, 0, 0, 16)
        || in_net(0, 0, 0, 0, 8)
    {
        AddressClass::Private
    } else if in_net(169, 254, 0, 0, 16) {
        AddressClass::LinkLocal
    } else if in_net(100, 64, 0, 0, 10) {
        AddressClass::SharedCgnat
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if RESERVED_V4.iter().any(|r| in_v4(ip, *r)) {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let seg = ip.segments();
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if ip.is_unspecified() {
        return AddressClass::Reserved;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::/96 (NAT64) lead to an IPv4 address.
    if seg[..6] == [0, 0, 0, 0, 0, 0] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    // 2002::/16, 6to4: the next 32 bits are the IPv4 address.
    if seg[0] == 0x2002 {
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        AddressClass::UniqueLocal
    } else if seg[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if seg[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if (seg[0] == 0x2001 && seg[1] == 0x0db8)
        || seg[0] & 0xffc0 == 0xfec0
        || (seg[0] == 0x0100 && seg[1..4] == [0, 0, 0])
    {
        // Documentation, deprecated site-local, discard-only.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// Why an upstream call was not made. Shown to the admin next to the field they typed (the
/// web app words it; `Display` is English, for logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum Refused {
    #[error("not a valid address")]
    NotUrl,
    #[error("the address has no host")]
    NoHost,
    #[error("the address must use https://")]
    Scheme,
    #[error("the address must not contain a user name or password")]
    UserInfo,
    #[error("the address must not contain a \"#…\" part")]
    Fragment,
    #[error("{ip} is a {} address; Svyazka calls only public addresses", .class.describe())]
    Address { ip: IpAddr, class: AddressClass },
    #[error(
        "{host} resolves only to non-public addresses ({ips}); Svyazka calls only public addresses"
    )]
    Resolved { host: String, ips: String },
    #[error("{host} does not resolve: {reason}")]
    Dns { host: String, reason: String },
}

/// The refusal behind a failed request, if the outbound policy was the reason.
pub fn refusal(error: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        source = e.source();
    }
    None
}

/// The system resolver, keeping only the addresses the policy allows. Connections then go to
/// exactly these addresses, so a name cannot be re-pointed between the check and the connect.
struct PolicyResolver {
    policy: OutboundPolicy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Refused::Dns {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = found
                .into_iter()
                .partition(|a| policy.allows_ip(a.ip()).is_ok());
            if allowed.is_empty() {
                let ips: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                let err = Refused::Resolved {
                    host,
                    ips: ips.join(", "),
                };
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The one HTTP client of the process, carrying its outbound policy. Requests can only be
/// made through [`HttpClient::request`], which checks the URL first.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: OutboundPolicy,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Shared reqwest settings: rustls, bounded timeouts, a recognisable user agent, and the
    /// policy above.
    pub fn new(timeout: Duration, policy: OutboundPolicy) -> Self {
        let inner = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("svyazka/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            .build()
            // Building only fails when the TLS backend cannot initialise, which is a broken binary.
            .unwrap_or_else(|e| panic!("cannot initialise the HTTP client: {e}"));
        HttpClient { inner, policy }
    }

    pub fn policy(&self) -> OutboundPolicy {
        self.policy
    }

    /// A request to `url` if the policy allows it.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, Refused> {
        self.policy.check_url(&url)?;
        Ok(self.inner.request(method, url))
    }
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Transport(reqwest::Error),
    #[error("the answer is larger than {} MiB", MAX_BODY / 1024 / 1024)]
    TooLarge,
}

/// The answer's body, refusing to read more than [`MAX_BODY`] bytes.
pub async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Logs an answer the client could not make sense of, so an operator can see what came back;
/// the admin's page only gets the status and a short reason. `secrets` (the key or token of
/// the call) are blanked out in case the upstream echoed them.
pub fn log_unexpected_body(service: &str, status: u16, body: &[u8], secrets: &[&str]) {
    let excerpt = log_excerpt(body, secrets);
    tracing::warn!(service, status, body = %excerpt, "unexpected upstream answer");
}

/// The start of an answer as the log keeps it. Secrets are blanked before the text is cut, so
/// a secret straddling the cut cannot leave its first half behind.
fn log_excerpt(body: &[u8], secrets: &[&str]) -> String {
    const MAX_CHARS: usize = 300;
    let mut text = String::from_utf8_lossy(body).trim().to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    text.chars().take(MAX_CHARS).collect()
}

/// What kind of body came back when it is not the JSON an API answers with, as a stable code
/// (the body itself is never shown: it may be an internal page). The web app words each code;
/// see [`BODY_CODES`].
pub fn describe_body(body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start();
    if text.is_empty() {
        BODY_CODES[0]
    } else if text.starts_with('<') {
        BODY_CODES[1]
    } else {
        BODY_CODES[2]
    }
}

/// The codes [`describe_body`] returns: an empty body, an HTML page, a body that is not JSON.
pub const BODY_CODES: [&str; 3] = ["body:empty", "body:html", "body:not_json"];

/// Caps a message the upstream wrote (RetailCRM's `errorMsg`, Telegram's `description`) at a
/// length that fits a form error.
pub fn short_text(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out: String = text.trim().chars().take(MAX_CHARS).collect();
    if text.trim().chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_public_addresses_are_allowed() {
        let strict = OutboundPolicy::STRICT;
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(strict.allows_ip(ip(bad)).is_err(), "{bad} must be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "95.213.1.1",
            "2a00:1450:4010::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(strict.allows_ip(ip(good)).is_ok(), "{good} is public");
        }
        assert!(
            OutboundPolicy::DEVELOPMENT
                .allows_ip(ip("127.0.0.1"))
                .is_ok()
        );
        assert!(OutboundPolicy::DEVELOPMENT.allows_ip(ip("::1")).is_ok());
        assert!(
            OutboundPolicy::DEVELOPMENT
                .allows_ip(ip("10.0.0.1"))
                .is_err(),
            "development allows loopback, not the private network"
        );
    }

    #[test]
    fn urls_need_https_no_userinfo_no_fragment() {
        let strict = OutboundPolicy::STRICT;
        let dev = OutboundPolicy::DEVELOPMENT;
        let check = |p: OutboundPolicy, u: &str| p.parse_base(u);
        assert!(check(strict, "https://api.telegram.org").is_ok());
        assert_eq!(
            check(strict, "http://api.telegram.org"),
            Err(Refused::Scheme)
        );
        assert_eq!(
            check(dev, "http://api.telegram.org"),
            Err(Refused::Scheme),
            "plain http only to loopback"
        );
        assert!(check(dev, "http://127.0.0.1:9101").is_ok());
        assert!(check(dev, "http://localhost:9101").is_ok());
        assert!(check(dev, "http://[::1]:9101").is_ok());
        assert!(matches!(
            check(strict, "https://127.0.0.1:9101"),
            Err(Refused::Address { .. })
        ));
        assert!(matches!(
            check(strict, "https://[::1]/"),
            Err(Refused::Address { .. })
        ));
        assert!(matches!(
            check(strict, "https://169.254.169.254/latest/meta-data"),
            Err(Refused::Address {
                class: AddressClass::LinkLocal,
                ..
            })
        ));
        assert!(matches!(
            check(strict, "https://10.0.0.1/"),
            Err(Refused::Address { .. })
        ));
        assert_eq!(
            check(strict, "https://user:pw@api.telegram.org"),
            Err(Refused::UserInfo)
        );
        assert_eq!(
            check(strict, "https://api.telegram.org/#"),
            Err(Refused::Fragment)
        );
        assert_eq!(check(strict, "mailto:x@y.z"), Err(Refused::NotUrl));
        assert_eq!(check(strict, "ftp://x.y"), Err(Refused::Scheme));
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_by_the_resolver() {
        let resolver = PolicyResolver {
            policy: OutboundPolicy::STRICT,
        };
        let name: Name = "localhost".parse().expect("name");
        let err = match resolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refused = err.downcast_ref::<Refused>().expect("a policy refusal");
        assert!(matches!(refused, Refused::Resolved { .. }), "{refused:?}");
        let dev = PolicyResolver {
            policy: OutboundPolicy::DEVELOPMENT,
        };
        let name: Name = "localhost".parse().expect("name");
        let addrs: Vec<SocketAddr> = dev.resolve(name).await.expect("dev resolves").collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn scrubbed_logs_and_short_reasons() {
        assert_eq!(describe_body(b""), "body:empty");
        assert_eq!(describe_body(b"  <html>"), "body:html");
        assert_eq!(describe_body(b"ok"), "body:not_json");
        assert_eq!(short_text(&"x".repeat(400)).chars().count(), 301);

        let token = "s3cr3t-transport-token";
        let echoed = format!("<html>bad token {token} in /api/v5?apiKey={token}</html>");
        let logged = log_excerpt(echoed.as_bytes(), &[token, "ab"]);
        assert!(!logged.contains(token), "{logged}");
        assert_eq!(logged.matches("[redacted]").count(), 2, "{logged}");
        // A secret straddling the cut leaves nothing of itself either.
        let long = format!("{}{token}", "x".repeat(290));
        let logged = log_excerpt(long.as_bytes(), &[token]);
        assert!(!logged.contains("s3cr3t"), "{logged}");
        assert_eq!(logged.chars().count(), 300);
    }

    /// A server on loopback that answers every request with `head` and then `body_len` bytes.
    async fn answering(head: String, body_len: usize) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_past_the_cap_are_not_read() {
        let client = reqwest::Client::new();
        let big = MAX_BODY + 1;
        // Announced too large: refused before reading.
        let announced = answering(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {big}\r\nconnection: close\r\n\r\n"),
            0,
        )
        .await;
        let r = client
            .get(format!("http://{announced}/"))
            .send()
            .await
            .expect("answer");
        assert!(matches!(read_body(r).await, Err(BodyError::TooLarge)));
        // Not announced (read until close): stopped at the cap.
        let streamed = answering(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string(),
            big,
        )
        .await;
        let r = client
            .get(format!("http://{streamed}/"))
            .send()
            .await
            .expect("answer");
        assert!(matches!(read_body(r).await, Err(BodyError::TooLarge)));
        // At the cap: read whole.
        let r = client
            .get(format!(
                "http://{}/",
                answering(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {MAX_BODY}\r\nconnection: close\r\n\r\n"
                    ),
                    MAX_BODY,
                )
                .await
            ))
            .send()
            .await
            .expect("answer");
        assert_eq!(read_body(r).await.expect("read").len(), MAX_BODY);
    }
}
