//! What the gate knows about a request before it decides: its method, path
//! and credential ([`RequestFacts`]), and the MCP tools its JSON-RPC body
//! calls ([`RpcCalls`]). Pure: parsed from the request's parts and body.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// The request as the gate's decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query, without `?`, if any.
    pub query: Option<String>,
    /// How the caller says who it is.
    pub credential: Credential,
    /// A person's browser asking for a page.
    pub wants_page: bool,
}

/// How the caller says who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An `Authorization: Bearer` token.
    Bearer(String),
    /// The gate's browser session cookie.
    Session(String),
    /// Nothing.
    Missing,
}

impl RequestFacts {
    /// The facts of a request.
    pub fn from_parts(parts: &Parts) -> RequestFacts {
        let method = parts.method.as_str().to_owned();
        let credential = match bearer(&parts.headers) {
            Some(token) => Credential::Bearer(token),
            None => match crate::browser::session_cookie(&parts.headers) {
                Some(id) => Credential::Session(id),
                None => Credential::Missing,
            },
        };
        RequestFacts {
            wants_page: crate::browser::wants_page(&parts.headers, &method),
            method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            credential,
        }
    }

    /// The path and query, as sent on.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned)
}

/// The MCP tools a JSON-RPC message (or batch) calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpcCalls {
    /// The names of the tools called, in order.
    pub tools: Vec<String>,
}

impl RpcCalls {
    /// The calls in a JSON-RPC body.
    pub fn parse(body: &[u8]) -> RpcCalls {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return RpcCalls::default();
        };
        let messages = match value {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        RpcCalls {
            tools: messages
                .iter()
                .filter(|m| m["method"] == "tools/call")
                .filter_map(|m| m["params"]["name"].as_str().map(str::to_owned))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tool_calls_in_messages_and_batches() {
        let calls = |body: &[u8]| RpcCalls::parse(body).tools;
        assert_eq!(
            calls(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}"#
            ),
            ["write_note"]
        );
        let batch = br#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"a"}},{"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(calls(batch), ["a", "b"]);
        assert!(calls(b"not json").is_empty());
        assert!(calls(br#"{"method":"tools/call"}"#).is_empty());
    }
}
