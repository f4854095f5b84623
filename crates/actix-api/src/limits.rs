//! Abuse limits on sign-in and sign-up, and the client address they are keyed by.
//!
//! Each limit is a keyed GCRA limiter (`governor`): a key may spend `max` requests at once,
//! then earns one back every `per / max`; a key left alone for `per` is fully fresh again.
//! Rate limiting is about clients and addresses, so it lives here in the HTTP adapter and not
//! in the application.
//!
//! - Sign-in is limited per client IP (every attempt counts) and per e-mail (trimmed and
//!   lower-cased). The e-mail's budget is spent before the password is checked, since a guess
//!   past the limit must not learn the answer; a successful sign-in then clears the e-mail's
//!   count, so in effect only failures since the last success accumulate and a user who signs
//!   in often is never locked out by their own successes.
//! - Sign-up is limited per client IP.
//! - IPv6 clients are keyed by their /64 network: one host usually holds a whole /64, so
//!   per-address keys would not limit it at all.
//! - E-mails are keyed by a salted 64-bit hash, so a key costs the same few bytes however long
//!   the submitted text is.
//! - Keys that are indistinguishable from fresh ones are swept (`retain_recent`) whenever a
//!   limiter holds [`RateLimits::housekeeping_threshold`] keys, and after a sweep only once the
//!   survivors have doubled: memory stays proportional to the keys active within one window,
//!   at amortised constant cost per request. [`Limiters::housekeep`] sweeps on demand.
//!
//! The client IP is the TCP peer's, unless the peer is a trusted proxy: then it is the
//! right-most address of `X-Forwarded-For` that is not a trusted proxy (see [`client_ip_from`]).

