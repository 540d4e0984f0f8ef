//! The token endpoint (RFC 6749 §3.2): authorization codes (with PKCE and
//! the exact redirect URI), refresh tokens (rotated on every use; a reused one
//! revokes its family) and client credentials (only a client an
//! administrator registered, acting as the service or agent principal behind
//! it, bounded by its registration, the resource's scopes and that
//! principal's policies). Access tokens are short-lived RFC 9068 JWTs for one
//! resource; each one issued is an audit record, durable before the answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use laissez_core::audit::AuditEvent;
use laissez_core::credential::hash_secret;
use laissez_core::{Permission, Principal, PrincipalKind, PrincipalRef, Scope, Status};
use laissez_oauth::access_token::{AccessTokenClaims, TYP};
use laissez_oauth::client::{Client, GrantType};
use laissez_oauth::grant::{
    REFRESH_TTL, RefreshGrant, RefreshUse, scopes_acting_alone, scopes_for_person,
};
use laissez_oauth::resource::Resource;
use laissez_oauth::{ErrorCode, OAuthError, OAuthScopes};
use laissez_store::Redemption;
use serde::Deserialize;
use serde_json::json;

use super::client_auth::{ClientForm, ConnectionCertificate, authenticate};
use super::response::{OAuthFailure, OAuthForm, no_store};
use crate::{AppState, new_id, now};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Access token lifetime, seconds.
pub const ACCESS_TOKEN_TTL: i64 = 600;

/// Token request parameters.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub(crate) grant_type: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    /// RFC 7523 client authentication.
    pub(crate) client_assertion_type: Option<String>,
    pub(crate) client_assertion: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_verifier: Option<String>,
    pub(crate) refresh_token: Option<String>,
    /// Token exchange (RFC 8693).
    pub(crate) subject_token: Option<String>,
    pub(crate) subject_token_type: Option<String>,
    pub(crate) requested_token_type: Option<String>,
    pub(crate) audience: Option<String>,
    /// Laissez's own exchange parameters: the task's description and lifetime (seconds).
    pub(crate) task_description: Option<String>,
    pub(crate) task_ttl: Option<i64>,
    /// Polling a pending task (RFC 8628): its approval id.
    pub(crate) device_code: Option<String>,
    /// Bind the issued task to this key instead of the proof's (a sub-agent's).
    pub(crate) dpop_jkt: Option<String>,
}

impl TokenRequest {
    /// The parameters that authenticate the client.
    fn client_form<'a>(
        &'a self,
        certificate: Option<&'a laissez_tls::ClientCertificate>,
    ) -> ClientForm<'a> {
        ClientForm {
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_deref(),
            client_assertion_type: self.client_assertion_type.as_deref(),
            client_assertion: self.client_assertion.as_deref(),
            certificate: ConnectionCertificate::of(certificate),
        }
    }
}

