//! Slows down password guessing without letting anyone lock a person out.
//!
//! Failures count per account *and* client network (a /24 for IPv4, a /64
//! for IPv6, so one host cannot dodge the count by hopping addresses): after
//! a few free tries, each further attempt for that account from that network
//! waits twice as long as the one before, up to [`MAX_DELAY`]. An attacker
//! guessing alice's password from their network slows only themselves; alice
//! signing in from her own network is never refused. Apart from that, a
//! network with many failures across accounts (password spraying) is refused
//! for a window. Counters live in memory per node and are bounded.
//!
//! [`decide`] is the pure rule; [`LoginThrottle`] keeps the counters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures per account and network before attempts are spaced out.
pub const FREE_FAILURES: u32 = 3;
/// The longest wait between attempts for one account from one network.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Failures allowed from one network, over all accounts, in a window.
pub const PER_NETWORK: u32 = 50;
/// How long failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Counters kept at most (older ones are dropped first when full).
const MAX_ENTRIES: usize = 100_000;

/// The network an address counts in: its /24 (IPv4) or /64 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// An IPv4 /24, by its first three octets.
    V4([u8; 3]),
    /// An IPv6 /64, by its first eight octets.
    V6([u8; 8]),
    /// The address is not known (counted together, fail closed).
    Unknown,
}

impl Network {
    /// The network of `ip`; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn of(ip: Option<IpAddr>) -> Network {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => {
                let o = v4.octets();
                Network::V4([o[0], o[1], o[2]])
            }
            Some(IpAddr::V6(v6)) => {
                let o = v6.octets();
                Network::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
            None => Network::Unknown,
        }
    }
}

/// Failures of one account from one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures so far.
    pub failures: u32,
    /// When the last one happened.
    pub last: Instant,
}

/// Failures from one network in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Failures so far.
    pub failures: u32,
    /// When the window started.
    pub since: Instant,
}

/// Whether a sign-in may be attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password.
    Allow,
    /// Do not check it; try again after this long.
    Wait(Duration),
}

