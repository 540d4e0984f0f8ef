//! The authorization server's signing keys: ES256 (P-256) key pairs that sign
//! access tokens and are published as a JWK Set.
//!
//! Keys live in `DATA/signing-keys.json`, readable by the server's user only
//! (like the admin token, they are secrets that cannot be hashed). The newest
//! key signs; older keys stay published and verify until they are dropped,
//! so rotating never breaks tokens in flight. Each key's `kid` is its RFC 7638
//! JWK thumbprint.
//!
//! Signing goes through `ring` (every issuance signs, and its P-256 is
//! several times faster than the pure-Rust curve); verification through
//! `jsonwebtoken`, whose claim checks it needs.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use p256::ecdsa::SigningKey;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Keys kept (the signing key and the ones before it).
pub const KEPT: usize = 3;
/// The key file inside the data folder.
pub const KEY_FILE: &str = "signing-keys.json";

/// Why keys could not be loaded, saved or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("signing keys at {path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// No randomness.
    #[error("cannot generate a signing key: the OS random source failed")]
    Random,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at: i64,
    /// The private scalar, base64url.
    d: String,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

struct LoadedKey {
    kid: String,
    signing: EcdsaKeyPair,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

/// The signing keys, newest first.
pub struct KeyRing {
    path: PathBuf,
    keys: RwLock<Vec<LoadedKey>>,
    random: SystemRandom,
}

fn generate(now: i64) -> Result<StoredKey, KeyError> {
    loop {
        let mut d = [0u8; 32];
        getrandom_fill(&mut d)?;
        // A scalar of zero or at least the group order is refused; retry.
        if let Ok(key) = SigningKey::from_bytes(&d.into()) {
            let (_, kid) = public_jwk(&key);
            return Ok(StoredKey {
                kid,
                created_at: now,
                d: URL_SAFE_NO_PAD.encode(d),
            });
        }
    }
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|_| KeyError::Random)
}

/// The public JWK of a key and its RFC 7638 thumbprint.
fn public_jwk(key: &SigningKey) -> (serde_json::Value, String) {
    let point = key.verifying_key().to_encoded_point(false);
    let x = URL_SAFE_NO_PAD.encode(point.x().map(|x| x.as_slice()).unwrap_or_default());
    let y = URL_SAFE_NO_PAD.encode(point.y().map(|y| y.as_slice()).unwrap_or_default());
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256",
    });
    (jwk, kid)
}

fn load(stored: &StoredKey) -> Result<LoadedKey, String> {
    let d = URL_SAFE_NO_PAD
        .decode(&stored.d)
        .map_err(|e| e.to_string())?;
    let bytes: [u8; 32] = d
        .try_into()
        .map_err(|_| "a key is not 32 bytes".to_owned())?;
    let key = SigningKey::from_bytes(&bytes.into()).map_err(|e| e.to_string())?;
    let point = key.verifying_key().to_encoded_point(false);
    let signing = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &bytes,
        point.as_bytes(),
        &SystemRandom::new(),
    )
    .map_err(|e| format!("key {} is not a P-256 key pair: {e}", stored.kid))?;
    let (jwk, kid) = public_jwk(&key);
    if kid != stored.kid {
        return Err(format!("key {} does not match its kid", stored.kid));
    }
    let decoding = DecodingKey::from_ec_components(
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    Ok(LoadedKey {
        kid,
        signing,
        decoding,
        jwk,
    })
}

