//! The admin API client: JSON over HTTP with the caller's bearer token, and
//! problem details turned into [`CliError`]s.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{CliError, Hint};

/// Talks to one server with one token.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8700`) presenting `token`.
    pub fn new(base: &str, token: String) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Sends one request and returns the JSON answer (`Null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        self.call_with_next(method, path, body)
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
            let (page, next) = self.call_with_next(Method::GET, &page_path, None).await?;
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

    /// Sends one request; returns the JSON answer and the next page's cursor, if any.
    async fn call_with_next(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Value, Option<String>), CliError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        let status = response.status();
        let next = response
            .headers()
            .get("laissez-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CliError::BadResponse(e.to_string()))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok((Value::Null, next));
            }
            return serde_json::from_slice(&bytes)
                .map(|value| (value, next))
                .map_err(|e| CliError::BadResponse(e.to_string()));
        }
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let detail = problem["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED => Some("check --token or LAISSEZ_TOKEN"),
            _ => None,
        };
        Err(CliError::Problem {
            status: status.as_u16(),
            detail,
            hint: Hint(hint),
        })
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, CliError> {
        self.call(Method::POST, path, Some(body)).await
    }
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
