//! OAuth error responses (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2).

use serde::Serialize;

/// The registered error codes Laissez answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The code, refresh token or PKCE verifier is invalid, expired or used.
    InvalidGrant,
    /// This client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// A requested scope is unknown or not allowed.
    InvalidScope,
    /// The resource indicator is not acceptable (RFC 8707).
    InvalidTarget,
    /// The user or server refused.
    AccessDenied,
    /// A redirect URI in a registration is not acceptable (RFC 7591).
    InvalidRedirectUri,
    /// Registration metadata is not acceptable (RFC 7591).
    InvalidClientMetadata,
    /// The server failed.
    ServerError,
    /// The request waits for a person's decision (RFC 8628 §3.5).
    AuthorizationPending,
    /// Polled faster than the interval (RFC 8628 §3.5).
    SlowDown,
    /// The pending request lapsed (RFC 8628 §3.5).
    ExpiredToken,
    /// The DPoP proof is missing or wrong (RFC 9449 §5).
    InvalidDpopProof,
    /// The DPoP proof must carry the server's nonce (RFC 9449 §8).
    UseDpopNonce,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::ServerError => "server_error",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// An OAuth error with a description a developer can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}: {description}", error.as_str())]
pub struct OAuthError {
    /// The code.
    pub error: ErrorCode,
    /// What went wrong.
    #[serde(rename = "error_description")]
    pub description: String,
}

impl OAuthError {
    /// An error with this code and description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }
}
