//! The revocation feed gates follow: revoked access tokens, disconnected
//! grants, deleted clients, ended tasks and principals that may not act (deactivated, or
//! owned by someone deactivated), served at `/oauth/revoked` as a long poll.
//!
//! Only gates read it: the request must carry a credential allowed
//! `laissez.audit.write` (the `laissez-gate` role), since the feed names
//! deactivated principals and revoked tokens, and only such authenticated
//! gates are waited for, so a stranger's poll cannot delay a revocation.
//!
//! Each revocation moves the feed to a new version (a per-start random
//! prefix and a counter, so a restarted server is never mistaken for the
//! version a gate already holds). A gate asks with the version it holds and
//! its own id; the server answers at once when the feed moved on, else when
//! it moves or after `wait` seconds. Asking with a version is also the gate's
//! acknowledgement that it applied it, and a revoking request is answered
//! only after every gate seen in the last minute has acknowledged the new
//! version (or two seconds passed), so the gate refuses a revoked token on
//! the very next request.
//!
//! A gate that asks for changes (`delta=1`) gets only what was added since
//! the version it holds when every change since then was an ended task or a
//! revoked access token (the common, additive ones) still kept in memory;
//! anything else (a principal deactivated or reactivated, a grant or client
//! gone, a restart, a gap, or a minute since its last full answer, which is
//! also how entries that expired leave the gate) gets the whole state read
//! from the store, as every gate did before.
//!
//! Additions are announced while their commit runs rather than after it
//! ([`RevocationFeed::added_while`]): gates refuse an ending task during the
//! fsync instead of after it. Refusing early fails closed (the caller was
//! already allowed to end it), and a whole-state answer includes additions
//! whose commit has not finished, so no gate acknowledges a version without
//! what it named. The revoking request is still answered only once its
//! commit is durable and every gate has applied it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use laissez_core::Scope;
use laissez_core::admin::AUDIT_WRITE;
use serde::Deserialize;
use tokio::sync::{Notify, watch};

use crate::AppState;
use crate::auth::Authenticated;

/// The longest a poll waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A gate not heard from for this long is no longer waited for.
const GATE_FORGOTTEN: Duration = Duration::from_secs(60);
/// The longest a revoking request waits for gates to apply it.
const APPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Changes kept in memory for gates that ask for changes only.
const CHANGES_KEPT: usize = 1024;
/// A gate following changes gets the whole state at least this often.
const FULL_EVERY: Duration = Duration::from_secs(60);

/// What one revocation added, when it only added (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// Tasks that ended.
    pub ended_tasks: Vec<String>,
    /// Access tokens revoked (their `jti`).
    pub revoked: Vec<String>,
}

/// What gates need since some version: the additions, or the whole state.
#[derive(Debug, PartialEq, Eq)]
enum Since {
    Added(BTreeSet<String>, BTreeSet<String>),
    Everything,
}

/// What was added between `held` and `current`, from the kept `changes`
/// (counter, additions or `None` for a change that needs the whole state).
fn since(changes: &VecDeque<(u64, Option<Added>)>, held: u64, current: u64) -> Since {
    // Nothing changed (the wait ran out): the whole state, which also drops what expired.
    if held >= current {
        return Since::Everything;
    }
    let mut ended = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    let mut next = held + 1;
    for (counter, added) in changes.iter().filter(|(c, _)| *c > held && *c <= current) {
        // A gap (changes no longer kept) or a change that does not only add.
        let Some(added) = added.as_ref().filter(|_| *counter == next) else {
            return Since::Everything;
        };
        ended.extend(added.ended_tasks.iter().cloned());
        revoked.extend(added.revoked.iter().cloned());
        next += 1;
    }
    if next != current + 1 {
        return Since::Everything;
    }
    Since::Added(ended, revoked)
}

/// The feed's version and the gates following it.
pub struct RevocationFeed {
    boot: String,
    counter: watch::Sender<u64>,
    /// Gate id → what it acknowledged and when.
    gates: Mutex<HashMap<String, Follower>>,
    /// The latest changes, oldest first (see [`since`]).
    changes: Mutex<VecDeque<(u64, Option<Added>)>>,
    /// Additions announced whose commit has not finished (counter, additions).
    pending: Mutex<Vec<(u64, Added)>>,
    acknowledged: Notify,
    closing: watch::Sender<bool>,
}

impl Default for RevocationFeed {
    fn default() -> RevocationFeed {
        RevocationFeed {
            boot: laissez_token::random_base62(12).unwrap_or_else(|_| "boot".into()),
            counter: watch::Sender::new(0),
            gates: Mutex::new(HashMap::new()),
            changes: Mutex::new(VecDeque::new()),
            pending: Mutex::new(Vec::new()),
            acknowledged: Notify::new(),
            closing: watch::Sender::new(false),
        }
    }
}

