//! The SQLite store against a real database file: what the server relies on.
//!
//! Acknowledged writes are committed together with their audit record, a write
//! that fails leaves no trace even when it shared a group commit with writes
//! that succeeded, revocations survive a restart, and tampering with the audit
//! log behind Laissez's back is named.

use std::collections::BTreeSet;
use std::path::Path;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use laissez_core::admin::{
    ADMIN_ROLE, AUDITOR_ROLE, GATE_ROLE, LEAK_REPORTER_ROLE, OPERATOR_ROLE, SETTINGS_WRITE,
    TOKENS_READ,
};
use laissez_core::audit::{AuditEvent, AuditRecord, Verification};
use laissez_core::credential::{Credential, Settings, hash_secret, parse_ip_range};
use laissez_core::{
    Name, Permission, Policy, Principal, PrincipalKind, Restriction, Role, Scope, Status, Ttl,
};
use laissez_store::{Error, SqliteStore, Store};
use tempfile::TempDir;

const NOW: i64 = 1_750_000_000;

/// A fresh store in its own temporary folder (kept alive by the `TempDir`).
fn temp_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("laissez.db")).unwrap();
    (dir, store)
}

fn name(text: &str) -> Name {
    Name::parse(text, "test name").unwrap()
}

fn user(id: &str, principal_name: &str) -> Principal {
    Principal {
        id: id.into(),
        kind: PrincipalKind::User,
        name: name(principal_name),
        owner_id: None,
        parent_id: None,
        status: Status::Active,
        description: String::new(),
        created_at: NOW,
    }
}

/// A non-human principal owned by `owner` and delegated to by `parent`.
fn delegate(
    id: &str,
    kind: PrincipalKind,
    principal_name: &str,
    owner: &str,
    parent: &str,
) -> Principal {
    Principal {
        kind,
        owner_id: Some(owner.into()),
        parent_id: Some(parent.into()),
        ..user(id, principal_name)
    }
}

fn credential(id: &str, principal_id: &str) -> Credential {
    Credential {
        id: id.into(),
        kind: "at".into(),
        prefix: "lzat_".into(),
        last4: "abcd".into(),
        principal_id: principal_id.into(),
        restriction: Restriction {
            role: None,
            scope: None,
            permissions: None,
        },
        allowed_ips: Vec::new(),
        description: String::new(),
        created_at: NOW,
        expires_at: Some(NOW + 3600),
        last_used_at: None,
        revoked_at: None,
    }
}

fn policy(id: &str, principal_id: &str, role: &str, scope: &str) -> Policy {
    Policy {
        id: id.into(),
        principal_id: principal_id.into(),
        role: name(role),
        scope: Scope::parse(scope).unwrap(),
        created_at: NOW,
    }
}

fn event(action: &str, target: &str) -> AuditEvent {
    AuditEvent::success(&[], action, target)
}

async fn all_records(store: &SqliteStore) -> Vec<AuditRecord> {
    store.audit_records(0, 100_000).await.unwrap()
}

fn assert_intact(verification: &Verification, records: i64) {
    assert_eq!(
        verification.first_break, None,
        "the untouched log must verify"
    );
    assert_eq!(verification.records, records);
}

