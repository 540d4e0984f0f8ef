//! Task credentials as the store keeps them: one compact row per task (the
//! credential is the task row itself: a 128-bit prefix of its `lztt_`
//! token's SHA-256 and its key thumbprint), what is shared between tasks
//! (the agent, client, grants and IP ranges: a task's "shape") interned once,
//! and approvals apart, since only a few tasks need one.
//!
//! A task's public id is `tsk_` + its sequence number in base62 + a random
//! tag, so the row is found by its integer key with no id index, and ids
//! cannot be guessed from one another.

use serde::{Deserialize, Serialize};

/// The random tag's length in a task id.
pub const TAG_LEN: usize = 6;

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for its owner's approval.
    Pending,
    /// Issued and usable until it expires.
    Active,
    /// Ended by the agent (completion or revocation of its token).
    Completed,
    /// Ended because a task it derives from ended, or by an administrator.
    Revoked,
    /// Its owner refused it.
    Denied,
    /// Its approval was never given in time.
    Lapsed,
}

impl TaskState {
    /// The stored code.
    pub fn code(self) -> i64 {
        match self {
            TaskState::Pending => 0,
            TaskState::Active => 1,
            TaskState::Completed => 2,
            TaskState::Revoked => 3,
            TaskState::Denied => 4,
            TaskState::Lapsed => 5,
        }
    }

    /// The state a stored code names.
    pub fn from_code(code: i64) -> Option<TaskState> {
        Some(match code {
            0 => TaskState::Pending,
            1 => TaskState::Active,
            2 => TaskState::Completed,
            3 => TaskState::Revoked,
            4 => TaskState::Denied,
            5 => TaskState::Lapsed,
            _ => return None,
        })
    }

    /// Whether the task has ended (nothing it issued works any more).
    pub fn has_ended(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Active)
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// `tsk_…`.
    pub id: String,
    /// The task it was narrowed from (sub-tasks).
    pub parent_id: Option<String>,
    /// Every task above it, nearest last (root first).
    pub ancestors: Vec<String>,
    /// The agent (or service) principal that asked for it.
    pub agent_id: String,
    /// The user it acts for, when it acts for one.
    pub subject_id: Option<String>,
    /// The OAuth client it was obtained through, when it was.
    pub client_id: Option<String>,
    /// What it may do: `permission@resource`, sorted.
    pub grants: Vec<String>,
    /// Client IP ranges it may be used from; empty means anywhere.
    pub allowed_ips: Vec<String>,
    /// What it is bound to: a DPoP key, a TLS client certificate, or both.
    pub binding: laissez_core::KeyBinding,
    /// Its state as stored (an active task past `expires_at` is expired).
    pub state: TaskState,
    /// When it was asked for, or issued once approved.
    pub issued_at: i64,
    /// When it stops working (or, while pending, when the request lapses).
    pub expires_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
}

impl TaskRecord {
    /// Whether it can be used at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.state == TaskState::Active && self.expires_at > now
    }

    /// How it stands at `now`, for people: `active`, `expired`, or its state.
    pub fn status(&self, now: i64) -> &'static str {
        match self.state {
            TaskState::Active if self.expires_at <= now => "expired",
            TaskState::Active => "active",
            TaskState::Pending if self.expires_at <= now => "lapsed",
            TaskState::Pending => "pending",
            TaskState::Completed => "completed",
            TaskState::Revoked => "revoked",
            TaskState::Denied => "denied",
            TaskState::Lapsed => "lapsed",
        }
    }
}

/// A task waiting for, or given, its owner's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The task (the approval's id is the task's).
    pub task_id: String,
    /// The task's description, for the approver.
    pub description: String,
    /// Why approval is needed.
    pub reasons: Vec<String>,
    /// The lifetime asked for, seconds.
    pub ttl: i64,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<i64>,
    /// The agent's last poll, milliseconds (for `slow_down`).
    pub last_poll_ms: i64,
    /// The channels to tell the agent's owner on (`webhook`, `email`), in
    /// the same transaction that stores the request; not stored.
    #[serde(skip)]
    pub notify: Vec<String>,
}

/// What polling an approval found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Still waiting.
    Pending,
    /// Polled faster than the interval.
    SlowDown,
    /// Approved and not yet collected: issue it now.
    Approved(TaskRecord),
    /// Refused.
    Denied,
    /// Lapsed, already collected, or otherwise over.
    Over(TaskRecord),
}

/// The decision on an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Approved, with the grants given (at most those asked for).
    Approve {
        /// What is given.
        grants: Vec<String>,
    },
    /// Refused.
    Deny,
}

/// Which tasks to list.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    /// Only tasks of these agents (`None`: every agent).
    pub agents: Option<Vec<String>>,
    /// Only tasks of this state.
    pub state: Option<TaskState>,
    /// Only tasks with a sequence number below this (the page cursor).
    pub before: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Formats a task id from its sequence number and tag.
pub fn task_id(seq: i64, tag: &str) -> String {
    format!("tsk_{}{tag}", base62(seq))
}

/// The sequence number and tag of a task id, if it is well formed.
pub fn parse_task_id(id: &str) -> Option<(i64, &str)> {
    let body = id.strip_prefix("tsk_")?;
    if body.len() <= TAG_LEN || body.len() > 20 || !body.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (seq, tag) = body.split_at(body.len() - TAG_LEN);
    Some((unbase62(seq)?, tag))
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: i64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(ALPHABET[(n.rem_euclid(62)) as usize]);
        n = n.div_euclid(62);
        if n <= 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn unbase62(text: &str) -> Option<i64> {
    text.bytes().try_fold(0i64, |n, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)? as i64;
        n.checked_mul(62)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_malformed_input() {
        for seq in [0, 1, 61, 62, 3843, 1_000_000, i64::MAX / 2] {
            let id = task_id(seq, "Ab3dE9");
            assert_eq!(parse_task_id(&id), Some((seq, "Ab3dE9")), "{id}");
        }
        for bad in [
            "",
            "tsk_",
            "tsk_abc",
            "tsk_Ab3dE9",
            "usr_1Ab3dE9",
            "tsk_1-b3dE9",
            "tsk_zzzzzzzzzzzzzzAb3dE9",
            "tsk_1Ab3dE9\u{e9}",
        ] {
            assert_eq!(parse_task_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn states_round_trip_and_say_when_they_ended() {
        for code in 0..6 {
            let state = TaskState::from_code(code).unwrap();
            assert_eq!(state.code(), code);
            assert_eq!(
                state.has_ended(),
                !matches!(state, TaskState::Pending | TaskState::Active)
            );
        }
        assert_eq!(TaskState::from_code(6), None);
    }
}
