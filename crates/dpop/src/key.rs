//! The agent's side: an ES256 key that signs DPoP proofs.
//!
//! A [`ProofKey`] is created once per agent ([`ProofKey::generate`]), stored
//! as PKCS#8 PEM ([`ProofKey::to_pem`], [`ProofKey::from_pem`]), and signs one
//! fresh proof per request ([`ProofKey::proof`]). Its `Debug` shows only the
//! thumbprint, never the private key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use crate::jwk;
use crate::proof::{ProofError, TYP, ath, htu};

/// Random characters in a proof's `jti` (about 131 bits).
const JTI_LEN: usize = 22;

/// Attempts at drawing a valid P-256 scalar before giving up; a random 32-byte
/// string is out of range with probability about 2^-32.
const GENERATE_ATTEMPTS: usize = 8;

/// An ES256 (P-256) key that signs DPoP proofs.
#[derive(Clone)]
pub struct ProofKey {
    signing: SigningKey,
}

impl ProofKey {
    /// A new key from the operating system's random generator.
    pub fn generate() -> Result<ProofKey, ProofError> {
        for _ in 0..GENERATE_ATTEMPTS {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|_| ProofError::RandomUnavailable)?;
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return Ok(ProofKey { signing });
            }
        }
        Err(ProofError::RandomUnavailable)
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pem(&self) -> String {
        match self.signing.to_pkcs8_pem(LineEnding::LF) {
            Ok(pem) => pem.to_string(),
            // Encoding a valid P-256 key into memory has no failure mode in
            // practice; an empty string then fails `from_pem` loudly.
            Err(_) => String::new(),
        }
    }

    /// Reads a P-256 private key from PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<ProofKey, ProofError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|signing| ProofKey { signing })
            .map_err(|_| ProofError::BadKey("expected a P-256 private key in PKCS#8 PEM".into()))
    }

    /// The public key as a JWK: `kty`, `crv`, `x`, `y`.
    pub fn public_jwk(&self) -> Value {
        let point = self.signing.verifying_key().to_encoded_point(false);
        let coordinate = |c: Option<&p256::FieldBytes>| {
            c.map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .unwrap_or_default()
        };
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": coordinate(point.x()),
            "y": coordinate(point.y()),
        })
    }

    /// The RFC 7638 thumbprint of the public key: what a bound token's
    /// `cnf.jkt` holds.
    pub fn thumbprint(&self) -> String {
        // The JWK built above always has the EC members a thumbprint needs.
        jwk::thumbprint(&self.public_jwk()).unwrap_or_default()
    }

    /// A fresh proof for one request: `htm` = `method`, `htu` = the
    /// normalised `url`, `iat` = `now`, a random `jti`, and `ath` / `nonce`
    /// when given.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<String, ProofError> {
        let jti =
            laissez_token::random_base62(JTI_LEN).map_err(|_| ProofError::RandomUnavailable)?;
        let header = json!({"typ": TYP, "alg": "ES256", "jwk": self.public_jwk()});
        let mut claims = json!({"jti": jti, "htm": method, "htu": htu(url)?, "iat": now});
        if let Some(token) = access_token {
            claims["ath"] = Value::String(ath(token));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.signing.sign(input.as_bytes());
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

impl fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofKey")
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() -> Result<(), ProofError> {
        let key = ProofKey::generate()?;
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = ProofKey::from_pem(&pem)?;
        assert_eq!(again.public_jwk(), key.public_jwk());
        assert_eq!(again.thumbprint(), key.thumbprint());
        Ok(())
    }

    #[test]
    fn from_pem_refuses_garbage() {
        assert!(matches!(
            ProofKey::from_pem("nope"),
            Err(ProofError::BadKey(_))
        ));
        assert!(matches!(ProofKey::from_pem(""), Err(ProofError::BadKey(_))));
    }

    #[test]
    fn generated_keys_differ() -> Result<(), ProofError> {
        assert_ne!(
            ProofKey::generate()?.thumbprint(),
            ProofKey::generate()?.thumbprint()
        );
        Ok(())
    }

    #[test]
    fn debug_shows_only_the_thumbprint() -> Result<(), ProofError> {
        let key = ProofKey::generate()?;
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.thumbprint()));
        let secret = URL_SAFE_NO_PAD.encode(key.signing.to_bytes());
        assert!(!shown.contains(&secret));
        Ok(())
    }

    #[test]
    fn jwk_has_p256_coordinates() -> Result<(), ProofError> {
        let jwk = ProofKey::generate()?.public_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        for member in ["x", "y"] {
            let bytes = jwk[member].as_str().map(|s| URL_SAFE_NO_PAD.decode(s));
            assert!(matches!(bytes, Some(Ok(b)) if b.len() == 32));
        }
        Ok(())
    }
}
