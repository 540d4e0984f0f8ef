//! DPoP (RFC 9449) on the CLI's side: what `laissez task run` hands the
//! command it runs (a proof key in `LAISSEZ_DPOP_KEY`, access tokens by
//! resource in `LAISSEZ_ACCESS_TOKENS`), and sending a request with a fresh
//! proof, once more with the server's nonce when it asks for one.

use std::collections::BTreeMap;
use std::path::Path;

use laissez_dpop::{ProofError, ProofKey};
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode};

use crate::error::CliError;

/// The proof key named by `LAISSEZ_DPOP_KEY`, if it is set.
pub fn key_from_env() -> Result<Option<ProofKey>, CliError> {
    match std::env::var_os(KEY_VAR) {
        Some(path) if !path.is_empty() => read_key(Path::new(&path)).map(Some),
        _ => Ok(None),
    }
}

/// Reads a proof key from a PEM file.
pub fn read_key(path: &Path) -> Result<ProofKey, CliError> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        CliError::Local(format!(
            "{KEY_VAR} names {}, which cannot be read ({e}); unset it or point it at the task's key",
            path.display()
        ))
    })?;
    ProofKey::from_pem(&pem).map_err(|e| {
        CliError::Local(format!(
            "{KEY_VAR} names {}, which is not a DPoP key: {e}",
            path.display()
        ))
    })
}

/// Access tokens by resource, as `laissez task run` hands them on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccessTokens(BTreeMap<String, String>);

impl AccessTokens {
    /// The tokens in `LAISSEZ_ACCESS_TOKENS`, if it is set.
    pub fn from_env() -> Result<Option<AccessTokens>, CliError> {
        match std::env::var(TOKENS_VAR) {
            Ok(text) if !text.trim().is_empty() => AccessTokens::parse(&text).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a JSON object of resource → token.
    pub fn parse(text: &str) -> Result<AccessTokens, CliError> {
        serde_json::from_str(text).map(AccessTokens).map_err(|e| {
            CliError::Local(format!(
                "{TOKENS_VAR} must be a JSON object of resource URL to access token ({e})"
            ))
        })
    }

    /// The token of the most specific resource that covers `url`.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(resource, _)| covers(resource, url))
            .max_by_key(|(resource, _)| resource.len())
            .map(|(_, token)| token.as_str())
    }
}

/// Whether `resource` covers `url`: the same origin, and the URL's path is
/// the resource's path or below it (`/api` covers `/api/x`, not `/apix`).
pub fn covers(resource: &str, url: &str) -> bool {
    let (Ok(resource), Ok(url)) = (url::Url::parse(resource), url::Url::parse(url)) else {
        return false;
    };
    if resource.origin() != url.origin() || !resource.origin().is_tuple() {
        return false;
    }
    let base = resource.path().trim_end_matches('/');
    let path = url.path();
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// How one request proves possession of a key.
pub struct Proving<'a> {
    /// The key.
    pub key: &'a ProofKey,
    /// The request's method.
    pub method: &'a str,
    /// The request's URL (its query is left out of the proof).
    pub url: &'a str,
    /// The token sent with the proof, for its `ath`.
    pub access_token: Option<&'a str>,
}

/// An answer read in full.
pub struct Exchange {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request could not be sent.
pub enum SendError {
    /// No proof could be signed.
    Proof(ProofError),
    /// The transport failed.
    Transport(reqwest::Error),
}

/// Sends the request `build` makes, with a fresh `DPoP` proof when
/// `proving`; when the server answers that it wants its nonce, once more
/// with that nonce.
pub async fn send(
    build: impl Fn() -> RequestBuilder,
    proving: Option<Proving<'_>>,
) -> Result<Exchange, SendError> {
    let mut nonce: Option<String> = None;
    loop {
        let mut request = build();
        if let Some(proving) = &proving {
            let proof = proving
                .key
                .proof(
                    proving.method,
                    proving.url,
                    proving.access_token,
                    nonce.as_deref(),
                    now(),
                )
                .map_err(SendError::Proof)?;
            request = request.header("DPoP", proof);
        }
        let response = request.send().await.map_err(SendError::Transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(SendError::Transport)?
            .to_vec();
        let exchange = Exchange {
            status,
            headers,
            body,
        };
        match exchange.nonce_asked() {
            Some(asked) if proving.is_some() && nonce.is_none() => nonce = Some(asked),
            _ => return Ok(exchange),
        }
    }
}

impl Exchange {
    /// The server's nonce, when it refused the request for want of it
    /// (401 `use_dpop_nonce` in the challenge or the body, RFC 9449 §8–9).
    fn nonce_asked(&self) -> Option<String> {
        if self.status != StatusCode::UNAUTHORIZED {
            return None;
        }
        let nonce = self.headers.get("dpop-nonce")?.to_str().ok()?.to_owned();
        let in_challenge = self
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("use_dpop_nonce"));
        let in_body = serde_json::from_slice::<serde_json::Value>(&self.body)
            .is_ok_and(|body| body["error"] == "use_dpop_nonce");
        (in_challenge || in_body).then_some(nonce)
    }
}

/// The Unix time, seconds.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The file holding the task's proof key (PKCS#8 PEM).
pub const KEY_VAR: &str = "LAISSEZ_DPOP_KEY";
/// Access tokens by resource (a JSON object).
pub const TOKENS_VAR: &str = "LAISSEZ_ACCESS_TOKENS";
/// The access token, when the task has exactly one.
pub const TOKEN_VAR: &str = "LAISSEZ_ACCESS_TOKEN";
/// The task's id.
pub const TASK_ID_VAR: &str = "LAISSEZ_TASK_ID";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_cover_their_paths() {
        let table = [
            ("https://api.example", "https://api.example/v1/x?q=1", true),
            ("https://api.example/", "https://api.example/", true),
            ("https://api.example/v1", "https://api.example/v1", true),
            ("https://api.example/v1", "https://api.example/v1/x", true),
            ("https://api.example/v1/", "https://api.example/v1/x", true),
            ("https://api.example/v1", "https://api.example/v10", false),
            ("https://api.example/v1", "https://api.example/", false),
            ("https://api.example", "http://api.example/", false),
            ("https://api.example", "https://api.example:8443/", false),
            ("https://api.example", "https://evil.example/", false),
            ("https://api.example", "https://api.example.evil/", false),
            ("/", "https://api.example/", false),
            ("https://api.example", "not a url", false),
        ];
        for (resource, url, want) in table {
            assert_eq!(covers(resource, url), want, "{resource} {url}");
        }
    }

