//! The agent's side: an ES256 key that signs DPoP proofs.
//!
//! A [`ProofKey`] is created once per agent ([`ProofKey::generate`]), stored
//! as PKCS#8 PEM ([`ProofKey::to_pem`], [`ProofKey::from_pem`]), and signs one
//! fresh proof per request ([`ProofKey::proof`]). Its `Debug` shows only the
//! thumbprint, never the private key.
//!
//! `p256` holds the key (generation, PEM); `ring` signs, several times
//! faster, since a proof is signed on every request an agent makes.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
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
    /// The same key pair, for `ring` to sign with.
    pair: Arc<EcdsaKeyPair>,
    /// The public key as a JWK, as every proof's header carries it.
    jwk: Value,
    random: SystemRandom,
}

impl ProofKey {
    /// A new key from the operating system's random generator.
    pub fn generate() -> Result<ProofKey, ProofError> {
        for _ in 0..GENERATE_ATTEMPTS {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|_| ProofError::RandomUnavailable)?;
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return ProofKey::from_signing(signing);
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
        let signing = SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| ProofError::BadKey("expected a P-256 private key in PKCS#8 PEM".into()))?;
        ProofKey::from_signing(signing)
    }

    fn from_signing(signing: SigningKey) -> Result<ProofKey, ProofError> {
        let point = signing.verifying_key().to_encoded_point(false);
        let random = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &signing.to_bytes(),
            point.as_bytes(),
            &random,
        )
        .map_err(|_| ProofError::BadKey("the P-256 key pair is inconsistent".into()))?;
        let coordinate = |c: Option<&p256::FieldBytes>| {
            c.map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .unwrap_or_default()
        };
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": coordinate(point.x()),
            "y": coordinate(point.y()),
        });
        Ok(ProofKey {
            signing,
            pair: Arc::new(pair),
            jwk,
            random,
        })
    }

    /// The public key as a JWK: `kty`, `crv`, `x`, `y`.
    pub fn public_jwk(&self) -> Value {
        self.jwk.clone()
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
        let header = json!({"typ": TYP, "alg": "ES256", "jwk": self.jwk});
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
        let signature = self
            .pair
            .sign(&self.random, input.as_bytes())
            .map_err(|_| ProofError::RandomUnavailable)?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
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
    fn proofs_verify_with_an_independent_ecdsa_implementation() -> Result<(), ProofError> {
        use p256::ecdsa::signature::Verifier as _;
        // Signed by ring; checked by the RustCrypto p256 crate against the
        // key read back from its PEM, so both halves agree on the key.
        let key = ProofKey::from_pem(&ProofKey::generate()?.to_pem())?;
        let proof = key.proof("GET", "https://api.example/x", Some("tok"), None, 1)?;
        let (input, signature) = proof.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let signature = p256::ecdsa::Signature::from_slice(&signature).expect("64 bytes");
        key.signing
            .verifying_key()
            .verify(input.as_bytes(), &signature)
            .expect("a valid ES256 signature");
        let header = input.split('.').next().expect("header");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
                .expect("json");
        assert_eq!(header["jwk"], key.public_jwk());
        Ok(())
    }

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