impl KeyRing {
    /// Loads the keys in `data_dir`, creating a first key if there is none.
    pub fn open(data_dir: &Path, now: i64) -> Result<KeyRing, KeyError> {
        let path = data_dir.join(KEY_FILE);
        let fail = |why: String| KeyError::File {
            path: path.clone(),
            why,
        };
        let mut file: KeyFile = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| fail(format!("not a key file: {e}")))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyFile::default(),
            Err(e) => return Err(fail(e.to_string())),
        };
        if file.keys.is_empty() {
            file.keys.push(generate(now)?);
            save(&path, &file).map_err(fail)?;
        }
        let keys = file
            .keys
            .iter()
            .map(load)
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        Ok(KeyRing {
            path,
            keys: RwLock::new(keys),
            random: SystemRandom::new(),
        })
    }

    /// Adds a new signing key; the previous ones keep verifying. Returns the new kid.
    pub fn rotate(&self, now: i64) -> Result<String, KeyError> {
        let fail = |why: String| KeyError::File {
            path: self.path.clone(),
            why,
        };
        let mut file: KeyFile = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let key = generate(now)?;
        let kid = key.kid.clone();
        file.keys.insert(0, key);
        file.keys.truncate(KEPT);
        save(&self.path, &file).map_err(fail)?;
        let loaded = file
            .keys
            .iter()
            .map(load)
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = loaded;
        }
        Ok(kid)
    }

    /// Signs `claims` as a JWT of type `typ` with the newest key.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let keys = self
            .keys
            .read()
            .map_err(|_| KeyError::Sign("key lock poisoned".into()))?;
        let key = keys
            .first()
            .ok_or_else(|| KeyError::Sign("no signing key".into()))?;
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        let input = format!("{}.{}", jws_part(&header)?, jws_part(claims)?);
        let signature = key
            .signing
            .sign(&self.random, input.as_bytes())
            .map_err(|_| KeyError::Sign("the ECDSA signature failed".into()))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Verifies a JWT signed by one of the keys, with `validation`'s checks.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, jsonwebtoken::errors::Error> {
        let header = jsonwebtoken::decode_header(token)?;
        let keys = self
            .keys
            .read()
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
        let key = keys
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidSignature)?;
        Ok(jsonwebtoken::decode::<T>(token, &key.decoding, validation)?.claims)
    }

    /// The public keys as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .read()
            .map(|keys| keys.iter().map(|k| k.jwk.clone()).collect())
            .unwrap_or_default();
        serde_json::json!({ "keys": keys })
    }
}

/// One part of a compact JWS: base64url of the JSON, without padding.
fn jws_part(value: &impl Serialize) -> Result<String, KeyError> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|e| KeyError::Sign(e.to_string()))
}

fn save(path: &Path, file: &KeyFile) -> Result<(), String> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&tmp).map_err(|e| e.to_string())?;
    out.write_all(&serde_json::to_vec_pretty(file).map_err(|e| e.to_string())?)
        .and_then(|()| out.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// ES256 validation for tokens from `issuer` for `audience`.
pub fn validation(issuer: &str, audience: &[&str]) -> Validation {
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(audience);
    validation.leeway = 5;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Claims {
        iss: String,
        aud: String,
        sub: String,
        exp: i64,
    }

    #[test]
    fn sign_verify_rotate() {
        let dir = tempfile_dir();
        let ring = KeyRing::open(&dir, 1).unwrap();
        let claims = Claims {
            iss: "https://issuer.example".into(),
            aud: "https://api.example".into(),
            sub: "usr_1".into(),
            exp: 4_000_000_000,
        };
        let v = validation("https://issuer.example", &["https://api.example"]);
        let first = ring.sign("at+jwt", &claims).unwrap();
        assert_eq!(ring.verify::<Claims>(&first, &v).unwrap(), claims);
        ring.rotate(2).unwrap();
        let second = ring.sign("at+jwt", &claims).unwrap();
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(
            ring.verify::<Claims>(&first, &v).is_ok(),
            "tokens in flight survive rotation"
        );
        assert!(ring.verify::<Claims>(&second, &v).is_ok());
        let reopened = KeyRing::open(&dir, 3).unwrap();
        assert!(
            reopened.verify::<Claims>(&second, &v).is_ok(),
            "keys persist"
        );
        let other = validation("https://issuer.example", &["https://other.example"]);
        assert!(
            ring.verify::<Claims>(&second, &other).is_err(),
            "audience is checked"
        );
        let mut tampered = second.clone();
        tampered.replace_range(tampered.len() - 5.., "AAAAA");
        assert!(ring.verify::<Claims>(&tampered, &v).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "laissez-keys-{}",
            laissez_token::random_base62(12).unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
