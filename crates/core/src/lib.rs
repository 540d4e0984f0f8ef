//! The Laissez domain: who (principals), proof of who (credentials), and what
//! they may do (policies), with the audit records that say what happened.
//!
//! Everything here is pure: no I/O, no clock, no randomness. Callers pass the
//! current time and fresh identifiers in, which keeps policy evaluation a pure
//! function that tests and benchmarks can drive directly.

pub mod admin;
pub mod audit;
pub mod binding;
pub mod credential;
pub mod error;
pub mod exchange;
pub mod leak;
pub mod name;
pub mod policy;
pub mod principal;
pub mod scope;
pub mod task;
pub mod ttl;

pub use binding::KeyBinding;
pub use error::Error;
pub use name::{Name, Permission};
pub use policy::{Decision, DenyReason, Grant, Policy, PolicySet, Restriction, Role};
pub use principal::{Principal, PrincipalKind, PrincipalRef, Status};
pub use scope::Scope;
pub use ttl::Ttl;

/// Seconds since the Unix epoch, UTC. The domain's one notion of time.
pub type UnixTime = i64;
