//! Sign-in federated to the organization's one upstream OpenID Connect
//! provider, proved against `oidc-provider` (npm), a provider nobody here
//! wrote: people of several accounts sign in through it and go on to consent,
//! the answer is bound to the browser and single use, unknown people are
//! refused, and once the organization requires the provider no password opens
//! a session for anyone. A sign-in started from a console page returns
//! there, and only to a console page. The provider keeps profile claims out
//! of its ID tokens, so the user name comes from its userinfo endpoint.

use laissez_oauth::pkce::challenge_for;
use laissez_server::run::Options;
use laissez_server::web::federation::UpstreamConfig;
use laissez_testkit::TestServer;
use laissez_testkit::browser::{Browser, Landed};
use laissez_testkit::node::NodeScript;
use laissez_testkit::{free_port, jwt_claims};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "laissez-at-the-idp-secret-0123456789";
const VERIFIER: &str = "federated-verifier-federated-verifier-federated-verifier";
const REDIRECT: &str = "http://127.0.0.1:45678/callback";
const PASSWORD: &str = "correct horse battery staple";

struct Org {
    server: TestServer,
    _provider: NodeScript,
    client_id: String,
}

async fn org() -> Org {
    let port = free_port();
    let server = TestServer::start_with_options(Options {
        upstream: Some(UpstreamConfig {
            issuer: format!("http://127.0.0.1:{port}"),
            client_id: "laissez".into(),
            client_secret: SECRET.into(),
            display_name: "Acme SSO".into(),
            username_claim: "preferred_username".into(),
            create_users: false,
        }),
        ..Options::default()
    });
    let callback = format!("{}/oauth/federate/callback", server.url);
    let provider = tokio::task::spawn_blocking(move || {
        NodeScript::start(
            "oidc_idp_server.mjs",
            &[&port.to_string(), "laissez", SECRET, &callback],
        )
    })
    .await
    .unwrap();
    // People of two accounts, one provider.
    for (name, account) in [("alice", "acme"), ("bob", "globex")] {
        let (status, body) = server
            .post("/v1/principals", json!({"kind": "user", "name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = server
            .post(
                "/v1/policies",
                json!({"principal": name, "role": "laissez-auditor", "scope": account}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        server.grant_app_role(name, &["notes.read"], account).await;
    }
    let (status, client) = server
        .post(
            "/v1/clients",
            json!({"client_name": "Notes Agent", "redirect_uris": ["http://127.0.0.1/callback"],
                   "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    Org {
        client_id: client["client_id"].as_str().unwrap().to_owned(),
        server,
        _provider: provider,
    }
}

impl Org {
    fn authorize_url(&self) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.server.url)).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "notes.read")
            .append_pair("state", "st-9")
            .append_pair("code_challenge", &challenge_for(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// Opens the authorization request and signs in at the provider as
    /// `login`; returns the page the provider's answer leads to.
    async fn sign_in_upstream(&self, browser: &mut Browser, login: &str) -> Landed {
        let page = browser.open(&self.authorize_url()).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Sign in with Acme SSO"), "{}", page.body);
        let page = browser.click(&page, "/oauth/federate?").await;
        self.at_the_provider(browser, page, login).await
    }

    /// Signs in at the provider as `login` on its sign-in `page` and
    /// consents; returns the page the provider's answer leads to.
    async fn at_the_provider(&self, browser: &mut Browser, page: Landed, login: &str) -> Landed {
        assert!(
            page.url.contains("/interaction/"),
            "the provider's sign-in: {page:?}"
        );
        let page = browser
            .submit(&page, &[("login", login), ("password", "anything")])
            .await;
        assert!(
            page.body.contains("name=\"prompt\" value=\"consent\""),
            "the provider's consent: {page:?}"
        );
        browser.submit(&page, &[]).await
    }

    async fn audit(&self) -> Vec<Value> {
        let (status, records) = self.server.get("/v1/audit?limit=1000").await;
        assert_eq!(status, StatusCode::OK);
        records.as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn people_of_every_account_sign_in_through_the_organization_provider() {
    let org = org().await;
    for name in ["alice", "bob"] {
        let mut browser = Browser::new(REDIRECT);
        let consent = org.sign_in_upstream(&mut browser, name).await;
        assert!(
            consent
                .url
                .starts_with(&format!("{}/oauth/authorize?", org.server.url)),
            "back at Laissez's consent page: {consent:?}"
        );
        assert!(
            consent
                .body
                .contains(&format!("for you, <strong>{name}</strong>")),
            "{}",
            consent.body
        );
        let back = browser
            .submit(
                &consent,
                &[("grant_scope", "notes.read"), ("decision", "approve")],
            )
            .await;
        let back = url::Url::parse(&back.url).unwrap();
        let param = |k: &str| {
            back.query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some("st-9"));
        assert_eq!(param("iss").as_deref(), Some(org.server.url.as_str()));
        let tokens: Value = org
            .server
            .client()
            .post(format!("{}/oauth/token", org.server.url))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &param("code").unwrap()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &org.client_id),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (_, user) = org.server.get(&format!("/v1/principals/{name}")).await;
        let at = jwt_claims(tokens["access_token"].as_str().expect("access token"));
        assert_eq!(at["sub"], user["id"], "the token acts for {name}");
    }
    // The second sign-in of a person uses the link made by the first.
    let mut browser = Browser::new(REDIRECT);
    let consent = org.sign_in_upstream(&mut browser, "alice").await;
    assert!(consent.body.contains("<strong>alice</strong>"));

    let audit = org.audit().await;
    let logins: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "session.login" && r["outcome"] == "success")
        .collect();
    assert_eq!(logins.len(), 3, "{logins:?}");
    assert!(logins.iter().all(|r| {
        r["detail"]["method"] == "oidc"
            && r["detail"]["issuer"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
    }));
    let links = audit
        .iter()
        .filter(|r| r["action"] == "user.link_federated")
        .count();
    assert_eq!(links, 2, "one link per person, made once");
}

/// Follows the provider's answer at Laissez's callback (`answer`, where
/// `browser` stopped) without leaving Laissez; returns where it landed.
async fn after_the_callback(org: &Org, browser: &mut Browser, answer: &Landed) -> Landed {
    let callback = format!("{}/oauth/federate/callback", org.server.url);
    assert!(answer.url.starts_with(&callback), "{answer:?}");
    browser.stop_at = String::new();
    browser.stay_within = Some(org.server.url.clone());
    browser.open(&answer.url).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_from_a_console_page_returns_there_and_only_to_the_console() {
    let org = org().await;
    let callback = format!("{}/oauth/federate/callback", org.server.url);

    // From the tokens page, through the sign-in page's provider button.
    let mut browser = Browser::new(&callback);
    let page = browser
        .open(&format!("{}/console/tokens", org.server.url))
        .await;
    assert!(page.body.contains("Sign in with Acme SSO"), "{}", page.body);
    assert!(
        page.body.contains("return_to=%2Fconsole%2Ftokens"),
        "{}",
        page.body
    );
    let page = browser.click(&page, "/oauth/federate?").await;
    let answer = org.at_the_provider(&mut browser, page, "alice").await;
    let landed = after_the_callback(&org, &mut browser, &answer).await;
    assert_eq!(landed.url, format!("{}/console/tokens", org.server.url));
    assert_eq!(landed.status, StatusCode::OK, "{}", landed.body);
    assert!(browser.cookie("laissez_session").is_some());

    // A return target that is not a console page goes to the default page.
    for hostile in [
        "//evil.example",
        "https://evil.example",
        "/console/../x",
        "/consolex",
    ] {
        let mut browser = Browser::new(&callback);
        let start: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", hostile)
            .finish();
        let page = browser
            .open(&format!("{}/oauth/federate?{start}", org.server.url))
            .await;
        let answer = org.at_the_provider(&mut browser, page, "alice").await;
        let landed = after_the_callback(&org, &mut browser, &answer).await;
        assert_eq!(
            landed.url,
            format!("{}/account", org.server.url),
            "{hostile} led to {landed:?}"
        );
        assert!(browser.cookie("laissez_session").is_some(), "{hostile}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_is_bound_to_its_browser_single_use_and_only_for_known_people() {
    let org = org().await;

    // Nobody here is called mallory: refused, and no user appears.
    let mut browser = Browser::new(REDIRECT);
    let refused = org.sign_in_upstream(&mut browser, "mallory").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("no Laissez user is named"),
        "{}",
        refused.body
    );
    assert!(browser.cookie("laissez_session").is_none());
    let (status, _) = org.server.get("/v1/principals/mallory").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Stop at the callback to replay it.
    let callback_prefix = format!("{}/oauth/federate/callback", org.server.url);
    let mut browser = Browser::new(&callback_prefix);
    let answer = org.sign_in_upstream(&mut browser, "alice").await;
    assert!(answer.url.starts_with(&callback_prefix), "{answer:?}");

    // Another browser (an attacker sending the victim a link) gets nothing.
    let mut other = Browser::new(REDIRECT);
    let foreign = other.open(&answer.url).await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    assert!(foreign.body.contains("not started in this browser"));
    assert!(other.cookie("laissez_session").is_none());

    // The browser that started it is signed in, once.
    browser.stop_at = REDIRECT.into();
    let signed_in = browser.open(&answer.url).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{signed_in:?}");
    assert!(signed_in.body.contains("<strong>alice</strong>"));
    let session = browser.cookie("laissez_session").unwrap().to_owned();
    let replay = browser.open(&answer.url).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.cookie("laissez_session"), Some(session.as_str()));

    let audit = org.audit().await;
    assert!(audit.iter().any(|r| {
        r["action"] == "session.login"
            && r["outcome"] == "unauthenticated"
            && r["detail"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("mallory")
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn once_the_organization_requires_its_provider_no_password_opens_a_session() {
    let org = org().await;
    let (status, _) = org
        .server
        .call(
            reqwest::Method::PUT,
            "/v1/principals/alice/password",
            &org.server.admin_token,
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A browser holds the password form from before the change.
    let mut browser = Browser::new(REDIRECT);
    let form = browser.open(&org.authorize_url()).await;
    assert!(form.body.contains("name=\"password\""));

    let (_, mut settings) = org.server.get("/v1/settings").await;
    settings["require_federated_login"] = json!(true);
    let (status, body) = org
        .server
        .call(
            reqwest::Method::PUT,
            "/v1/settings",
            &org.server.admin_token,
            Some(&settings),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The right password is refused, and no session starts.
    let refused = browser
        .submit(&form, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert!(
        refused.body.contains("Passwords are not accepted here"),
        "{}",
        refused.body
    );
    assert!(browser.cookie("laissez_session").is_none());
    // The page offers the provider only.
    let page = Browser::new(REDIRECT).open(&org.authorize_url()).await;
    assert!(!page.body.contains("name=\"password\""));
    assert!(page.body.contains("Sign in with Acme SSO"));
    // And the provider still signs alice in.
    let consent = org.sign_in_upstream(&mut browser, "alice").await;
    assert!(consent.body.contains("<strong>alice</strong>"));

    let audit = org.audit().await;
    assert!(audit.iter().any(|r| r["action"] == "session.login"
        && r["outcome"] == "denied"
        && r["detail"]["method"] == "password"));
}

#[tokio::test(flavor = "multi_thread")]
async fn requiring_a_provider_that_is_not_configured_is_refused() {
    let server = TestServer::start();
    let (_, before) = server.get("/v1/settings").await;
    let mut settings = before.clone();
    settings["require_federated_login"] = json!(true);
    let (status, problem) = server
        .call(
            reqwest::Method::PUT,
            "/v1/settings",
            &server.admin_token,
            Some(&settings),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--oidc-issuer")
    );
    let (_, after) = server.get("/v1/settings").await;
    assert_eq!(after, before, "nothing changed");
}
