//! PKCE (RFC 7636), S256 only: OAuth 2.1 and the MCP authorization spec
//! refuse `plain` and missing challenges.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::OAuthError;

/// A validated S256 code challenge (43 base64url characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge(String);

impl Challenge {
    /// Checks an authorization request's `code_challenge` and
    /// `code_challenge_method`. Missing method defaults to `plain` per RFC 7636,
    /// so it is refused like `plain`.
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Challenge, OAuthError> {
        let challenge = challenge.ok_or_else(|| {
            OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
        })?;
        match method {
            Some("S256") => {}
            Some("plain") | None => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method must be S256; plain PKCE is not allowed",
                ));
            }
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported code_challenge_method '{}'; use S256",
                    other.chars().take(20).collect::<String>()
                )));
            }
        }
        if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
            return Err(OAuthError::invalid_request(
                "code_challenge must be the 43-character base64url SHA-256 of the verifier",
            ));
        }
        Ok(Challenge(challenge.to_owned()))
    }

    /// Restores a challenge stored by the server.
    pub fn stored(text: String) -> Challenge {
        Challenge(text)
    }

    /// The challenge text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (RFC 7636 §4.1: 43 to 128 unreserved characters)
    /// hashes to this challenge. Compared in constant time.
    pub fn verify(&self, verifier: &str) -> Result<(), OAuthError> {
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
            return Err(OAuthError::invalid_grant(
                "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
            ));
        }
        let computed = challenge_for(verifier);
        if bool::from(computed.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ))
        }
    }
}

/// The S256 challenge for a verifier.
pub fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge_for(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let challenge =
            Challenge::from_request(Some(&challenge_for(verifier)), Some("S256")).unwrap();
        challenge.verify(verifier).unwrap();
        assert!(
            challenge
                .verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx")
                .is_err()
        );
    }

    #[test]
    fn plain_and_missing_are_refused() {
        let c = challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(Challenge::from_request(Some(&c), Some("plain")).is_err());
        assert!(Challenge::from_request(Some(&c), None).is_err());
        assert!(Challenge::from_request(None, Some("S256")).is_err());
        assert!(Challenge::from_request(Some("short"), Some("S256")).is_err());
    }

    #[test]
    fn short_verifiers_are_refused() {
        let challenge = Challenge::from_request(Some(&challenge_for("abc")), Some("S256")).unwrap();
        assert!(
            challenge.verify("abc").is_err(),
            "RFC 7636 requires 43+ characters"
        );
    }
}