/// Issues tokens.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    certificate: Option<axum::Extension<laissez_tls::ClientCertificate>>,
    OAuthForm(request): OAuthForm<TokenRequest>,
) -> Result<Response, OAuthFailure> {
    let certificate = certificate.as_ref().map(|c| &c.0);
    let form = request.client_form(certificate);
    let grant = request
        .grant_type
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate(&state, &headers, form, "/oauth/token").await?;
    let jkt = match grant {
        super::exchange::TOKEN_EXCHANGE | super::exchange::DEVICE_CODE => None,
        _ => match super::exchange::binding(&state, &headers, &client) {
            Ok(jkt) => jkt,
            Err(refusal) => return Ok(*refusal),
        },
    };
    let x5t = certificate_binding(&client, form.certificate)?;
    let bound = Binding {
        jkt: jkt.as_deref(),
        x5t: x5t.as_deref(),
    };
    match grant {
        "client_credentials" => client_credentials(&state, &client, &request, bound).await,
        "authorization_code" => authorization_code(&state, &client, &request, bound).await,
        "refresh_token" => refresh(&state, &client, &request, bound).await,
        super::exchange::TOKEN_EXCHANGE => {
            let certificate = form.certificate.map(|c| c.thumbprint);
            super::exchange::exchange(&state, &headers, &client, &request, certificate).await
        }
        super::exchange::DEVICE_CODE => {
            let certificate = form.certificate.map(|c| c.thumbprint);
            super::exchange::poll(&state, &headers, &client, &request, certificate).await
        }
        other => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type '{}' is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )
        .into()),
    }
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
    bound: Binding<'_>,
) -> Result<Response, OAuthFailure> {
    let jkt = bound.jkt;
    // Only a client an administrator registered, backed by a principal,
    // acts with no person present; a self-registered client never does.
    let principal_id = match (&client.principal_id, client.may_act_alone()) {
        (Some(id), true) => id.as_str(),
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "only a client an administrator registered for client_credentials, backed by a service or agent principal, may obtain tokens with no person present",
            )
            .into());
        }
    };
    let client_registered = OAuthScopes::parse(client.metadata.scope.as_deref())?;
    let requested = request
        .scope
        .as_deref()
        .map(|s| OAuthScopes::parse(Some(s)))
        .transpose()?;
    if let Some(extra) = requested
        .as_ref()
        .map(|r| r.difference(&client_registered))
        .filter(|extra| !extra.is_empty())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the client is not registered for: {extra}"),
        )
        .into());
    }
    let chain = state.store.chain(principal_id).await?;
    let acting = chain.last().filter(|p| {
        p.id == principal_id && matches!(p.kind, PrincipalKind::Service | PrincipalKind::Agent)
    });
    if acting.is_none() || chain.iter().any(|p| p.status != Status::Active) {
        return Err(OAuthError::invalid_grant(
            "the principal behind this client (or its owner) is not active",
        )
        .into());
    }
    let resource = request
        .resource
        .as_deref()
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is required: name the registered resource the token is for",
            )
        })
        .and_then(Resource::parse)?;
    let Some(protected) = super::authorize::registered_resource(state, &resource).await else {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the resource is not registered with this server",
        )
        .into());
    };
    let policy_scope = match protected.gate.as_ref().and_then(|g| g.account.as_deref()) {
        Some(account) => Scope::parse(account).map_err(|e| server_error(e.to_string()))?,
        None => Scope::root(),
    };
    let ids: Vec<String> = chain.iter().map(|p| p.id.clone()).collect();
    let policies = state.store.policy_set(&ids).await?;
    let refs: Vec<_> = chain.iter().map(|p| p.reference()).collect();
    let scopes = scopes_acting_alone(
        requested.as_ref(),
        &client_registered,
        &OAuthScopes::from_names(protected.scopes.keys().map(String::as_str)),
        |scope| {
            Permission::parse(scope)
                .is_ok_and(|p| policies.evaluate(&refs, None, &p, &policy_scope).is_allow())
        },
    )?;
    let audience = resource.to_string();
    let token = TokenFor {
        subject: principal_id,
        client_id: &client.client_id,
        actor: None,
        audience: &audience,
        scopes: &scopes,
        accounts: &[],
        jkt,
        x5t: bound.x5t,
    };
    let minted = mint(state, &token)?;
    let audit = issuance(&refs, &minted.claims, "client_credentials");
    state
        .store
        .record_issuance(&client.client_id, audit)
        .await?;
    Ok(minted.respond(&state.metrics, &scopes, None))
}

fn audience_for(
    state: &AppState,
    granted: Option<&str>,
    requested: Option<&str>,
) -> Result<String, OAuthFailure> {
    let granted = granted.map(Resource::parse).transpose()?;
    let requested = requested.map(Resource::parse).transpose()?;
    match (granted, requested) {
        (Some(g), Some(r)) if g != r => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one the user authorized",
        )
        .into()),
        (Some(g), _) => Ok(g.to_string()),
        (None, Some(r)) => Ok(r.to_string()),
        (None, None) => Ok(state.issuer.clone()),
    }
}

async fn active_user(state: &AppState, user_id: &str) -> Result<Principal, OAuthFailure> {
    match state.store.principal(user_id).await? {
        Some(user) if user.status == Status::Active => Ok(user),
        _ => {
            Err(OAuthError::invalid_grant("the user who granted access is no longer active").into())
        }
    }
}

/// A replayed code means it leaked (RFC 6749 §4.1.2, RFC 9700 §4.5): end
/// everything this user gave this client; they consent again.
async fn code_replayed(
    state: &AppState,
    grant: &laissez_oauth::grant::AuthorizationCode,
) -> Result<Response, OAuthFailure> {
    let audit = AuditEvent::success(&[], "oauth.code.reuse", grant.client_id.clone())
        .with_detail(json!({"user": grant.user_id}));
    state
        .store
        .disconnect(&grant.user_id, &grant.client_id, audit)
        .await?;
    state.feed.published().await;
    Err(OAuthError::invalid_grant(
        "the authorization code was already used; every token issued from it is revoked",
    )
    .into())
}

