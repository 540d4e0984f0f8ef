//! Client registration metadata (RFC 7591 §2): what a client says about
//! itself, and the checks that make it safe to store. The same document shape
//! serves dynamic registration and Client ID Metadata Documents.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{ErrorCode, OAuthError, OAuthScopes, redirect};

/// How a client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client (native app, CLI agent): PKCE is its only proof.
    None,
    /// HTTP Basic with client id and secret.
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// A JWT signed with one of the client's registered keys (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A TLS client certificate from the listener's client CA carrying the
    /// registered name (RFC 8705 §2.1).
    TlsClientAuth,
    /// A TLS client certificate the client registered in `jwks` (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

/// A grant type a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// Authorization code with PKCE.
    AuthorizationCode,
    /// Refresh tokens.
    RefreshToken,
    /// Client credentials (confidential clients acting for themselves).
    ClientCredentials,
}

/// Registration metadata as received (unknown fields are ignored, as RFC 7591 requires).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RegistrationRequest {
    /// Where authorization responses may go.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Token endpoint authentication; default `client_secret_basic` per RFC 7591.
    pub token_endpoint_auth_method: Option<String>,
    /// Grant types; default `authorization_code`.
    pub grant_types: Option<Vec<String>>,
    /// Response types; default `code`.
    pub response_types: Option<Vec<String>>,
    /// Human-readable name.
    pub client_name: Option<String>,
    /// Home page.
    pub client_uri: Option<String>,
    /// Logo.
    pub logo_uri: Option<String>,
    /// Scopes it expects to ask for (not a ceiling on consent).
    pub scope: Option<String>,
    /// Contacts.
    pub contacts: Option<Vec<String>>,
    /// Software identifier.
    pub software_id: Option<String>,
    /// Software version.
    pub software_version: Option<String>,
    /// Every access token must be DPoP-bound (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: Option<bool>,
    /// Public keys for `private_key_jwt`, inline (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// Refused: keys must be registered inline.
    pub jwks_uri: Option<serde_json::Value>,
    /// `tls_client_auth`: the certificate's DNS subject alternative name.
    pub tls_client_auth_san_dns: Option<String>,
    /// `tls_client_auth`: the certificate's IP subject alternative name.
    pub tls_client_auth_san_ip: Option<String>,
    /// Refused: only DNS and IP names are matched.
    pub tls_client_auth_subject_dn: Option<serde_json::Value>,
    /// Refused: only DNS and IP names are matched.
    pub tls_client_auth_san_uri: Option<serde_json::Value>,
    /// Refused: only DNS and IP names are matched.
    pub tls_client_auth_san_email: Option<serde_json::Value>,
    /// Bind tokens to the TLS client certificate (RFC 8705 §3).
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
}

/// Validated client metadata, as stored and as returned to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Token endpoint authentication.
    pub token_endpoint_auth_method: AuthMethod,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Always `["code"]`.
    pub response_types: Vec<String>,
    /// Human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Home page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Logo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Expected scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Software identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Software version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Every access token must be DPoP-bound (RFC 9449 §5.2): a token
    /// request without a proof is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// The public keys its `private_key_jwt` assertions are signed with, or
    /// the certificates (`x5c`) of `self_signed_tls_client_auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// `tls_client_auth`: the DNS name its certificate carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// `tls_client_auth`: the IP address its certificate carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    /// Tokens issued over its mutual-TLS connection are bound to the
    /// certificate (`cnf.x5t#S256`, RFC 8705 §3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
}

impl ClientMetadata {
    /// Whether the client is confidential (authenticates with a secret or a key).
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method != AuthMethod::None
    }

    /// Whether the client authenticates with a TLS client certificate.
    pub fn uses_certificate(&self) -> bool {
        matches!(
            self.token_endpoint_auth_method,
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
        )
    }

    /// The name a `tls_client_auth` client's certificate must carry.
    pub fn certificate_name(&self) -> Option<crate::mtls::CertificateName> {
        if self.token_endpoint_auth_method != AuthMethod::TlsClientAuth {
            return None;
        }
        crate::mtls::registered_name(
            self.tls_client_auth_san_dns.as_deref(),
            self.tls_client_auth_san_ip.as_deref(),
        )
        .ok()
    }

    /// Whether the client authenticates with a client secret.
    pub fn uses_secret(&self) -> bool {
        matches!(
            self.token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// How a client came to be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Registered by an administrator (CLI or admin API).
    Preregistered,
    /// Registered by itself through RFC 7591 dynamic registration.
    Dynamic,
    /// Described by a Client ID Metadata Document at its https `client_id`.
    MetadataDocument,
}

impl ClientKind {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Preregistered => "preregistered",
            ClientKind::Dynamic => "dynamic",
            ClientKind::MetadataDocument => "metadata_document",
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Option<ClientKind> {
        match text {
            "preregistered" => Some(ClientKind::Preregistered),
            "dynamic" => Some(ClientKind::Dynamic),
            "metadata_document" => Some(ClientKind::MetadataDocument),
            _ => None,
        }
    }
}

/// A client the authorization server knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The client identifier.
    pub client_id: String,
    /// How it was registered.
    pub kind: ClientKind,
    /// What it said about itself.
    pub metadata: ClientMetadata,
    /// The user who registered it, for pre-registered clients.
    pub owner_id: Option<String>,
    /// The service or agent principal a pre-registered client acts as with
    /// no person present (client credentials); its policies bound every
    /// such token. None for every other client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// When it was registered.
    pub created_at: i64,
}

