//! The authorization server metadata document (RFC 8414), served at both
//! `/.well-known/oauth-authorization-server` and
//! `/.well-known/openid-configuration`. Its `issuer` is exactly the URL the
//! document was built from, and every endpoint hangs off it.

use serde::Serialize;

/// RFC 8414 metadata, with the MCP-relevant extensions.
#[derive(Clone, Debug, Serialize)]
pub struct ServerMetadata {
    /// The issuer identifier, byte-identical to the base URL.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// Signing keys.
    pub jwks_uri: String,
    /// Dynamic client registration (RFC 7591).
    pub registration_endpoint: String,
    /// Token revocation (RFC 7009).
    pub revocation_endpoint: String,
    /// Token introspection (RFC 7662).
    pub introspection_endpoint: String,
    /// Scopes known to the server.
    pub scopes_supported: Vec<String>,
    /// Only `code`.
    pub response_types_supported: Vec<&'static str>,
    /// Only `query`.
    pub response_modes_supported: Vec<&'static str>,
    /// Grants.
    pub grant_types_supported: Vec<&'static str>,
    /// Client authentication at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at revocation.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at introspection.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Only `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: `iss` on every authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    /// Client ID Metadata Documents: an https URL may be a `client_id`.
    pub client_id_metadata_document_supported: bool,
    /// Resources this server issues tokens for.
    pub protected_resources: Vec<String>,
    /// Access token signing.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// OpenID Connect subject types (for clients that read the OIDC document).
    pub subject_types_supported: Vec<&'static str>,
    /// DPoP proof algorithms accepted (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 8705: tokens can be bound to a TLS client certificate (when the
    /// server listens with TLS and a client CA).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// `private_key_jwt` assertion algorithms accepted at the token endpoint.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// The same at revocation.
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// The same at introspection.
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
}

impl ServerMetadata {
    /// The same document for a server whose listener asks TLS client
    /// certificates: the RFC 8705 methods and certificate-bound tokens.
    pub fn with_mutual_tls(mut self) -> ServerMetadata {
        for methods in [
            &mut self.token_endpoint_auth_methods_supported,
            &mut self.revocation_endpoint_auth_methods_supported,
            &mut self.introspection_endpoint_auth_methods_supported,
        ] {
            methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
        }
        self.tls_client_certificate_bound_access_tokens = true;
        self
    }

    /// The document for an authorization server whose issuer is `issuer`.
    pub fn new(
        issuer: &str,
        scopes: Vec<String>,
        protected_resources: Vec<String>,
    ) -> ServerMetadata {
        let base = issuer.trim_end_matches('/');
        let at = |path: &str| format!("{base}{path}");
        let client_auth = vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ];
        ServerMetadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: at("/oauth/authorize"),
            token_endpoint: at("/oauth/token"),
            jwks_uri: at("/oauth/jwks"),
            registration_endpoint: at("/oauth/register"),
            revocation_endpoint: at("/oauth/revoke"),
            introspection_endpoint: at("/oauth/introspect"),
            scopes_supported: scopes,
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec![
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            token_endpoint_auth_methods_supported: client_auth.clone(),
            revocation_endpoint_auth_methods_supported: client_auth.clone(),
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            code_challenge_methods_supported: vec!["S256"],
            authorization_response_iss_parameter_supported: true,
            client_id_metadata_document_supported: true,
            protected_resources,
            id_token_signing_alg_values_supported: vec!["ES256"],
            subject_types_supported: vec!["public"],
            dpop_signing_alg_values_supported: laissez_dpop::ALGORITHMS.to_vec(),
            tls_client_certificate_bound_access_tokens: false,
            token_endpoint_auth_signing_alg_values_supported: crate::assertion::ALGORITHMS.to_vec(),
            revocation_endpoint_auth_signing_alg_values_supported: crate::assertion::ALGORITHMS
                .to_vec(),
            introspection_endpoint_auth_signing_alg_values_supported: crate::assertion::ALGORITHMS
                .to_vec(),
        }
    }
}
