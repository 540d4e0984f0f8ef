//! The domain's error type: every way an input can fail to become a domain value.

/// A domain value could not be built from the input given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A scope path did not parse.
    #[error("invalid scope '{input}': {why}")]
    InvalidScope {
        /// The text given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A principal, role or permission name did not parse.
    #[error("invalid {what} '{input}': {why}")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// The text given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A time-to-live did not parse.
    #[error("invalid ttl '{input}': {why}")]
    InvalidTtl {
        /// The text given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A principal kind was not one of user, service, agent, task.
    #[error("unknown principal kind '{0}': expected user, service, agent or task")]
    UnknownPrincipalKind(String),
    /// A client IP range did not parse as CIDR.
    #[error(
        "invalid IP range '{0}': expected CIDR like 10.0.0.0/8 or 2001:db8::/32, or a single address"
    )]
    InvalidIpRange(String),
}
