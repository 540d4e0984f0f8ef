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
    /// A task resource was neither an http(s) URL nor a scope path, or the URL is not allowed.
    #[error("invalid task resource '{input}': {why}")]
    InvalidResource {
        /// The text given (cut to 80 characters).
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A task grant was not `permission@resource`.
    #[error("invalid task grant '{input}': {why}")]
    InvalidTaskGrant {
        /// The text given (cut to 80 characters).
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// The organisation's task rules are inconsistent.
    #[error("invalid task rules: {0}")]
    InvalidTaskRules(String),
    /// A task asked for a lifetime the rules do not allow.
    #[error("task lifetime refused: {0}")]
    TaskLifetime(String),
    /// A task would be nested deeper than the rules allow.
    #[error("task depth {depth} is deeper than the {max} the rules allow")]
    TaskTooDeep {
        /// The depth asked for.
        depth: u8,
        /// The rules' bound.
        max: u8,
    },
    /// An intent rules file did not load; nothing of it is used.
    #[error("invalid intent rules: {0}")]
    InvalidIntentRules(String),
    /// A task description was refused before any matching.
    #[error("task description refused: {0}")]
    DescriptionRefused(&'static str),
    /// No intent rule matched a task description.
    #[error(
        "no intent rule matched the task description: describe the task differently or list permissions"
    )]
    NoIntentMatched,
}
