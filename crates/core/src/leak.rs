//! Leaked credentials: what a leak report says, what Laissez decides to do
//! about it, and the incident that records both.
//!
//! A report names a token (by its hash, never stored in plaintext), where it
//! was seen, and whether that place is public. A live token seen in public is
//! revoked at once; one seen in a private place is flagged and its owner told,
//! and revoked only when the organization says so
//! (`revoke_private_leaks`). Every report of a real token becomes an incident.

use serde::{Deserialize, Serialize};

use crate::UnixTime;

/// One reported token, checked well-formed (its checksum verified) by the caller.
#[derive(Clone, Debug)]
pub struct LeakReport {
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// The token kind's two-letter code (`ut`, `rt`, ...).
    pub kind: String,
    /// The token's prefix (`lzut_`), not secret.
    pub prefix: String,
    /// The token's last four characters, not secret.
    pub last4: String,
    /// Where it was seen (a URL, a path and line).
    pub url: String,
    /// What kind of place (`content`, `commit`, `laissez-scan`, `gate-dlp`, ...).
    pub source: String,
    /// Whether the place is public.
    pub public: bool,
    /// Who reported it: `github` or a principal reference.
    pub reporter: String,
}

/// What was done about one reported token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeakAction {
    /// It was live and is now revoked.
    Revoked,
    /// It is live; it was flagged and its owner told, but not revoked.
    Flagged,
    /// It was already revoked or expired; its owner is told anyway.
    AlreadyInactive,
    /// No such token exists here: a false positive.
    Unknown,
}

impl LeakAction {
    /// Decides what to do with a token found `live` (or not), seen in a
    /// `public` place (or not), under the organization's policy.
    pub fn decide(exists: bool, live: bool, public: bool, revoke_private: bool) -> LeakAction {
        match (exists, live) {
            (false, _) => LeakAction::Unknown,
            (true, false) => LeakAction::AlreadyInactive,
            (true, true) if public || revoke_private => LeakAction::Revoked,
            (true, true) => LeakAction::Flagged,
        }
    }

    /// The label GitHub's secret-scanning partner protocol expects.
    pub fn label(self) -> &'static str {
        match self {
            LeakAction::Unknown => "false_positive",
            _ => "true_positive",
        }
    }

    /// The action as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakAction::Revoked => "revoked",
            LeakAction::Flagged => "flagged",
            LeakAction::AlreadyInactive => "already_inactive",
            LeakAction::Unknown => "unknown",
        }
    }

    /// Parses a stored action.
    pub fn parse(text: &str) -> Option<LeakAction> {
        [
            LeakAction::Revoked,
            LeakAction::Flagged,
            LeakAction::AlreadyInactive,
            LeakAction::Unknown,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// A recorded leak of a real token.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Identifier, `lk_...`.
    pub id: String,
    /// The token kind's code.
    pub kind: String,
    /// The token's prefix and last four characters, e.g. `lzut_…x9Qa`.
    pub token_hint: String,
    /// The credential it belongs to (token id, client id or grant).
    pub credential_id: Option<String>,
    /// The principal the credential acts as.
    pub principal_id: Option<String>,
    /// The human who answers for it, who is told.
    pub owner_id: Option<String>,
    /// Who reported it.
    pub reporter: String,
    /// What kind of place it was seen in.
    pub source: String,
    /// Where it was seen.
    pub url: String,
    /// Whether that place is public.
    pub public: bool,
    /// What was done.
    pub action: LeakAction,
    /// When the report arrived.
    pub reported_at: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_leaks_are_revoked_and_private_ones_only_by_policy() {
        assert_eq!(
            LeakAction::decide(true, true, true, false),
            LeakAction::Revoked
        );
        assert_eq!(
            LeakAction::decide(true, true, false, false),
            LeakAction::Flagged
        );
        assert_eq!(
            LeakAction::decide(true, true, false, true),
            LeakAction::Revoked
        );
        assert_eq!(
            LeakAction::decide(true, false, true, false),
            LeakAction::AlreadyInactive
        );
        assert_eq!(
            LeakAction::decide(false, false, true, true),
            LeakAction::Unknown
        );
        assert_eq!(LeakAction::Unknown.label(), "false_positive");
        assert_eq!(LeakAction::Flagged.label(), "true_positive");
    }
}