#[tokio::test(flavor = "multi_thread")]
async fn principals_are_found_by_id_and_name_and_names_are_unique() {
    let (_dir, store) = temp_store();
    let alice = user("usr_alice", "alice");
    let bot = delegate(
        "agt_bot",
        PrincipalKind::Agent,
        "bot",
        "usr_alice",
        "usr_alice",
    );
    let job = delegate(
        "tsk_job",
        PrincipalKind::Task,
        "job-1",
        "usr_alice",
        "agt_bot",
    );
    for p in [&alice, &bot, &job] {
        store
            .create_principal(p.clone(), event("principal.create", &p.id))
            .await
            .unwrap();
    }

    assert_eq!(
        store.principal("usr_alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.principal("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.principal("job-1").await.unwrap(), Some(job.clone()));
    assert_eq!(store.principal("nobody").await.unwrap(), None);
    assert_eq!(store.principals().await.unwrap().len(), 3);

    // A second principal with a taken name is refused and leaves no trace.
    let before = all_records(&store).await;
    let impostor = Principal {
        description: "impostor".into(),
        ..user("usr_other", "alice")
    };
    let refused = store
        .create_principal(impostor, event("principal.create", "usr_other"))
        .await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    assert_eq!(store.principal("usr_other").await.unwrap(), None);
    assert_eq!(store.principal("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.principals().await.unwrap().len(), 3);
    assert_eq!(
        all_records(&store).await,
        before,
        "a refused write appends no audit record"
    );
    assert_intact(&store.verify_audit().await.unwrap(), 3);

    // The delegation chain runs from the human down.
    let chain = store.chain("tsk_job").await.unwrap();
    assert_eq!(chain, vec![alice.clone(), bot.clone(), job]);
    assert_eq!(store.chain("usr_alice").await.unwrap(), vec![alice]);
    assert!(matches!(
        store.chain("tsk_nope").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_is_never_mistaken_for_a_name() {
    // Ids and names share an alphabet, so someone may name a principal after
    // another's id. Lookups by id, and above all delegation chains, must still
    // find the principal with that id.
    let (_dir, store) = temp_store();
    let alice = user("usr_alice", "alice");
    let mallory = user("usr_mallory", "mallory");
    let squatter = delegate(
        "svc_squat",
        PrincipalKind::Service,
        "usr_alice",
        "usr_mallory",
        "usr_mallory",
    );
    let bot = delegate(
        "agt_bot",
        PrincipalKind::Agent,
        "bot",
        "usr_alice",
        "usr_alice",
    );
    for p in [&mallory, &squatter, &alice, &bot] {
        store
            .create_principal(p.clone(), event("principal.create", &p.id))
            .await
            .unwrap();
    }
    store
        .create_credential(
            credential("tok_bot", "agt_bot"),
            hash_secret("bot-secret"),
            event("token.create", "tok_bot"),
        )
        .await
        .unwrap();
    // Whatever plan SQLite picks: an operator's ANALYZE changes it.
    for analyzed in [false, true] {
        if analyzed {
            let conn = rusqlite::Connection::open(store.path()).unwrap();
            conn.execute_batch("ANALYZE").unwrap();
        }
        assert_eq!(
            store.principal("usr_alice").await.unwrap(),
            Some(alice.clone()),
            "analyzed: {analyzed}"
        );
        assert_eq!(
            store.principal("mallory").await.unwrap(),
            Some(mallory.clone())
        );
        assert_eq!(
            store.chain("agt_bot").await.unwrap(),
            vec![alice.clone(), bot.clone()],
            "analyzed: {analyzed}"
        );
        let caller = store
            .caller(&hash_secret("bot-secret"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(caller.chain, vec![alice.clone(), bot.clone()]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_credential_creations_all_commit_with_one_record_each() {
    let (_dir, store) = temp_store();
    let owner = user("usr_alice", "alice");
    store
        .create_principal(owner, event("principal.create", "usr_alice"))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("tok_{i:03}");
                let hash = hash_secret(&format!("secret-{i}"));
                store
                    .create_credential(
                        credential(&id, "usr_alice"),
                        hash,
                        event("token.create", &id),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let expected: BTreeSet<String> = (0..200).map(|i| format!("tok_{i:03}")).collect();
    let listed: BTreeSet<String> = store
        .credentials(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        store.credentials(Some("usr_alice")).await.unwrap().len(),
        200
    );
    for i in [0, 99, 199] {
        let found = store
            .caller(&hash_secret(&format!("secret-{i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.stored.credential.id, format!("tok_{i:03}"));
    }

    let records = all_records(&store).await;
    assert_eq!(records.len(), 201);
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=201).collect::<Vec<_>>(),
        "one gapless sequence"
    );
    let audited: BTreeSet<String> = records
        .iter()
        .filter(|r| r.action == "token.create")
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(audited, expected);
    assert_intact(&store.verify_audit().await.unwrap(), 201);
}

/// A bootstrap that fails half-way: the admin and its policy insert, then
/// its credential clashes with the secret hash `taken`.
async fn bootstrap_clashing_with(store: &SqliteStore, taken: [u8; 32]) -> Result<bool, Error> {
    store
        .bootstrap(
            user("usr_admin", "admin"),
            policy("pol_admin", "usr_admin", ADMIN_ROLE, "/"),
            credential("tok_admin", "usr_admin"),
            taken,
            event("bootstrap", "usr_admin"),
        )
        .await
}

/// The service `svc_ci` (no human yet, so a bootstrap can still be tried)
/// with the token `tok_taken`; returns that token's secret hash.
async fn service_with_a_token(store: &SqliteStore) -> [u8; 32] {
    let mut ci = user("svc_ci", "ci");
    ci.kind = PrincipalKind::Service;
    store
        .create_principal(ci, event("principal.create", "svc_ci"))
        .await
        .unwrap();
    let taken = hash_secret("taken");
    store
        .create_credential(
            credential("tok_taken", "svc_ci"),
            taken,
            event("token.create", "tok_taken"),
        )
        .await
        .unwrap();
    taken
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_inside_a_group_commit_leave_no_trace_and_spare_the_others() {
    let (dir, store) = temp_store();
    // A service with no human yet, so that a bootstrap can still be attempted
    // (and made to fail half-way) inside the same group.
    let taken = service_with_a_token(&store).await;

    // Hold the database's write lock from outside so that every job below
    // queues up and the writer commits them as one group once it is released.
    let blocker = rusqlite::Connection::open(dir.path().join("laissez.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let sentinel = {
        let store = store.clone();
        tokio::spawn(async move { store.append_audit(event("test.sentinel", "-")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let create = |id: String, principal: &'static str, hash: [u8; 32]| {
        let store = store.clone();
        tokio::spawn(async move {
            let result = store
                .create_credential(credential(&id, principal), hash, event("token.create", &id))
                .await;
            (id, result)
        })
    };
    let good: Vec<_> = (0..40)
        .map(|i| {
            create(
                format!("tok_good_{i}"),
                "svc_ci",
                hash_secret(&format!("good-{i}")),
            )
        })
        .collect();
    let duplicates: Vec<_> = (0..10)
        .map(|i| create(format!("tok_dup_{i}"), "svc_ci", taken))
        .collect();
    let pair_hash = hash_secret("pair");
    let pair: Vec<_> = (0..2)
        .map(|i| create(format!("tok_pair_{i}"), "svc_ci", pair_hash))
        .collect();
    let orphan = create("tok_orphan".into(), "svc_missing", hash_secret("orphan"));
    let bootstrap = {
        let store = store.clone();
        tokio::spawn(async move { bootstrap_clashing_with(&store, taken).await })
    };

    // Nothing is acknowledged before it is committed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sentinel.is_finished());
    assert!(
        good.iter()
            .chain(&duplicates)
            .chain(&pair)
            .all(|t| !t.is_finished())
    );
    assert!(!bootstrap.is_finished());
    blocker.execute_batch("ROLLBACK").unwrap();

    sentinel.await.unwrap().unwrap();
    let mut committed = BTreeSet::from(["tok_taken".to_owned()]);
    for task in good {
        let (id, result) = task.await.unwrap();
        result.unwrap_or_else(|e| panic!("{id}: {e}"));
        committed.insert(id);
    }
    for task in duplicates {
        let (id, result) = task.await.unwrap();
        assert!(
            matches!(result, Err(Error::Conflict(_))),
            "{id}: {result:?}"
        );
    }
    let mut pair_winners = 0;
    for task in pair {
        let (id, result) = task.await.unwrap();
        match result {
            Ok(()) => {
                pair_winners += 1;
                committed.insert(id);
            }
            Err(e) => assert!(matches!(e, Error::Conflict(_)), "{id}: {e:?}"),
        }
    }
    assert_eq!(
        pair_winners, 1,
        "exactly one of two credentials sharing a secret hash commits"
    );
    let (_, orphan) = orphan.await.unwrap();
    assert!(
        orphan.is_err(),
        "a credential of a missing principal is refused"
    );
    let bootstrapped = bootstrap.await.unwrap();
    assert!(
        matches!(bootstrapped, Err(Error::Conflict(_))),
        "{bootstrapped:?}"
    );

    // Only the successful jobs are visible, each with exactly one record.
    let listed: BTreeSet<String> = store
        .credentials(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, committed);
    assert_eq!(
        store
            .caller(&taken)
            .await
            .unwrap()
            .unwrap()
            .stored
            .credential
            .id,
        "tok_taken"
    );
    assert!(!store.is_bootstrapped().await.unwrap());
    assert_eq!(store.principal("usr_admin").await.unwrap(), None);
    assert_eq!(store.policies(None).await.unwrap(), Vec::new());

    let records = all_records(&store).await;
    let audited: BTreeSet<String> = records
        .iter()
        .filter(|r| r.action == "token.create")
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(audited, committed);
    assert!(records.iter().all(|r| r.action != "bootstrap"));
    // principal + taken token + sentinel + 40 good + the pair's winner
    assert_eq!(records.len(), 44);
    assert_intact(&store.verify_audit().await.unwrap(), 44);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_alone_that_fails_half_way_leaves_no_trace() {
    let (_dir, store) = temp_store();
    let taken = service_with_a_token(&store).await;
    // Nothing else is queued: the writer runs this job in a transaction of
    // its own.
    let bootstrapped = bootstrap_clashing_with(&store, taken).await;
    assert!(
        matches!(bootstrapped, Err(Error::Conflict(_))),
        "{bootstrapped:?}"
    );
    assert!(!store.is_bootstrapped().await.unwrap());
    assert_eq!(store.principal("usr_admin").await.unwrap(), None);
    assert_eq!(store.policies(None).await.unwrap(), Vec::new());
    // The transaction was ended: the next write commits, and the chain holds
    // exactly the writes that succeeded.
    store
        .create_credential(
            credential("tok_next", "svc_ci"),
            hash_secret("next"),
            event("token.create", "tok_next"),
        )
        .await
        .unwrap();
    let records = all_records(&store).await;
    assert!(records.iter().all(|r| r.action != "bootstrap"));
    assert_eq!(records.len(), 3);
    assert_intact(&store.verify_audit().await.unwrap(), 3);
}

/// Spawns a store write once it is queued, so that writes queue in call order.
/// (The store queues a write when first polled, then waits for its commit.)
fn spawn_queued<T: Send + 'static>(
    write: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let mut write = Box::pin(write);
    let mut context = Context::from_waker(Waker::noop());
    match write.as_mut().poll(&mut context) {
        Poll::Ready(value) => tokio::spawn(async move { value }),
        Poll::Pending => tokio::spawn(write),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_aborts_its_whole_transaction_gets_no_one_a_false_answer() {
    // Disk full or an I/O error makes SQLite roll back the whole transaction,
    // not just the failing statement. A trigger raising ROLLBACK stands in for
    // such a failure in the middle of a group commit: every caller must still
    // be told the truth, and writes queued behind it must not be lost.
    let (dir, store) = temp_store();
    let path = dir.path().join("laissez.db");
    store
        .create_principal(
            user("usr_alice", "alice"),
            event("principal.create", "usr_alice"),
        )
        .await
        .unwrap();
    let outside = rusqlite::Connection::open(&path).unwrap();
    outside
        .execute_batch(
            "CREATE TRIGGER simulated_failure BEFORE INSERT ON credentials
             WHEN NEW.id = 'tok_poison'
             BEGIN SELECT RAISE(ROLLBACK, 'simulated disk failure'); END",
        )
        .unwrap();
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();
    let sentinel = {
        let store = store.clone();
        tokio::spawn(async move { store.append_audit(event("test.sentinel", "-")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Queued in this order behind the lock: five, the failing one, five more.
    let ids: Vec<String> = (0..5)
        .map(|i| format!("tok_before_{i}"))
        .chain(["tok_poison".to_owned()])
        .chain((0..5).map(|i| format!("tok_after_{i}")))
        .collect();
    let mut tasks = Vec::new();
    for id in ids {
        let store = store.clone();
        tasks.push(spawn_queued(async move {
            let hash = hash_secret(&id);
            let result = store
                .create_credential(
                    credential(&id, "usr_alice"),
                    hash,
                    event("token.create", &id),
                )
                .await;
            (id, result)
        }));
    }
    outside.execute_batch("ROLLBACK").unwrap();
    sentinel.await.unwrap().unwrap();

    let mut acknowledged = BTreeSet::new();
    for task in tasks {
        let (id, result) = task.await.unwrap();
        if id == "tok_poison" {
            assert!(result.is_err(), "the failing write is refused");
        } else if id.starts_with("tok_after") {
            assert!(result.is_ok(), "{id} queued behind the failure: {result:?}");
        }
        let visible = store.credential(&id).await.unwrap().is_some();
        assert_eq!(
            result.is_ok(),
            visible,
            "{id} answered {result:?} but visible: {visible}"
        );
        if result.is_ok() {
            acknowledged.insert(id);
        }
    }
    let records = all_records(&store).await;
    let audited: BTreeSet<String> = records
        .iter()
        .filter(|r| r.action == "token.create")
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(audited, acknowledged);
    assert_intact(&store.verify_audit().await.unwrap(), records.len() as i64);

    // The writer carries on.
    store
        .create_credential(
            credential("tok_later", "usr_alice"),
            hash_secret("later"),
            event("token.create", "tok_later"),
        )
        .await
        .unwrap();
    assert!(store.credential("tok_later").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_is_seen_by_callers_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laissez.db");
    let store = SqliteStore::open(&path).unwrap();
    let alice = user("usr_alice", "alice");
    let bot = delegate(
        "agt_bot",
        PrincipalKind::Agent,
        "bot",
        "usr_alice",
        "usr_alice",
    );
    for p in [&alice, &bot] {
        store
            .create_principal(p.clone(), event("principal.create", &p.id))
            .await
            .unwrap();
    }
    let secret = hash_secret("lzat_secret");
    let issued = Credential {
        restriction: Restriction {
            role: Some(name(AUDITOR_ROLE)),
            scope: Some(Scope::parse("acme/apps").unwrap()),
            permissions: None,
        },
        allowed_ips: vec![
            parse_ip_range("10.0.0.0/8").unwrap(),
            parse_ip_range("2001:db8::1").unwrap(),
        ],
        description: "CI deploys".into(),
        ..credential("tok_bot", "agt_bot")
    };
    store
        .create_credential(issued.clone(), secret, event("token.create", "tok_bot"))
        .await
        .unwrap();

    let caller = store
        .caller(&secret)
        .await
        .unwrap()
        .expect("the credential is found by its hash");
    assert_eq!(caller.stored.credential, issued);
    assert_eq!(caller.stored.secret_hash, secret);
    assert_eq!(caller.chain, vec![alice.clone(), bot.clone()]);
    assert!(store.caller(&hash_secret("wrong")).await.unwrap().is_none());

    store
        .revoke_credential("tok_bot", NOW + 60, event("token.revoke", "tok_bot"))
        .await
        .unwrap();
    let revoked = store.caller(&secret).await.unwrap().unwrap();
    assert_eq!(revoked.stored.credential.revoked_at, Some(NOW + 60));
    // Revoking again keeps the first time.
    store
        .revoke_credential("tok_bot", NOW + 120, event("token.revoke", "tok_bot"))
        .await
        .unwrap();
    assert_eq!(
        store
            .credential("tok_bot")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 60)
    );
    let missing = store
        .revoke_credential("tok_nope", NOW, event("token.revoke", "tok_nope"))
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );

    store.close();
    let closed = store
        .revoke_credential("tok_bot", NOW, event("token.revoke", "tok_bot"))
        .await;
    assert!(matches!(closed, Err(Error::Closed)), "{closed:?}");
    drop(store);

    let reopened = SqliteStore::open(&path).unwrap();
    let after = reopened.caller(&secret).await.unwrap().unwrap();
    assert_eq!(after.stored.credential.revoked_at, Some(NOW + 60));
    assert_eq!(after.chain, vec![alice, bot]);
    // 2 principals + token + 2 revocations (the failed one left nothing).
    assert_intact(&reopened.verify_audit().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_lets_queued_writes_commit_and_refuses_new_ones() {
    let (dir, store) = temp_store();
    store
        .create_principal(
            user("usr_alice", "alice"),
            event("principal.create", "usr_alice"),
        )
        .await
        .unwrap();
    let blocker = rusqlite::Connection::open(dir.path().join("laissez.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let queued: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("tok_{i}");
                store
                    .create_credential(
                        credential(&id, "usr_alice"),
                        hash_secret(&id),
                        event("token.create", &id),
                    )
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.close();
    let refused = store.append_audit(event("test.late", "-")).await;
    assert!(matches!(refused, Err(Error::Closed)), "{refused:?}");
    blocker.execute_batch("ROLLBACK").unwrap();

    for task in queued {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        store.credentials(None).await.unwrap().len(),
        20,
        "reads still work after close"
    );
    assert_intact(&store.verify_audit().await.unwrap(), 21);
}

/// A store with five audit records, each the record of a real change.
async fn store_with_history() -> (TempDir, SqliteStore) {
    let (dir, store) = temp_store();
    store
        .create_principal(
            user("usr_alice", "alice"),
            event("principal.create", "usr_alice"),
        )
        .await
        .unwrap();
    store
        .create_principal(user("usr_bob", "bob"), event("principal.create", "usr_bob"))
        .await
        .unwrap();
    for (i, owner) in ["usr_alice", "usr_bob"].into_iter().enumerate() {
        let id = format!("tok_{i}");
        store
            .create_credential(
                credential(&id, owner),
                hash_secret(&id),
                event("token.create", &id),
            )
            .await
            .unwrap();
    }
    store
        .revoke_credential("tok_0", NOW, event("token.revoke", "tok_0"))
        .await
        .unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 5);
    (dir, store)
}

/// Runs `statement` on the store's file behind its back.
fn tamper(path: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    assert_eq!(conn.execute(statement, []).unwrap(), 1, "{statement}");
}

async fn first_break(store: &SqliteStore) -> i64 {
    let verification = store.verify_audit().await.unwrap();
    verification
        .first_break
        .expect("tampering must be detected")
        .seq
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_audit_record_is_named() {
    let (_dir, store) = store_with_history().await;
    tamper(
        store.path(),
        "UPDATE audit_log SET target = 'usr_mallory' WHERE seq = 3",
    );
    assert_eq!(first_break(&store).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_and_rehashed_audit_record_is_named_by_the_next_link() {
    let (_dir, store) = store_with_history().await;
    let mut forged = all_records(&store).await.remove(2);
    forged.target = "usr_mallory".into();
    forged.hash = forged.compute_hash();
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE audit_log SET target = ?1, hash = ?2 WHERE seq = 3",
        (&forged.target, &forged.hash),
    )
    .unwrap();
    assert_eq!(first_break(&store).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_audit_record_is_named_not_an_error() {
    let (_dir, store) = store_with_history().await;
    tamper(
        store.path(),
        "UPDATE audit_log SET outcome = 'forged' WHERE seq = 2",
    );
    assert_eq!(first_break(&store).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_middle_audit_record_is_named() {
    let (_dir, store) = store_with_history().await;
    tamper(store.path(), "DELETE FROM audit_log WHERE seq = 3");
    assert_eq!(first_break(&store).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_last_audit_record_is_named() {
    let (_dir, store) = store_with_history().await;
    tamper(store.path(), "DELETE FROM audit_log WHERE seq = 5");
    assert_eq!(first_break(&store).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untouched_audit_log_verifies_and_keeps_growing() {
    let (_dir, store) = store_with_history().await;
    // Appending more keeps it intact, including records of things that changed nothing.
    store
        .append_audit(event("auth.fail", "tok_unknown"))
        .await
        .unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 6);
    let records = all_records(&store).await;
    assert_eq!(records.last().unwrap().action, "auth.fail");
    assert_eq!(
        store.audit_records(4, 10).await.unwrap(),
        records[4..].to_vec()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_default_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laissez.db");
    let store = SqliteStore::open(&path).unwrap();
    let defaults = store.settings().await.unwrap();
    assert_eq!(defaults, Settings::default());
    assert_eq!(defaults.default_ttl.seconds(), 3600);
    assert_eq!(defaults.max_ttl.seconds(), 90 * 86_400);

    let chosen = Settings {
        default_ttl: Ttl::parse("8h").unwrap(),
        max_ttl: Ttl::parse("30d").unwrap(),
        require_federated_login: true,
        revoke_private_leaks: true,
    };
    store
        .set_settings(chosen, event("settings.update", "org"))
        .await
        .unwrap();
    assert_eq!(store.settings().await.unwrap(), chosen);
    let changed = Settings {
        default_ttl: Ttl::parse("1h30m").unwrap(),
        ..chosen
    };
    store
        .set_settings(changed, event("settings.update", "org"))
        .await
        .unwrap();
    assert_eq!(store.settings().await.unwrap(), changed);
    assert_intact(&store.verify_audit().await.unwrap(), 2);

    store.close();
    drop(store);
    assert_eq!(
        SqliteStore::open(&path).unwrap().settings().await.unwrap(),
        changed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_location_is_reported_as_unavailable() {
    use std::os::unix::fs::PermissionsExt;

    fn assert_unavailable(path: &Path) {
        match SqliteStore::open(path) {
            Err(Error::Unavailable(message)) => {
                assert!(
                    message.contains(&path.display().to_string()),
                    "names the file: {message}"
                )
            }
            Err(other) => panic!("expected Unavailable, got {other:?}"),
            Ok(_) => panic!("opened a store at {}", path.display()),
        }
    }

    let dir = tempfile::tempdir().unwrap();
    // A parent folder that does not exist: unwritable for everyone, root included.
    assert_unavailable(&dir.path().join("missing").join("deeper").join("laissez.db"));

    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores the mode bits; then the missing-parent case above stands in.
    let writable_anyway = std::fs::File::create(read_only.join("probe")).is_ok();
    if !writable_anyway {
        assert_unavailable(&read_only.join("laissez.db"));
    }
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A file that is not a database is refused the same way, not with a panic.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        SqliteStore::open(&garbage),
        Err(Error::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_set_holds_every_role_and_only_the_asked_principals_policies() {
    let (_dir, store) = temp_store();
    for (id, principal_name) in [
        ("usr_alice", "alice"),
        ("usr_bob", "bob"),
        ("usr_carol", "carol"),
    ] {
        store
            .create_principal(user(id, principal_name), event("principal.create", id))
            .await
            .unwrap();
    }
    let wiki_reader = Role {
        name: name("wiki-reader"),
        permissions: [Permission::parse("wiki.pages.read").unwrap()].into(),
        builtin: false,
        description: "Read the wiki".into(),
    };
    store
        .create_role(wiki_reader.clone(), event("role.create", "wiki-reader"))
        .await
        .unwrap();
    let alice_admin = policy("pol_1", "usr_alice", ADMIN_ROLE, "/");
    let bob_auditor = policy("pol_2", "usr_bob", AUDITOR_ROLE, "acme");
    let bob_wiki = policy("pol_3", "usr_bob", "wiki-reader", "acme/apps/wiki");
    let carol_operator = policy("pol_4", "usr_carol", OPERATOR_ROLE, "/");
    for p in [&alice_admin, &bob_auditor, &bob_wiki, &carol_operator] {
        store
            .create_policy(p.clone(), event("policy.create", &p.id))
            .await
            .unwrap();
    }
    let again = store
        .create_policy(
            policy("pol_5", "usr_bob", AUDITOR_ROLE, "acme"),
            event("policy.create", "pol_5"),
        )
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    let asked = ["usr_alice".to_owned(), "usr_bob".to_owned()];
    let set = store.policy_set(&asked).await.unwrap();
    for builtin in [ADMIN_ROLE, AUDITOR_ROLE, OPERATOR_ROLE] {
        let role = set
            .role(&name(builtin))
            .unwrap_or_else(|| panic!("{builtin} is always present"));
        assert!(role.builtin);
    }
    assert_eq!(set.role(&name("wiki-reader")), Some(&wiki_reader));
    assert_eq!(
        set.policies_of("usr_alice").collect::<Vec<_>>(),
        vec![&alice_admin]
    );
    let bobs: BTreeSet<&str> = set.policies_of("usr_bob").map(|p| p.id.as_str()).collect();
    assert_eq!(bobs, BTreeSet::from(["pol_2", "pol_3"]));
    assert_eq!(
        set.policies_of("usr_carol").count(),
        0,
        "carol was not asked for"
    );

    // The set evaluates: alice's admin policy allows, bob's grant stops at acme.
    let settings_write = Permission::parse(SETTINGS_WRITE).unwrap();
    let tokens_read = Permission::parse(TOKENS_READ).unwrap();
    let alice = [user("usr_alice", "alice").reference()];
    let bob = [user("usr_bob", "bob").reference()];
    let carol = [user("usr_carol", "carol").reference()];
    assert!(
        set.evaluate(&alice, None, &settings_write, &Scope::root())
            .is_allow()
    );
    assert!(
        set.evaluate(&bob, None, &tokens_read, &Scope::parse("acme/x").unwrap())
            .is_allow()
    );
    assert!(
        !set.evaluate(&bob, None, &tokens_read, &Scope::root())
            .is_allow()
    );
    assert!(
        !set.evaluate(&carol, None, &tokens_read, &Scope::root())
            .is_allow()
    );

    let empty = store.policy_set(&[]).await.unwrap();
    assert!(empty.role(&name(ADMIN_ROLE)).is_some());
    assert_eq!(empty.policies_of("usr_alice").count(), 0);
    let roles: Vec<Name> = store
        .roles()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        roles,
        [
            ADMIN_ROLE,
            AUDITOR_ROLE,
            GATE_ROLE,
            LEAK_REPORTER_ROLE,
            OPERATOR_ROLE,
            "wiki-reader"
        ]
        .map(name)
    );
}

#[tokio::test]
async fn a_version_4_data_folder_is_upgraded_and_keeps_its_grants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laissez.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_principal(user("usr_a", "alice"), event("principal.create", "usr_a"))
        .await
        .unwrap();
    store.close();
    drop(store);
    // What version 4 wrote: grants without accounts.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE oauth_grants DROP COLUMN accounts;
             UPDATE meta SET value = '4' WHERE key = 'schema_version';
             INSERT INTO oauth_grants (user_id, client_id, scope, resource, granted_at)
                 VALUES ('usr_a', 'cli_old', 'notes.read', NULL, 1750000000);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let apps = store.connected_apps(Some("usr_a")).await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].client_id, "cli_old");
    assert!(apps[0].accounts.is_empty());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "11");
    // Version 8's outbox tells of tasks too: no longer tied to incidents.
    let foreign: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_foreign_key_list('notifications')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(foreign, 0);
}

#[tokio::test]
async fn a_version_6_data_folder_keeps_its_disconnects_in_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laissez.db");
    let store = SqliteStore::open(&path).unwrap();
    store.close();
    drop(store);
    // What version 6 wrote: disconnect times in seconds.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE meta SET value = '6' WHERE key = 'schema_version';
             INSERT INTO revoked_grants (user_id, client_id, revoked_at)
                 VALUES ('usr_a', 'cli_old', 1750000000);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let grants = store.revoked_grants().await.unwrap();
    // The whole second stays revoked: tokens issued in it are still refused.
    assert_eq!(
        grants,
        vec![("usr_a".into(), "cli_old".into(), 1_750_000_000_999)]
    );
    assert!(
        store
            .disconnected_since("usr_a", "cli_old", 1_750_000_000_500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .disconnected_since("usr_a", "cli_old", 1_750_000_001_000)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn dynamic_clients_never_used_expire_and_their_tokens_with_them() {
    use laissez_oauth::client::{Client, ClientKind, RegistrationRequest};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("laissez.db")).unwrap();
    let metadata = RegistrationRequest::parse(
        br#"{"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}"#,
        ClientKind::Dynamic,
    )
    .unwrap();
    for (id, kind, created_at) in [
        ("cli_old", ClientKind::Dynamic, 1_000),
        ("cli_used", ClientKind::Dynamic, 1_000),
        ("cli_new", ClientKind::Dynamic, 5_000),
        ("cli_admin", ClientKind::Preregistered, 1_000),
    ] {
        let client = Client {
            client_id: id.into(),
            kind,
            metadata: metadata.clone(),
            owner_id: None,
            principal_id: None,
            created_at,
        };
        store
            .create_client(client, None, None, event("oauth.client.register", id))
            .await
            .unwrap();
    }
    store
        .record_issuance("cli_used", event("oauth.token.issue", "at_1"))
        .await
        .unwrap();
    let expired = store.expire_unused_clients(2_000).await.unwrap();
    assert_eq!(expired, vec!["cli_old".to_owned()]);
    assert!(store.client("cli_old").await.unwrap().is_none());
    for kept in ["cli_used", "cli_new", "cli_admin"] {
        assert!(store.client(kept).await.unwrap().is_some(), "{kept}");
    }
    assert_eq!(
        store.deleted_clients().await.unwrap(),
        vec!["cli_old".to_owned()]
    );
    assert!(
        store
            .disconnected_since("usr_a", "cli_old", 0)
            .await
            .unwrap(),
        "a deleted client's grants are over"
    );
}

#[tokio::test]
async fn a_replay_during_a_delivery_is_not_overwritten_by_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("laissez.db")).unwrap();
    assert_eq!(store.stream_cursor("webhook").await.unwrap(), 0);
    assert!(store.advance_stream_cursor("webhook", 0, 10).await.unwrap());
    // The worker read 10 and delivers 11..=20; an operator replays from 2.
    store.set_stream_cursor("webhook", 2, None).await.unwrap();
    assert!(
        !store
            .advance_stream_cursor("webhook", 10, 20)
            .await
            .unwrap()
    );
    assert_eq!(store.stream_cursor("webhook").await.unwrap(), 2);
    // Sinks are apart.
    assert!(store.advance_stream_cursor("syslog", 0, 5).await.unwrap());
    assert_eq!(store.stream_cursor("webhook").await.unwrap(), 2);
}

#[tokio::test]
async fn a_credential_keeps_its_permission_list_and_a_version_9_folder_gains_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("laissez.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_principal(user("usr_a", "alice"), event("principal.create", "usr_a"))
        .await
        .unwrap();
    let listed = Credential {
        restriction: Restriction {
            permissions: Some(
                ["wiki.pages.read", "tickets.read"]
                    .iter()
                    .map(|p| laissez_core::Permission::parse(p).unwrap())
                    .collect(),
            ),
            ..Restriction::default()
        },
        ..credential("tok_listed", "usr_a")
    };
    store
        .create_credential(listed.clone(), [7; 32], event("token.create", "tok_listed"))
        .await
        .unwrap();
    let read = store.credential("tok_listed").await.unwrap().unwrap();
    assert_eq!(read.restriction, listed.restriction);
    store.close();
    drop(store);
    // What version 9 wrote: credentials without a permission list.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE credentials DROP COLUMN permissions;
             UPDATE meta SET value = '9' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let old = store.credential("tok_listed").await.unwrap().unwrap();
    assert_eq!(old.restriction.permissions, None);
    // A corrupt list is named, not read as "no limit".
    store.close();
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE credentials SET permissions = 'not json' WHERE id = 'tok_listed';")
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.credential("tok_listed").await.is_err());
}

/// Roles and policies, resources and settings are kept in memory between
/// their changes: every change is seen by the next read, whoever made it
/// (this store, or another process writing the same file, even with a
/// whole-table delete), and a folder of version 10 gets the triggers that
/// tell the store so.
#[tokio::test]
async fn cached_configuration_follows_every_change() {
    let (dir, store) = temp_store();
    let path = dir.path().join("laissez.db");
    let behind_its_back = |sql: &str| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    };
    store
        .create_principal(user("usr_a", "alice"), event("principal.create", "usr_a"))
        .await
        .unwrap();
    let ids = ["usr_a".to_owned()];
    let policies = async |store: &SqliteStore| {
        let set = store.policy_set(&ids).await.unwrap();
        set.policies_of("usr_a")
            .map(|p| p.id.clone())
            .collect::<Vec<_>>()
    };
    assert!(policies(&store).await.is_empty());
    store
        .create_policy(
            policy("pol_1", "usr_a", ADMIN_ROLE, "/"),
            event("policy.create", "pol_1"),
        )
        .await
        .unwrap();
    assert_eq!(policies(&store).await, ["pol_1"], "the store's own change");
    assert_eq!(policies(&store).await, ["pol_1"], "read again, from memory");
    behind_its_back("DELETE FROM policies");
    assert!(
        policies(&store).await.is_empty(),
        "a whole-table delete by another process"
    );

    // A role changed elsewhere is the role evaluated here.
    let reader = Role {
        name: name("wiki-reader"),
        permissions: [Permission::parse("wiki.pages.read").unwrap()].into(),
        builtin: false,
        description: String::new(),
    };
    store
        .create_role(reader, event("role.create", "wiki-reader"))
        .await
        .unwrap();
    let permissions = async |store: &SqliteStore| {
        let set = store.policy_set(&ids).await.unwrap();
        let role = set.role(&name("wiki-reader")).unwrap();
        role.permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(permissions(&store).await, ["wiki.pages.read"]);
    behind_its_back(
        "UPDATE roles SET permissions = '[\"wiki.pages.write\"]' WHERE name = 'wiki-reader'",
    );
    assert_eq!(permissions(&store).await, ["wiki.pages.write"]);

    // Protected resources.
    let wiki = laissez_oauth::protected::ProtectedResource {
        resource: "https://wiki.example".into(),
        name: "Wiki".into(),
        scopes: Default::default(),
        default_scopes: Vec::new(),
        gate: None,
    };
    store
        .put_resource(wiki, event("resource.put", "wiki"))
        .await
        .unwrap();
    let names = async |store: &SqliteStore| {
        let resources = store.resources().await.unwrap();
        resources.into_iter().map(|r| r.name).collect::<Vec<_>>()
    };
    assert_eq!(names(&store).await, ["Wiki"]);
    behind_its_back(
        "UPDATE protected_resources SET definition = json_set(definition, '$.name', 'Renamed')",
    );
    assert_eq!(names(&store).await, ["Renamed"]);

    // Settings, and the extension settings beside them.
    let short = Settings {
        default_ttl: Ttl::parse("1h").unwrap(),
        ..store.settings().await.unwrap()
    };
    store
        .set_settings(short, event("settings.update", "settings"))
        .await
        .unwrap();
    assert_eq!(
        store.settings().await.unwrap().default_ttl.to_string(),
        "1h"
    );
    behind_its_back("UPDATE settings SET value = '2h' WHERE key = 'default_ttl'");
    assert_eq!(
        store.settings().await.unwrap().default_ttl.to_string(),
        "2h"
    );
    store
        .set_setting("task_rules", "{}".into(), event("settings.update", "x"))
        .await
        .unwrap();
    assert_eq!(
        store.setting("task_rules").await.unwrap().as_deref(),
        Some("{}")
    );
    behind_its_back("DELETE FROM settings WHERE key = 'x.task_rules'");
    assert_eq!(store.setting("task_rules").await.unwrap(), None);

    // What version 10 wrote: no version, no triggers. Opening adds them.
    store.close();
    drop(store);
    behind_its_back(
        "DROP TABLE config_version;
         DROP TRIGGER policies_inserted; DROP TRIGGER policies_updated; DROP TRIGGER policies_deleted;
         UPDATE meta SET value = '10' WHERE key = 'schema_version';",
    );
    let store = SqliteStore::open(&path).unwrap();
    assert!(policies(&store).await.is_empty());
    behind_its_back(&format!(
        "INSERT INTO policies (id, principal_id, role, scope, created_at)
         VALUES ('pol_2', 'usr_a', '{ADMIN_ROLE}', '/', 0)"
    ));
    assert_eq!(policies(&store).await, ["pol_2"], "upgraded folder");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_copy_is_checked_before_it_takes_its_name() {
    use laissez_store::sqlite::backup::{BackupError, check_database, copy_database};
    let (dir, store) = temp_store();
    service_with_a_token(&store).await;
    let source = dir.path().join("laissez.db");
    // Copied while the store is open (its writer holds the only write
    // connection): the copy holds both records, and verifies.
    let copy = dir.path().join("copy.db");
    let checked = copy_database(&source, &copy).unwrap();
    assert_eq!(checked.audit_records, 2);
    assert!(!dir.path().join("copy.db.partial").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A copy never replaces a file.
    assert!(matches!(
        copy_database(&source, &copy),
        Err(BackupError::Exists(_))
    ));
    // An edited record is named; a copy of such a database is refused and
    // leaves nothing behind.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute("UPDATE audit_log SET target = 'other' WHERE seq = 1", [])
        .unwrap();
    drop(conn);
    match check_database(&copy) {
        Err(BackupError::ChainBroken { seq: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    let again = dir.path().join("again.db");
    assert!(matches!(
        copy_database(&copy, &again),
        Err(BackupError::ChainBroken { .. })
    ));
    assert!(!again.exists() && !dir.path().join("again.db.partial").exists());
    // Bytes that are no database, and a missing file, are refused as sources.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        check_database(&garbage),
        Err(BackupError::Source { .. })
    ));
    assert!(matches!(
        check_database(&dir.path().join("missing.db")),
        Err(BackupError::Source { .. })
    ));
    // The source is untouched and still verifies.
    assert_intact(&store.verify_audit().await.unwrap(), 2);
}