/// Redeems a code. Everything is checked before the code is spent, so a
/// request with the wrong client, verifier, redirect URI or resource
/// changes nothing; spending it, storing the refresh token and the
/// issuance's audit record are one transaction.
async fn authorization_code(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
    bound: Binding<'_>,
) -> Result<Response, OAuthFailure> {
    let jkt = bound.jkt;
    require_grant(client, GrantType::AuthorizationCode, "authorization_code")?;
    let code = request
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = request
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let code_hash = hash_secret(code);
    let Some((grant, spent)) = state.store.peek_code(code_hash).await? else {
        return Err(OAuthError::invalid_grant("unknown authorization code").into());
    };
    if spent {
        return code_replayed(state, &grant).await;
    }
    if grant.expires_at <= now() {
        return Err(
            OAuthError::invalid_grant("the authorization code expired; start again").into(),
        );
    }
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )
        .into());
    }
    if request.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must repeat the authorization request's exactly",
        )
        .into());
    }
    laissez_oauth::pkce::Challenge::stored(grant.code_challenge.clone()).verify(verifier)?;
    let audience = audience_for(
        state,
        grant.resource.as_deref(),
        request.resource.as_deref(),
    )?;
    let consented = OAuthScopes::parse(Some(&grant.scope))?;
    let user = active_user(state, &grant.user_id).await?;
    // Consent was bounded by the person's policies; a policy removed since
    // (the code lives a minute) narrows what the code yields.
    let scopes = held_now(
        state,
        &user,
        grant.resource.as_deref(),
        &grant.accounts,
        &consented,
    )
    .await?;
    let allows_refresh = client.metadata.allows(GrantType::RefreshToken);
    let refresh = if laissez_oauth::grant::issues_refresh(allows_refresh, &scopes) {
        let family_id = new_id("fam").map_err(|e| server_error(e.to_string()))?;
        let (secret, hash) = new_refresh(state)?;
        let next = RefreshGrant {
            family_id,
            client_id: client.client_id.clone(),
            user_id: grant.user_id.clone(),
            scope: scopes.to_string(),
            resource: Some(audience.clone()),
            accounts: grant.accounts.clone(),
            expires_at: now() + REFRESH_TTL,
            issued_at: now(),
            issued_at_ms: now_ms(),
            // A public client's refresh token is as good as its key (RFC 9449 §5).
            jkt: jkt
                .filter(|_| !client.metadata.is_confidential())
                .map(str::to_owned),
        };
        Some((secret, hash, next))
    } else {
        None
    };
    let token = TokenFor::user(
        &grant.user_id,
        client,
        &audience,
        &scopes,
        &grant.accounts,
        bound,
    );
    let minted = mint(state, &token)?;
    let audit = issuance(&[user.reference()], &minted.claims, "authorization_code");
    let stored = refresh
        .as_ref()
        .map(|(_, hash, next)| (*hash, next.clone()));
    match state.store.redeem_code(code_hash, stored, audit).await? {
        Redemption::Spent => Ok(minted.respond(
            &state.metrics,
            &scopes,
            refresh.map(|(secret, _, _)| secret),
        )),
        Redemption::Replayed => code_replayed(state, &grant).await,
    }
}

/// What of `granted` the person still holds for `resource` in `accounts`
/// (their policies now, and the scopes the resource defines).
async fn held_now(
    state: &AppState,
    user: &laissez_core::Principal,
    resource: Option<&str>,
    accounts: &[String],
    granted: &OAuthScopes,
) -> Result<OAuthScopes, OAuthFailure> {
    let protected = match resource {
        Some(r) => super::authorize::registered_resource(state, &Resource::parse(r)?).await,
        None => None,
    };
    let holdings =
        super::authorize::Holdings::of(state, user.reference(), protected.as_ref(), accounts)
            .await?;
    let defined = super::authorize::defined_scopes(protected.as_ref());
    Ok(scopes_for_person(granted, defined.as_ref(), |s| {
        holdings.holds(s)
    })?)
}

async fn refresh_replayed(state: &AppState, token_hash: [u8; 32]) -> OAuthFailure {
    // Spending a spent token revokes its family.
    if let Ok(RefreshUse::Reused(grant)) = state.store.use_refresh(token_hash).await {
        let audit = AuditEvent::success(&[], "oauth.refresh.reuse", grant.family_id.clone())
            .with_detail(json!({"client_id": grant.client_id, "user": grant.user_id}));
        let _ = state.store.append_audit(audit).await;
    }
    OAuthError::invalid_grant(
        "this refresh token was already used; the whole grant is revoked, sign in again",
    )
    .into()
}