/// A gate following the feed.
#[derive(Clone, Copy, Debug)]
struct Follower {
    /// The counter it acknowledged.
    acked: u64,
    /// When it last asked.
    seen: Instant,
    /// When it last got the whole state.
    full_at: Option<Instant>,
}

impl RevocationFeed {
    fn version(&self, counter: u64) -> String {
        format!("{}-{counter}", self.boot)
    }

    /// The counter a version names, if it is of this start.
    fn counter_of(&self, version: &str) -> Option<u64> {
        let (boot, counter) = version.rsplit_once('-')?;
        (boot == self.boot).then(|| counter.parse().ok()).flatten()
    }

    /// Records that `gate` holds `version`.
    fn acknowledge(&self, gate: &str, version: Option<&str>) {
        let acked = version.and_then(|v| self.counter_of(v)).unwrap_or(0);
        if let Ok(mut gates) = self.gates.lock() {
            if gates.len() > 1000 {
                gates.retain(|_, f| f.seen.elapsed() < GATE_FORGOTTEN);
            }
            let full_at = gates.get(gate).and_then(|f| f.full_at);
            gates.insert(
                gate.to_owned(),
                Follower {
                    acked,
                    seen: Instant::now(),
                    full_at,
                },
            );
        }
        self.acknowledged.notify_waiters();
    }

    fn all_applied(&self, counter: u64) -> bool {
        self.gates.lock().map_or(true, |gates| {
            gates
                .values()
                .all(|f| f.acked >= counter || f.seen.elapsed() >= GATE_FORGOTTEN)
        })
    }

    /// What `gate` (following changes) needs after the version it holds:
    /// the additions, or `None` for the whole state, which it is then
    /// noted to have got.
    fn added_for(&self, gate: Option<&str>, held: Option<&str>, current: u64) -> Option<Since> {
        let gate = gate?;
        let held = held.and_then(|v| self.counter_of(v));
        let mut gates = self.gates.lock().ok()?;
        let follower = gates.get_mut(gate)?;
        let fresh = follower.full_at.is_some_and(|at| at.elapsed() < FULL_EVERY);
        let since = match (held, fresh) {
            (Some(held), true) => since(&*self.changes.lock().ok()?, held, current),
            _ => Since::Everything,
        };
        if since == Since::Everything {
            follower.full_at = Some(Instant::now());
        }
        Some(since)
    }

    /// Announces a committed revocation that may do more than add (a
    /// principal's status, a grant, a client), and waits (at most two
    /// seconds) until every following gate has applied it.
    pub async fn published(&self) {
        let counter = self.announce(None);
        self.applied(counter).await;
    }

