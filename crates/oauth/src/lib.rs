//! The rules of OAuth 2.1 as Laissez applies them, as pure functions and
//! types: PKCE (RFC 7636, S256 only), redirect URI matching (exact, with any
//! port for loopback redirects per RFC 8252), resource indicators (RFC 8707),
//! scope strings, client registration metadata (RFC 7591), the authorization
//! server's metadata document (RFC 8414) and the error codes of RFC 6749.
//!
//! No I/O, no clock, no randomness: the server passes those in. That keeps
//! every security decision here testable on its own.

pub mod access_token;
pub mod address;
pub mod assertion;
pub mod client;
pub mod error;
pub mod metadata;
pub mod mtls;
pub mod pkce;
pub mod redirect;
pub mod resource;
pub mod scopes;

pub use error::{ErrorCode, OAuthError};
pub use scopes::OAuthScopes;
pub mod grant;
pub mod protected;
