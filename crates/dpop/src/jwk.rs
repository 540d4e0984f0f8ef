//! Public JSON Web Keys as they appear in a proof's header: refusing private
//! keys, checking that a key fits the proof's algorithm, turning it into a
//! verification key ([`public_key`]), and its RFC 7638 thumbprint.
//!
//! ES256, what nearly every client signs with, is verified by `ring`
//! (constant-time P-256 in assembly, several times faster than the pure-Rust
//! curve); the other algorithms by `jsonwebtoken`'s RustCrypto backend.
//!
//! Only the members a thumbprint covers are read (`crv`, `kty`, `x`, `y` for
//! EC; `crv`, `kty`, `x` for OKP; `e`, `kty`, `n` for RSA), so the key that
//! checks the signature and the thumbprint a token binds to come from the
//! same strings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::proof::ProofError;

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required
/// members in lexicographic order without whitespace, base64url without
/// padding.
///
/// Supports `EC`, `OKP` and `RSA` keys; other key types, or a key missing a
/// required member, are refused as [`ProofError::Malformed`].
pub fn thumbprint(jwk: &Value) -> Result<String, ProofError> {
    let canonical = required_members(jwk)?;
    // Serialising a map of strings cannot fail; `Map` keeps keys sorted
    // (serde_json without `preserve_order`), which is the order RFC 7638 asks.
    let text = Value::Object(canonical).to_string();
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// Whether `jwk` carries private key material (`d`, `p`, `q`, `dp`, `dq`,
/// `qi`, `oth` or a symmetric `k`).
pub fn has_private_members(jwk: &Value) -> bool {
    PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.get(member).is_some())
}

/// The key that verifies a proof signed with `alg` by the holder of `jwk`,
/// as a `jsonwebtoken` key.
///
/// Refuses private keys, keys whose type or curve does not fit `alg`, and
/// keys whose coordinates have the wrong size (an RSA modulus must be 2048 to
/// 4096 bits).
pub fn decoding_key(jwk: &Value, alg: Algorithm) -> Result<DecodingKey, ProofError> {
    jose_key(checked_members(jwk, alg)?)
}

/// The key that verifies a proof signed with `alg` by the holder of `jwk`,
/// with the same refusals as [`decoding_key`]; an EC key must also be a
/// point on its curve.
pub fn public_key(jwk: &Value, alg: Algorithm) -> Result<PublicKey, ProofError> {
    let members = checked_members(jwk, alg)?;
    if alg != Algorithm::ES256 {
        return Ok(PublicKey::Jose(alg, jose_key(members)?));
    }
    let x = decoded_len(&members, "x", 32..=32)?;
    let y = decoded_len(&members, "y", 32..=32)?;
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    if p256::PublicKey::from_sec1_bytes(&point).is_err() {
        return Err(malformed(
            "the jwk is not a valid public key: not a point on P-256",
        ));
    }
    Ok(PublicKey::P256(point))
}

/// A proof's verification key, from [`public_key`].
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// An ES256 key: the uncompressed SEC1 point, checked to be on P-256.
    P256(Vec<u8>),
    /// A key of another algorithm, verified by `jsonwebtoken`.
    Jose(Algorithm, DecodingKey),
}

impl PublicKey {
    /// Checks `signature` (the decoded third part of the JWS) over
    /// `message` (the first two parts and the dot between them).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        match self {
            PublicKey::P256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .map_err(|_| ProofError::BadSignature),
            PublicKey::Jose(alg, key) => {
                let encoded = URL_SAFE_NO_PAD.encode(signature);
                match jsonwebtoken::crypto::verify(&encoded, message, key, *alg) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ProofError::BadSignature),
                    Err(e) => Err(malformed(&format!("the proof cannot be read ({e})"))),
                }
            }
        }
    }
}

/// The thumbprint members of `jwk`, once it is a public key that fits `alg`
/// with members of the right sizes.
fn checked_members(jwk: &Value, alg: Algorithm) -> Result<Map<String, Value>, ProofError> {
    if has_private_members(jwk) {
        return Err(ProofError::PrivateKeyInHeader);
    }
    let members = required_members(jwk)?;
    let text = |name: &str| members.get(name).and_then(Value::as_str).unwrap_or("");
    let kty = text("kty");
    let crv = text("crv");
    let fits = match alg {
        Algorithm::ES256 => kty == "EC" && crv == "P-256",
        Algorithm::ES384 => kty == "EC" && crv == "P-384",
        Algorithm::EdDSA => kty == "OKP" && crv == "Ed25519",
        Algorithm::RS256 | Algorithm::PS256 => kty == "RSA",
        _ => false,
    };
    if !fits {
        return Err(ProofError::UnsupportedAlgorithm(format!(
            "{alg:?} with a {kty} {crv} key"
        )));
    }
    match kty {
        "EC" => {
            let size = if crv == "P-256" { 32 } else { 48 };
            decoded_len(&members, "x", size..=size)?;
            decoded_len(&members, "y", size..=size)?;
        }
        "OKP" => {
            decoded_len(&members, "x", 32..=32)?;
        }
        _ => {
            let modulus = decoded_len(&members, "n", 256..=512)?;
            if modulus.first() == Some(&0) {
                return Err(malformed("the jwk's RSA modulus has a leading zero octet"));
            }
            decoded_len(&members, "e", 1..=8)?;
        }
    }
    Ok(members)
}

