//! OAuth 2.0 Demonstrating Proof of Possession (DPoP, RFC 9449) for Laissez,
//! without I/O.
//!
//! Three parties use it. The authorization server and the gate verify the
//! proof a client sends in the `DPoP` header ([`verify_proof`]), refuse
//! replays ([`ReplayCache`]) and hand out nonces every node agrees on
//! ([`Nonces`]); the agent signs proofs with a [`ProofKey`]. A verified proof
//! yields the RFC 7638 thumbprint of its key ([`Verified::jkt`]), which an
//! access token binds to through its `cnf.jkt` claim ([`Verified::matches`]).
//!
//! The usual server sequence is: [`verify_proof`] (or
//! [`verify_proof_with_nonces`]) with the request's method, URL, access token
//! and clock; then [`ReplayCache::admit`] with the thumbprint, the `jti` and
//! [`Expected::replay_until`]; then, for a bound token, [`Verified::matches`]
//! against its `cnf.jkt`.

pub mod guard;
pub mod jwk;
pub mod key;
pub mod nonce;
pub mod proof;
pub mod replay;

pub use guard::Guard;
pub use key::ProofKey;
pub use nonce::{Nonces, verify_proof_with_nonces};
pub use proof::{ALGORITHMS, Expected, ProofError, TYP, Verified, ath, htu, verify_proof};
pub use replay::ReplayCache;
