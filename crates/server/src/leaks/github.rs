//! GitHub's secret-scanning partner protocol: verifying that a leak report
//! was signed by GitHub.
//!
//! GitHub signs the raw request body with ECDSA P-256 / SHA-256 and sends the
//! key's identifier and the base64 DER signature in the
//! `Github-Public-Key-Identifier` and `Github-Public-Key-Signature` headers.
//! The trusted keys come from a file or a URL in the shape GitHub publishes
//! (`{"public_keys": [{"key_identifier", "key", "is_current"}]}`); a URL is
//! fetched again when an unknown key identifier arrives (at most once a
//! second), so GitHub's key rotation needs no restart.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// Header naming the signing key.
pub const KEY_ID_HEADER: &str = "github-public-key-identifier";
/// Header holding the signature.
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// Least time between two fetches of the key URL caused by unknown key ids.
const REFETCH: Duration = Duration::from_secs(1);

/// Where the trusted keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A file in GitHub's JSON shape.
    File(std::path::PathBuf),
    /// A URL serving that JSON (GitHub's is
    /// `https://api.github.com/meta/public_keys/secret_scanning`).
    Url(String),
}

impl KeySource {
    /// `http(s)://…` is a URL, anything else a file path.
    pub fn parse(text: &str) -> KeySource {
        if text.starts_with("https://") || text.starts_with("http://") {
            KeySource::Url(text.to_owned())
        } else {
            KeySource::File(text.into())
        }
    }
}

/// The trusted signing keys.
pub struct GithubKeys {
    source: KeySource,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    last_fetch: RwLock<Option<Instant>>,
    http: reqwest::Client,
}

/// Why a signed report was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing.
    #[error(
        "a signed report needs both Github-Public-Key-Identifier and Github-Public-Key-Signature"
    )]
    Missing,
    /// The key identifier is not trusted.
    #[error("the signing key '{0}' is not one of the trusted GitHub keys")]
    UnknownKey(String),
    /// The signature is not base64 DER ECDSA.
    #[error("the signature is not a base64 DER ECDSA signature")]
    Malformed,
    /// The signature does not match the body.
    #[error("the signature does not match the request body")]
    Mismatch,
    /// The keys could not be loaded.
    #[error("cannot load the trusted GitHub keys: {0}")]
    Keys(String),
}

#[derive(Deserialize)]
struct KeysDocument {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

impl GithubKeys {
    /// Loads the keys from `source`; a bad file or URL fails the start.
    pub async fn load(source: KeySource) -> Result<GithubKeys, SignatureError> {
        let keys = GithubKeys {
            source,
            keys: RwLock::default(),
            last_fetch: RwLock::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| SignatureError::Keys(e.to_string()))?,
        };
        keys.reload().await?;
        Ok(keys)
    }

    /// Verifies `signature` (base64 DER) by key `key_id` over `body`.
    pub async fn verify(
        &self,
        key_id: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let der = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureError::Malformed)?;
        let mut key = self.key(key_id);
        if key.is_none() && self.may_refetch() {
            // A rotated key: fetch the published set again.
            self.reload().await?;
            key = self.key(key_id);
        }
        let key =
            key.ok_or_else(|| SignatureError::UnknownKey(key_id.chars().take(80).collect()))?;
        key.verify(body, &signature)
            .map_err(|_| SignatureError::Mismatch)
    }

    fn key(&self, key_id: &str) -> Option<VerifyingKey> {
        self.keys
            .read()
            .ok()
            .and_then(|keys| keys.get(key_id).copied())
    }

    fn may_refetch(&self) -> bool {
        let Ok(mut last) = self.last_fetch.write() else {
            return false;
        };
        match *last {
            Some(at) if at.elapsed() < REFETCH => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    async fn reload(&self) -> Result<(), SignatureError> {
        let text = match &self.source {
            KeySource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| SignatureError::Keys(format!("{}: {e}", path.display())))?,
            KeySource::Url(url) => self
                .http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| SignatureError::Keys(format!("{url}: {e}")))?
                .text()
                .await
                .map_err(|e| SignatureError::Keys(format!("{url}: {e}")))?,
        };
        let document: KeysDocument = serde_json::from_str(&text)
            .map_err(|e| SignatureError::Keys(format!("not GitHub's public_keys shape: {e}")))?;
        let mut keys = HashMap::new();
        for published in document.public_keys {
            let key = VerifyingKey::from_public_key_pem(&published.key).map_err(|e| {
                SignatureError::Keys(format!(
                    "key '{}' is not a P-256 public key in PEM: {e}",
                    published.key_identifier
                ))
            })?;
            keys.insert(published.key_identifier, key);
        }
        if keys.is_empty() {
            return Err(SignatureError::Keys("the key set is empty".into()));
        }
        if let Ok(mut current) = self.keys.write() {
            *current = keys;
        }
        Ok(())
    }
}
