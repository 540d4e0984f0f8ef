//! Task rows: tasks, their interned shapes and their approvals (see
//! [`crate::task`] for the layout and why it is compact).

use laissez_core::KeyBinding;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::exec;

use crate::Error;
use crate::task::{
    ApprovalRecord, Decision, Poll, TaskFilter, TaskRecord, TaskState, parse_task_id, task_id,
};

/// Sub-task depth read at most when walking up a task's parents (the server
/// bounds depth lower; this only stops a corrupt loop).
const MAX_WALK: usize = 16;

const TASK_COLUMNS: &str = "t.seq, t.tag, t.parent, s.agent_id, t.subject_id, s.client_id, \
     s.grants, s.allowed_ips, t.key_thumbprint, t.state, t.issued_at, t.expires_at, t.ended_at, \
     t.certificate_thumbprint";
const TASK_FROM: &str = "tasks t JOIN task_shapes s ON s.id = t.shape";

/// The stored 128-bit prefix of a token's SHA-256.
pub fn token_key(hash: &[u8; 32]) -> &[u8] {
    &hash[..16]
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("task row: {what}"))
}

fn words(text: String) -> Vec<String> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

struct Raw {
    tag: String,
    parent: Option<i64>,
    record: TaskRecord,
}

fn task_row(row: &Row<'_>) -> rusqlite::Result<Result<Raw, Error>> {
    let seq: i64 = row.get(0)?;
    let tag: String = row.get(1)?;
    let parent: Option<i64> = row.get(2)?;
    let client_id: String = row.get(5)?;
    let thumbprint: Option<Vec<u8>> = row.get(8)?;
    let certificate: Option<Vec<u8>> = row.get(13)?;
    let state: i64 = row.get(9)?;
    let record = TaskRecord {
        id: task_id(seq, &tag),
        parent_id: None,
        ancestors: Vec::new(),
        agent_id: row.get(3)?,
        subject_id: row.get(4)?,
        client_id: (!client_id.is_empty()).then_some(client_id),
        grants: words(row.get(6)?),
        allowed_ips: words(row.get(7)?),
        binding: KeyBinding {
            jkt: thumbprint.map(encode),
            x5t: certificate.map(encode),
        },
        state: match TaskState::from_code(state) {
            Some(state) => state,
            None => return Ok(Err(corrupt("state"))),
        },
        issued_at: row.get(10)?,
        expires_at: row.get(11)?,
        ended_at: row.get(12)?,
    };
    Ok(Ok(Raw {
        tag,
        parent,
        record,
    }))
}

fn raw_by_seq(conn: &Connection, seq: i64) -> Result<Option<Raw>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.seq = ?1"
    ))?;
    stmt.query_row([seq], task_row).optional()?.transpose()
}

/// Fills in the parent and ancestors of a task read alone.
fn with_lineage(conn: &Connection, mut raw: Raw) -> Result<TaskRecord, Error> {
    let mut ancestors = Vec::new();
    let mut next = raw.parent;
    while let Some(seq) = next {
        if ancestors.len() >= MAX_WALK {
            return Err(corrupt("parent loop"));
        }
        let Some(parent) = raw_by_seq(conn, seq)? else {
            // A pruned parent has expired, and its children with it.
            break;
        };
        ancestors.push(parent.record.id.clone());
        next = parent.parent;
    }
    ancestors.reverse();
    raw.record.parent_id = ancestors.last().cloned();
    raw.record.ancestors = ancestors;
    Ok(raw.record)
}