/// The wait after `failures` failures for one account from one network.
pub fn delay(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// The rule: an account's failures from *this* network space out attempts
/// from this network only; a network's failures over every account refuse it
/// for the rest of the window.
pub fn decide(pair: Option<&Backoff>, network: Option<&Window>, now: Instant) -> Attempt {
    if let Some(window) = network {
        let age = now.saturating_duration_since(window.since);
        if age < WINDOW && window.failures >= PER_NETWORK {
            return Attempt::Wait(WINDOW - age);
        }
    }
    if let Some(pair) = pair {
        let since = now.saturating_duration_since(pair.last);
        if since < WINDOW {
            let wait = delay(pair.failures);
            if since < wait {
                return Attempt::Wait(wait - since);
            }
        }
    }
    Attempt::Allow
}

/// Failure counters.
#[derive(Default)]
pub struct LoginThrottle {
    counters: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    pairs: HashMap<(String, Network), Backoff>,
    networks: HashMap<Network, Window>,
}

impl LoginThrottle {
    /// Whether a sign-in for `account` from `ip` may be attempted now.
    pub fn check(&self, account: &str, ip: Option<IpAddr>) -> Attempt {
        let network = Network::of(ip);
        let Ok(counters) = self.counters.lock() else {
            return Attempt::Wait(MAX_DELAY);
        };
        decide(
            counters.pairs.get(&(account.to_owned(), network)),
            counters.networks.get(&network),
            Instant::now(),
        )
    }

    /// Whether a sign-in for `account` from `ip` may be attempted now.
    pub fn allows(&self, account: &str, ip: Option<IpAddr>) -> bool {
        self.check(account, ip) == Attempt::Allow
    }

    /// Records a failed sign-in.
    pub fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let network = Network::of(ip);
        let now = Instant::now();
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        if counters.pairs.len() >= MAX_ENTRIES {
            counters
                .pairs
                .retain(|_, b| now.saturating_duration_since(b.last) < WINDOW);
            if counters.pairs.len() >= MAX_ENTRIES {
                counters.pairs.clear();
            }
        }
        if counters.networks.len() >= MAX_ENTRIES {
            counters
                .networks
                .retain(|_, w| now.saturating_duration_since(w.since) < WINDOW);
            if counters.networks.len() >= MAX_ENTRIES {
                counters.networks.clear();
            }
        }
        let pair = counters
            .pairs
            .entry((account.to_owned(), network))
            .or_insert(Backoff {
                failures: 0,
                last: now,
            });
        if now.saturating_duration_since(pair.last) >= WINDOW {
            pair.failures = 0;
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.last = now;
        let window = counters.networks.entry(network).or_insert(Window {
            failures: 0,
            since: now,
        });
        if now.saturating_duration_since(window.since) >= WINDOW {
            *window = Window {
                failures: 0,
                since: now,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Clears an account's failures from this network after a successful sign-in.
    pub fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        if let Ok(mut counters) = self.counters.lock() {
            counters
                .pairs
                .remove(&(account.to_owned(), Network::of(ip)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        assert_eq!(Network::of(ip("10.1.2.3")), Network::of(ip("10.1.2.200")));
        assert_ne!(Network::of(ip("10.1.2.3")), Network::of(ip("10.1.3.3")));
        assert_eq!(
            Network::of(ip("2001:db8:1:2::1")),
            Network::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Network::of(ip("2001:db8:1:2::1")),
            Network::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Network::of(ip("::ffff:10.1.2.3")),
            Network::of(ip("10.1.2.9"))
        );
        assert_eq!(Network::of(None), Network::Unknown);
    }

    #[test]
    fn delays_double_after_the_free_tries_and_are_capped() {
        let table = [
            (0, 0),
            (1, 0),
            (2, 0),
            (3, 1),
            (4, 2),
            (5, 4),
            (10, 128),
            (13, 900),
            (1000, 900),
        ];
        for (failures, seconds) in table {
            assert_eq!(delay(failures), Duration::from_secs(seconds), "{failures}");
        }
    }

    #[test]
    fn decide_table() {
        let now = Instant::now() + Duration::from_secs(3600);
        let ago = |s: u64| now - Duration::from_secs(s);
        let pair = |failures, last| Backoff { failures, last };
        let window = |failures, since| Window { failures, since };
        let cases = [
            (None, None, Attempt::Allow),
            (Some(pair(2, ago(0))), None, Attempt::Allow),
            (
                Some(pair(5, ago(1))),
                None,
                Attempt::Wait(Duration::from_secs(3)),
            ),
            (Some(pair(5, ago(4))), None, Attempt::Allow),
            (Some(pair(100, ago(16 * 60))), None, Attempt::Allow),
            (
                None,
                Some(window(PER_NETWORK, ago(60))),
                Attempt::Wait(WINDOW - Duration::from_secs(60)),
            ),
            (None, Some(window(PER_NETWORK - 1, ago(60))), Attempt::Allow),
            (
                None,
                Some(window(PER_NETWORK, ago(16 * 60))),
                Attempt::Allow,
            ),
        ];
        for (pair, window, expected) in cases {
            assert_eq!(
                decide(pair.as_ref(), window.as_ref(), now),
                expected,
                "{pair:?} {window:?}"
            );
        }
    }

    #[test]
    fn an_attacker_slows_only_their_own_network() {
        let t = LoginThrottle::default();
        for _ in 0..10 {
            t.failed("alice", ip("203.0.113.7"));
        }
        assert!(!t.allows("alice", ip("203.0.113.7")));
        assert!(
            !t.allows("alice", ip("203.0.113.99")),
            "the whole /24 counts"
        );
        assert!(
            t.allows("alice", ip("198.51.100.4")),
            "alice's own network is not refused"
        );
        assert!(t.allows("bob", ip("203.0.113.7")));
        t.succeeded("alice", ip("203.0.113.7"));
        assert!(t.allows("alice", ip("203.0.113.7")));
    }

    #[test]
    fn spraying_from_one_network_is_refused() {
        let t = LoginThrottle::default();
        for i in 0..PER_NETWORK {
            t.failed(&format!("user{i}"), ip("203.0.113.7"));
        }
        assert!(!t.allows("someone", ip("203.0.113.8")));
        assert!(t.allows("someone", ip("198.51.100.4")));
    }
}
