//! A bounded cache of the proofs already seen, so each `jti` is accepted once.
//!
//! Entries are keyed by SHA-256 of the key thumbprint and the `jti`, so every
//! entry costs the same memory however long the client made its `jti`. An
//! entry lives until the last second its proof could still verify
//! ([`crate::Expected::replay_until`]); expired entries are evicted in order
//! of expiry from a heap, so an admission costs `O(log n)`. When the cache
//! holds `capacity` live entries it refuses new ones ([`ProofError::CacheFull`]):
//! it fails closed rather than forget a proof that could still be replayed.
//!
//! The cache is per process. Servers running several nodes either share
//! proofs through sticky routing or require nonces ([`crate::Nonces`]) with a
//! short window, which bounds the replay exposure.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::proof::ProofError;

/// A fixed-size identity of one (thumbprint, `jti`) pair.
type Entry = [u8; 32];

/// A thread-safe, bounded set of recently seen proofs.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Live entries and the second each expires.
    live: HashMap<Entry, i64>,
    /// The same entries, soonest expiry on top.
    expiries: BinaryHeap<Reverse<(i64, Entry)>>,
}

impl ReplayCache {
    /// A cache holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// Records the proof (`jkt`, `jti`) as used until `until` (inclusive).
    ///
    /// Fails with [`ProofError::Replayed`] when the same pair was admitted
    /// before and has not expired, and with [`ProofError::CacheFull`] when
    /// `capacity` live entries leave no room. A proof whose `until` already
    /// passed is admitted without being recorded: it cannot verify again.
    pub fn admit(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<(), ProofError> {
        let entry = entry(jkt, jti);
        // A panic elsewhere while holding the lock leaves the maps consistent
        // (every mutation below is a single call), so a poisoned lock is safe
        // to keep using.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.evict(now);
        if state.live.contains_key(&entry) {
            return Err(ProofError::Replayed);
        }
        if until < now {
            return Ok(());
        }
        if state.live.len() >= self.capacity {
            return Err(ProofError::CacheFull);
        }
        state.live.insert(entry, until);
        state.expiries.push(Reverse((until, entry)));
        Ok(())
    }

    /// How many live entries the cache held after its last admission.
    pub fn len(&self) -> usize {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.live.len()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Drops every entry whose expiry is before `now`.
    fn evict(&mut self, now: i64) {
        while let Some(Reverse((until, entry))) = self.expiries.peek().copied() {
            if until >= now {
                break;
            }
            self.expiries.pop();
            if self.live.get(&entry) == Some(&until) {
                self.live.remove(&entry);
            }
        }
    }
}

/// SHA-256 over the length-prefixed thumbprint and the `jti`, so distinct
/// pairs cannot collide by shifting characters between the two.
fn entry(jkt: &str, jti: &str) -> Entry {
    let mut hash = Sha256::new();
    hash.update((jkt.len() as u64).to_be_bytes());
    hash.update(jkt.as_bytes());
    hash.update(jti.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::thread;

    #[test]
    fn second_use_is_a_replay() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.admit("k", "j", 100, 50), Ok(()));
        assert_eq!(cache.admit("k", "j", 100, 60), Err(ProofError::Replayed));
        assert_eq!(cache.admit("k", "j", 100, 100), Err(ProofError::Replayed));
        // Another key or another jti is another proof.
        assert_eq!(cache.admit("k2", "j", 100, 60), Ok(()));
        assert_eq!(cache.admit("k", "j2", 100, 60), Ok(()));
        // Shifting characters between jkt and jti is not the same pair.
        assert_eq!(cache.admit("kj", "", 100, 60), Ok(()));
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.admit("k", "j", 100, 50), Ok(()));
        assert_eq!(cache.admit("k", "j", 200, 101), Ok(()));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.admit("k", "j", 300, 150), Err(ProofError::Replayed));
    }

    #[test]
    fn full_cache_fails_closed_until_entries_expire() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.admit("k", "a", 100, 0), Ok(()));
        assert_eq!(cache.admit("k", "b", 200, 0), Ok(()));
        assert_eq!(cache.admit("k", "c", 200, 0), Err(ProofError::CacheFull));
        // Still full of live entries: a replay is still detected.
        assert_eq!(cache.admit("k", "a", 100, 50), Err(ProofError::Replayed));
        // "a" expires after 100: room for one more.
        assert_eq!(cache.admit("k", "c", 200, 101), Ok(()));
        assert_eq!(cache.admit("k", "d", 200, 101), Err(ProofError::CacheFull));
        assert_eq!(cache.admit("k", "b", 200, 150), Err(ProofError::Replayed));
    }

    #[test]
    fn zero_capacity_admits_nothing() {
        let cache = ReplayCache::new(0);
        assert_eq!(cache.admit("k", "a", 100, 0), Err(ProofError::CacheFull));
        assert!(cache.is_empty());
    }

    #[test]
    fn racing_threads_admit_a_jti_once() {
        for _ in 0..50 {
            let cache = Arc::new(ReplayCache::new(100));
            let barrier = Arc::new(Barrier::new(2));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let cache = Arc::clone(&cache);
                    let barrier = Arc::clone(&barrier);
                    thread::spawn(move || {
                        barrier.wait();
                        cache.admit("jkt", "same-jti", 100, 0)
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
            assert_eq!(results.len(), 2);
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
            assert!(results.contains(&Err(ProofError::Replayed)));
        }
    }
}
