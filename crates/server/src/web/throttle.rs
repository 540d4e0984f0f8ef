//! Slows down password guessing: after a few failed sign-ins for one account
//! (or from one address), further attempts are refused without checking the
//! password until the window passes. Counters live in memory per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account in a window.
pub const PER_ACCOUNT: u32 = 5;
/// Failures allowed per client address in a window.
pub const PER_ADDRESS: u32 = 20;
/// How long failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failure counters.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    fn count(&self, key: &str) -> u32 {
        let Ok(map) = self.failures.lock() else {
            return u32::MAX;
        };
        match map.get(key) {
            Some((n, since)) if since.elapsed() < WINDOW => *n,
            _ => 0,
        }
    }

    /// Whether a sign-in for `account` from `address` may be attempted now.
    pub fn allows(&self, account: &str, address: &str) -> bool {
        self.count(&format!("account:{account}")) < PER_ACCOUNT
            && self.count(&format!("address:{address}")) < PER_ADDRESS
    }

    /// Records a failed sign-in.
    pub fn failed(&self, account: &str, address: &str) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        for key in [format!("account:{account}"), format!("address:{address}")] {
            let entry = map.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    /// Clears an account's failures after a successful sign-in.
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&format!("account:{account}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_repeated_failures_and_resets_on_success() {
        let t = LoginThrottle::default();
        for _ in 0..PER_ACCOUNT {
            assert!(t.allows("alice", "1.2.3.4"));
            t.failed("alice", "1.2.3.4");
        }
        assert!(
            !t.allows("alice", "5.6.7.8"),
            "the account is throttled from anywhere"
        );
        assert!(t.allows("bob", "5.6.7.8"));
        t.succeeded("alice");
        assert!(t.allows("alice", "5.6.7.8"));
    }
}
