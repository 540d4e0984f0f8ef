//! The admin API client: JSON over HTTP with the caller's token, and
//! problem details turned into [`CliError`]s.
//!
//! The token goes as `Authorization: Bearer`, or, with a proof key (a task's,
//! from `LAISSEZ_DPOP_KEY`), as `Authorization: DPoP` with a fresh proof of
//! that key on every request.
//!
//! Every request is bounded in time (`--timeout`), and an answer that is not
//! a Laissez JSON or problem document is reported by its status and media
//! type, never printed: a proxy's HTML error page says nothing to a person
//! at a terminal.

use std::time::Duration;

use laissez_dpop::ProofKey;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::dpop::{self, Proving, SendError};
use crate::error::{CliError, Hint};

/// Talks to one server with one token.
pub struct Client {
    base: String,
    token: String,
    timeout: Duration,
    http: reqwest::Client,
    key: Option<ProofKey>,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8700`, already checked by
    /// [`server_url`]) presenting `token`, giving up on any request after
    /// `timeout`.
    pub fn new(base: &str, token: String, timeout: Duration) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(CONNECT_TIMEOUT))
            .timeout(timeout)
            .build()
            .map_err(|e| CliError::Local(format!("cannot set up HTTP: {}", root_cause(&e))))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            timeout,
            http,
            key: None,
        })
    }

    /// The same client presenting its token as `Authorization: DPoP`, with a
    /// proof of `key` on every request (unchanged when `key` is `None`).
    pub fn with_proof_key(mut self, key: Option<ProofKey>) -> Client {
        self.key = key;
        self
    }

    /// Whether the token goes with proofs of a key (`Authorization: DPoP`).
    pub fn proves_possession(&self) -> bool {
        self.key.is_some()
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request and returns the JSON answer (`Null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        self.call_with_next(method, path, body, None)
            .await
            .map(|(value, _)| value)
    }

    /// POST with the bearer token and a proof of another `key` (not the
    /// token's): how a task is asked for, bound to that key, and collected.
    pub async fn post_proving(
        &self,
        path: &str,
        body: Option<Value>,
        key: &ProofKey,
    ) -> Result<Value, CliError> {
        if self.key.is_some() {
            return Err(CliError::Local(format!(
                "this token already goes with a proof of the key in {}; one request carries one proof",
                dpop::KEY_VAR
            )));
        }
        self.call_with_next(Method::POST, path, body, Some(key))
            .await
            .map(|(value, _)| value)
    }

    /// GET of a paged list: follows the server's cursors and returns every
    /// item in one array.
    pub async fn get_all(&self, path: &str) -> Result<Value, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // A server that keeps answering with a cursor is not followed forever.
        for _ in 0..10_000 {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page_path = match &cursor {
                Some(cursor) => format!("{path}{sep}limit=1000&cursor={}", encode(cursor)),
                None => format!("{path}{sep}limit=1000"),
            };
            let (page, next) = self
                .call_with_next(Method::GET, &page_path, None, None)
                .await?;
            match page {
                Value::Array(page) => items.extend(page),
                other => return Ok(other),
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    /// Sends one request (with a proof of `bound_to` when given, else of the
    /// token's key if any); returns the JSON answer and the next page's
    /// cursor, if any.
    async fn call_with_next(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        bound_to: Option<&ProofKey>,
    ) -> Result<(Value, Option<String>), CliError> {
        let url = format!("{}{path}", self.base);
        let proving = match (&self.key, bound_to) {
            (_, Some(key)) => Some(Proving {
                key,
                method: method.as_str(),
                url: &url,
                access_token: None,
            }),
            (Some(key), None) => Some(Proving {
                key,
                method: method.as_str(),
                url: &url,
                access_token: Some(&self.token),
            }),
            (None, None) => None,
        };
        let scheme = if self.key.is_some() { "DPoP" } else { "Bearer" };
        let build = || {
            let request = self
                .http
                .request(method.clone(), &url)
                .header(header::AUTHORIZATION, format!("{scheme} {}", self.token));
            match &body {
                Some(body) => request.json(body),
                None => request,
            }
        };
        let exchange = dpop::send(build, proving).await.map_err(|e| match e {
            SendError::Transport(e) => self.transport(&e),
            SendError::Proof(e) => CliError::Local(format!("cannot sign a DPoP proof: {e}")),
        })?;
        let status = exchange.status;
        let media_type = exchange
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let next = exchange
            .headers
            .get("laissez-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = exchange.body;
        let answer = Answer::classify(status, &media_type, bytes.is_empty());
        match answer {
            Answer::Empty => Ok((Value::Null, next)),
            Answer::Json => serde_json::from_slice(&bytes)
                .map(|value| (value, next))
                .map_err(|e| CliError::BadResponse(e.to_string())),
            Answer::Problem => {
                let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let detail = problem["detail"]
                    .as_str()
                    .or_else(|| problem["error_description"].as_str())
                    .map(|d| d.chars().take(MAX_DETAIL).collect())
                    .unwrap_or_else(|| status.to_string());
                let hint = match status {
                    StatusCode::UNAUTHORIZED => Some("check --token or LAISSEZ_TOKEN"),
                    _ => None,
                };
                Err(CliError::Problem {
                    status: status.as_u16(),
                    detail,
                    code: problem["error"].as_str().map(str::to_owned),
                    hint: Hint(hint),
                })
            }
            Answer::Foreign => Err(CliError::NotLaissez {
                url: self.base.clone(),
                status: status.as_u16(),
                media_type: if media_type.is_empty() {
                    "no content type".into()
                } else {
                    media_type
                },
            }),
        }
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }

    fn transport(&self, error: &reqwest::Error) -> CliError {
        if error.is_timeout() {
            return CliError::Timeout {
                url: self.base.clone(),
                seconds: self.timeout.as_secs_f64(),
            };
        }
        CliError::Unreachable {
            url: self.base.clone(),
            why: root_cause(error),
        }
    }
}

/// What kind of answer came back, from its status and media type alone.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A success without a body.
    Empty,
    /// A success with a JSON body.
    Json,
    /// A failure with a JSON (problem details or OAuth error) body.
    Problem,
    /// Anything else: not something a Laissez server sends.
    Foreign,
}

impl Answer {
    fn classify(status: StatusCode, media_type: &str, empty: bool) -> Answer {
        let json = media_type == "application/json"
            || media_type == "application/problem+json"
            || (media_type.starts_with("application/") && media_type.ends_with("+json"));
        match (status.is_success(), json, empty) {
            (true, _, true) => Answer::Empty,
            (true, true, false) => Answer::Json,
            (false, true, false) => Answer::Problem,
            _ => Answer::Foreign,
        }
    }
}

/// The server URL from `--server`, checked: `http(s)://host[:port]`. A bare
/// `host:port` means http only for a loopback host, where nothing leaves the
/// machine; any other host must say its scheme.
pub fn server_url(text: &str) -> Result<String, CliError> {
    let text = text.trim();
    let candidate = if text.contains("://") {
        text.to_owned()
    } else {
        let host = text
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(text, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(CliError::Local(format!(
                "--server '{text}' needs a scheme: https://{text} (http:// is assumed only for loopback addresses)"
            )));
        }
        format!("http://{text}")
    };
    let url = url::Url::parse(&candidate)
        .map_err(|e| CliError::Local(format!("--server '{text}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(CliError::Local(format!(
            "--server '{text}' must be an http(s) URL such as http://127.0.0.1:8700"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A `--timeout` such as `30`, `30s`, `500ms` or `2m`.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 30s"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        _ => return Err(format!("'{text}': use ms, s or m, e.g. 30s")),
    };
    if duration.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Ok(duration)
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Percent-encodes one query or path component.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Connecting never waits longer than this, whatever `--timeout` says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest problem detail shown.
const MAX_DETAIL: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let table = [
            ("http://127.0.0.1:8700", Some("http://127.0.0.1:8700")),
            ("http://127.0.0.1:8700/", Some("http://127.0.0.1:8700")),
            ("127.0.0.1:8700", Some("http://127.0.0.1:8700")),
            ("localhost:8700", Some("http://localhost:8700")),
            ("[::1]:8700", Some("http://[::1]:8700")),
            ("https://id.acme.example", Some("https://id.acme.example")),
            ("id.acme.example:8700", None),
            ("10.0.0.5:8700", None),
            ("ftp://127.0.0.1", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(server_url(text).ok().as_deref(), want, "{text}");
        }
    }

    #[test]
    fn answers() {
        let ok = StatusCode::OK;
        let bad = StatusCode::BAD_GATEWAY;
        assert_eq!(
            Answer::classify(ok, "application/json", false),
            Answer::Json
        );
        assert_eq!(Answer::classify(ok, "", true), Answer::Empty);
        assert_eq!(Answer::classify(ok, "text/html", false), Answer::Foreign);
        assert_eq!(
            Answer::classify(bad, "application/problem+json", false),
            Answer::Problem
        );
        assert_eq!(Answer::classify(bad, "text/html", false), Answer::Foreign);
        assert_eq!(Answer::classify(bad, "", true), Answer::Foreign);
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("3h").is_err());
    }
}