/// Whether a task and every task above it are usable at `now`.
pub fn lineage_live(conn: &Connection, task: &TaskRecord, now: i64) -> Result<bool, Error> {
    if !task.is_live(now) {
        return Ok(false);
    }
    for id in &task.ancestors {
        match by_id(conn, id)? {
            Some(parent) if parent.is_live(now) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The highest sequence number ever used (kept in `meta` across pruning).
pub fn last_seq(conn: &Connection) -> Result<i64, Error> {
    let in_rows: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM tasks", [], |r| r.get(0))?;
    let kept: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'task_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let kept = kept.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Ok(in_rows.max(kept))
}

fn shape(conn: &Connection, task: &TaskRecord) -> Result<i64, Error> {
    let client = task.client_id.as_deref().unwrap_or("");
    let grants = task.grants.join(" ");
    let ips = task.allowed_ips.join(" ");
    conn.prepare_cached(
        "INSERT INTO task_shapes (agent_id, client_id, grants, allowed_ips) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (agent_id, client_id, grants, allowed_ips) DO NOTHING",
    )?
    .execute(params![task.agent_id, client, grants, ips])?;
    Ok(conn
        .prepare_cached(
            "SELECT id FROM task_shapes WHERE agent_id = ?1 AND client_id = ?2 AND grants = ?3 AND allowed_ips = ?4",
        )?
        .query_row(params![task.agent_id, client, grants, ips], |r| r.get(0))?)
}

fn encode(digest: Vec<u8>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// A thumbprint as its 32 bytes (stored raw: 32 bytes, not 43 characters).
fn thumbprint_bytes(thumbprint: Option<&str>) -> Result<Option<Vec<u8>>, Error> {
    use base64::Engine;
    thumbprint
        .map(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .map_err(|_| Error::Conflict("a key thumbprint is not base64url".into()))
        })
        .transpose()
}

/// Inserts a new task (and its approval, when it waits for one).
pub fn insert(
    conn: &Connection,
    task: &TaskRecord,
    token_hash: Option<&[u8; 32]>,
    approval: Option<&ApprovalRecord>,
) -> Result<(), Error> {
    let (seq, tag) = parse_task_id(&task.id).ok_or_else(|| corrupt("id"))?;
    let parent = match task.parent_id.as_deref() {
        Some(id) => Some(parse_task_id(id).ok_or_else(|| corrupt("parent id"))?.0),
        None => None,
    };
    let shape = shape(conn, task)?;
    conn.prepare_cached(
        "INSERT INTO tasks (seq, tag, token_hash, shape, subject_id, parent, key_thumbprint, state, issued_at, expires_at, ended_at, certificate_thumbprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11)",
    )?
    .execute(params![
        seq,
        tag,
        token_hash.map(token_key),
        shape,
        task.subject_id,
        parent,
        thumbprint_bytes(task.binding.jkt.as_deref())?,
        task.state.code(),
        task.issued_at,
        task.expires_at,
        thumbprint_bytes(task.binding.x5t.as_deref())?,
    ])?;
    if let Some(approval) = approval {
        conn.prepare_cached(
            "INSERT INTO task_approvals (task_seq, description, reasons, ttl, decided_by, decided_at, last_poll_ms)
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, 0)",
        )?
        .execute(params![
            seq,
            approval.description,
            serde_json::to_string(&approval.reasons).unwrap_or_default(),
            approval.ttl,
        ])?;
        let owner: Option<String> = conn
            .query_row(
                "SELECT owner_id FROM principals WHERE id = ?1",
                [&task.agent_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        super::leak_rows::queue_notifications(
            conn,
            &task.id,
            owner.as_deref(),
            &approval.notify,
            task.issued_at,
        )?;
    }
    Ok(())
}

/// The task with this id.
pub fn by_id(conn: &Connection, id: &str) -> Result<Option<TaskRecord>, Error> {
    let Some((seq, tag)) = parse_task_id(id) else {
        return Ok(None);
    };
    match raw_by_seq(conn, seq)? {
        Some(raw) if raw.tag == tag => Ok(Some(with_lineage(conn, raw)?)),
        _ => Ok(None),
    }
}

/// The task whose token hashes to `hash`.
pub fn by_token(conn: &Connection, hash: &[u8; 32]) -> Result<Option<TaskRecord>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM} WHERE t.token_hash = ?1"
    ))?;
    match stmt
        .query_row([token_key(hash)], task_row)
        .optional()?
        .transpose()?
    {
        Some(raw) => Ok(Some(with_lineage(conn, raw)?)),
        None => Ok(None),
    }
}

/// Ends a task and every task derived from it that is still pending or
/// active: the task itself takes `state`, its descendants `Revoked`.
/// Returns whether the task had already ended, and the ids ended now.
pub fn end(
    conn: &Connection,
    id: &str,
    state: TaskState,
    at: i64,
) -> Result<(bool, Vec<String>), Error> {
    let task = by_id(conn, id)?.ok_or_else(|| Error::NotFound {
        what: "task",
        key: id.to_owned(),
    })?;
    let (seq, _) = parse_task_id(&task.id).ok_or_else(|| corrupt("id"))?;
    let mut ended = Vec::new();
    let already = task.state.has_ended();
    if !already {
        conn.prepare_cached(
            "UPDATE tasks SET state = ?2, ended_at = ?3 WHERE seq = ?1 AND state IN (0, 1)",
        )?
        .execute(params![seq, state.code(), at])?;
        ended.push(task.id.clone());
    }
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE below(seq) AS (
             SELECT seq FROM tasks WHERE parent = ?1
             UNION SELECT t.seq FROM tasks t JOIN below b ON t.parent = b.seq
         )
         UPDATE tasks SET state = 3, ended_at = ?2
         WHERE seq IN (SELECT seq FROM below) AND state IN (0, 1)
         RETURNING seq, tag",
    )?;
    let rows = stmt.query_map(params![seq, at], |r| {
        Ok(task_id(r.get(0)?, &r.get::<_, String>(1)?))
    })?;
    for row in rows {
        ended.push(row?);
    }
    Ok((already, ended))
}