use crate::error::ApiError;
use actix_web::HttpRequest;
use governor::clock::{Clock, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most `max` requests per `per` for one key (a burst of `max`, then one every `per / max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    max: NonZeroU32,
    per: Duration,
}

impl RateLimit {
    /// `None` when `max` is 0 or `per` is shorter than `max` nanoseconds (no usable quota).
    pub fn new(max: u32, per: Duration) -> Option<Self> {
        let max = NonZeroU32::new(max)?;
        let limit = Self { max, per };
        limit.quota().map(|_| limit)
    }

    /// `max` per minute (`None` for 0).
    pub fn per_minute(max: u32) -> Option<Self> {
        Self::new(max, Duration::from_secs(60))
    }

    /// `max` per hour (`None` for 0).
    pub fn per_hour(max: u32) -> Option<Self> {
        Self::new(max, Duration::from_secs(3600))
    }

    pub fn max(&self) -> u32 {
        self.max.get()
    }

    pub fn per(&self) -> Duration {
        self.per
    }

    fn quota(&self) -> Option<Quota> {
        Quota::with_period(self.per / self.max.get()).map(|quota| quota.allow_burst(self.max))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.max, self.per)
    }
}

/// The abuse limits; `None` turns one off, [`RateLimits::off`] all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts from one client IP (IPv6: one /64). Default 30 per minute.
    pub sign_in_per_ip: Option<RateLimit>,
    /// Sign-in attempts for one e-mail since its last successful sign-in. Default 10 per minute.
    pub sign_in_per_email: Option<RateLimit>,
    /// Sign-up attempts from one client IP (IPv6: one /64). Default 20 per hour: enough for a
    /// classroom behind one NAT address, far too few to mass-create accounts or to probe
    /// which e-mails are registered.
    pub sign_up_per_ip: Option<RateLimit>,
    /// How many keys one limiter holds before stale ones are swept. Default 10,000.
    pub housekeeping_threshold: usize,
}

impl RateLimits {
    pub const DEFAULT_HOUSEKEEPING_THRESHOLD: usize = 10_000;

    /// No limit at all (tests of other behaviour, benchmarks, a proxy that limits already).
    pub fn off() -> Self {
        Self {
            sign_in_per_ip: None,
            sign_in_per_email: None,
            sign_up_per_ip: None,
            housekeeping_threshold: Self::DEFAULT_HOUSEKEEPING_THRESHOLD,
        }
    }

    /// Exactly these limits, every other one off.
    pub fn only(
        sign_in_per_ip: Option<RateLimit>,
        sign_in_per_email: Option<RateLimit>,
        sign_up_per_ip: Option<RateLimit>,
    ) -> Self {
        Self {
            sign_in_per_ip,
            sign_in_per_email,
            sign_up_per_ip,
            ..Self::off()
        }
    }

    pub fn is_off(&self) -> bool {
        self.sign_in_per_ip.is_none()
            && self.sign_in_per_email.is_none()
            && self.sign_up_per_ip.is_none()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            sign_in_per_ip: RateLimit::per_minute(30),
            sign_in_per_email: RateLimit::per_minute(10),
            sign_up_per_ip: RateLimit::per_hour(20),
            housekeeping_threshold: Self::DEFAULT_HOUSEKEEPING_THRESHOLD,
        }
    }
}

/// The time the limiters run on: monotonic real time, or a manual clock tests advance.
#[derive(Debug, Clone)]
pub struct LimiterClock(Source);

#[derive(Debug, Clone)]
enum Source {
    Monotonic(Instant),
    Manual(FakeRelativeClock),
}

impl LimiterClock {
    /// Real time, immune to wall-clock steps.
    pub fn monotonic() -> Self {
        Self(Source::Monotonic(Instant::now()))
    }

    /// Time that moves only when `clock` (or a clone of it) is advanced.
    pub fn manual(clock: FakeRelativeClock) -> Self {
        Self(Source::Manual(clock))
    }
}

impl Clock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.0 {
            Source::Monotonic(origin) => {
                Nanos::new(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
            }
            Source::Manual(clock) => clock.now(),
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Which limit refused (`sign_in_per_ip`, `sign_in_per_email`, `sign_up_per_ip`).
    pub limit: &'static str,
    /// How long until the key may try again.
    pub wait: Duration,
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        let message = if limited.limit.starts_with("sign_up") {
            "Too many sign-up attempts from this network. Please try again later."
        } else {
            "Too many sign-in attempts. Please try again later."
        };
        ApiError::too_many_requests(message, limited.wait)
    }
}

/// A DashMap store the limiter and [`Keyed::reset`] share: governor gives no way to clear
/// one key of a limiter it owns.
#[derive(Debug)]
struct SharedStore<K: Hash + Eq + Clone>(Arc<DashMapStateStore<K>>);

impl<K: Hash + Eq + Clone> StateStore for SharedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for SharedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

/// One keyed limit with its housekeeping.
struct Keyed<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: RateLimiter<K, SharedStore<K>, LimiterClock, NoOpMiddleware<Nanos>>,
    store: Arc<DashMapStateStore<K>>,
    clock: LimiterClock,
    threshold: usize,
    next_sweep: AtomicUsize,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(
        name: &'static str,
        limit: Option<RateLimit>,
        clock: &LimiterClock,
        threshold: usize,
    ) -> Option<Self> {
        let quota = limit?.quota()?;
        let store = Arc::new(DashMapStateStore::<K>::default());
        let limiter = RateLimiter::new(quota, SharedStore(Arc::clone(&store)), clock.clone());
        Some(Self {
            name,
            limiter,
            store,
            clock: clock.clone(),
            threshold: threshold.max(1),
            next_sweep: AtomicUsize::new(threshold.max(1)),
        })
    }

    fn check(&self, key: &K) -> Result<(), Limited> {
        let outcome = self.limiter.check_key(key);
        if self.limiter.len() >= self.next_sweep.load(Ordering::Relaxed) {
            self.sweep();
        }
        outcome.map_err(|not_until| Limited {
            limit: self.name,
            wait: not_until.wait_time_from(self.clock.now()),
        })
    }

    fn reset(&self, key: &K) {
        self.store.remove(key);
    }

    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let left = self.limiter.len();
        self.next_sweep.store(
            self.threshold.max(left.saturating_mul(2)),
            Ordering::Relaxed,
        );
    }

    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// The limiters of one server, shared by its workers.
pub struct Limiters {
    sign_in_per_ip: Option<Keyed<IpAddr>>,
    sign_in_per_email: Option<Keyed<u64>>,
    sign_up_per_ip: Option<Keyed<IpAddr>>,
    email_salt: RandomState,
}

impl fmt::Debug for Limiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiters")
            .field("sign_in_per_ip", &self.sign_in_per_ip.is_some())
            .field("sign_in_per_email", &self.sign_in_per_email.is_some())
            .field("sign_up_per_ip", &self.sign_up_per_ip.is_some())
            .field("tracked_keys", &self.tracked_keys())
            .finish()
    }
}

impl Limiters {
    pub fn new(limits: &RateLimits, clock: LimiterClock) -> Self {
        let threshold = limits.housekeeping_threshold;
        Self {
            sign_in_per_ip: Keyed::new("sign_in_per_ip", limits.sign_in_per_ip, &clock, threshold),
            sign_in_per_email: Keyed::new(
                "sign_in_per_email",
                limits.sign_in_per_email,
                &clock,
                threshold,
            ),
            sign_up_per_ip: Keyed::new("sign_up_per_ip", limits.sign_up_per_ip, &clock, threshold),
            email_salt: RandomState::new(),
        }
    }

    /// Spends one sign-in attempt of the client and of the e-mail.
    ///
    /// # Errors
    /// [`Limited`] when either is spent up; a refusal by the IP limit spends nothing of the
    /// e-mail's.
    pub fn check_sign_in(&self, client: IpAddr, email: &str) -> Result<(), Limited> {
        if let Some(limit) = &self.sign_in_per_ip {
            limit.check(&ip_key(client)).inspect_err(|limited| {
                tracing::warn!(limit = limited.limit, client = %client, "sign-in refused by rate limit");
            })?;
        }
        if let Some(limit) = &self.sign_in_per_email {
            limit.check(&self.email_key(email)).inspect_err(|limited| {
                tracing::warn!(limit = limited.limit, client = %client, "sign-in refused by rate limit");
            })?;
        }
        Ok(())
    }

    /// The e-mail signed in: its failed attempts are forgiven.
    pub fn sign_in_succeeded(&self, email: &str) {
        if let Some(limit) = &self.sign_in_per_email {
            limit.reset(&self.email_key(email));
        }
    }

    /// Spends one sign-up attempt of the client.
    ///
    /// # Errors
    /// [`Limited`] when spent up.
    pub fn check_sign_up(&self, client: IpAddr) -> Result<(), Limited> {
        match &self.sign_up_per_ip {
            Some(limit) => limit.check(&ip_key(client)).inspect_err(|limited| {
                tracing::warn!(limit = limited.limit, client = %client, "sign-up refused by rate limit");
            }),
            None => Ok(()),
        }
    }

    /// Drops every key indistinguishable from a fresh one, in every limiter.
    pub fn housekeep(&self) {
        if let Some(limit) = &self.sign_in_per_ip {
            limit.sweep();
        }
        if let Some(limit) = &self.sign_in_per_email {
            limit.sweep();
        }
        if let Some(limit) = &self.sign_up_per_ip {
            limit.sweep();
        }
    }

    /// Keys held across all limiters.
    pub fn tracked_keys(&self) -> usize {
        self.sign_in_per_ip.as_ref().map_or(0, Keyed::len)
            + self.sign_in_per_email.as_ref().map_or(0, Keyed::len)
            + self.sign_up_per_ip.as_ref().map_or(0, Keyed::len)
    }

    fn email_key(&self, email: &str) -> u64 {
        self.email_salt.hash_one(normalise_email(email).as_str())
    }
}

/// The e-mail as the limits see it: trimmed and lower-cased.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// IPv4 as is (IPv4-mapped IPv6 included), IPv6 by its /64 network.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network: {0:?}")]
pub struct InvalidNetwork(pub String);

/// Parses `10.0.0.0/8`, `fd00::/8` or a single address (`192.0.2.7`, `::1`).
///
/// # Errors
/// [`InvalidNetwork`] for anything else.
pub fn parse_network(text: &str) -> Result<IpNet, InvalidNetwork> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| InvalidNetwork(text.to_owned()))
}

/// Parses a comma-separated list of [`parse_network`] entries (empty entries are skipped).
///
/// # Errors
/// The first [`InvalidNetwork`].
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, InvalidNetwork> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(parse_network)
        .collect()
}

/// The client address of a request: see [`client_ip_from`].
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpNet]) -> IpAddr {
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|value| value.to_str().unwrap_or("\u{fffd}"));
    client_ip_from(
        req.peer_addr().map(|peer| peer.ip()),
        forwarded,
        trusted_proxies,
    )
}

/// The client address from the TCP peer and the `X-Forwarded-For` header lines, in order.
///
/// An untrusted peer is the client, whatever the header says (anyone can send one). A trusted
/// peer (a proxy in `trusted_proxies`) forwarded the request: the header is walked from the
/// right, through trusted proxies, to the first address that is not one; that is the client.
/// If the walk meets an entry that is not an address, the chain cannot be followed further and
/// the last address reached, a trusted proxy, stands in for the client: requests behind it
/// share its budget rather than escape the limit. An all-trusted chain yields its left-most
/// entry. No peer address at all (only in unit tests of actix) yields `0.0.0.0`.
pub fn client_ip_from<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|line| line.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(hop) = parse_forwarded_hop(entry) else {
            return client;
        };
        client = hop;
        if !trusted(&hop) {
            return hop;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write them.
fn parse_forwarded_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &str) -> Vec<IpNet> {
        parse_networks(list).unwrap()
    }

    fn limiters(limits: RateLimits) -> (Limiters, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            Limiters::new(&limits, LimiterClock::manual(clock.clone())),
            clock,
        )
    }

    #[test]
    fn defaults_are_on_and_off_is_off() {
        let limits = RateLimits::default();
        assert_eq!(limits.sign_in_per_ip, RateLimit::per_minute(30));
        assert_eq!(limits.sign_in_per_email, RateLimit::per_minute(10));
        assert_eq!(limits.sign_up_per_ip, RateLimit::per_hour(20));
        assert!(!limits.is_off());
        assert!(RateLimits::off().is_off());
        assert_eq!(RateLimit::new(0, Duration::from_secs(60)), None);
        assert_eq!(RateLimit::new(10, Duration::from_nanos(5)), None);
        let (off, _) = limiters(RateLimits::off());
        for _ in 0..1000 {
            assert!(off.check_sign_in(ip("192.0.2.1"), "a@x.io").is_ok());
            assert!(off.check_sign_up(ip("192.0.2.1")).is_ok());
        }
        assert_eq!(off.tracked_keys(), 0);
    }

    #[test]
    fn an_email_is_refused_after_its_budget_with_the_wait_until_the_next_attempt() {
        let (limits, clock) = limiters(RateLimits::only(None, RateLimit::per_minute(3), None));
        for _ in 0..3 {
            assert!(limits.check_sign_in(ip("192.0.2.1"), "Ann@X.io").is_ok());
        }
        // The same e-mail however it is written, from any address.
        let refused = limits
            .check_sign_in(ip("198.51.100.9"), "  ann@x.IO ")
            .unwrap_err();
        assert_eq!(refused.limit, "sign_in_per_email");
        assert_eq!(refused.wait, Duration::from_secs(20));
        assert!(limits.check_sign_in(ip("192.0.2.1"), "bob@x.io").is_ok());
        clock.advance(Duration::from_secs(19));
        assert_eq!(
            limits
                .check_sign_in(ip("192.0.2.1"), "ann@x.io")
                .unwrap_err()
                .wait,
            Duration::from_secs(1)
        );
        clock.advance(Duration::from_secs(1));
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_ok());
    }

    #[test]
    fn a_successful_sign_in_forgives_the_emails_failures() {
        let (limits, _) = limiters(RateLimits::only(None, RateLimit::per_minute(2), None));
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_ok());
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_ok());
        limits.sign_in_succeeded(" ANN@x.io");
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_ok());
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_ok());
        assert!(limits.check_sign_in(ip("192.0.2.1"), "ann@x.io").is_err());
    }

    #[test]
    fn the_ip_limit_refuses_first_and_spends_nothing_of_the_email() {
        let (limits, _) = limiters(RateLimits::only(
            RateLimit::per_minute(2),
            RateLimit::per_minute(3),
            None,
        ));
        assert!(limits.check_sign_in(ip("192.0.2.1"), "a@x.io").is_ok());
        assert!(limits.check_sign_in(ip("192.0.2.1"), "b@x.io").is_ok());
        let refused = limits.check_sign_in(ip("192.0.2.1"), "c@x.io").unwrap_err();
        assert_eq!(refused.limit, "sign_in_per_ip");
        // c@x.io still has its whole budget of 3, spent from other addresses.
        for client in ["192.0.2.2", "192.0.2.3", "192.0.2.4"] {
            assert!(limits.check_sign_in(ip(client), "c@x.io").is_ok());
        }
        assert_eq!(
            limits
                .check_sign_in(ip("192.0.2.5"), "c@x.io")
                .unwrap_err()
                .limit,
            "sign_in_per_email"
        );
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let (limits, _) = limiters(RateLimits::only(None, None, RateLimit::per_hour(1)));
        assert!(limits.check_sign_up(ip("2001:db8:1:2::1")).is_ok());
        assert!(limits.check_sign_up(ip("2001:db8:1:2:ffff::9")).is_err());
        assert!(limits.check_sign_up(ip("2001:db8:1:3::1")).is_ok());
        assert!(limits.check_sign_up(ip("192.0.2.1")).is_ok());
        assert!(limits.check_sign_up(ip("::ffff:192.0.2.1")).is_err());
    }

    #[test]
    fn stale_keys_are_swept_at_the_threshold_so_memory_stays_bounded() {
        let limits = RateLimits {
            housekeeping_threshold: 100,
            ..RateLimits::only(None, RateLimit::per_minute(1), None)
        };
        let (limits, clock) = limiters(limits);
        for n in 0..99 {
            assert!(limits
                .check_sign_in(ip("192.0.2.1"), &format!("{n}@x.io"))
                .is_ok());
        }
        assert_eq!(limits.tracked_keys(), 99);
        // governor keeps a key one emission interval past the moment it is fresh again.
        clock.advance(Duration::from_secs(120));
        // The hundredth key triggers a sweep: the 99 old ones are stale and go.
        assert!(limits.check_sign_in(ip("192.0.2.1"), "new@x.io").is_ok());
        assert_eq!(limits.tracked_keys(), 1);
        // A swept key starts over like a new one.
        assert!(limits.check_sign_in(ip("192.0.2.1"), "0@x.io").is_ok());
        assert!(limits.check_sign_in(ip("192.0.2.1"), "0@x.io").is_err());
        // Many live keys: sweeps happen only when the survivors double, not per request.
        for n in 0..1000 {
            let _ = limits.check_sign_in(ip("192.0.2.1"), &format!("live{n}@x.io"));
        }
        assert_eq!(limits.tracked_keys(), 1002);
        clock.advance(Duration::from_secs(120));
        limits.housekeep();
        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn networks_parse_from_addresses_and_cidrs() {
        assert_eq!(
            nets(" 10.0.0.0/8, 192.0.2.7 ,, ::1, fd00::/8"),
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.7/32".parse().unwrap(),
                "::1/128".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
            ]
        );
        assert_eq!(nets("10.1.2.3/8"), nets("10.0.0.0/8"));
        assert_eq!(
            parse_networks("10.0.0.0/8, proxy.local"),
            Err(InvalidNetwork("proxy.local".to_owned()))
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_networks("").unwrap().is_empty());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = nets("10.0.0.0/8");
        assert_eq!(
            client_ip_from(Some(ip("203.0.113.5")), ["198.51.100.1"], &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip_from(Some(ip("203.0.113.5")), ["10.0.0.1, 10.0.0.2"], &[]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip_from(Some(ip("::ffff:203.0.113.5")), [], &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_chain_through_two_trusted_proxies_yields_the_rightmost_untrusted_address() {
        let trusted = nets("10.0.0.0/8, 192.0.2.7");
        // The client wrote a fake first entry; the proxies appended the real hops.
        assert_eq!(
            client_ip_from(
                Some(ip("10.0.0.2")),
                ["6.6.6.6, 198.51.100.23, 192.0.2.7"],
                &trusted
            ),
            ip("198.51.100.23")
        );
        // Several header lines read as one list, in order; ports and spaces are tolerated.
        assert_eq!(
            client_ip_from(
                Some(ip("10.0.0.2")),
                ["6.6.6.6", " [2001:db8::5]:4711 ,10.9.9.9:80"],
                &trusted
            ),
            ip("2001:db8::5")
        );
        // A trusted peer without a header is the client itself.
        assert_eq!(
            client_ip_from(Some(ip("10.0.0.2")), [], &trusted),
            ip("10.0.0.2")
        );
        // Everything trusted: the left-most hop.
        assert_eq!(
            client_ip_from(Some(ip("10.0.0.2")), ["10.0.0.9, 10.0.0.1"], &trusted),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn a_malformed_header_stops_the_walk_at_the_last_trusted_hop() {
        let trusted = nets("10.0.0.0/8");
        assert_eq!(
            client_ip_from(Some(ip("10.0.0.2")), ["nonsense"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip_from(
                Some(ip("10.0.0.2")),
                ["198.51.100.1, unknown, 10.0.0.1"],
                &trusted
            ),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip_from(Some(ip("10.0.0.2")), ["198.51.100.1,,"], &trusted),
            ip("10.0.0.2")
        );
        // Garbage left of the client is never read.
        assert_eq!(
            client_ip_from(Some(ip("10.0.0.2")), ["<script>, 198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn no_peer_falls_back_to_one_shared_key() {
        assert_eq!(
            client_ip_from(None, ["198.51.100.1"], &nets("0.0.0.0/0")),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn a_refusal_is_a_429_with_a_retry_after() {
        let api = ApiError::from(Limited {
            limit: "sign_in_per_email",
            wait: Duration::from_millis(1500),
        });
        assert_eq!(api.status.as_u16(), 429);
        assert_eq!(api.code, "TOO_MANY_REQUESTS");
        assert_eq!(api.retry_after, Some(2));
    }
}
