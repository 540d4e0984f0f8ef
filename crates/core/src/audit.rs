//! The tamper-evident audit log's records and their hash chain.
//!
//! Every mutation and every authentication failure becomes one record. Each
//! record carries the hash of the one before it, and its own hash is SHA-256
//! over its canonical JSON form (fields in a fixed order, object keys sorted),
//! so editing, inserting or deleting any record breaks the chain at that
//! point. [`verify`] walks a log and names the first record that does not fit.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::{PrincipalRef, UnixTime};

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened.
    Success,
    /// Policy refused it.
    Denied,
    /// The caller could not be authenticated.
    Unauthenticated,
}

impl Outcome {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Unauthenticated => "unauthenticated",
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "unauthenticated" => Some(Outcome::Unauthenticated),
            _ => None,
        }
    }
}

/// What a caller asks the store to append; the store assigns order and hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who acted, human first. Empty when nobody could be authenticated.
    pub chain: Vec<PrincipalRef>,
    /// What was done, e.g. `token.create`.
    pub action: String,
    /// What it was done to, e.g. a principal or credential id.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The client's address, when the action came over the network.
    pub client_ip: Option<String>,
    /// Anything else worth keeping. Never secrets.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// A successful action by `chain` on `target`.
    pub fn success(chain: &[PrincipalRef], action: &str, target: impl Into<String>) -> AuditEvent {
        AuditEvent {
            chain: chain.to_vec(),
            action: action.to_owned(),
            target: target.into(),
            outcome: Outcome::Success,
            client_ip: None,
            detail: serde_json::Value::Null,
        }
    }

    /// Sets the client address.
    pub fn from_ip(mut self, ip: Option<String>) -> AuditEvent {
        self.client_ip = ip;
        self
    }

    /// Sets the detail.
    pub fn with_detail(mut self, detail: serde_json::Value) -> AuditEvent {
        self.detail = detail;
        self
    }

    /// Seals the event as record number `seq` after a record hashed `prev_hash`.
    pub fn seal(self, seq: i64, at: UnixTime, prev_hash: &str) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            at,
            chain: self.chain,
            action: self.action,
            target: self.target,
            outcome: self.outcome,
            client_ip: self.client_ip,
            detail: self.detail,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }
}

/// One sealed record of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    /// When it was appended.
    pub at: UnixTime,
    /// Who acted, human first.
    pub chain: Vec<PrincipalRef>,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The client's address.
    pub client_ip: Option<String>,
    /// Anything else worth keeping.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The hash of record `seq - 1` (or [`GENESIS_HASH`]).
    pub prev_hash: String,
    /// SHA-256 (hex) of this record's canonical form.
    pub hash: String,
}

impl AuditRecord {
    /// SHA-256 over the canonical JSON of every field except `hash`.
    pub fn compute_hash(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            seq: i64,
            at: UnixTime,
            chain: &'a [PrincipalRef],
            action: &'a str,
            target: &'a str,
            outcome: Outcome,
            client_ip: &'a Option<String>,
            detail: &'a serde_json::Value,
            prev_hash: &'a str,
        }
        let canonical = Canonical {
            seq: self.seq,
            at: self.at,
            chain: &self.chain,
            action: &self.action,
            target: &self.target,
            outcome: self.outcome,
            client_ip: &self.client_ip,
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        };
        // Serializing plain data to a Vec cannot fail.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// Where and why the chain broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainBreak {
    /// The first record that does not fit (for a truncated tail, the first missing one).
    pub seq: i64,
    /// What is wrong with it.
    pub why: String,
}

/// The result of walking the whole log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    /// How many records were checked.
    pub records: i64,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
}

/// The last record's position and hash, stored apart from the records so that
/// deleting records from the end is detected too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The last record's `seq`.
    pub seq: i64,
    /// The last record's `hash`.
    pub hash: String,
}

