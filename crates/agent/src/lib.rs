//! The agent side of Laissez: a `fetch` that follows `WWW-Authenticate`.
//!
//! On `401` (or `403 insufficient_scope`) with a Bearer challenge it reads the
//! protected resource metadata (RFC 9728) and the authorization server's
//! metadata (RFC 8414), registers a public client (RFC 7591, remembered per
//! server), sends its human to consent (the URL goes to a [`Presenter`]; the
//! answer arrives on a loopback redirect, RFC 8252), checks `state` and `iss`
//! (RFC 9207), exchanges the code with PKCE and `resource` (RFC 7636, 8707),
//! caches the tokens per resource in a file only its user can read, refreshes
//! them when they expire, and repeats the request. A step-up asks for the
//! union of the scopes it held and the scopes the challenge names.

pub mod cache;
pub mod challenge;
mod flow;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

pub use flow::Agent;

/// Shows the human the authorization URL (print it, open a browser, or in
/// tests, drive the pages). The agent then waits for the loopback redirect.
pub type Presenter = Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The network or the server failed.
    #[error("{0}")]
    Http(String),
    /// The server's metadata or answers did not follow the standards.
    #[error("{0}")]
    Protocol(String),
    /// The human or the authorization server refused.
    #[error("authorization failed: {0}")]
    Denied(String),
    /// The token cache could not be read or written.
    #[error("token cache: {0}")]
    Cache(String),
}

/// Where the cache lives by default: `$XDG_CACHE_HOME/laissez/tokens.json`
/// or `~/.cache/laissez/tokens.json`.
pub fn default_cache_path() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("laissez/tokens.json")
}