/// The query behind [`ended_unexpired`]. It reads the partial index of
/// ended tasks only: ordering by `seq` would make SQLite scan every task
/// instead (the feed is read on every revocation), so the ids are sorted
/// here.
pub const ENDED_UNEXPIRED: &str = "SELECT seq, tag FROM tasks WHERE state >= 2 AND expires_at > ?1";

/// Tasks that ended before expiring, not yet expired: what gates refuse.
pub fn ended_unexpired(conn: &Connection, now: i64) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare_cached(ENDED_UNEXPIRED)?;
    let rows = stmt.query_map([now], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut ended = rows.collect::<Result<Vec<_>, _>>()?;
    ended.sort();
    Ok(ended
        .into_iter()
        .map(|(seq, tag)| task_id(seq, &tag))
        .collect())
}

/// A page of tasks, newest first.
pub fn list(conn: &Connection, filter: &TaskFilter) -> Result<Vec<TaskRecord>, Error> {
    let before = match filter.before.as_deref() {
        Some(id) => parse_task_id(id).map(|(seq, _)| seq).unwrap_or(0),
        None => i64::MAX,
    };
    let agents = filter
        .agents
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_FROM}
         WHERE t.seq < ?1
           AND (?2 IS NULL OR s.agent_id IN (SELECT value FROM json_each(?2)))
           AND (?3 IS NULL OR t.state = ?3)
         ORDER BY t.seq DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(
        params![
            before,
            agents,
            filter.state.map(TaskState::code),
            filter.limit as i64
        ],
        task_row,
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(with_lineage(conn, row??)?);
    }
    Ok(out)
}

/// Removes tasks that expired before `before` (their audit records stay),
/// their approvals, and shapes no task uses any more. Returns how many.
pub fn prune(conn: &Connection, before: i64) -> Result<usize, Error> {
    let high = last_seq(conn)?;
    exec(
        conn,
        "INSERT INTO meta (key, value) VALUES ('task_seq', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [high.to_string()],
    )?;
    exec(
        conn,
        "DELETE FROM task_approvals WHERE task_seq IN (SELECT seq FROM tasks WHERE expires_at < ?1)",
        [before],
    )?;
    let removed = exec(conn, "DELETE FROM tasks WHERE expires_at < ?1", [before])?;
    if removed > 0 {
        exec(
            conn,
            "DELETE FROM task_shapes WHERE id NOT IN (SELECT DISTINCT shape FROM tasks)",
            [],
        )?;
    }
    Ok(removed)
}

fn approval_row(row: &Row<'_>) -> rusqlite::Result<(i64, ApprovalRecord)> {
    let reasons: String = row.get(2)?;
    Ok((
        row.get(0)?,
        ApprovalRecord {
            task_id: String::new(),
            description: row.get(1)?,
            reasons: serde_json::from_str(&reasons).unwrap_or_default(),
            ttl: row.get(3)?,
            decided_by: row.get(4)?,
            decided_at: row.get(5)?,
            last_poll_ms: row.get(6)?,
            notify: Vec::new(),
        },
    ))
}

const APPROVAL_COLUMNS: &str =
    "task_seq, description, reasons, ttl, decided_by, decided_at, last_poll_ms";

/// The approval of a task, with the task.
pub fn approval(
    conn: &Connection,
    id: &str,
) -> Result<Option<(TaskRecord, ApprovalRecord)>, Error> {
    let Some(task) = by_id(conn, id)? else {
        return Ok(None);
    };
    let Some((seq, _)) = parse_task_id(id) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM task_approvals WHERE task_seq = ?1"
    ))?;
    Ok(stmt
        .query_row([seq], approval_row)
        .optional()?
        .map(|(_, mut a)| {
            a.task_id = task.id.clone();
            (task, a)
        }))
}

/// Approvals, newest first: only undecided ones when `pending_only`.
pub fn approvals(
    conn: &Connection,
    agents: Option<&[String]>,
    pending_only: bool,
    limit: usize,
) -> Result<Vec<(TaskRecord, ApprovalRecord)>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM task_approvals
         WHERE (?1 = 0 OR decided_at IS NULL) ORDER BY task_seq DESC LIMIT ?2"
    ))?;
    let rows: Vec<(i64, ApprovalRecord)> = stmt
        .query_map(params![pending_only as i64, limit as i64], approval_row)?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (seq, mut approval) in rows {
        let Some(raw) = raw_by_seq(conn, seq)? else {
            continue;
        };
        let task = with_lineage(conn, raw)?;
        if agents.is_some_and(|a| !a.contains(&task.agent_id)) {
            continue;
        }
        approval.task_id = task.id.clone();
        out.push((task, approval));
    }
    Ok(out)
}