/// Walks records in `seq` order and checks each one's position, link and hash,
/// then that the log ends where `head` says it does.
pub fn verify(records: impl IntoIterator<Item = AuditRecord>, head: Option<&Head>) -> Verification {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut count = 0;
    for record in records {
        count += 1;
        let why = if record.seq != expected_seq {
            Some(format!(
                "record {expected_seq} is missing (next present is {})",
                record.seq
            ))
        } else if record.prev_hash != prev_hash {
            Some("its prev_hash does not match the record before it".to_owned())
        } else if record.compute_hash() != record.hash {
            Some("its content does not match its hash (edited)".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            return Verification {
                records: count,
                first_break: Some(ChainBreak {
                    seq: expected_seq,
                    why,
                }),
            };
        }
        prev_hash = record.hash;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    let first_break = match head {
        Some(head) if head.seq > last => Some(ChainBreak {
            seq: last + 1,
            why: format!(
                "records {} to {} were deleted from the end",
                last + 1,
                head.seq
            ),
        }),
        Some(head) if head.seq == last && head.hash != prev_hash => Some(ChainBreak {
            seq: last,
            why: "the last record does not match the stored head".to_owned(),
        }),
        Some(head) if head.seq < last => Some(ChainBreak {
            seq: head.seq + 1,
            why: "records were appended outside Laissez".to_owned(),
        }),
        None if last > 0 => Some(ChainBreak {
            seq: 1,
            why: "the stored head is missing".to_owned(),
        }),
        _ => None,
    };
    Verification {
        records: count,
        first_break,
    }
}

/// Folds repeated authentication failures into few records, so that a
/// flood of bad credentials cannot fill the disk with the audit log.
///
/// Failures are grouped by a key the caller chooses (the credential's prefix,
/// the client's network and the reason). In each interval the first failure
/// of a key is recorded as it happens; the others of that interval are only
/// counted, and one `authenticate.failures` record with the count follows
/// when the interval ends. At most `max_keys` keys are tracked per interval;
/// failures under further keys share one overflow key. So an interval writes
/// at most `2 * (max_keys + 1)` records, however many failures arrive.
#[derive(Clone, Debug)]
pub struct FailureTally {
    interval: i64,
    max_keys: usize,
    started: UnixTime,
    keys: std::collections::BTreeMap<String, Tally>,
}

#[derive(Clone, Debug)]
struct Tally {
    first: AuditEvent,
    more: u64,
}

/// What to do with one failure.
#[derive(Clone, Debug, PartialEq)]
pub enum Tallied {
    /// Record it now: the first of its key in this interval.
    Record(AuditEvent),
    /// Counted; its interval's summary will carry it.
    Counted,
}

/// The key failures share once the tally tracks `max_keys` keys.
pub const OVERFLOW_KEY: &str = "(other)";

impl FailureTally {
    /// A tally with intervals of `interval` seconds, tracking `max_keys` keys per interval.
    pub fn new(interval: i64, max_keys: usize) -> FailureTally {
        FailureTally {
            interval: interval.max(1),
            max_keys: max_keys.max(1),
            started: 0,
            keys: std::collections::BTreeMap::new(),
        }
    }

    /// Notes a failure under `key` at `now`. Returns what to do with it, and
    /// the summaries of an interval that ended before it (to record first).
    pub fn note(
        &mut self,
        key: &str,
        event: AuditEvent,
        now: UnixTime,
    ) -> (Tallied, Vec<AuditEvent>) {
        let due = self.flush(now);
        if self.keys.is_empty() {
            self.started = now;
        }
        let key = if self.keys.contains_key(key) || self.keys.len() < self.max_keys {
            key
        } else {
            OVERFLOW_KEY
        };
        let tallied = match self.keys.get_mut(key) {
            Some(tally) => {
                tally.more = tally.more.saturating_add(1);
                Tallied::Counted
            }
            None => {
                let mut first = event.clone();
                if key == OVERFLOW_KEY {
                    first.detail = serde_json::json!({"reason": "many kinds of failure; the rest of this interval is summarised", "key": OVERFLOW_KEY});
                }
                self.keys.insert(
                    key.to_owned(),
                    Tally {
                        first: first.clone(),
                        more: 0,
                    },
                );
                Tallied::Record(first)
            }
        };
        (tallied, due)
    }

    /// The summaries of the interval if it ended by `now` (and starts a new
    /// one); nothing while it runs.
    pub fn flush(&mut self, now: UnixTime) -> Vec<AuditEvent> {
        if self.keys.is_empty() || now < self.started + self.interval {
            return Vec::new();
        }
        self.drain(now)
    }

    /// The summaries of the current interval whether or not it ended (at shutdown).
    pub fn drain(&mut self, now: UnixTime) -> Vec<AuditEvent> {
        let (from, interval) = (self.started, self.interval);
        std::mem::take(&mut self.keys)
            .into_iter()
            .filter(|(_, tally)| tally.more > 0)
            .map(|(key, tally)| {
                let first = tally.first;
                AuditEvent {
                    chain: Vec::new(),
                    action: "authenticate.failures".into(),
                    target: first.target,
                    outcome: Outcome::Unauthenticated,
                    client_ip: first.client_ip,
                    detail: serde_json::json!({
                        "count": tally.more,
                        "key": key,
                        "from": from,
                        "to": now.max(from + interval),
                        "first": first.detail,
                    }),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let record = AuditEvent::success(&[], "test.action", format!("t{seq}"))
                    .with_detail(serde_json::json!({"b": 1, "a": [seq]}))
                    .seal(seq, 1_700_000_000 + seq, &prev);
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    fn head(records: &[AuditRecord]) -> Head {
        let last = records.last().unwrap();
        Head {
            seq: last.seq,
            hash: last.hash.clone(),
        }
    }

    #[test]
    fn untouched_log_verifies() {
        let records = log(5);
        let h = head(&records);
        assert_eq!(verify(records, Some(&h)).first_break, None);
        assert_eq!(verify(Vec::new(), None).first_break, None);
    }

    #[test]
    fn edit_is_named() {
        let mut records = log(5);
        let h = head(&records);
        records[2].target = "other".into();
        assert_eq!(verify(records, Some(&h)).first_break.unwrap().seq, 3);
    }

    #[test]
    fn rehashed_edit_breaks_next_link() {
        let mut records = log(5);
        let h = head(&records);
        records[1].action = "forged".into();
        records[1].hash = records[1].compute_hash();
        assert_eq!(verify(records, Some(&h)).first_break.unwrap().seq, 3);
    }

    #[test]
    fn deletion_in_middle_and_at_end_are_named() {
        let mut records = log(5);
        let h = head(&records);
        records.remove(1);
        assert_eq!(
            verify(records.clone(), Some(&h)).first_break.unwrap().seq,
            2
        );
        let mut records = log(5);
        records.truncate(3);
        assert_eq!(verify(records, Some(&h)).first_break.unwrap().seq, 4);
    }

    #[test]
    fn hash_is_stable_across_key_order() {
        let a = AuditEvent::success(&[], "x", "y")
            .with_detail(serde_json::json!({"a": 1, "b": 2}))
            .seal(1, 5, GENESIS_HASH);
        let b = AuditEvent::success(&[], "x", "y")
            .with_detail(serde_json::json!({"b": 2, "a": 1}))
            .seal(1, 5, GENESIS_HASH);
        assert_eq!(a.hash, b.hash);
    }

    #[test]
    fn a_flood_of_failures_becomes_a_bounded_number_of_records() {
        let failure = |n: usize| AuditEvent {
            outcome: Outcome::Unauthenticated,
            ..AuditEvent::success(&[], "authenticate", format!("t{n}"))
        };
        let mut tally = FailureTally::new(60, 4);
        let mut records = 0;
        // 10,000 failures under 100 keys within one interval.
        for n in 0..10_000 {
            let (tallied, due) =
                tally.note(&format!("k{}", n % 100), failure(n), 1000 + (n as i64 % 50));
            assert!(due.is_empty());
            if matches!(tallied, Tallied::Record(_)) {
                records += 1;
            }
        }
        assert_eq!(records, 5, "four keys and the overflow key");
        assert!(tally.flush(1059).is_empty(), "the interval still runs");
        let summaries = tally.flush(1060);
        assert_eq!(summaries.len(), 5);
        let counted: u64 = summaries
            .iter()
            .map(|s| s.detail["count"].as_u64().unwrap())
            .sum();
        assert_eq!(counted + 5, 10_000, "every failure is accounted for");
        assert!(
            summaries
                .iter()
                .all(|s| s.action == "authenticate.failures")
        );
        // The next interval records its first failures again.
        let (tallied, due) = tally.note("k1", failure(0), 2000);
        assert!(matches!(tallied, Tallied::Record(_)));
        assert!(due.is_empty());
        // A lone failure has no summary.
        assert!(tally.drain(2001).is_empty());
    }

    #[test]
    fn an_interval_that_ended_is_summarised_before_the_next_failure() {
        let failure = AuditEvent {
            outcome: Outcome::Unauthenticated,
            ..AuditEvent::success(&[], "authenticate", "")
        };
        let mut tally = FailureTally::new(60, 4);
        tally.note("k", failure.clone(), 0);
        tally.note("k", failure.clone(), 1);
        let (tallied, due) = tally.note("k", failure, 100);
        assert!(matches!(tallied, Tallied::Record(_)));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].detail["count"], 1);
    }
}