/// Rotates a refresh token. As with codes, everything is checked before the
/// token is spent; spending it, storing its successor and the issuance's
/// audit record are one transaction.
async fn refresh(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
    bound: Binding<'_>,
) -> Result<Response, OAuthFailure> {
    let jkt = bound.jkt;
    require_grant(client, GrantType::RefreshToken, "refresh_token")?;
    let token = request
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    if laissez_token::Token::parse(token).is_err() {
        return Err(OAuthError::invalid_grant("not a valid refresh token (checksum)").into());
    }
    let token_hash = hash_secret(token);
    let grant = match state.store.peek_refresh(token_hash).await? {
        RefreshUse::Fresh(grant) => grant,
        RefreshUse::Reused(_) => return Err(refresh_replayed(state, token_hash).await),
        RefreshUse::Invalid => {
            return Err(
                OAuthError::invalid_grant("unknown, expired or revoked refresh token").into(),
            );
        }
    };
    if grant.client_id != client.client_id {
        return Err(
            OAuthError::invalid_grant("the refresh token was issued to another client").into(),
        );
    }
    if let Some(bound) = grant.jkt.as_deref()
        && jkt != Some(bound)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this refresh token is bound to a DPoP key: send a proof of that key",
        )
        .into());
    }
    let granted = OAuthScopes::parse(Some(&grant.scope))?;
    let asked = match request.scope.as_deref() {
        Some(_) => {
            let asked = OAuthScopes::parse(request.scope.as_deref())?;
            if !asked.is_subset(&granted) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh can only narrow the granted scopes",
                )
                .into());
            }
            Some(asked)
        }
        None => None,
    };
    let audience = audience_for(
        state,
        grant.resource.as_deref(),
        request.resource.as_deref(),
    )?;
    let user = active_user(state, &grant.user_id).await?;
    // The person's policies now bound the grant: a removed policy narrows
    // it for good (the rotated token keeps only what is still held).
    let still = held_now(
        state,
        &user,
        grant.resource.as_deref(),
        &grant.accounts,
        &granted,
    )
    .await?;
    let scopes = match asked {
        Some(asked) => scopes_for_person(&asked, None, |s| still.contains(s))?,
        None => still.clone(),
    };
    let (secret, next_hash) = new_refresh(state)?;
    let next = RefreshGrant {
        expires_at: now() + REFRESH_TTL,
        issued_at: now(),
        issued_at_ms: now_ms(),
        scope: still.to_string(),
        ..grant.clone()
    };
    let token = TokenFor::user(
        &grant.user_id,
        client,
        &audience,
        &scopes,
        &grant.accounts,
        bound,
    );
    let minted = mint(state, &token)?;
    let audit = issuance(&[user.reference()], &minted.claims, "refresh_token");
    match state
        .store
        .rotate_refresh(token_hash, next_hash, next, audit)
        .await?
    {
        Redemption::Spent => Ok(minted.respond(&state.metrics, &scopes, Some(secret))),
        Redemption::Replayed => Err(refresh_replayed(state, token_hash).await),
    }
}

/// Refuses clients not registered for `grant`.
fn require_grant(client: &Client, grant: GrantType, name: &str) -> Result<(), OAuthFailure> {
    if client.metadata.allows(grant) {
        return Ok(());
    }
    Err(OAuthError::new(
        ErrorCode::UnauthorizedClient,
        format!("this client is not registered for the {name} grant"),
    )
    .into())
}

fn server_error(e: String) -> OAuthFailure {
    OAuthFailure(OAuthError::new(ErrorCode::ServerError, e))
}

/// A new refresh token and its hash.
fn new_refresh(state: &AppState) -> Result<(String, [u8; 32]), OAuthFailure> {
    let token = laissez_token::Token::generate(&state.namespace, laissez_token::Kind::Refresh)
        .map_err(|e| server_error(e.to_string()))?;
    Ok((token.expose().to_owned(), hash_secret(token.expose())))
}

/// The audit record of an issued access token: who it speaks for (the
/// chain), the client and agent, resource, scopes, `jti` and expiry.
fn issuance(chain: &[PrincipalRef], claims: &AccessTokenClaims, grant_type: &str) -> AuditEvent {
    AuditEvent::success(chain, "oauth.token.issue", claims.jti.clone()).with_detail(json!({
        "grant_type": grant_type,
        "sub": claims.sub,
        "client_id": claims.client_id,
        "act": claims.act.as_ref().map(|a| a.sub.clone()),
        "aud": claims.aud,
        "scope": claims.scope,
        "jti": claims.jti,
        "iat": claims.iat,
        "exp": claims.exp,
    }))
}