/// Checked members as a `jsonwebtoken` key.
fn jose_key(members: Map<String, Value>) -> Result<DecodingKey, ProofError> {
    let jwk: Jwk = serde_json::from_value(Value::Object(members))
        .map_err(|e| malformed(&format!("the jwk is not a valid public key: {e}")))?;
    DecodingKey::from_jwk(&jwk)
        .map_err(|e| malformed(&format!("the jwk is not a valid public key: {e}")))
}

/// The members RFC 7638 hashes for this key type, each checked to be a string.
fn required_members(jwk: &Value) -> Result<Map<String, Value>, ProofError> {
    let Some(object) = jwk.as_object() else {
        return Err(malformed("the jwk must be a JSON object"));
    };
    let names: &[&str] = match object.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("RSA") => &["e", "kty", "n"],
        Some(other) => {
            return Err(ProofError::UnsupportedAlgorithm(format!(
                "key type {other:?}"
            )));
        }
        None => return Err(malformed("the jwk has no string \"kty\" member")),
    };
    let mut members = Map::new();
    for name in names {
        match object.get(*name) {
            Some(Value::String(value)) => {
                members.insert((*name).to_owned(), Value::String(value.clone()));
            }
            _ => {
                return Err(malformed(&format!("the jwk has no string {name:?} member")));
            }
        }
    }
    Ok(members)
}

/// Decodes the base64url member `name` and checks its length in bytes.
fn decoded_len(
    members: &Map<String, Value>,
    name: &str,
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<Vec<u8>, ProofError> {
    let text = members.get(name).and_then(Value::as_str).unwrap_or("");
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| malformed(&format!("the jwk's {name:?} is not base64url")))?;
    if !allowed.contains(&bytes.len()) {
        return Err(malformed(&format!(
            "the jwk's {name:?} has {} bytes, expected {} to {}",
            bytes.len(),
            allowed.start(),
            allowed.end()
        )));
    }
    Ok(bytes)
}

fn malformed(reason: &str) -> ProofError {
    ProofError::Malformed(reason.to_owned())
}

/// Members that only a private (or symmetric) JWK has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7638_rsa_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).ok().as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn ec_example() {
        // The P-256 key of RFC 7517 Appendix A.1. Expected value computed with
        //   python3 -c 'import hashlib,base64,json; j={"crv":"P-256","kty":"EC",
        //   "x":"MKBC…","y":"4Etl…"}; s=json.dumps(j,separators=(",",":"),
        //   sort_keys=True); print(base64.urlsafe_b64encode(
        //   hashlib.sha256(s.encode()).digest()).rstrip(b"=").decode())'
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
            "use": "enc",
            "kid": "1"
        });
        assert_eq!(
            thumbprint(&jwk).ok().as_deref(),
            Some("cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s")
        );
    }

    #[test]
    fn okp_example() {
        // Computed the same way as `ec_example`, over
        // {"crv":"Ed25519","kty":"OKP","x":"ie_a…"}.
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "ie_aufUm2EwdT-0Jc2tChUwTOWCyv-e8gHjMV0ob8Xk"});
        assert_eq!(
            thumbprint(&jwk).ok().as_deref(),
            Some("JWLrCZTakAmiPMDjby7d9k8S3KeI_Z5h1PJhSGx5ueI")
        );
    }

    #[test]
    fn member_order_and_extras_do_not_matter() {
        let a = json!({"y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "kty": "EC", "crv": "P-256"});
        let b = json!({"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM", "alg": "ES256"});
        assert_eq!(thumbprint(&a).ok(), thumbprint(&b).ok());
    }

    #[test]
    fn refuses_incomplete_or_unknown_keys() {
        for jwk in [
            json!("not an object"),
            json!({"kty": "EC", "crv": "P-256", "x": "AA"}),
            json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": 7}),
            json!({"kty": "oct", "k": "AA"}),
            json!({"crv": "P-256", "x": "AA", "y": "AA"}),
        ] {
            assert!(thumbprint(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn p256_keys_must_be_points_on_the_curve() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
        assert!(matches!(
            public_key(&ec, Algorithm::ES256),
            Ok(PublicKey::P256(_))
        ));
        let mut off_curve = ec.clone();
        off_curve["y"] = json!("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyA");
        assert!(matches!(
            public_key(&off_curve, Algorithm::ES256),
            Err(ProofError::Malformed(_))
        ));
        let signature = [0u8; 64];
        assert_eq!(
            public_key(&ec, Algorithm::ES256)
                .and_then(|key| key.verify(b"message", &signature))
                .err(),
            Some(ProofError::BadSignature)
        );
    }

    #[test]
    fn decoding_key_refuses_private_and_mismatched_keys() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
        assert!(decoding_key(&ec, Algorithm::ES256).is_ok());
        assert!(matches!(
            decoding_key(&ec, Algorithm::ES384),
            Err(ProofError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            decoding_key(&ec, Algorithm::HS256),
            Err(ProofError::UnsupportedAlgorithm(_))
        ));
        let mut private = ec.clone();
        private["d"] = json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
        assert_eq!(
            decoding_key(&private, Algorithm::ES256).err(),
            Some(ProofError::PrivateKeyInHeader)
        );
        let short = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
        assert!(matches!(
            decoding_key(&short, Algorithm::EdDSA),
            Err(ProofError::Malformed(_))
        ));
    }
}