/// Records a decision on a pending task; refuses one already decided,
/// lapsed or ended.
pub fn decide(
    conn: &Connection,
    id: &str,
    decision: &Decision,
    by: &str,
    at: i64,
) -> Result<TaskRecord, Error> {
    let (task, approval) = approval(conn, id)?.ok_or_else(|| Error::NotFound {
        what: "approval",
        key: id.to_owned(),
    })?;
    if approval.decided_at.is_some() || task.state != TaskState::Pending || task.expires_at <= at {
        return Err(Error::Conflict(format!(
            "the approval '{id}' is no longer pending ({})",
            task.status(at)
        )));
    }
    let (seq, _) = parse_task_id(id).ok_or_else(|| corrupt("id"))?;
    conn.prepare_cached(
        "UPDATE task_approvals SET decided_by = ?2, decided_at = ?3 WHERE task_seq = ?1",
    )?
    .execute(params![seq, by, at])?;
    match decision {
        Decision::Deny => {
            conn.prepare_cached("UPDATE tasks SET state = 4, ended_at = ?2 WHERE seq = ?1")?
                .execute(params![seq, at])?;
        }
        Decision::Approve { grants } => {
            let narrowed = TaskRecord {
                grants: grants.clone(),
                ..task.clone()
            };
            let shape = shape(conn, &narrowed)?;
            conn.prepare_cached("UPDATE tasks SET shape = ?2 WHERE seq = ?1")?
                .execute(params![seq, shape])?;
        }
    }
    by_id(conn, id)?.ok_or_else(|| corrupt("decided task vanished"))
}

/// An agent's poll of its pending task: records the poll time and says
/// what to answer (`interval_ms` apart at least, else [`Poll::SlowDown`]).
pub fn poll(conn: &Connection, id: &str, now_ms: i64, interval_ms: i64) -> Result<Poll, Error> {
    let (task, approval) = approval(conn, id)?.ok_or_else(|| Error::NotFound {
        what: "approval",
        key: id.to_owned(),
    })?;
    let now = now_ms.div_euclid(1000);
    if task.state == TaskState::Pending && task.expires_at <= now {
        conn.prepare_cached(
            "UPDATE tasks SET state = 5, ended_at = ?2 WHERE seq = ?1 AND state = 0",
        )?
        .execute(params![
            parse_task_id(id).ok_or_else(|| corrupt("id"))?.0,
            now
        ])?;
        return Ok(Poll::Over(TaskRecord {
            state: TaskState::Lapsed,
            ..task
        }));
    }
    match task.state {
        TaskState::Denied => return Ok(Poll::Denied),
        TaskState::Pending => {}
        _ => return Ok(Poll::Over(task)),
    }
    let (seq, _) = parse_task_id(id).ok_or_else(|| corrupt("id"))?;
    conn.prepare_cached("UPDATE task_approvals SET last_poll_ms = ?2 WHERE task_seq = ?1")?
        .execute(params![seq, now_ms])?;
    if approval.decided_at.is_some() {
        return Ok(Poll::Approved(task));
    }
    if now_ms - approval.last_poll_ms < interval_ms {
        return Ok(Poll::SlowDown);
    }
    Ok(Poll::Pending)
}

/// Issues an approved task: its token, issue time and expiry, once.
pub fn issue_approved(
    conn: &Connection,
    id: &str,
    token_hash: &[u8; 32],
    issued_at: i64,
    expires_at: i64,
) -> Result<(), Error> {
    let (seq, _) = parse_task_id(id).ok_or_else(|| corrupt("id"))?;
    let changed = conn
        .prepare_cached(
            "UPDATE tasks SET state = 1, token_hash = ?2, issued_at = ?3, expires_at = ?4
             WHERE seq = ?1 AND state = 0 AND token_hash IS NULL
               AND EXISTS (SELECT 1 FROM task_approvals a WHERE a.task_seq = ?1 AND a.decided_at IS NOT NULL)",
        )?
        .execute(params![seq, token_key(token_hash), issued_at, expires_at])?;
    if changed == 0 {
        return Err(Error::Conflict(format!(
            "the task '{id}' was already issued or is not approved"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_reads_ended_tasks_by_their_index_not_by_a_scan() {
        let conn = Connection::open_in_memory().unwrap();
        crate::sqlite::schema::migrate(&conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ENDED_UNEXPIRED}"))
            .unwrap()
            .query_map([0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX tasks_ended")),
            "{plan:?}"
        );
    }
}