/// What an access token is about.
pub struct TokenFor<'a> {
    /// The user, or the principal behind the client for client credentials.
    pub subject: &'a str,
    /// The client it is issued to.
    pub client_id: &'a str,
    /// The agent acting for the subject.
    pub actor: Option<&'a str>,
    /// The resource.
    pub audience: &'a str,
    /// Granted scopes.
    pub scopes: &'a OAuthScopes,
    /// The subject's accounts it may act in.
    pub accounts: &'a [String],
    /// The DPoP key it is bound to.
    pub jkt: Option<&'a str>,
    /// The TLS client certificate it is bound to (RFC 8705 `x5t#S256`).
    pub x5t: Option<&'a str>,
}

/// What the tokens of one token request are bound to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Binding<'a> {
    /// The DPoP proof's key thumbprint.
    pub jkt: Option<&'a str>,
    /// The connection's client certificate thumbprint.
    pub x5t: Option<&'a str>,
}

/// RFC 8705 §3: a client that registered
/// `tls_client_certificate_bound_access_tokens` gets tokens bound to its
/// connection's client certificate, and none over a connection without one.
pub fn certificate_binding(
    client: &Client,
    certificate: Option<super::client_auth::ConnectionCertificate<'_>>,
) -> Result<Option<String>, OAuthFailure> {
    if !client.metadata.tls_client_certificate_bound_access_tokens {
        return Ok(None);
    }
    match certificate {
        Some(certificate) => Ok(Some(certificate.thumbprint.to_owned())),
        None => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "this client registered tls_client_certificate_bound_access_tokens: connect with its TLS client certificate",
        )
        .into()),
    }
}

impl<'a> TokenFor<'a> {
    /// A token for `user`, through `client` (the agent acting for them).
    fn user(
        user: &'a str,
        client: &'a Client,
        audience: &'a str,
        scopes: &'a OAuthScopes,
        accounts: &'a [String],
        bound: Binding<'a>,
    ) -> TokenFor<'a> {
        TokenFor {
            subject: user,
            client_id: &client.client_id,
            actor: Some(&client.client_id),
            audience,
            scopes,
            accounts,
            jkt: bound.jkt,
            x5t: bound.x5t,
        }
    }
}

/// A signed access token, not yet handed out.
pub struct Minted {
    /// The JWT.
    pub jwt: String,
    /// What it says.
    pub claims: AccessTokenClaims,
}

/// Signs an access token.
pub fn mint(state: &AppState, token: &TokenFor<'_>) -> Result<Minted, OAuthFailure> {
    let now_ms = now_ms();
    let now = now_ms.div_euclid(1000);
    let claims = AccessTokenClaims {
        iss: state.issuer.clone(),
        sub: token.subject.to_owned(),
        aud: token.audience.to_owned(),
        exp: now + ACCESS_TOKEN_TTL,
        iat: now,
        iat_ms: Some(now_ms),
        nbf: None,
        jti: new_id("at").map_err(|e| server_error(e.to_string()))?,
        client_id: token.client_id.to_owned(),
        scope: token.scopes.to_string(),
        accounts: token.accounts.to_vec(),
        act: token.actor.map(|sub| laissez_oauth::access_token::Actor {
            sub: sub.to_owned(),
            act: None,
        }),
        cnf: (token.jkt.is_some() || token.x5t.is_some()).then(|| {
            laissez_oauth::access_token::Confirmation {
                jkt: token.jkt.map(str::to_owned),
                x5t_s256: token.x5t.map(str::to_owned),
            }
        }),
        ..AccessTokenClaims::default()
    };
    let jwt = state
        .keys
        .sign(TYP, &claims)
        .map_err(|e| server_error(e.to_string()))?;
    Ok(Minted { jwt, claims })
}

impl Minted {
    /// The token response (only once the issuance is recorded, which
    /// `metrics` counts).
    pub fn respond(
        self,
        metrics: &laissez_metrics::Metrics,
        scopes: &OAuthScopes,
        refresh_token: Option<String>,
    ) -> Response {
        metrics.issued("access_token");
        if refresh_token.is_some() {
            metrics.issued("refresh_token");
        }
        // A certificate-bound token stays a Bearer token (RFC 8705 §3).
        let token_type = if self.claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) {
            "DPoP"
        } else {
            "Bearer"
        };
        let mut body = json!({
            "access_token": self.jwt,
            "token_type": token_type,
            "expires_in": ACCESS_TOKEN_TTL,
        });
        if !scopes.is_empty() {
            body["scope"] = json!(scopes.to_string());
        }
        if let Some(refresh) = refresh_token {
            body["refresh_token"] = json!(refresh);
        }
        no_store(StatusCode::OK, &body)
    }
}