    #[test]
    fn the_most_specific_resource_wins() -> Result<(), CliError> {
        let tokens = AccessTokens::parse(
            r#"{"https://api.example": "a", "https://api.example/admin": "b"}"#,
        )?;
        assert_eq!(tokens.for_url("https://api.example/x"), Some("a"));
        assert_eq!(tokens.for_url("https://api.example/admin/y"), Some("b"));
        assert_eq!(tokens.for_url("https://other.example/"), None);
        assert!(AccessTokens::parse("[1]").is_err());
        Ok(())
    }

    #[test]
    fn a_nonce_is_taken_only_when_asked_for() {
        let exchange = |status: u16, challenge: &str, nonce: bool, body: &str| {
            let mut headers = HeaderMap::new();
            if !challenge.is_empty() {
                headers.insert(WWW_AUTHENTICATE, challenge.parse().unwrap());
            }
            if nonce {
                headers.insert("dpop-nonce", "n1".parse().unwrap());
            }
            Exchange {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                headers,
                body: body.as_bytes().to_vec(),
            }
            .nonce_asked()
        };
        let challenge = r#"Bearer realm="x", DPoP error="use_dpop_nonce""#;
        assert_eq!(exchange(401, challenge, true, ""), Some("n1".into()));
        assert_eq!(
            exchange(401, "", true, r#"{"error":"use_dpop_nonce"}"#),
            Some("n1".into())
        );
        assert_eq!(exchange(401, challenge, false, ""), None);
        assert_eq!(exchange(401, "Bearer", true, "{}"), None);
        assert_eq!(exchange(403, challenge, true, ""), None);
    }
}
