//! The authorization code flow as a browser and an agent drive it over HTTP:
//! discovery, registration, sign-in, consent (with CSRF and scope narrowing),
//! code exchange with PKCE, refresh rotation with reuse detection, and the
//! refusals OAuth 2.1 requires.

use laissez_oauth::pkce::challenge_for;
use laissez_testkit::TestServer;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use url::Url;

const PASSWORD: &str = "correct horse battery staple";
/// The scopes an agent asks for when it wants to refresh too.
const WITH_OFFLINE: (&str, &str) = ("scope", "notes.read notes.write offline_access");
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more-entropy";

struct Flow {
    server: TestServer,
    http: reqwest::Client,
    client_id: String,
    user_id: String,
}

async fn flow() -> Flow {
    let server = TestServer::start();
    let user = server.add_person("alice", PASSWORD).await;
    // A person can let an app have only what she holds herself.
    server
        .grant_app_role("alice", &["notes.read", "notes.write"], "/")
        .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let client: Value = http
        .post(format!("{}/oauth/register", server.url))
        .json(&json!({
            "client_name": "Notes Agent",
            "client_uri": "https://notes-agent.example",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Flow {
        client_id: client["client_id"].as_str().unwrap().to_owned(),
        user_id: user["id"].as_str().unwrap().to_owned(),
        server,
        http,
    }
}

impl Flow {
    fn authorize_params(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:45678/callback"),
            ("response_type", "code"),
            ("scope", "notes.read notes.write"),
            ("state", "st-123"),
            ("resource", "https://mcp.example/"),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        params.push(("code_challenge".into(), challenge_for(VERIFIER)));
        for (k, v) in extra {
            params.retain(|(key, _)| key != k);
            if !v.is_empty() {
                params.push((k.to_string(), v.to_string()));
            }
        }
        params
    }

    async fn get_authorize(
        &self,
        params: &[(String, String)],
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/oauth/authorize", self.server.url))
            .query(params);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// Posts the login form as a browser would: with the pre-login cookie and
    /// the form's CSRF field.
    async fn post_login(&self, params: &[(String, String)], password: &str) -> reqwest::Response {
        let page = self.get_authorize(params, None).await;
        let cookie = page.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = page.text().await.unwrap();
        assert!(page.contains("Sign in"), "{page}");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let mut form = params.to_vec();
        form.push(("csrf".into(), csrf));
        form.push(("username".into(), "alice".into()));
        form.push(("password".into(), password.into()));
        self.http
            .post(format!("{}/oauth/login", self.server.url))
            .header(COOKIE, cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the login form and returns the session cookie.
    async fn sign_in(&self, params: &[(String, String)]) -> String {
        let response = self.post_login(params, PASSWORD).await;
        assert!(response.status().is_redirection(), "{}", response.status());
        let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        cookie.split(';').next().unwrap().to_owned()
    }

    /// Approves on the consent page (optionally narrowing scopes) and returns the redirect.
    async fn consent(
        &self,
        params: &[(String, String)],
        cookie: &str,
        scopes: &[&str],
        decision: &str,
    ) -> Url {
        let fields: Vec<(&str, &str)> = scopes.iter().map(|s| ("grant_scope", *s)).collect();
        self.consent_with(params, cookie, &fields, decision).await
    }

    /// Answers the consent page with `fields` (`grant_scope`, `grant_account`).
    async fn consent_with(
        &self,
        params: &[(String, String)],
        cookie: &str,
        fields: &[(&str, &str)],
        decision: &str,
    ) -> Url {
        let page = self
            .get_authorize(params, Some(cookie))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Notes Agent") && page.contains("alice"),
            "{page}"
        );
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let mut form = params.to_vec();
        form.push(("csrf".into(), csrf));
        form.push(("decision".into(), decision.into()));
        for (k, v) in fields {
            form.push((k.to_string(), v.to_string()));
        }
        let response = self
            .http
            .post(format!("{}/oauth/consent", self.server.url))
            .header(COOKIE, cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{}", response.status());
        Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
    }

    /// Exchanges an authorization code as the agent (its redirect URI and verifier).
    async fn exchange(&self, code: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:45678/callback"),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    async fn token(&self, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = params.to_vec();
        form.push(("client_id", &self.client_id));
        let response = self
            .http
            .post(format!("{}/oauth/token", self.server.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["cache-control"], "no-store");
        (status, response.json().await.unwrap())
    }
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

use laissez_testkit::jwt_claims as claims;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_consents_and_the_agent_gets_tokens_for_that_user_only() {
    let f = flow().await;
    let params = f.authorize_params(&[WITH_OFFLINE]);
    let cookie = f.sign_in(&params).await;
    let page = f
        .get_authorize(&params, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("localhost") && page.contains("127.0.0.1"),
        "loopback warning and host shown"
    );
    assert!(page.contains("self-asserted") && page.contains("notes-agent.example"));
    assert!(page.contains("notes.read") && page.contains("notes.write"));

    // The user narrows to notes.read.
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "offline_access"],
            "approve",
        )
        .await;
    assert_eq!(
        back.port(),
        Some(45678),
        "loopback redirect on the requested port"
    );
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&back, "iss").as_deref(),
        Some(f.server.url.as_str()),
        "RFC 9207 iss"
    );
    let code = param(&back, "code").unwrap();

    let (status, tokens) = f.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], f.user_id.as_str(), "acts for the user");
    assert_eq!(at["client_id"], f.client_id.as_str());
    assert_eq!(
        at["act"]["sub"],
        f.client_id.as_str(),
        "the agent is the actor"
    );
    assert_eq!(at["aud"], "https://mcp.example");
    assert_eq!(
        at["scope"], "notes.read offline_access",
        "narrowed at consent"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("lzrt_"));

    // Refresh rotates; reusing the old one revokes the family.
    let (status, rotated) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let next = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, refresh);
    assert_eq!(
        claims(rotated["access_token"].as_str().unwrap())["scope"],
        "notes.read offline_access"
    );
    let (status, reuse) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reuse["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    let (status, _) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &next)])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the whole family is revoked after reuse"
    );

    // RFC 7009 revokes a refresh token's whole family.
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "offline_access"],
            "approve",
        )
        .await;
    let second_code = param(&back, "code").unwrap();
    let (_, fresh) = f.exchange(&second_code).await;
    let fresh_refresh = fresh["refresh_token"].as_str().unwrap().to_owned();
    let response = f
        .http
        .post(format!("{}/oauth/revoke", f.server.url))
        .form(&[
            ("token", fresh_refresh.as_str()),
            ("client_id", f.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &fresh_refresh),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a revoked refresh token is refused"
    );

    // A replayed code is refused, and everything the user gave the client ends.
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "offline_access"],
            "approve",
        )
        .await;
    let third_code = param(&back, "code").unwrap();
    let (status, victim) = f.exchange(&third_code).await;
    assert_eq!(status, StatusCode::OK);
    let victim_refresh = victim["refresh_token"].as_str().unwrap().to_owned();
    let (status, error) = f.exchange(&third_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");

    let (status, _) = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &victim_refresh),
        ])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "tokens issued from a replayed code are revoked"
    );

    let (_, verification) = f.server.get("/v1/audit/verify").await;
    assert_eq!(verification["first_break"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_comes_only_with_offline_access() {
    let f = flow().await;
    // Registered for refresh_token, but asking for no offline_access: none
    // (such a client refreshes instead of authorizing again to step up).
    let params = f.authorize_params(&[]);
    let cookie = f.sign_in(&params).await;
    let back = f
        .consent(&params, &cookie, &["notes.read"], "approve")
        .await;
    let (status, tokens) = f.exchange(&param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["refresh_token"], Value::Null, "{tokens}");
    assert_eq!(tokens["scope"], "notes.read");

    // Asked for, but the person unticks it at consent: none either.
    let params = f.authorize_params(&[WITH_OFFLINE]);
    let page = f
        .get_authorize(&params, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("name=\"grant_scope\" value=\"offline_access\" checked"),
        "offline_access is offered at consent: {page}"
    );
    let back = f
        .consent(&params, &cookie, &["notes.read"], "approve")
        .await;
    let (_, tokens) = f.exchange(&param(&back, "code").unwrap()).await;
    assert_eq!(tokens["refresh_token"], Value::Null, "{tokens}");

    // Asked for and granted: a refresh token, and its rotations keep one.
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "offline_access"],
            "approve",
        )
        .await;
    let (_, tokens) = f.exchange(&param(&back, "code").unwrap()).await;
    assert_eq!(tokens["scope"], "notes.read offline_access");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, rotated) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert!(rotated["refresh_token"].as_str().is_some(), "{rotated}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_redirects_and_consent_are_enforced() {
    let f = flow().await;
    // Plain or missing PKCE: an error sent back to the client, with iss and state.
    for extra in [
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge", "")],
    ] {
        let response = f.get_authorize(&f.authorize_params(&extra), None).await;
        assert!(response.status().is_redirection());
        let back = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
        assert_eq!(param(&back, "error").as_deref(), Some("invalid_request"));
        assert_eq!(param(&back, "iss").as_deref(), Some(f.server.url.as_str()));
        assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    }
    // A redirect URI that was not registered is never redirected to.
    for bad in [
        "http://127.0.0.1:45678/other",
        "https://evil.example/callback",
        "http://localhost:45678/callback",
    ] {
        let response = f
            .get_authorize(&f.authorize_params(&[("redirect_uri", bad)]), None)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    let unknown = f
        .get_authorize(&f.authorize_params(&[("client_id", "cli_nobody")]), None)
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    let params = f.authorize_params(&[]);
    let cookie = f.sign_in(&params).await;
    // Consent without the CSRF token is refused.
    let mut forged = params.clone();
    forged.push(("decision".into(), "approve".into()));
    let response = f
        .http
        .post(format!("{}/oauth/consent", f.server.url))
        .header(COOKIE, &cookie)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Denying sends access_denied back.
    let back = f.consent(&params, &cookie, &["notes.read"], "deny").await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "iss").as_deref(), Some(f.server.url.as_str()));

    // Wrong verifier, then a mismatched redirect_uri, then another audience.
    for (field, value, error) in [
        ("code_verifier", "x".repeat(50), "invalid_grant"),
        (
            "redirect_uri",
            "http://127.0.0.1:45679/callback".to_owned(),
            "invalid_grant",
        ),
        (
            "resource",
            "https://other.example".to_owned(),
            "invalid_target",
        ),
    ] {
        let back = f
            .consent(&params, &cookie, &["notes.read"], "approve")
            .await;
        let code = param(&back, "code").unwrap();
        let mut exchange = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:45678/callback".to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        exchange.retain(|(k, _)| *k != field);
        exchange.push((field, value));
        let borrowed: Vec<(&str, &str)> = exchange.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = f.token(&borrowed).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["error"], error, "{field}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_are_refused_and_audited() {
    let f = flow().await;
    let params = f.authorize_params(&[]);
    // Without the sign-in form's cookie and token (a cross-site login), nothing happens.
    let mut forged = params.clone();
    forged.push(("username".into(), "alice".into()));
    forged.push(("password".into(), PASSWORD.into()));
    let response = f
        .http
        .post(format!("{}/oauth/login", f.server.url))
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("laissez_session")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("did not come from this server")
    );

    let response = f.post_login(&params, "not the password at all").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("laissez_session")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Wrong user name or password")
    );
    let (_, records) = f.server.get("/v1/audit?limit=1000").await;
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "session.login" && r["outcome"] == "unauthenticated")
    );
    // Guessing is throttled: after five failures even the right password waits.
    for _ in 0..4 {
        f.post_login(&params, "still not the password").await;
    }
    let response = f.post_login(&params, PASSWORD).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "no session while throttled"
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );
    let text = records.to_string();
    assert!(
        !text.contains("not the password at all"),
        "passwords never reach the audit log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disconnecting_an_app_kills_its_refresh_and_access_tokens_at_once() {
    let f = flow().await;
    let params = f.authorize_params(&[WITH_OFFLINE]);
    let cookie = f.sign_in(&params).await;
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "notes.write", "offline_access"],
            "approve",
        )
        .await;
    let code = param(&back, "code").unwrap();
    let (_, tokens) = f.exchange(&code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A gate for the resource the token was issued for, in front of the server's own health check.
    let gate_url = laissez_testkit::gate::start_gate(&f.server.url, &f.server.url, |c| {
        c.resource = "https://mcp.example".parse().unwrap();
    })
    .await;
    let through_gate = || {
        f.http
            .get(format!("{gate_url}/healthz"))
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(through_gate().await.unwrap().status(), StatusCode::OK);

    let (status, apps) = f.server.get("/v1/connected-apps?user=alice").await;
    assert_eq!(status, StatusCode::OK, "{apps}");
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["client_id"], f.client_id.as_str());
    assert_eq!(apps[0]["client_name"], "Notes Agent");
    assert_eq!(apps[0]["scope"], "notes.read notes.write offline_access");
    assert!(apps[0]["last_used_at"].as_i64().is_some());

    let (status, after) = f
        .server
        .post(
            "/v1/connected-apps/disconnect",
            json!({"user": "alice", "client_id": f.client_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after, json!([]), "no longer connected");
    let (status, error) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "refresh tokens die with the grant: {error}"
    );
    assert_eq!(
        through_gate().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "the gate refuses a disconnected app's token on the next request"
    );
    let (status, _) = f
        .server
        .post(
            "/v1/connected-apps/disconnect",
            json!({"user": "alice", "client_id": f.client_id}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "disconnecting twice says it is not connected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connected_applications_page_lists_and_disconnects() {
    let f = flow().await;
    let params = f.authorize_params(&[WITH_OFFLINE]);
    let cookie = f.sign_in(&params).await;
    let back = f
        .consent(
            &params,
            &cookie,
            &["notes.read", "offline_access"],
            "approve",
        )
        .await;
    let code = param(&back, "code").unwrap();
    let (_, tokens) = f.exchange(&code).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Signed out, the page asks to sign in, and signing in lands on it.
    let page = f
        .http
        .get(format!("{}/account", f.server.url))
        .send()
        .await
        .unwrap();
    let login_cookie = page.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign in"));
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let signed_in = f
        .http
        .post(format!("{}/oauth/login", f.server.url))
        .header(COOKIE, login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.headers()[LOCATION], "/account");

    let page = f
        .http
        .get(format!("{}/account", f.server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Notes Agent") && page.contains("notes.read") && page.contains("Disconnect"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let forged = f
        .http
        .post(format!("{}/account/disconnect", f.server.url))
        .header(COOKIE, &cookie)
        .form(&[("client_id", f.client_id.as_str()), ("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let done = f
        .http
        .post(format!("{}/account/disconnect", f.server.url))
        .header(COOKIE, &cookie)
        .form(&[("client_id", f.client_id.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(done.status().is_redirection());
    let (_, apps) = f.server.get("/v1/connected-apps?user=alice").await;
    assert_eq!(apps, json!([]));
    let (status, _) = f
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "disconnected from the page: refresh tokens are dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_resources_give_default_scopes_and_plain_words() {
    let f = flow().await;
    let (status, saved) = f
        .server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &f.server.admin_token,
            Some(&json!({
                "resource": "https://mcp.example/",
                "name": "Notes",
                "scopes": {"notes.read": "Read your notes", "notes.write": "Change your notes"},
                "default_scopes": ["notes.read"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["resource"], "https://mcp.example");
    let (_, metadata) = f
        .server
        .get("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        metadata["protected_resources"],
        json!(["https://mcp.example"])
    );
    assert_eq!(
        metadata["scopes_supported"],
        json!(["notes.read", "notes.write", "offline_access"])
    );

    // No scope asked, for a path under the resource: its defaults, described.
    let params = f.authorize_params(&[("scope", ""), ("resource", "https://mcp.example/mcp")]);
    let cookie = f.sign_in(&params).await;
    let page = f
        .get_authorize(&params, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Read your notes"), "{page}");
    assert!(
        !page.contains("Change your notes"),
        "only the default scope is asked"
    );

    let (status, bad) = f
        .server
        .call(
            reqwest::Method::PUT,
            "/v1/resources",
            &f.server.admin_token,
            Some(
                &json!({"resource": "https://x.example", "name": "X", "default_scopes": ["nope"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_chooses_which_accounts_an_app_may_act_in_and_gates_hold_it_to_that() {
    let f = flow().await;
    for scope in ["acme", "globex/apps/wiki"] {
        let (status, body) = f
            .server
            .post(
                "/v1/policies",
                json!({"principal": "alice", "role": "laissez-auditor", "scope": scope}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let params = f.authorize_params(&[WITH_OFFLINE]);
    let cookie = f.sign_in(&params).await;
    let page = f
        .get_authorize(&params, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    for account in ["acme", "globex"] {
        assert!(
            page.contains(&format!(
                "name=\"grant_account\" value=\"{account}\" checked"
            )),
            "offers {account}: {page}"
        );
    }
    assert!(
        page.contains("self-asserted"),
        "a self-registered publisher is not verified: {page}"
    );
    // alice keeps globex and slips in an account that is not hers.
    let back = f
        .consent_with(
            &params,
            &cookie,
            &[
                ("grant_scope", "notes.read"),
                ("grant_scope", "offline_access"),
                ("grant_account", "globex"),
                ("grant_account", "initech"),
            ],
            "approve",
        )
        .await;
    let (status, tokens) = f.exchange(&param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["accounts"], json!(["globex"]));
    // Refreshed tokens keep the same accounts.
    let (_, refreshed) = f
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["accounts"],
        json!(["globex"])
    );
    let (_, apps) = f.server.get("/v1/connected-apps?user=alice").await;
    assert_eq!(apps[0]["accounts"], json!(["globex"]), "{apps}");
    // A resource server introspecting the token learns the accounts too.
    let (status, gate_service) = f
        .server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "notes-api", "owner": "admin"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{gate_service}");
    f.server
        .post(
            "/v1/policies",
            json!({"principal": "notes-api", "role": "laissez-gate", "scope": "/"}),
        )
        .await;
    let (_, rs) = f
        .server
        .post("/v1/tokens", json!({"principal": "notes-api"}))
        .await;
    let introspected: Value = f
        .http
        .post(format!("{}/oauth/introspect", f.server.url))
        .bearer_auth(rs["token"].as_str().unwrap())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["accounts"], json!(["globex"]));

    // A gate for an app of acme refuses it; one of globex lets it through
    // and tells the app which accounts.
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            headers
                .get("x-laissez-accounts")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        }),
    );
    let (_, acme_gate) = laissez_testkit::gate::front(app.clone(), &f.server.url, |c| {
        c.resource = "https://mcp.example".parse().unwrap();
        c.account = Some("acme".into());
    })
    .await;
    let (_, globex_gate) = laissez_testkit::gate::front(app, &f.server.url, |c| {
        c.resource = "https://mcp.example".parse().unwrap();
        c.account = Some("globex".into());
    })
    .await;
    let refused = f
        .http
        .get(format!("{acme_gate}/echo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("account acme"),
        "{challenge}"
    );
    let allowed = f
        .http
        .get(format!("{globex_gate}/echo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(allowed.text().await.unwrap(), "globex");

    // Deactivating alice stops her tokens at the gate on the next request.
    let (status, body) = f
        .server
        .post("/v1/principals/alice/deactivate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = f
        .http
        .get(format!("{globex_gate}/echo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_registered_client_is_shown_as_verified() {
    let f = flow().await;
    let (status, client) = f
        .server
        .post(
            "/v1/clients",
            json!({"client_name": "Notes Agent", "client_uri": "https://notes.example",
                   "redirect_uris": ["http://127.0.0.1/callback"],
                   "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let params = f.authorize_params(&[("client_id", client["client_id"].as_str().unwrap())]);
    let cookie = f.sign_in(&params).await;
    let page = f
        .get_authorize(&params, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            "<strong>Verified:</strong> registered by your organization's administrators"
        ),
        "{page}"
    );
    assert!(page.contains("notes.example"));
    assert!(!page.contains("self-asserted"));
}