impl Client {
    /// Whether this client may obtain tokens with no person present: only a
    /// client an administrator registered, backed by a principal, and
    /// registered for the grant.
    pub fn may_act_alone(&self) -> bool {
        self.kind == ClientKind::Preregistered
            && self.principal_id.is_some()
            && self.metadata.is_confidential()
            && self.metadata.allows(GrantType::ClientCredentials)
    }
}

fn bad(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, why)
}

/// Most redirect URIs one client registers.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Longest redirect URI, client URI or logo URI, bytes.
pub const MAX_URI: usize = 2048;
/// Longest `scope` value, bytes.
pub const MAX_SCOPE: usize = 1024;
/// Most contacts.
pub const MAX_CONTACTS: usize = 8;
/// Longest short text field (name, software id and version, one contact), bytes.
pub const MAX_TEXT: usize = 200;

fn short_text(value: Option<String>, field: &str) -> Result<Option<String>, OAuthError> {
    match value {
        Some(v) if v.len() > MAX_TEXT || v.chars().any(char::is_control) => Err(bad(format!(
            "{field} must be at most {MAX_TEXT} printable characters"
        ))),
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn https_uri(value: Option<String>, field: &str) -> Result<Option<String>, OAuthError> {
    let Some(value) = value else { return Ok(None) };
    let url =
        Url::parse(&value).map_err(|_| bad(format!("{field} must be an absolute https URL")))?;
    if url.scheme() != "https" || value.len() > MAX_URI {
        return Err(bad(format!("{field} must be an absolute https URL")));
    }
    Ok(Some(value))
}

impl RegistrationRequest {
    /// Parses a registration request from JSON bytes and validates it for a
    /// client of `kind`: the entry point for untrusted metadata (dynamic
    /// registration bodies, metadata documents).
    pub fn parse(body: &[u8], kind: ClientKind) -> Result<ClientMetadata, OAuthError> {
        let request: RegistrationRequest = serde_json::from_slice(body)
            .map_err(|e| bad(format!("the client metadata is not valid: {e}")))?;
        request.validate(kind)
    }

    /// Validates the request into storable metadata for a client of `kind`.
    /// Only clients an administrator registers may use client credentials:
    /// a dynamically registered or metadata-document client never gets a
    /// token without a person's consent.
    pub fn validate(self, kind: ClientKind) -> Result<ClientMetadata, OAuthError> {
        if self.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("at most {MAX_REDIRECT_URIS} redirect_uris"),
            ));
        }
        if self.redirect_uris.iter().any(|u| u.len() > MAX_URI) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!("a redirect URI is longer than {MAX_URI} characters"),
            ));
        }
        if self.scope.as_ref().is_some_and(|s| s.len() > MAX_SCOPE) {
            return Err(bad(format!("scope is longer than {MAX_SCOPE} characters")));
        }
        if self.grant_types.as_ref().is_some_and(|g| g.len() > 8)
            || self.response_types.as_ref().is_some_and(|r| r.len() > 8)
        {
            return Err(bad("too many grant_types or response_types"));
        }
        let method = match self
            .token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic")
        {
            "none" => AuthMethod::None,
            "client_secret_basic" => AuthMethod::ClientSecretBasic,
            "client_secret_post" => AuthMethod::ClientSecretPost,
            "private_key_jwt" => AuthMethod::PrivateKeyJwt,
            "tls_client_auth" => AuthMethod::TlsClientAuth,
            "self_signed_tls_client_auth" => AuthMethod::SelfSignedTlsClientAuth,
            other => {
                return Err(bad(format!(
                    "token_endpoint_auth_method '{other}' is not supported; use none, client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth or self_signed_tls_client_auth"
                )));
            }
        };
        if self.tls_client_auth_subject_dn.is_some()
            || self.tls_client_auth_san_uri.is_some()
            || self.tls_client_auth_san_email.is_some()
        {
            return Err(bad(
                "tls_client_auth matches tls_client_auth_san_dns or tls_client_auth_san_ip; subject DN, URI and email names are not supported",
            ));
        }
        let (san_dns, san_ip) = if method == AuthMethod::TlsClientAuth {
            let name = crate::mtls::registered_name(
                self.tls_client_auth_san_dns.as_deref(),
                self.tls_client_auth_san_ip.as_deref(),
            )?;
            match name {
                crate::mtls::CertificateName::Dns(dns) => (Some(dns), None),
                crate::mtls::CertificateName::Ip(ip) => (None, Some(ip.to_string())),
            }
        } else if self.tls_client_auth_san_dns.is_some() || self.tls_client_auth_san_ip.is_some() {
            return Err(bad(
                "tls_client_auth_san_dns and tls_client_auth_san_ip are only for token_endpoint_auth_method tls_client_auth",
            ));
        } else {
            (None, None)
        };
        if self.jwks_uri.is_some() {
            return Err(bad(
                "jwks_uri is not supported: register the public keys inline as jwks",
            ));
        }
        let jwks = match (&self.jwks, method) {
            (Some(jwks), AuthMethod::PrivateKeyJwt) => Some(crate::assertion::validate_jwks(jwks)?),
            (Some(jwks), AuthMethod::SelfSignedTlsClientAuth) => {
                Some(crate::mtls::validate_certificates(jwks)?)
            }
            (None, AuthMethod::SelfSignedTlsClientAuth) => {
                return Err(bad(
                    "self_signed_tls_client_auth needs the client's certificates as jwks (x5c)",
                ));
            }
            (None, AuthMethod::PrivateKeyJwt) => {
                return Err(bad(
                    "private_key_jwt needs the client's public keys as jwks (a JWK Set)",
                ));
            }
            (Some(_), _) => {
                return Err(bad(
                    "jwks is only for token_endpoint_auth_method private_key_jwt or self_signed_tls_client_auth",
                ));
            }
            (None, _) => None,
        };
        let mut grants = Vec::new();
        for grant in self
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into()])
        {
            let grant = match grant.as_str() {
                "authorization_code" => GrantType::AuthorizationCode,
                "refresh_token" => GrantType::RefreshToken,
                "client_credentials" => GrantType::ClientCredentials,
                other => return Err(bad(format!("grant type '{other}' is not supported"))),
            };
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        grants.sort();
        if grants.is_empty() {
            return Err(bad("grant_types must not be empty"));
        }
        if grants.contains(&GrantType::ClientCredentials) && kind != ClientKind::Preregistered {
            return Err(bad(
                "the client_credentials grant is only for clients an administrator registers (laissez app register --principal); a self-registered client acts only with a person's consent",
            ));
        }
        let response_types = self.response_types.unwrap_or_else(|| vec!["code".into()]);
        if grants.contains(&GrantType::AuthorizationCode) && response_types != ["code"] {
            return Err(bad(
                "response_types must be [\"code\"]: only the authorization code flow is supported",
            ));
        }
        if grants.contains(&GrantType::ClientCredentials) && method == AuthMethod::None {
            return Err(bad(
                "the client_credentials grant needs a confidential client (a client secret)",
            ));
        }
        if grants.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "redirect_uris is required for the authorization_code grant",
            ));
        }
        for uri in &self.redirect_uris {
            redirect::validate(uri)?;
        }
        if let Some(scope) = &self.scope {
            OAuthScopes::parse(Some(scope)).map_err(|e| bad(e.description))?;
        }
        let contacts = self.contacts.unwrap_or_default();
        if contacts.len() > MAX_CONTACTS || contacts.iter().any(|c| c.len() > MAX_TEXT) {
            return Err(bad(format!(
                "at most {MAX_CONTACTS} contacts of {MAX_TEXT} characters"
            )));
        }
        Ok(ClientMetadata {
            redirect_uris: self.redirect_uris,
            token_endpoint_auth_method: method,
            grant_types: grants,
            response_types: vec!["code".into()],
            client_name: short_text(self.client_name, "client_name")?,
            client_uri: https_uri(self.client_uri, "client_uri")?,
            logo_uri: https_uri(self.logo_uri, "logo_uri")?,
            scope: self.scope,
            contacts,
            software_id: short_text(self.software_id, "software_id")?,
            software_version: short_text(self.software_version, "software_version")?,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.unwrap_or(false),
            jwks,
            tls_client_auth_san_dns: san_dns,
            tls_client_auth_san_ip: san_ip,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> Result<ClientMetadata, OAuthError> {
        request_as(json, ClientKind::Dynamic)
    }

    fn request_as(json: serde_json::Value, kind: ClientKind) -> Result<ClientMetadata, OAuthError> {
        serde_json::from_value::<RegistrationRequest>(json)
            .unwrap()
            .validate(kind)
    }

    #[test]
    fn certificate_clients_name_exactly_what_their_certificate_must_carry() {
        let base = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"grant_types": ["client_credentials"]});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            request_as(v, ClientKind::Preregistered)
        };
        let m = base(serde_json::json!({"token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "Agent.Example", "tls_client_certificate_bound_access_tokens": true}))
        .unwrap();
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::TlsClientAuth);
        assert_eq!(m.tls_client_auth_san_dns.as_deref(), Some("agent.example"));
        assert!(m.uses_certificate() && m.is_confidential() && !m.uses_secret());
        assert!(m.tls_client_certificate_bound_access_tokens);
        assert_eq!(
            m.certificate_name(),
            Some(crate::mtls::CertificateName::Dns("agent.example".into()))
        );
        let refused = [
            serde_json::json!({"token_endpoint_auth_method": "tls_client_auth"}),
            serde_json::json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "a.example", "tls_client_auth_san_ip": "10.0.0.1"}),
            serde_json::json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=agent"}),
            serde_json::json!({"token_endpoint_auth_method": "client_secret_basic", "tls_client_auth_san_dns": "a.example"}),
            serde_json::json!({"token_endpoint_auth_method": "self_signed_tls_client_auth"}),
            serde_json::json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [{"kty": "EC"}]}}),
        ];
        for extra in refused {
            assert!(base(extra.clone()).is_err(), "{extra}");
        }
        let cert = include_str!("../tests/data/agent-cert.b64").trim();
        let m = base(
            serde_json::json!({"token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [{"kty": "EC", "x5c": [cert]}]}}),
        )
        .unwrap();
        assert!(m.uses_certificate() && m.certificate_name().is_none());
    }

    #[test]
    fn mcp_style_public_client() {
        let m = request(serde_json::json!({
            "redirect_uris": ["http://localhost:33418/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "unknown_field": 1
        }))
        .unwrap();
        assert!(!m.is_confidential());
        assert!(m.allows(GrantType::RefreshToken));
        assert!(!m.allows(GrantType::ClientCredentials));
    }

    #[test]
    fn refusals() {
        assert!(request(serde_json::json!({"redirect_uris": []})).is_err());
        assert!(request(serde_json::json!({"redirect_uris": ["http://evil.com/cb"]})).is_err());
        assert!(request(serde_json::json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"})).is_err());
        assert!(request(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]})).is_err());
        assert!(request(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]})).is_err());
        assert!(request(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:x"})).is_err());
        assert!(
            request_as(
                serde_json::json!({"grant_types": ["client_credentials"]}),
                ClientKind::Preregistered
            )
            .is_ok()
        );
    }

    #[test]
    fn only_administrators_register_client_credentials_clients() {
        let cc = serde_json::json!({"grant_types": ["client_credentials"], "scope": "notes.read"});
        let mixed = serde_json::json!({"redirect_uris": ["https://a.example/cb"],
            "grant_types": ["authorization_code", "client_credentials"]});
        for (json, kind, allowed) in [
            (&cc, ClientKind::Dynamic, false),
            (&cc, ClientKind::MetadataDocument, false),
            (&cc, ClientKind::Preregistered, true),
            (&mixed, ClientKind::Dynamic, false),
            (&mixed, ClientKind::MetadataDocument, false),
            (&mixed, ClientKind::Preregistered, true),
        ] {
            let result = request_as(json.clone(), kind);
            assert_eq!(result.is_ok(), allowed, "{json} as {kind:?}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.error, ErrorCode::InvalidClientMetadata);
            }
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let many: Vec<String> = (0..17)
            .map(|i| format!("https://a.example/cb{i}"))
            .collect();
        let long_uri = format!("https://a.example/{}", "a".repeat(MAX_URI));
        for json in [
            serde_json::json!({"redirect_uris": many}),
            serde_json::json!({"redirect_uris": [long_uri]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "a ".repeat(600)}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "client_name": "n".repeat(201)}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "contacts": vec!["a@b.example"; 9]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": vec!["authorization_code"; 9]}),
        ] {
            assert!(request(json.clone()).is_err(), "{json}");
        }
        assert!(RegistrationRequest::parse(b"{", ClientKind::Dynamic).is_err());
        assert!(RegistrationRequest::parse(b"[]", ClientKind::Dynamic).is_err());
        assert!(
            RegistrationRequest::parse(
                br#"{"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}"#,
                ClientKind::Dynamic
            )
            .is_ok()
        );
    }
}
