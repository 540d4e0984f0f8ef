//! Client authentication at the token, introspection and revocation
//! endpoints: HTTP Basic or form parameters for clients with a secret (their
//! `lzcs_` secret checked offline by checksum, then by hash in constant
//! time), a JWT signed with a registered key for `private_key_jwt` clients
//! (RFC 7523 §2.2; each assertion used once), the bare `client_id` for
//! public clients. A client authenticates only the way it registered.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use laissez_core::credential::hash_secret;
use laissez_oauth::assertion::{self, ASSERTION_TYPE};
use laissez_oauth::client::{AuthMethod, Client};
use laissez_oauth::mtls;
use laissez_oauth::{ErrorCode, OAuthError};
use subtle::ConstantTimeEq;

use super::response::OAuthFailure;
use crate::AppState;

/// How many client assertions' `jti`s are remembered at once (until each
/// assertion's expiry, at most an hour); beyond that new ones are refused.
pub const ASSERTIONS_REMEMBERED: usize = 100_000;

/// Clock skew allowed on a client assertion, seconds.
const ASSERTION_LEEWAY: i64 = 30;

/// The client certificate of the request's TLS connection, if any.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionCertificate<'a> {
    /// The leaf certificate, DER.
    pub der: &'a [u8],
    /// Its SHA-256 thumbprint (`x5t#S256`).
    pub thumbprint: &'a str,
    /// Whether it chained to the listener's client CA (the TLS layer checked).
    pub chained_to_ca: bool,
}

impl<'a> ConnectionCertificate<'a> {
    /// The certificate the connection of a request presented, if any.
    pub fn of(extension: Option<&'a laissez_tls::ClientCertificate>) -> Option<Self> {
        let presented = extension?;
        Some(ConnectionCertificate {
            der: presented.der()?,
            thumbprint: presented.thumbprint()?,
            chained_to_ca: presented.trust() == Some(laissez_tls::Trust::IssuedByClientCa),
        })
    }
}

/// What a request's form carries to authenticate its client.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientForm<'a> {
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `client_secret` (`client_secret_post`).
    pub client_secret: Option<&'a str>,
    /// `client_assertion_type` (RFC 7523).
    pub client_assertion_type: Option<&'a str>,
    /// `client_assertion` (RFC 7523).
    pub client_assertion: Option<&'a str>,
    /// The connection's client certificate (RFC 8705).
    pub certificate: Option<ConnectionCertificate<'a>>,
}

fn invalid_client(why: &str) -> OAuthFailure {
    OAuthFailure(OAuthError::new(ErrorCode::InvalidClient, why))
}

fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The credentials a request presents.
fn presented(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<(String, Option<String>), OAuthFailure> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| invalid_client("the Authorization header is not ASCII"))?;
        if let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        {
            if form_secret.is_some() {
                return Err(OAuthFailure(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                )));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| {
                    invalid_client("the Basic credentials are not valid base64 of id:secret")
                })?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                invalid_client("the Basic credentials must be client_id:client_secret")
            })?;
            let id = form_decode(id);
            if form_id.is_some_and(|f| f != id) {
                return Err(invalid_client(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            return Ok((id, Some(form_decode(secret))));
        }
    }
    let id =
        form_id.ok_or_else(|| invalid_client("client authentication is required (client_id)"))?;
    Ok((id.to_owned(), form_secret.map(str::to_owned)))
}

/// Authenticates the calling client at `endpoint` (its path, e.g.
/// `/oauth/token`).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: ClientForm<'_>,
    endpoint: &str,
) -> Result<Client, OAuthFailure> {
    if form.client_assertion.is_some() || form.client_assertion_type.is_some() {
        return by_assertion(state, headers, form, endpoint).await;
    }
    let (id, secret) = presented(headers, form.client_id, form.client_secret)?;
    let (client, stored_hash) = known(state, &id).await?;
    if client.metadata.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt {
        return Err(invalid_client(
            "this client authenticates with private_key_jwt: send client_assertion_type and a signed client_assertion",
        ));
    }
    if client.metadata.uses_certificate() {
        if secret.is_some() {
            return Err(invalid_client(
                "this client authenticates with its TLS client certificate; it has no secret to send",
            ));
        }
        return by_certificate(client, form.certificate);
    }
    match (stored_hash, secret) {
        // A confidential client without a stored secret had it revoked
        // (reported leaked): it must not fall back to acting as public.
        (None, _) if client.metadata.is_confidential() => Err(invalid_client(
            "this client's secret was revoked (reported leaked); its owner must register the client again",
        )),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(invalid_client(
            "this is a public client; it has no secret to send",
        )),
        (Some(_), None) => Err(invalid_client(
            "this client is confidential; send its client_secret",
        )),
        (Some(stored), Some(secret)) => {
            // Offline checksum first: a mistyped secret never reaches the hash compare.
            laissez_token::Token::parse(&secret).map_err(|_| {
                invalid_client("the client_secret is not a valid Laissez client secret")
            })?;
            if bool::from(hash_secret(&secret).ct_eq(&stored)) {
                Ok(client)
            } else {
                Err(invalid_client("wrong client_secret"))
            }
        }
    }
}

