//! Principals: who is acting.
//!
//! A `user` is a human. Every other principal (`service`, `agent`, `task`) has
//! a human owner and a delegator (`parent`): for services and agents the
//! delegator is the owner; a task's delegator is the agent or service that
//! started it. The delegation chain runs from the human down to the principal.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Error, Name, UnixTime};

/// What kind of traveller a principal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A human.
    User,
    /// A script or CI identity.
    Service,
    /// An AI agent or OAuth client acting for a user.
    Agent,
    /// An ephemeral principal for one task.
    Task,
}

impl PrincipalKind {
    /// The lowercase name used in the API, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Service => "service",
            PrincipalKind::Agent => "agent",
            PrincipalKind::Task => "task",
        }
    }

    /// Parses `user`, `service`, `agent` or `task`.
    pub fn parse(text: &str) -> Result<PrincipalKind, Error> {
        match text {
            "user" => Ok(PrincipalKind::User),
            "service" => Ok(PrincipalKind::Service),
            "agent" => Ok(PrincipalKind::Agent),
            "task" => Ok(PrincipalKind::Task),
            other => Err(Error::UnknownPrincipalKind(
                other.chars().take(40).collect(),
            )),
        }
    }

    /// Whether principals of this kind are people (and so need no owner).
    pub fn is_human(self) -> bool {
        self == PrincipalKind::User
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a principal may act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// May authenticate.
    Active,
    /// Deactivated: its credentials, and those of everything it owns, are refused.
    Inactive,
}

impl Status {
    /// The lowercase name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }

    /// Parses `active` or `inactive`.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "active" => Some(Status::Active),
            "inactive" => Some(Status::Inactive),
            _ => None,
        }
    }
}

/// A principal as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    /// Stable identifier, e.g. `usr_3k9...`.
    pub id: String,
    /// What kind of principal this is.
    pub kind: PrincipalKind,
    /// Unique lowercase name.
    pub name: Name,
    /// The human who answers for it; none only for users.
    pub owner_id: Option<String>,
    /// The principal it acts for (its delegator); none only for users.
    pub parent_id: Option<String>,
    /// Whether it may act.
    pub status: Status,
    /// Free text for people.
    pub description: String,
    /// When it was created.
    pub created_at: UnixTime,
}

impl Principal {
    /// A short reference to this principal for chains and audit records.
    pub fn reference(&self) -> PrincipalRef {
        PrincipalRef {
            id: self.id.clone(),
            kind: self.kind,
            name: self.name.as_str().to_owned(),
        }
    }
}

/// Who, in a delegation chain or an audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrincipalRef {
    /// The principal's identifier.
    pub id: String,
    /// Its kind.
    pub kind: PrincipalKind,
    /// Its name.
    pub name: String,
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// Formats a chain as `user:alice → agent:bot → task:t1`.
pub fn format_chain(chain: &[PrincipalRef]) -> String {
    chain
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}
