//! Throttling of failed authentication, per client IP address.
//!
//! A client (an IPv4 address, or an IPv6 /64, the block one host usually holds) that has
//! `limit` failed authentications (answers 401) within `window` gets 429 with `Retry-After` for
//! every request until that window passes. The window starts at the client's first failure; a
//! success neither counts nor resets it, and other clients are not affected.
//!
//! One address often carries many tenants: an identity provider's provisioning engine (Okta's,
//! Entra's) reaches every customer's Roster from a few egress addresses, so one customer's stale
//! token must not cut the others off. While a client is throttled, a request whose credentials
//! already succeeded from that client since its first failure (remembered as a keyed hash of the
//! `Authorization` header, at most [`MAX_TRUSTED_PER_CLIENT`] per client, never the secret) goes
//! through; every other request answers 429, so guessing goes no faster than the limit.
//!
//! Memory is bounded: at most [`MAX_TRACKED_CLIENTS`] clients are remembered. When the table is
//! full, clients whose window has passed are forgotten first; if none has, the tenth whose
//! windows started earliest make room. (So a spray from more addresses than that can push a
//! throttled client out early; each address of the spray is still throttled on its own.)
//!
//! The client address is the TCP peer's. Behind a reverse proxy every client shares the proxy's
//! address: there, throttle at the proxy, or set the limit to 0 to turn this off. Forwarded
//! headers are not trusted, since any client can write them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most clients remembered at once (about 200 bytes each at most).
pub(crate) const MAX_TRACKED_CLIENTS: usize = 10_000;

/// The most credentials remembered as good per client.
pub(crate) const MAX_TRUSTED_PER_CLIENT: usize = 16;

/// The part of an address that identifies a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    /// The /64 prefix.
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct Window {
    started: Instant,
    failures: u32,
    /// Keyed hashes of credentials that succeeded from this client since it was first
    /// remembered (kept across windows).
    trusted: Vec<u64>,
}

/// The failed authentications of recent clients.
#[derive(Debug)]
pub(crate) struct AuthThrottle {
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<ClientKey, Window>>,
    /// The per-process key of the credentials' hashes.
    keys: std::collections::hash_map::RandomState,
}

