//! Task credentials in the SQLite store: a task is found by its id and by its
//! token, ending a task ends everything derived from it (once: ending again
//! changes nothing), approvals are decided once and collected once, pruning
//! removes expired tasks but keeps their audit records, and a task costs
//! few bytes in the hot tables.

use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::{KeyBinding, Name, Principal, PrincipalKind, Status};
use laissez_store::task::{
    ApprovalRecord, Decision, Poll, TaskFilter, TaskRecord, TaskState, task_id,
};
use laissez_store::{Error, SqliteStore, Store};
use tempfile::TempDir;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn store_with_agent() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("laissez.db")).unwrap();
    let person = |id: &str, name: &str, kind, owner: Option<&str>| Principal {
        id: id.into(),
        kind,
        name: Name::parse(name, "name").unwrap(),
        owner_id: owner.map(str::to_owned),
        parent_id: owner.map(str::to_owned),
        status: Status::Active,
        description: String::new(),
        created_at: now(),
    };
    let event = || AuditEvent::success(&[], "principal.create", "x");
    store
        .create_principal(
            person("usr_alice", "alice", PrincipalKind::User, None),
            event(),
        )
        .await
        .unwrap();
    store
        .create_principal(
            person("agt_bot", "bot", PrincipalKind::Agent, Some("usr_alice")),
            event(),
        )
        .await
        .unwrap();
    (dir, store)
}