    /// Announces additions that `commit` is about to make durable, so gates
    /// refuse them while it runs, and answers with its result once it has
    /// finished and every following gate applied them (at most two seconds).
    /// The additions count as pending until the commit ends, whatever its
    /// outcome; it runs to its end even when the caller goes away.
    pub async fn added_while<T: Send + 'static>(
        self: &Arc<Self>,
        added: Added,
        commit: impl Future<Output = Result<T, laissez_store::Error>> + Send + 'static,
    ) -> Result<T, laissez_store::Error> {
        let counter = self.announce_pending(added);
        let feed = Arc::clone(self);
        let committed = tokio::spawn(async move {
            let result = commit.await;
            feed.settle(counter);
            result
        });
        let (committed, ()) = tokio::join!(committed, self.applied(counter));
        match committed {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(laissez_store::Error::Closed),
        }
    }

    /// Additions whose commit has not finished, for a whole-state answer.
    /// Read after the counter and before the store: an addition the counter
    /// names is either still here or already committed (it leaves only then).
    fn pending(&self) -> Added {
        let mut all = Added::default();
        if let Ok(pending) = self.pending.lock() {
            for (_, added) in pending.iter() {
                all.ended_tasks.extend(added.ended_tasks.iter().cloned());
                all.revoked.extend(added.revoked.iter().cloned());
            }
        }
        all
    }

    /// Records additions as pending, then announces them.
    fn announce_pending(&self, added: Added) -> u64 {
        let mut counter = 0;
        self.counter.send_modify(|c| {
            *c += 1;
            counter = *c;
            if let Ok(mut pending) = self.pending.lock() {
                pending.push((counter, added.clone()));
            }
            self.keep(counter, Some(added));
        });
        counter
    }

    /// The commit behind the pending additions of `counter` has ended.
    fn settle(&self, counter: u64) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|(c, _)| *c != counter);
        }
    }

    /// Moves the feed to a new counter and returns it.
    fn announce(&self, added: Option<Added>) -> u64 {
        let mut counter = 0;
        // The change is kept before the counter names it, so a poll that
        // sees the counter finds it.
        self.counter.send_modify(|c| {
            *c += 1;
            counter = *c;
            self.keep(counter, added);
        });
        counter
    }

    fn keep(&self, counter: u64, added: Option<Added>) {
        if let Ok(mut changes) = self.changes.lock() {
            if changes.len() >= CHANGES_KEPT {
                changes.pop_front();
            }
            changes.push_back((counter, added));
        }
    }

    /// Waits (at most two seconds) until every following gate has applied `counter`.
    async fn applied(&self, counter: u64) {
        let _ = tokio::time::timeout(APPLY_TIMEOUT, async {
            loop {
                let notified = self.acknowledged.notified();
                if self.all_applied(counter) {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    /// Ends every waiting poll (the server is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Waits until the feed is past `version`, `wait` passes or the server
    /// shuts down; returns the current counter.
    async fn changed_since(&self, version: Option<&str>, wait: Duration) -> u64 {
        let mut receiver = self.counter.subscribe();
        let mut closing = self.closing.subscribe();
        let held = version.and_then(|v| self.counter_of(v));
        if held == Some(*receiver.borrow_and_update()) && !*closing.borrow_and_update() {
            let _ = tokio::time::timeout(wait, async {
                tokio::select! {
                    _ = receiver.changed() => {}
                    _ = closing.changed() => {}
                }
            })
            .await;
        }
        *receiver.borrow()
    }
}

/// The feed request.
#[derive(Debug, Default, Deserialize)]
pub struct FeedQuery {
    /// The version the gate holds (and has applied).
    after: Option<String>,
    /// Seconds to wait for a change (at most 30; default 0).
    wait: Option<u64>,
    /// The asking gate's id, to wait for its acknowledgement of revocations.
    gate: Option<String>,
    /// `1`: the gate applies additions to what it holds (see the module doc).
    delta: Option<u8>,
}

/// `GET /oauth/revoked`: what gates must refuse, and the feed's version.
/// Only for gates (a credential allowed `laissez.audit.write`).
pub async fn revoked(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<FeedQuery>,
) -> Result<impl IntoResponse, crate::problem::ApiError> {
    caller
        .authorize(&state, AUDIT_WRITE, &Scope::root(), None)
        .await?;
    let feed = &state.feed;
    // Keyed by the credential too: a gate is one credential's follower.
    let gate = query
        .gate
        .as_deref()
        .filter(|g| !g.is_empty() && g.len() <= 64)
        .map(|gate| format!("{}/{gate}", caller.credential.id));
    if let Some(gate) = &gate {
        feed.acknowledge(gate, query.after.as_deref());
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(MAX_WAIT);
    let counter = feed.changed_since(query.after.as_deref(), wait).await;
    let version = feed.version(counter);
    let follows = gate.as_deref().filter(|_| query.delta == Some(1));
    if let Some(Since::Added(ended, revoked)) =
        feed.added_for(follows, query.after.as_deref(), counter)
    {
        return Ok(no_store(serde_json::json!({
            "version": version,
            "delta": true,
            "since": query.after,
            "revoked": revoked,
            "ended_tasks": ended,
        })));
    }
    // Pending additions, then one snapshot, both read after `version`:
    // nothing revoked by then is missing.
    let pending = feed.pending();
    let mut revocations = state.store.revocations().await?;
    merge(&mut revocations.access_tokens, pending.revoked);
    merge(&mut revocations.ended_tasks, pending.ended_tasks);
    let grants: Vec<serde_json::Value> = revocations
        .grants
        .into_iter()
        .map(|(sub, client_id, before_ms)| {
            serde_json::json!({"sub": sub, "client_id": client_id,
            "issued_before_ms": before_ms, "issued_before": before_ms.div_euclid(1000)})
        })
        .collect();
    Ok(no_store(serde_json::json!({
        "version": version,
        "revoked": revocations.access_tokens,
        "disconnected": grants,
        "deactivated": revocations.inactive_principals,
        "deleted_clients": revocations.deleted_clients,
        "ended_tasks": revocations.ended_tasks,
    })))
}

/// Adds to `held` what `more` holds and it does not.
fn merge(held: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !held.contains(&item) {
            held.push(item);
        }
    }
}

fn no_store(body: serde_json::Value) -> axum::response::Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adds(tasks: &[&str]) -> Option<Added> {
        Some(Added {
            ended_tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
            revoked: Vec::new(),
        })
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn gates_get_additions_only_when_every_change_since_is_one_kept() {
        let kept: VecDeque<_> = [
            (3, adds(&["t3"])),
            (4, adds(&["t4"])),
            (5, None),
            (6, adds(&["t6"])),
            (7, adds(&["t7"])),
        ]
        .into();
        let everything = Since::Everything;
        for (held, current, expected) in [
            (3, 4, Since::Added(names(&["t4"]), BTreeSet::new())),
            (6, 7, Since::Added(names(&["t7"]), BTreeSet::new())),
            (2, 4, Since::Added(names(&["t3", "t4"]), BTreeSet::new())),
            // Nothing changed: the whole state (what expired leaves).
            (7, 7, Since::Everything),
            (9, 7, Since::Everything),
            // A change that does not only add lies in between.
            (4, 5, Since::Everything),
            (3, 7, Since::Everything),
            // Older than what is kept, or past it.
            (1, 4, Since::Everything),
            (7, 8, Since::Everything),
        ] {
            assert_eq!(since(&kept, held, current), expected, "{held}..{current}");
        }
        assert_eq!(since(&VecDeque::new(), 0, 1), everything);
    }

    /// A commit that ends only when told to.
    fn held_commit() -> (
        tokio::sync::oneshot::Sender<Result<u8, laissez_store::Error>>,
        impl Future<Output = Result<u8, laissez_store::Error>> + Send + 'static,
    ) {
        let (release, held) = tokio::sync::oneshot::channel();
        (release, async move {
            held.await.unwrap_or(Err(laissez_store::Error::Closed))
        })
    }

    #[tokio::test]
    async fn additions_are_announced_and_pending_while_their_commit_runs() {
        let feed = Arc::new(RevocationFeed::default());
        for outcome in [Ok(7), Err(laissez_store::Error::Unavailable("disk".into()))] {
            let (release, commit) = held_commit();
            let before = *feed.counter.borrow();
            let ending = tokio::spawn({
                let feed = Arc::clone(&feed);
                async move { feed.added_while(adds(&["t1"]).unwrap(), commit).await }
            });
            tokio::task::yield_now().await;
            while *feed.counter.borrow() == before {
                tokio::task::yield_now().await;
            }
            // Announced, and in every whole state, before the commit ends.
            assert_eq!(feed.pending().ended_tasks, vec!["t1".to_owned()]);
            let counter = *feed.counter.borrow();
            assert!(matches!(
                since(&feed.changes.lock().unwrap(), before, counter),
                Since::Added(ended, _) if ended == names(&["t1"])
            ));
            assert!(!ending.is_finished(), "answered before the commit");
            let expected = outcome.as_ref().map_err(ToString::to_string).copied();
            release.send(outcome).unwrap();
            let result = ending.await.unwrap().map_err(|e| e.to_string());
            assert_eq!(result, expected);
            assert_eq!(feed.pending(), Added::default(), "settled either way");
        }
    }

    #[tokio::test]
    async fn a_commit_runs_to_its_end_and_settles_when_the_caller_goes_away() {
        let feed = Arc::new(RevocationFeed::default());
        let (release, commit) = held_commit();
        let ending = tokio::spawn({
            let feed = Arc::clone(&feed);
            async move { feed.added_while(adds(&["t2"]).unwrap(), commit).await }
        });
        while feed.pending() == Added::default() {
            tokio::task::yield_now().await;
        }
        ending.abort();
        let _ = ending.await;
        // The commit still pending: the whole state still names it.
        assert_eq!(feed.pending().ended_tasks, vec!["t2".to_owned()]);
        release.send(Ok(1)).unwrap();
        while feed.pending() != Added::default() {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn merging_adds_only_what_is_missing() {
        let mut held = vec!["a".to_owned(), "b".to_owned()];
        merge(&mut held, vec!["b".to_owned(), "c".to_owned()]);
        assert_eq!(held, ["a", "b", "c"]);
    }

    proptest! {
        /// Additions are exactly the union of the changes after `held` up to
        /// `current`, and only when each of them is kept and only adds.
        #[test]
        fn additions_are_never_short_of_what_changed(
            changes in proptest::collection::vec(proptest::option::weighted(0.9, 0u8..4), 0..12),
            first in 1u64..4,
            held in 0u64..16,
            current in 0u64..16,
        ) {
            let kept: VecDeque<(u64, Option<Added>)> = changes
                .iter()
                .enumerate()
                .map(|(i, c)| (first + i as u64, c.map(|n| Added {
                    ended_tasks: vec![format!("t{n}")],
                    revoked: vec![format!("j{}", first + i as u64)],
                })))
                .collect();
            match since(&kept, held, current) {
                Since::Added(ended, revoked) => {
                    prop_assert!(held < current && held + 1 >= first);
                    for counter in held + 1..=current {
                        let entry = kept.iter().find(|(c, _)| *c == counter);
                        let added = entry.and_then(|(_, a)| a.as_ref());
                        prop_assert!(added.is_some(), "change {counter} missing");
                        let added = added.unwrap();
                        prop_assert!(added.ended_tasks.iter().all(|t| ended.contains(t)));
                        prop_assert!(added.revoked.iter().all(|j| revoked.contains(j)));
                    }
                    prop_assert_eq!(revoked.len() as u64, current - held);
                }
                Since::Everything => {}
            }
        }
    }
}