impl AuthThrottle {
    /// `limit` failures per `window`; a limit of 0 throttles nobody.
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The keyed hash of a request's credentials (its `Authorization` header).
    pub(crate) fn credential(&self, authorization: Option<&[u8]>) -> Option<u64> {
        authorization.map(|a| self.keys.hash_one(a))
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Window>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Some(seconds until the window passes)`, rounded up, when `ip` is throttled at `now` for
    /// a request with the credentials `credential` (see [`AuthThrottle::credential`]).
    pub(crate) fn throttled(
        &self,
        ip: IpAddr,
        credential: Option<u64>,
        now: Instant,
    ) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let clients = self.clients();
        let window = clients.get(&ClientKey::from(ip))?;
        let ends = window.started + self.window;
        if window.failures < self.limit || now >= ends {
            return None;
        }
        if credential.is_some_and(|c| window.trusted.contains(&c)) {
            return None;
        }
        let left = ends - now;
        Some((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1))
    }

    /// Records a failed authentication of `ip` at `now`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let key = ClientKey::from(ip);
        let mut clients = self.clients();
        if !clients.contains_key(&key) && clients.len() >= MAX_TRACKED_CLIENTS {
            self.make_room(&mut clients, now);
        }
        let window = clients.entry(key).or_insert(Window {
            started: now,
            failures: 0,
            trusted: Vec::new(),
        });
        if now >= window.started + self.window {
            window.started = now;
            window.failures = 0;
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Records that `credential` authenticated from `ip` (only for a client with failures to
    /// remember: other clients cost nothing here).
    pub(crate) fn succeeded(&self, ip: IpAddr, credential: Option<u64>) {
        let Some(credential) = credential else { return };
        if self.limit == 0 {
            return;
        }
        let mut clients = self.clients();
        if let Some(window) = clients.get_mut(&ClientKey::from(ip))
            && !window.trusted.contains(&credential)
        {
            if window.trusted.len() >= MAX_TRUSTED_PER_CLIENT {
                window.trusted.remove(0);
            }
            window.trusted.push(credential);
        }
    }

    /// Forgets the clients whose window has passed; if that frees nothing, the tenth of the
    /// table whose windows started earliest (so that a spray costs amortised constant work).
    fn make_room(&self, clients: &mut HashMap<ClientKey, Window>, now: Instant) {
        clients.retain(|_, w| now < w.started + self.window);
        if clients.len() < MAX_TRACKED_CLIENTS {
            return;
        }
        let mut by_age: Vec<(Instant, ClientKey)> =
            clients.iter().map(|(k, w)| (w.started, *k)).collect();
        let evict = (MAX_TRACKED_CLIENTS / 10).max(1);
        by_age.select_nth_unstable_by_key(evict - 1, |(started, _)| *started);
        for (_, key) in &by_age[..evict] {
            clients.remove(key);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const WINDOW: Duration = Duration::from_secs(60);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn throttles_after_the_limit_until_the_window_passes() {
        let throttle = AuthThrottle::new(3, WINDOW);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                throttle.throttled(ip(1), None, t0),
                None,
                "after {i} failures"
            );
            throttle.failed(ip(1), t0);
        }
        assert_eq!(throttle.throttled(ip(1), None, t0), Some(60));
        assert_eq!(
            throttle.throttled(ip(1), None, t0 + Duration::from_millis(59_001)),
            Some(1)
        );
        assert_eq!(throttle.throttled(ip(1), None, t0 + WINDOW), None);
        // Other clients are not affected.
        assert_eq!(throttle.throttled(ip(2), None, t0), None);
        // A new window starts from scratch.
        throttle.failed(ip(1), t0 + WINDOW);
        assert_eq!(throttle.throttled(ip(1), None, t0 + WINDOW), None);
    }

    #[test]
    fn credentials_that_succeeded_from_a_throttled_client_go_on() {
        let throttle = AuthThrottle::new(2, WINDOW);
        let t0 = Instant::now();
        let good = throttle.credential(Some(b"Bearer good".as_slice()));
        let stale = throttle.credential(Some(b"Bearer stale".as_slice()));
        assert_ne!(good, stale);
        throttle.failed(ip(1), t0);
        // Another tenant of the same identity provider, from the same address.
        throttle.succeeded(ip(1), good);
        throttle.failed(ip(1), t0);
        assert!(throttle.throttled(ip(1), stale, t0).is_some());
        assert!(throttle.throttled(ip(1), None, t0).is_some());
        assert_eq!(throttle.throttled(ip(1), good, t0), None);
        // Remembered across windows, and bounded.
        throttle.failed(ip(1), t0 + WINDOW);
        throttle.failed(ip(1), t0 + WINDOW);
        assert_eq!(throttle.throttled(ip(1), good, t0 + WINDOW), None);
        for n in 0..(MAX_TRUSTED_PER_CLIENT as u8 + 4) {
            throttle.succeeded(ip(1), throttle.credential(Some([n].as_slice())));
        }
        assert!(throttle.throttled(ip(1), good, t0 + WINDOW).is_some());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let throttle = AuthThrottle::new(2, WINDOW);
        let t0 = Instant::now();
        throttle.failed(ip(1), t0);
        throttle.failed(ip(1), t0 + WINDOW + Duration::from_secs(1));
        assert_eq!(
            throttle.throttled(ip(1), None, t0 + WINDOW + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn a_limit_of_zero_throttles_nobody() {
        let throttle = AuthThrottle::new(0, WINDOW);
        let t0 = Instant::now();
        for _ in 0..100 {
            throttle.failed(ip(1), t0);
        }
        assert_eq!(throttle.throttled(ip(1), None, t0), None);
        assert_eq!(throttle.tracked(), 0);
    }

    #[test]
    fn ipv6_clients_are_their_64_prefix_and_mapped_v4_is_v4() {
        let throttle = AuthThrottle::new(2, WINDOW);
        let t0 = Instant::now();
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        throttle.failed(IpAddr::V6(a), t0);
        throttle.failed(IpAddr::V6(b), t0);
        assert!(throttle.throttled(IpAddr::V6(a), None, t0).is_some());
        assert_eq!(throttle.throttled(IpAddr::V6(other), None, t0), None);
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        throttle.failed(IpAddr::V6(mapped), t0);
        throttle.failed(ip(7), t0);
        assert!(throttle.throttled(ip(7), None, t0).is_some());
    }

    #[test]
    fn the_table_is_bounded_under_a_spray() {
        let throttle = AuthThrottle::new(5, WINDOW);
        let t0 = Instant::now();
        for n in 0..(MAX_TRACKED_CLIENTS as u32 + 5_000) {
            let when = t0 + Duration::from_millis(u64::from(n % 1000));
            throttle.failed(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n)), when);
        }
        assert!(throttle.tracked() <= MAX_TRACKED_CLIENTS);
        // A client throttled before a spray that fills the table with newer clients...
        let throttle = AuthThrottle::new(2, WINDOW);
        throttle.failed(ip(1), t0 + Duration::from_secs(1));
        throttle.failed(ip(1), t0 + Duration::from_secs(1));
        for n in 0..(MAX_TRACKED_CLIENTS as u32) {
            throttle.failed(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n)), t0);
        }
        // ...is kept while older entries make room.
        assert!(throttle.tracked() <= MAX_TRACKED_CLIENTS);
        assert!(
            throttle
                .throttled(ip(1), None, t0 + Duration::from_secs(2))
                .is_some()
        );
    }
}