/// RFC 8705 §2: the connection's certificate is the client's.
fn by_certificate(
    client: Client,
    certificate: Option<ConnectionCertificate<'_>>,
) -> Result<Client, OAuthFailure> {
    let Some(certificate) = certificate else {
        return Err(invalid_client(
            "this client authenticates with a TLS client certificate: connect to the mutual-TLS listener and present it",
        ));
    };
    let metadata = &client.metadata;
    let admitted = match metadata.token_endpoint_auth_method {
        AuthMethod::TlsClientAuth => {
            certificate.chained_to_ca
                && metadata
                    .certificate_name()
                    .is_some_and(|name| mtls::carries(certificate.der, &name))
        }
        AuthMethod::SelfSignedTlsClientAuth => metadata
            .jwks
            .as_ref()
            .is_some_and(|jwks| mtls::registered(certificate.der, jwks)),
        _ => false,
    };
    if admitted {
        Ok(client)
    } else {
        Err(invalid_client(
            "the TLS client certificate is not this client's (wrong name, another CA, or not registered)",
        ))
    }
}

/// The client `id` names and its stored secret hash, or `invalid_client`.
async fn known(state: &AppState, id: &str) -> Result<(Client, Option<[u8; 32]>), OAuthFailure> {
    if id.is_empty() || id.len() > 2048 {
        return Err(invalid_client("client_id is empty or too long"));
    }
    super::resolve_client(state, id)
        .await?
        .ok_or_else(|| invalid_client("unknown client_id; register first"))
}

/// RFC 7523 §2.2: the client is the assertion's `sub`, proven by a
/// signature with one of its registered keys, and the assertion is used once.
async fn by_assertion(
    state: &AppState,
    headers: &HeaderMap,
    form: ClientForm<'_>,
    endpoint: &str,
) -> Result<Client, OAuthFailure> {
    if form.client_assertion_type != Some(ASSERTION_TYPE) {
        return Err(invalid_client(&format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let Some(jwt) = form.client_assertion else {
        return Err(OAuthFailure(OAuthError::invalid_request(
            "client_assertion_type was sent without client_assertion",
        )));
    };
    if jwt.len() > assertion::MAX_ASSERTION_LEN {
        return Err(invalid_client("the client_assertion is longer than 8 KiB"));
    }
    if form.client_secret.is_some() || headers.contains_key(AUTHORIZATION) {
        return Err(OAuthFailure(OAuthError::invalid_request(
            "use one client authentication method: a client_assertion, not also a secret or an Authorization header",
        )));
    }
    let id = match (form.client_id, unverified_subject(jwt)) {
        (Some(id), Some(sub)) if id != sub => {
            return Err(invalid_client(
                "client_id differs from the client_assertion's \"sub\"",
            ));
        }
        (_, Some(sub)) => sub,
        (_, None) => {
            return Err(invalid_client(
                "the client_assertion's claims have no string \"sub\" naming the client",
            ));
        }
    };
    let (client, _) = known(state, &id).await?;
    let Some(jwks) = client
        .metadata
        .jwks
        .as_ref()
        .filter(|_| client.metadata.token_endpoint_auth_method == AuthMethod::PrivateKeyJwt)
    else {
        return Err(invalid_client(
            "this client did not register private_key_jwt; authenticate the way it registered",
        ));
    };
    let issuer = state.issuer.trim_end_matches('/');
    let at_endpoint = format!("{issuer}{endpoint}");
    let audiences = [issuer, state.issuer.as_str(), at_endpoint.as_str()];
    let now = crate::now();
    let expected = assertion::Expected {
        client_id: &client.client_id,
        audiences: &audiences,
        now,
        leeway: ASSERTION_LEEWAY,
    };
    let admitted = assertion::verify(jwt, jwks, &expected).map_err(OAuthFailure)?;
    state
        .assertions
        .admit(&client.client_id, &admitted.jti, admitted.until, now)
        .map_err(|e| match e {
            laissez_dpop::ProofError::Replayed => invalid_client(
                "this client_assertion was used before; sign a new one with a fresh jti for every request",
            ),
            _ => OAuthFailure(OAuthError::new(
                ErrorCode::ServerError,
                "too many client assertions are outstanding; retry in a minute",
            )),
        })?;
    Ok(client)
}

/// The `sub` of an assertion before its signature is checked: only to find
/// which client's keys to check it with.
fn unverified_subject(jwt: &str) -> Option<String> {
    let claims = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}
