//! What a server (the authorization server or a gate) keeps to check DPoP
//! proofs: one [`ReplayCache`], one set of [`Nonces`], and the freshness
//! window, behind one call that takes the request's `DPoP` header values
//! and answers with the verified proof or why it was refused.

use crate::{Expected, Nonces, ProofError, ReplayCache, Verified, verify_proof};

/// Proofs remembered at most (32 bytes each, so a few MB).
pub const REPLAY_CAPACITY: usize = 100_000;
/// Seconds a proof is accepted after its `iat`.
pub const MAX_AGE: i64 = 60;
/// Clock skew tolerated, seconds.
pub const LEEWAY: i64 = 5;
/// Seconds one server nonce window lasts (a nonce is good for up to two).
pub const NONCE_WINDOW: i64 = 300;

/// Checks DPoP proofs for one server.
#[derive(Debug)]
pub struct Guard {
    replay: ReplayCache,
    nonces: Nonces,
}

/// What one request's proof must match.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The absolute URL as the client addressed it.
    pub url: &'a str,
    /// The access token sent with the proof, if any.
    pub access_token: Option<&'a str>,
    /// Whether the server requires its nonce.
    pub require_nonce: bool,
    /// Unix seconds.
    pub now: i64,
}

impl Guard {
    /// A guard whose nonces come from `secret` (nodes sharing the secret
    /// accept each other's nonces).
    pub fn new(secret: [u8; 32]) -> Guard {
        Guard {
            replay: ReplayCache::new(REPLAY_CAPACITY),
            nonces: Nonces::new(secret, NONCE_WINDOW),
        }
    }

    /// A guard with a random nonce secret.
    pub fn random() -> Result<Guard, ProofError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| ProofError::RandomUnavailable)?;
        Ok(Guard::new(secret))
    }

    /// A fresh server nonce, for the `DPoP-Nonce` header.
    pub fn nonce(&self, now: i64) -> String {
        self.nonces.issue(now)
    }

    /// Verifies the proof of one request (`proofs` are every `DPoP` header
    /// value it carried: exactly one is allowed), then records it so it is
    /// never accepted again.
    pub fn check(&self, proofs: &[&str], request: &Request<'_>) -> Result<Verified, ProofError> {
        let proof = match proofs {
            [one] => *one,
            [] => {
                return Err(ProofError::Malformed(
                    "send one DPoP header with a proof".into(),
                ));
            }
            _ => {
                return Err(ProofError::Malformed(
                    "send exactly one DPoP header (RFC 9449 §4.3)".into(),
                ));
            }
        };
        let expected = Expected {
            method: request.method,
            url: request.url,
            access_token: request.access_token,
            nonce: None,
            now: request.now,
            max_age: MAX_AGE,
            leeway: LEEWAY,
        };
        let verified = verify_proof(proof, &expected)?;
        if request.require_nonce
            && !verified
                .nonce
                .as_deref()
                .is_some_and(|n| self.nonces.check(n, request.now))
        {
            return Err(ProofError::UseNonce);
        }
        self.replay.admit(
            &verified.jkt,
            &verified.jti,
            expected.replay_until(verified.iat),
            request.now,
        )?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProofKey;

    const URL: &str = "https://api.example/v1/tasks";

    fn request(now: i64, require_nonce: bool) -> Request<'static> {
        Request {
            method: "POST",
            url: URL,
            access_token: None,
            require_nonce,
            now,
        }
    }

    #[test]
    fn one_fresh_proof_is_accepted_once() {
        let guard = Guard::new([7; 32]);
        let key = ProofKey::generate().unwrap();
        let proof = key.proof("POST", URL, None, None, 1000).unwrap();
        let verified = guard.check(&[&proof], &request(1000, false)).unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
        assert_eq!(
            guard.check(&[&proof], &request(1001, false)),
            Err(ProofError::Replayed)
        );
        assert!(matches!(
            guard.check(&[], &request(1000, false)),
            Err(ProofError::Malformed(_))
        ));
        let other = key.proof("POST", URL, None, None, 1000).unwrap();
        assert!(matches!(
            guard.check(&[&other, &other], &request(1000, false)),
            Err(ProofError::Malformed(_))
        ));
    }

    #[test]
    fn a_required_nonce_must_be_the_servers() {
        let guard = Guard::new([9; 32]);
        let key = ProofKey::generate().unwrap();
        let bare = key.proof("POST", URL, None, None, 1000).unwrap();
        assert_eq!(
            guard.check(&[&bare], &request(1000, true)),
            Err(ProofError::UseNonce)
        );
        let forged = key.proof("POST", URL, None, Some("made-up"), 1000).unwrap();
        assert_eq!(
            guard.check(&[&forged], &request(1000, true)),
            Err(ProofError::UseNonce)
        );
        let nonce = guard.nonce(1000);
        let good = key.proof("POST", URL, None, Some(&nonce), 1000).unwrap();
        assert!(guard.check(&[&good], &request(1000, true)).is_ok());
        let other_node = Guard::new([1; 32]);
        let foreign = key
            .proof("POST", URL, None, Some(&other_node.nonce(1000)), 1000)
            .unwrap();
        assert_eq!(
            guard.check(&[&foreign], &request(1000, true)),
            Err(ProofError::UseNonce)
        );
    }
}
