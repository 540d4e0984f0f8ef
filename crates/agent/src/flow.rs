//! The discovery, registration, authorization and refresh steps behind
//! [`Agent::fetch`].

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use laissez_oauth::OAuthScopes;
use laissez_oauth::grant::OFFLINE_ACCESS;
use laissez_oauth::pkce::challenge_for;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{Mutex, oneshot};

use crate::cache::{Cache, CachedTokens};
use crate::challenge::{self, Challenge};
use crate::{AgentError, Presenter};

/// How long the human has to answer.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(300);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn http_error(e: reqwest::Error) -> AgentError {
    AgentError::Http(e.to_string())
}

/// An HTTP client for agents.
pub struct Agent {
    http: reqwest::Client,
    cache: Mutex<Cache>,
    presenter: Presenter,
    client_name: String,
    /// The https URL of this agent's Client ID Metadata Document, if it publishes one.
    metadata_document: Option<String>,
}

/// What the loopback redirect brought back.
#[derive(Debug, Default, serde::Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl Agent {
    /// An agent caching tokens at `cache_path` and showing consent URLs to `presenter`.
    pub fn new(cache_path: PathBuf, presenter: Presenter) -> Result<Agent, AgentError> {
        let cache = Cache::load(&cache_path).map_err(AgentError::Cache)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(http_error)?;
        Ok(Agent {
            http,
            cache: Mutex::new(cache),
            presenter,
            client_name: "laissez fetch".into(),
            metadata_document: None,
        })
    }

    /// Uses `url` (an https URL serving this agent's Client ID Metadata
    /// Document) as the client id with authorization servers that support
    /// such documents, instead of registering dynamically.
    pub fn with_metadata_document(mut self, url: &str) -> Agent {
        self.metadata_document = Some(url.to_owned());
        self
    }

    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        headers: &[(String, String)],
        token: Option<&str>,
    ) -> Result<Response, AgentError> {
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        request.send().await.map_err(http_error)
    }

    /// Sends a request, authorizing as needed, and returns the final response.
    pub async fn fetch(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        headers: &[(String, String)],
    ) -> Result<Response, AgentError> {
        let cached = self
            .cache
            .lock()
            .await
            .tokens_for(url)
            .map(|(r, t)| (r.clone(), t.clone()));
        let token = match &cached {
            Some((resource, tokens)) if tokens.expires_at <= now() + 10 => {
                self.refresh(resource, tokens).await.ok()
            }
            Some((_, tokens)) => Some(tokens.access_token.clone()),
            None => None,
        };
        let response = self
            .send(&method, url, body, headers, token.as_deref())
            .await?;
        let status = response.status();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(challenge::parse);
        let step_up = status == StatusCode::FORBIDDEN
            && challenge
                .as_ref()
                .is_some_and(|c| c.error.as_deref() == Some("insufficient_scope"));
        if !(status == StatusCode::UNAUTHORIZED || step_up) {
            return Ok(response);
        }
        let Some(challenge) = challenge else {
            return Ok(response);
        };
        let held = if step_up {
            cached.map(|(_, t)| t.scope).unwrap_or_default()
        } else {
            String::new()
        };
        let token = self.authorize(url, &challenge, &held).await?;
        self.send(&method, url, body, headers, Some(&token)).await
    }

    async fn json(&self, url: &str) -> Result<Value, AgentError> {
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(http_error)?;
        if !response.status().is_success() {
            return Err(AgentError::Protocol(format!(
                "{url} answered HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| AgentError::Protocol(format!("{url}: {e}")))
    }

    /// Discovers, registers, sends the human to consent, and caches the tokens.
    async fn authorize(
        &self,
        url: &str,
        challenge: &Challenge,
        held: &str,
    ) -> Result<String, AgentError> {
        let origin = url::Url::parse(url).map_err(|e| AgentError::Protocol(e.to_string()))?;
        let metadata_url = match &challenge.resource_metadata {
            Some(u) => u.clone(),
            None => format!(
                "{}/.well-known/oauth-protected-resource",
                origin.origin().ascii_serialization()
            ),
        };
        let prm = self.json(&metadata_url).await?;
        let resource = prm["resource"]
            .as_str()
            .ok_or_else(|| AgentError::Protocol("the resource metadata has no resource".into()))?
            .to_owned();
        // RFC 9728 §3.3: metadata naming another resource would have us
        // obtain a token for it and hand that token to this server.
        let covers =
            laissez_oauth::resource::Resource::parse(&resource).is_ok_and(|r| r.covers(url));
        if !covers {
            return Err(AgentError::Protocol(format!(
                "the protected resource metadata names resource {resource}, which does not cover {url}; refusing to obtain a token for it"
            )));
        }
        let issuer = prm["authorization_servers"][0]
            .as_str()
            .ok_or_else(|| {
                AgentError::Protocol("the resource names no authorization server".into())
            })?
            .to_owned();
        let asm = self
            .json(&format!(
                "{}/.well-known/oauth-authorization-server",
                issuer.trim_end_matches('/')
            ))
            .await?;
        if asm["issuer"] != issuer.as_str() {
            return Err(AgentError::Protocol(format!(
                "the authorization server's metadata names issuer {} instead of {issuer}",
                asm["issuer"]
            )));
        }
        let endpoint = |name: &str| {
            asm[name].as_str().map(str::to_owned).ok_or_else(|| {
                AgentError::Protocol(format!("the authorization server has no {name}"))
            })
        };
        // Ask for what the challenge names (plus what we held, on step-up), else what the resource lists.
        let wanted = match &challenge.scope {
            Some(scope) => scope.clone(),
            None => prm["scopes_supported"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        };
        let mut scopes = OAuthScopes::parse(Some(held))
            .unwrap_or_default()
            .union(&OAuthScopes::parse(Some(&wanted)).unwrap_or_default());
        // A refresh token comes only with offline_access, where the server
        // offers it. Not alone: a request naming only it would stand in for
        // the resource's default scopes and be granted nothing else.
        let offers_offline = asm["scopes_supported"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == OFFLINE_ACCESS));
        if offers_offline && !scopes.is_empty() {
            scopes = scopes.union(&OAuthScopes::from_names([OFFLINE_ACCESS]));
        }

        // A loopback listener on a free port receives the answer.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| AgentError::Http(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| AgentError::Http(e.to_string()))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        // A metadata document where the server supports one, else dynamic registration.
        let client_id = match &self.metadata_document {
            Some(document) if asm["client_id_metadata_document_supported"] == true => {
                let mut cache = self.cache.lock().await;
                cache.clients.insert(issuer.clone(), document.clone());
                cache.save().map_err(AgentError::Cache)?;
                document.clone()
            }
            _ => {
                self.client_id(&issuer, &endpoint("registration_endpoint")?)
                    .await?
            }
        };

        let verifier =
            laissez_token::random_base62(64).map_err(|e| AgentError::Protocol(e.to_string()))?;
        let state =
            laissez_token::random_base62(32).map_err(|e| AgentError::Protocol(e.to_string()))?;
        // Registered without a port; loopback redirects may use any (RFC 8252 §7.3).
        let mut authorize = url::Url::parse(&endpoint("authorization_endpoint")?)
            .map_err(|e| AgentError::Protocol(e.to_string()))?;
        {
            let mut query = authorize.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", &challenge_for(&verifier))
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("resource", &resource);
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.to_string());
            }
        }
        let authorize = authorize.to_string();

        let (tx, rx) = oneshot::channel::<Callback>();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
        let app = Router::new().route(
            "/callback",
            get(move |Query(callback): Query<Callback>| {
                let tx = tx.clone();
                async move {
                    if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(callback);
                    }
                    axum::response::Html(
                        "<p>Done. You can close this tab and return to the agent.</p>",
                    )
                }
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        (self.presenter)(authorize).await;
        let callback = tokio::time::timeout(CONSENT_TIMEOUT, rx).await;
        let _ = stop.send(());
        let _ = server.await;
        let callback = callback
            .map_err(|_| {
                AgentError::Denied("nobody answered the consent page within 5 minutes".into())
            })?
            .map_err(|_| AgentError::Denied("the loopback listener closed".into()))?;
        if let Some(error) = callback.error {
            return Err(AgentError::Denied(format!(
                "{error}: {}",
                callback.error_description.unwrap_or_default()
            )));
        }
        if callback.state.as_deref() != Some(state.as_str()) {
            return Err(AgentError::Protocol(
                "the answer's state does not match the request's".into(),
            ));
        }
        if asm["authorization_response_iss_parameter_supported"] == true
            && callback.iss.as_deref() != Some(issuer.as_str())
        {
            return Err(AgentError::Protocol(
                "the answer's iss is not the authorization server's (RFC 9207)".into(),
            ));
        }
        let code = callback
            .code
            .ok_or_else(|| AgentError::Protocol("the answer has no code".into()))?;
        let tokens = self
            .token(
                &endpoint("token_endpoint")?,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &redirect_uri),
                    ("code_verifier", &verifier),
                    ("client_id", &client_id),
                    ("resource", &resource),
                ],
            )
            .await?;
        self.store(&resource, &issuer, &tokens, &scopes.to_string())
            .await
    }

    async fn client_id(&self, issuer: &str, registration: &str) -> Result<String, AgentError> {
        if let Some(id) = self.cache.lock().await.clients.get(issuer) {
            return Ok(id.clone());
        }
        let response = self
            .http
            .post(registration)
            .json(&serde_json::json!({
                "client_name": self.client_name,
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(http_error)?;
        let id = body["client_id"]
            .as_str()
            .ok_or_else(|| {
                AgentError::Protocol(format!("registration failed (HTTP {status}): {body}"))
            })?
            .to_owned();
        let mut cache = self.cache.lock().await;
        cache.clients.insert(issuer.to_owned(), id.clone());
        cache.save().map_err(AgentError::Cache)?;
        Ok(id)
    }

    async fn token(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<Value, AgentError> {
        let response = self
            .http
            .post(endpoint)
            .form(form)
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(http_error)?;
        if !status.is_success() {
            return Err(AgentError::Denied(format!(
                "{}: {}",
                body["error"].as_str().unwrap_or("token request failed"),
                body["error_description"].as_str().unwrap_or_default()
            )));
        }
        Ok(body)
    }

    async fn store(
        &self,
        resource: &str,
        issuer: &str,
        tokens: &Value,
        asked: &str,
    ) -> Result<String, AgentError> {
        let access = tokens["access_token"]
            .as_str()
            .ok_or_else(|| AgentError::Protocol("no access_token".into()))?
            .to_owned();
        let cached = CachedTokens {
            issuer: issuer.to_owned(),
            access_token: access.clone(),
            refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
            scope: tokens["scope"].as_str().unwrap_or(asked).to_owned(),
            expires_at: now() + tokens["expires_in"].as_i64().unwrap_or(300),
        };
        let mut cache = self.cache.lock().await;
        cache.tokens.insert(resource.to_owned(), cached);
        cache.save().map_err(AgentError::Cache)?;
        Ok(access)
    }

    async fn refresh(&self, resource: &str, tokens: &CachedTokens) -> Result<String, AgentError> {
        let refresh = tokens
            .refresh_token
            .clone()
            .ok_or_else(|| AgentError::Denied("no refresh token".into()))?;
        let client_id = self
            .cache
            .lock()
            .await
            .clients
            .get(&tokens.issuer)
            .cloned()
            .ok_or_else(|| AgentError::Denied("no client".into()))?;
        let asm = self
            .json(&format!(
                "{}/.well-known/oauth-authorization-server",
                tokens.issuer.trim_end_matches('/')
            ))
            .await?;
        let endpoint = asm["token_endpoint"]
            .as_str()
            .ok_or_else(|| AgentError::Protocol("no token_endpoint".into()))?
            .to_owned();
        let fresh = self
            .token(
                &endpoint,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &client_id),
                ],
            )
            .await?;
        self.store(resource, &tokens.issuer, &fresh, &tokens.scope)
            .await
    }
}
