//! Sign-in throttling, per client address and per account.
//!
//! Every attempt is counted before its password is checked, so parallel guesses cannot all
//! slip through while the first is still being verified. An address (IPv6 by its /64, which
//! one customer line usually gets whole) may try `ADDRESS_ATTEMPTS` times per window; an
//! account `ACCOUNT_ATTEMPTS` times per window across all addresses, except from addresses
//! that have signed in to it before, so a guesser spread over many addresses cannot lock the
//! administrator out of their usual place. A successful sign-in clears both counters.
//!
//! Behind a reverse proxy every request comes from the proxy; list it in
//! `SVYAZKA_TRUSTED_PROXIES` and the client address is taken from `X-Forwarded-For` (only
//! the hops added by trusted proxies are believed). Per process: enough to make guessing
//! impractical; each web process of a queue-mode install counts on its own.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

const ADDRESS_ATTEMPTS: u32 = 5;
const ACCOUNT_ATTEMPTS: u32 = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long an address that signed in stays exempt from the account limit.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Bound on remembered addresses and accounts, so a flood of new ones cannot grow memory.
const MAX_ENTRIES: usize = 10_000;
/// Account names longer than this are cut: usernames are at most 64 characters.
const MAX_ACCOUNT_CHARS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Counter {
    attempts: u32,
    since: Instant,
}

impl Counter {
    fn fresh(now: Instant) -> Self {
        Counter {
            attempts: 0,
            since: now,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.since) > WINDOW
    }
}

#[derive(Default)]
struct Counters {
    addresses: HashMap<IpAddr, Counter>,
    accounts: HashMap<String, Counter>,
    known: HashMap<(String, IpAddr), Instant>,
}

#[derive(Default)]
pub struct LoginLimiter {
    inner: Mutex<Counters>,
}

/// Counts one attempt under `key`; false when the key is over `limit`.
fn count<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Counter>,
    key: &K,
    limit: u32,
    now: Instant,
) -> bool {
    if !map.contains_key(key) && map.len() >= MAX_ENTRIES {
        map.retain(|_, c| !c.expired(now));
        if map.len() >= MAX_ENTRIES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.since)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    let c = map
        .entry(key.clone())
        .or_insert_with(|| Counter::fresh(now));
    if c.expired(now) {
        *c = Counter::fresh(now);
    }
    c.attempts = c.attempts.saturating_add(1);
    c.attempts <= limit
}

fn account_key(account: &str) -> String {
    account
        .trim()
        .chars()
        .take(MAX_ACCOUNT_CHARS)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The address counters are kept for: IPv4 as is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a sign-in attempt for `account` from `ip`, before the password is checked.
    /// `false`: refuse it without checking.
    pub fn attempt(&self, ip: IpAddr, account: &str) -> bool {
        let now = Instant::now();
        let addr = address_key(ip);
        let account = account_key(account);
        let mut c = self.lock();
        let address_ok = count(&mut c.addresses, &addr, ADDRESS_ATTEMPTS, now);
        let known = c
            .known
            .get(&(account.clone(), addr))
            .is_some_and(|since| now.duration_since(*since) < KNOWN_FOR);
        let account_ok = known || count(&mut c.accounts, &account, ACCOUNT_ATTEMPTS, now);
        address_ok && account_ok
    }

    /// Counts an attempt that names no account (the set-up code), by address only.
    pub fn attempt_anonymous(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut c = self.lock();
        count(&mut c.addresses, &address_key(ip), ADDRESS_ATTEMPTS, now)
    }

    /// After a correct password: both counters start over and the address becomes known.
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let addr = address_key(ip);
        let account = account_key(account);
        let mut c = self.lock();
        c.addresses.remove(&addr);
        c.accounts.remove(&account);
        if c.known.len() >= MAX_ENTRIES {
            c.known
                .retain(|_, since| now.duration_since(*since) < KNOWN_FOR);
        }
        if c.known.len() < MAX_ENTRIES {
            c.known.insert((account, addr), now);
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that a trusted proxy did not add. Hops are read from the right, because
/// only those were appended by proxies we trust; whatever the client wrote comes first.
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut current = peer;
    let hops = forwarded_for.unwrap_or("").split(',').rev();
    for hop in hops.map(str::trim).filter(|h| !h.is_empty()) {
        let Some(ip) = parse_hop(hop) else {
            return current;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        current = ip;
    }
    current
}

/// `203.0.113.7`, `2001:db8::1`, `203.0.113.7:51234` or `[2001:db8::1]:51234`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_address_gets_five_attempts_counted_before_checking() {
        let l = LoginLimiter::default();
        let a = ip("203.0.113.1");
        for _ in 0..5 {
            assert!(l.attempt(a, "admin"));
        }
        assert!(!l.attempt(a, "admin"), "the sixth is refused unchecked");
        assert!(
            l.attempt(ip("203.0.113.2"), "admin"),
            "another address may try"
        );
        l.succeeded(ip("203.0.113.2"), "admin");
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        let l = LoginLimiter::default();
        for i in 0..5 {
            assert!(l.attempt(ip(&format!("2001:db8:1:2::{i:x}")), "x"));
        }
        assert!(!l.attempt(ip("2001:db8:1:2:ffff::1"), "x"), "same /64");
        assert!(l.attempt(ip("2001:db8:1:3::1"), "x"), "next /64");
        assert_eq!(address_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn many_addresses_cannot_lock_the_admin_out_of_a_known_address() {
        let l = LoginLimiter::default();
        let home = ip("198.51.100.10");
        assert!(l.attempt(home, "Admin"));
        l.succeeded(home, "admin");
        for i in 0..25u8 {
            l.attempt(IpAddr::from([203, 0, 113, i]), "admin");
        }
        assert!(
            !l.attempt(ip("192.0.2.200"), "admin"),
            "the account limit stops a spread-out guesser"
        );
        assert!(
            l.attempt(home, "admin"),
            "its known address still may sign in"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let proxy = ip("10.0.0.2");
        assert_eq!(
            client_addr(ip("198.51.100.1"), Some("1.2.3.4"), &trusted),
            ip("198.51.100.1"),
            "an untrusted peer cannot choose its address"
        );
        assert_eq!(
            client_addr(proxy, Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7"),
            "the client wrote 1.2.3.4 itself; the proxy appended the real one"
        );
        assert_eq!(
            client_addr(proxy, Some("198.51.100.7, 10.0.0.9"), &trusted),
            ip("198.51.100.7"),
            "trusted hops are skipped"
        );
        assert_eq!(
            client_addr(proxy, Some("[2001:db8::5]:4431"), &trusted),
            ip("2001:db8::5")
        );
        assert_eq!(client_addr(proxy, Some("junk"), &trusted), proxy);
        assert_eq!(client_addr(proxy, None, &trusted), proxy);
    }

    #[test]
    fn memory_is_bounded() {
        let l = LoginLimiter::default();
        for i in 0..(MAX_ENTRIES as u32 + 50) {
            l.attempt(IpAddr::from(i.to_be_bytes()), &format!("user{i}"));
        }
        let c = l.lock();
        assert!(c.addresses.len() <= MAX_ENTRIES && c.accounts.len() <= MAX_ENTRIES);
    }
}