fn task(id: String, parent: Option<&TaskRecord>, ttl: i64) -> TaskRecord {
    TaskRecord {
        id,
        parent_id: parent.map(|p| p.id.clone()),
        ancestors: Vec::new(),
        agent_id: "agt_bot".into(),
        subject_id: Some("usr_alice".into()),
        client_id: None,
        grants: vec!["notes.read@https://notes.example/".into()],
        allowed_ips: Vec::new(),
        binding: KeyBinding::dpop("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
        state: TaskState::Active,
        issued_at: now(),
        expires_at: now() + ttl,
        ended_at: None,
    }
}

async fn new_task(
    store: &SqliteStore,
    parent: Option<&TaskRecord>,
    secret: &str,
    ttl: i64,
) -> TaskRecord {
    let id = task_id(store.next_task_seq().await.unwrap(), "Ab3dE9");
    let record = task(id.clone(), parent, ttl);
    store
        .create_task(
            record.clone(),
            Some(hash_secret(secret)),
            None,
            AuditEvent::success(&[], "task.issue", id.clone()),
        )
        .await
        .unwrap();
    store.task(&id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_task_bound_to_a_certificate_keeps_its_binding_and_a_version_8_folder_is_upgraded() {
    let (dir, store) = store_with_agent().await;
    let dpop = new_task(&store, None, "lztt_dpop", 600).await;
    let id = task_id(store.next_task_seq().await.unwrap(), "Cert01");
    let mut record = task(id.clone(), None, 600);
    record.binding = KeyBinding {
        jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        x5t: Some("A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0".into()),
    };
    store
        .create_task(
            record.clone(),
            Some(hash_secret("lztt_cert")),
            None,
            AuditEvent::success(&[], "task.issue", id.clone()),
        )
        .await
        .unwrap();
    let (found, _) = store
        .task_by_token(hash_secret("lztt_cert"), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.binding, record.binding);
    // A thumbprint that is not base64url is refused, not stored garbled.
    let mut bad = task(
        task_id(store.next_task_seq().await.unwrap(), "Bad001"),
        None,
        600,
    );
    bad.binding = KeyBinding::certificate("not base64url!");
    let refused = store
        .create_task(bad, None, None, AuditEvent::success(&[], "task.issue", "x"))
        .await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    store.close();
    drop(store);
    // What version 8 wrote: tasks without a certificate column.
    let path = dir.path().join("laissez.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM tasks WHERE certificate_thumbprint IS NOT NULL;
             ALTER TABLE tasks DROP COLUMN certificate_thumbprint;
             UPDATE meta SET value = '8' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let kept = store.task(&dpop.id).await.unwrap().unwrap();
    assert_eq!(kept.binding, dpop.binding);
    let id = task_id(store.next_task_seq().await.unwrap(), "Cert02");
    let mut record = task(id.clone(), None, 600);
    record.binding = KeyBinding::certificate("A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0");
    store
        .create_task(
            record.clone(),
            None,
            None,
            AuditEvent::success(&[], "task.issue", id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        store.task(&id).await.unwrap().unwrap().binding,
        record.binding
    );
}

#[tokio::test]
async fn a_task_is_found_by_id_and_token_and_its_children_die_with_it() {
    let (_dir, store) = store_with_agent().await;
    let root = new_task(&store, None, "lztt_root", 600).await;
    let child = new_task(&store, Some(&root), "lztt_child", 300).await;
    let grandchild = new_task(&store, Some(&child), "lztt_grandchild", 60).await;
    assert_eq!(
        grandchild.ancestors,
        vec![root.id.clone(), child.id.clone()]
    );
    assert_eq!(grandchild.parent_id.as_deref(), Some(child.id.as_str()));
    assert_eq!(
        grandchild.binding.jkt.as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );

    let (found, live) = store
        .task_by_token(hash_secret("lztt_grandchild"), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, grandchild.id);
    assert!(live);
    assert!(
        store
            .task_by_token(hash_secret("lztt_other"), now())
            .await
            .unwrap()
            .is_none()
    );
    // The tag is part of the id: the right number with another tag is no task.
    let forged = format!("{}zzzzzz", &root.id[..root.id.len() - 6]);
    assert!(store.task(&forged).await.unwrap().is_none());

    let event =
        || AuditEvent::success(&[], "task.complete", "x").with_detail(serde_json::json!({}));
    let (already, ended) = store
        .end_task(&child.id, TaskState::Completed, event())
        .await
        .unwrap();
    assert!(!already);
    assert_eq!(ended, vec![child.id.clone(), grandchild.id.clone()]);
    assert!(store.task_live(&root.id, now()).await.unwrap());
    assert!(!store.task_live(&grandchild.id, now()).await.unwrap());
    let (_, live) = store
        .task_by_token(hash_secret("lztt_grandchild"), now())
        .await
        .unwrap()
        .unwrap();
    assert!(!live, "a task whose parent ended is not live");
    assert_eq!(
        store.task(&grandchild.id).await.unwrap().unwrap().state,
        TaskState::Revoked
    );
    let mut feed = store.ended_tasks().await.unwrap();
    feed.sort();
    let mut expected = vec![child.id.clone(), grandchild.id.clone()];
    expected.sort();
    assert_eq!(feed, expected);
    // The feed's one snapshot says the same as its parts read one by one.
    let mut snapshot = store.revocations().await.unwrap();
    snapshot.ended_tasks.sort();
    assert_eq!(snapshot.ended_tasks, expected);
    assert_eq!(
        snapshot.access_tokens,
        store.revoked_access_tokens().await.unwrap()
    );
    assert_eq!(snapshot.grants, store.revoked_grants().await.unwrap());
    assert_eq!(
        snapshot.inactive_principals,
        store.inactive_principal_ids().await.unwrap()
    );
    assert_eq!(
        snapshot.deleted_clients,
        store.deleted_clients().await.unwrap()
    );

    // Ending again is idempotent: nothing more ends, and it says so.
    let (already, ended) = store
        .end_task(&child.id, TaskState::Completed, event())
        .await
        .unwrap();
    assert!(already);
    assert!(ended.is_empty());
    assert!(matches!(
        store
            .end_task("tsk_zzzzzzzAb3dE9", TaskState::Completed, event())
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn tasks_are_listed_newest_first_in_pages_and_pruned_when_expired() {
    let (_dir, store) = store_with_agent().await;
    let old = new_task(&store, None, "lztt_old", -7200).await;
    let mut live = Vec::new();
    for i in 0..5 {
        live.push(new_task(&store, None, &format!("lztt_{i}"), 600).await);
    }
    let page = store
        .tasks(TaskFilter {
            limit: 3,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = page.iter().map(|t| t.id.clone()).collect();
    assert_eq!(
        ids,
        vec![live[4].id.clone(), live[3].id.clone(), live[2].id.clone()]
    );
    let next = store
        .tasks(TaskFilter {
            limit: 10,
            before: Some(live[2].id.clone()),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(next.len(), 3);
    let other_agent = store
        .tasks(TaskFilter {
            limit: 10,
            agents: Some(vec!["agt_other".into()]),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert!(other_agent.is_empty());

    let audit_before = store.audit_records(0, 1000).await.unwrap().len();
    assert_eq!(store.prune_tasks(now() - 3600).await.unwrap(), 1);
    assert!(store.task(&old.id).await.unwrap().is_none());
    assert!(store.task(&live[0].id).await.unwrap().is_some());
    assert_eq!(
        store.audit_records(0, 1000).await.unwrap().len(),
        audit_before
    );
    // Sequence numbers are never reused, even after pruning and reopening.
    let path = store.path().to_path_buf();
    store.close();
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    let seq = reopened.next_task_seq().await.unwrap();
    assert_eq!(seq, 7);
}

#[tokio::test]
async fn an_approval_is_decided_once_and_collected_once() {
    let (_dir, store) = store_with_agent().await;
    let id = task_id(store.next_task_seq().await.unwrap(), "Pq9Rs1");
    let mut pending = task(id.clone(), None, 900);
    pending.state = TaskState::Pending;
    pending.grants = vec![
        "notes.read@https://notes.example/".into(),
        "notes.write@https://notes.example/".into(),
    ];
    let approval = ApprovalRecord {
        task_id: id.clone(),
        description: "tidy the notes".into(),
        reasons: vec!["a lifetime of 2h is above the 1h that needs approval".into()],
        ttl: 7200,
        decided_by: None,
        decided_at: None,
        last_poll_ms: 0,
        notify: Vec::new(),
    };
    store
        .create_task(
            pending,
            None,
            Some(approval),
            AuditEvent::success(&[], "task.request", id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(store.poll_approval(&id, 5000).await.unwrap(), Poll::Pending);
    assert_eq!(
        store.poll_approval(&id, 5000).await.unwrap(),
        Poll::SlowDown
    );
    let listed = store.approvals(None, true, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.description, "tidy the notes");

    let event = || AuditEvent::success(&[], "approval.approve", "x");
    let decided = store
        .decide_approval(
            &id,
            Decision::Approve {
                grants: vec!["notes.read@https://notes.example/".into()],
            },
            "usr_alice",
            event(),
        )
        .await
        .unwrap();
    assert_eq!(decided.grants, vec!["notes.read@https://notes.example/"]);
    assert!(matches!(
        store
            .decide_approval(&id, Decision::Deny, "usr_alice", event())
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(store.approvals(None, true, 10).await.unwrap().is_empty());

    let Poll::Approved(collected) = store.poll_approval(&id, 0).await.unwrap() else {
        panic!("an approved task is collected")
    };
    assert_eq!(collected.grants, vec!["notes.read@https://notes.example/"]);
    let issue = || AuditEvent::success(&[], "task.issue", "x");
    store
        .issue_approved_task(
            &id,
            hash_secret("lztt_approved"),
            now(),
            now() + 7200,
            issue(),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .issue_approved_task(&id, hash_secret("lztt_again"), now(), now() + 7200, issue())
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.poll_approval(&id, 0).await.unwrap(),
        Poll::Over(t) if t.state == TaskState::Active
    ));
    let (found, live) = store
        .task_by_token(hash_secret("lztt_approved"), now())
        .await
        .unwrap()
        .unwrap();
    assert!(live);
    assert_eq!(found.id, id);

    // A denied request answers access_denied and cannot be approved after.
    let denied_id = task_id(store.next_task_seq().await.unwrap(), "Xy7Zw2");
    let mut denied = task(denied_id.clone(), None, 900);
    denied.state = TaskState::Pending;
    store
        .create_task(
            denied,
            None,
            Some(ApprovalRecord {
                task_id: denied_id.clone(),
                description: String::new(),
                reasons: Vec::new(),
                ttl: 600,
                decided_by: None,
                decided_at: None,
                last_poll_ms: 0,
                notify: Vec::new(),
            }),
            AuditEvent::success(&[], "task.request", denied_id.clone()),
        )
        .await
        .unwrap();
    store
        .decide_approval(&denied_id, Decision::Deny, "usr_alice", event())
        .await
        .unwrap();
    assert_eq!(
        store.poll_approval(&denied_id, 0).await.unwrap(),
        Poll::Denied
    );
    assert!(
        store
            .issue_approved_task(
                &denied_id,
                hash_secret("lztt_d"),
                now(),
                now() + 60,
                issue()
            )
            .await
            .is_err()
    );
}

/// Bytes per task in the hot tables (tasks, their shapes and approvals, and
/// their indexes), from SQLite's own page accounting.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_costs_under_200_bytes_in_the_hot_tables() {
    let (dir, store) = store_with_agent().await;
    let count = 20_000;
    let mut handles = Vec::new();
    for i in 0..count {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let seq = store.next_task_seq().await.unwrap();
            let tag = laissez_token::random_base62(6).unwrap();
            let mut record = task(task_id(seq, &tag), None, 600);
            record.subject_id = Some(format!("usr_{:020}", i % 500));
            record.grants = vec![format!(
                "tickets.read@https://tickets.example/queues/{}/",
                i % 40
            )];
            record.binding = KeyBinding::dpop({
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(hash_secret(&format!("key {i}")))
            });
            store
                .create_task(
                    record,
                    Some(hash_secret(&laissez_token::random_base62(40).unwrap())),
                    None,
                    AuditEvent::success(&[], "task.issue", "x"),
                )
                .await
                .unwrap();
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let conn = rusqlite::Connection::open(dir.path().join("laissez.db")).unwrap();
    let bytes: i64 = conn
        .query_row(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN
             ('tasks', 'tasks_token', 'tasks_children', 'tasks_ended', 'task_shapes',
              'sqlite_autoindex_task_shapes_1', 'task_approvals')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let per_task = bytes as f64 / count as f64;
    eprintln!("{count} tasks: {bytes} bytes in the hot tables, {per_task:.1} per task");
    assert!(per_task < 200.0, "{per_task:.1} bytes per task");
}
