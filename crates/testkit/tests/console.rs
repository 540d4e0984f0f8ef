//! The web console in a real browser (headless Chromium over WebDriver):
//! signing in returns to the console page asked for; tokens are created
//! through the form and work against the API, are revoked and rolled from
//! the list; ownership is transferred; principals are deactivated and
//! reactivated; policies are granted, explained and removed; a connected
//! application is disconnected; the audit log is filtered and verified;
//! leak incidents and sessions are shown, a session is ended and the person
//! signs out; an agent's task waiting for approval is approved narrower (and
//! the agent collects only what was approved) or denied by its owner, and
//! nobody else can decide it. A person without admin permissions is refused what the API
//! refuses them, and a form without its CSRF token changes nothing. Every
//! page is photographed at 1280 and 390 pixels wide, and at 390 neither the
//! navigation nor the tables make the page wider than the screen.
//!
//! One browser serves the whole file: the scenarios run in order in one
//! test, each against its own fresh server, and every failure is reported
//! at the end (a failed scenario does not hide the others).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use futures_util::FutureExt;
use laissez_dpop::ProofKey;
use laissez_testkit::TestServer;
use laissez_testkit::browser::Browser;
use laissez_testkit::chromium::Chromium;
use laissez_testkit::task::{Agent, agent_of, answer, ask_task, audit_records, send_signed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "admin password for the console";
const ALICE_PASSWORD: &str = "alice's long password";

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_real_browser() {
    let started = Instant::now();
    let chrome = Chromium::launch().await;
    let mut failures = Vec::new();
    let c = &chrome;
    let f = &mut failures;
    run(
        c,
        f,
        "signing in returns to the page asked for",
        sign_in_returns(c),
    )
    .await;
    run(c, f, "overview: counts, hygiene, recent audit", overview(c)).await;
    run(c, f, "tokens: create, use, filter, roll, revoke", tokens(c)).await;
    run(
        c,
        f,
        "tokens: limited to chosen permissions",
        token_permissions(c),
    )
    .await;
    run(
        c,
        f,
        "principals: transfer, deactivate, activate",
        principals(c),
    )
    .await;
    run(c, f, "policies: grant, explain, remove", policies(c)).await;
    run(c, f, "apps: disconnect a connected application", apps(c)).await;
    run(c, f, "audit: filter and verify", audit(c)).await;
    run(
        c,
        f,
        "leaks: where a token leaked and what was done",
        leaks(c),
    )
    .await;
    run(c, f, "sessions: end one, sign out", sessions(c)).await;
    run(
        c,
        f,
        "approvals: approve narrower, deny, the agent's poll",
        approvals(c),
    )
    .await;
    run(
        c,
        f,
        "approvals: nobody else decides, no form without CSRF",
        approvals_refused(c),
    )
    .await;
    run(
        c,
        f,
        "a person without admin permissions is refused",
        non_admin(c),
    )
    .await;
    run(
        c,
        f,
        "a form without its CSRF token changes nothing",
        csrf(c),
    )
    .await;
    run(
        c,
        f,
        "every page at 1280 and 390 pixels",
        every_page_fits(c),
    )
    .await;
    chrome.close().await;
    eprintln!(
        "console tests took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "failed scenarios:\n{}",
        failures.join("\n")
    );
}

/// Runs one scenario in a browser without cookies at 1280 px, noting a
/// failure rather than stopping the others.
async fn run(
    chrome: &Chromium,
    failures: &mut Vec<String>,
    name: &str,
    scenario: impl Future<Output = ()>,
) {
    let _ = chrome.client().delete_all_cookies().await;
    chrome.set_width(1280, 900).await;
    let at = Instant::now();
    match AssertUnwindSafe(scenario).catch_unwind().await {
        Ok(()) => eprintln!("ok   {name} ({:.1} s)", at.elapsed().as_secs_f64()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            eprintln!("FAIL {name}: {why}");
            failures.push(format!("{name}: {why}"));
        }
    }
}

/// A server with the admin's password set, a person `alice`, a second
/// person `bob` and a service `ci-bot` owned by the admin.
async fn server() -> TestServer {
    let server = TestServer::start();
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/principals/admin/password",
            &server.admin_token,
            Some(&json!({"password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    server.add_person("alice", ALICE_PASSWORD).await;
    server.add_person("bob", "bob's long password here").await;
    let (status, body) = server
        .post(
            "/v1/principals",
            json!({"kind": "service", "name": "ci-bot", "owner": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server
}

/// Opens `path`, which shows the sign-in form, and signs in as `user`.
async fn sign_in(chrome: &Chromium, server: &TestServer, path: &str, user: &str, password: &str) {
    let page = chrome.open(&format!("{}{path}", server.url)).await;
    assert!(
        page.contains("Sign in"),
        "no sign-in form at {path}: {page}"
    );
    let c = chrome.client();
    c.find(Locator::Id("username"))
        .await
        .expect("user name field")
        .send_keys(user)
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .expect("type");
    click(chrome, "form[action='/oauth/login'] button[type=submit]").await;
}

/// Clicks the checkbox `css` (no page follows).
async fn toggle(chrome: &Chromium, css: &str) {
    chrome
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Clicks the element `css` and waits for the page it leads to.
async fn click(chrome: &Chromium, css: &str) {
    let c = chrome.client();
    let element = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"));
    let old = c.find(Locator::Css("html")).await.expect("html");
    element
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    // Wait until the old document is gone (a form post navigates).
    let started = Instant::now();
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "clicking {css} led nowhere"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Types `text` into the field `css` (emptied first).
async fn fill(chrome: &Chromium, css: &str, text: &str) {
    let field = chrome
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Picks the option `value` of the `<select>` `css`.
async fn pick(chrome: &Chromium, css: &str, value: &str) {
    chrome
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("no option {value} in {css}: {e}"));
}

async fn text_of(chrome: &Chromium, css: &str) -> String {
    chrome
        .client()
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .expect("text")
}

async fn count(chrome: &Chromium, css: &str) -> usize {
    chrome
        .client()
        .find_all(Locator::Css(css))
        .await
        .expect("find")
        .len()
}

async fn path_of(chrome: &Chromium) -> String {
    let url = chrome.client().current_url().await.expect("url");
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `GET /v1/whoami` with `token`.
async fn whoami(server: &TestServer, token: &str) -> (StatusCode, Value) {
    server.call(Method::GET, "/v1/whoami", token, None).await
}

/// A token for `principal`, through the API.
async fn api_token(server: &TestServer, principal: &str) -> String {
    let (status, body) = server
        .post("/v1/tokens", json!({"principal": principal, "ttl": "1h"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn sign_in_returns(chrome: &Chromium) {
    let server = server().await;
    sign_in(
        chrome,
        &server,
        "/console/tokens?kind=service",
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(path_of(chrome).await, "/console/tokens?kind=service");
    assert!(chrome.text().await.contains("Create a token"));
    chrome.screenshot("signed-in-tokens-1280").await;

    // Only console pages are return targets: anything else goes to /account.
    let mut http = Browser::new("");
    let login = http.open(&format!("{}/console", server.url)).await;
    assert!(
        login.body.contains("name=\"return_to\" value=\"/console\""),
        "{}",
        login.body
    );
    let evil = login
        .body
        .replace("value=\"/console\"", "value=\"//evil.example/console\"");
    let tampered = laissez_testkit::browser::Landed {
        url: login.url.clone(),
        status: login.status,
        body: evil,
    };
    http.stop_at = "http://".into();
    let landed = http
        .submit(
            &tampered,
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert!(landed.url.ends_with("/account"), "went to {}", landed.url);
}

async fn overview(chrome: &Chromium) {
    let server = server().await;
    let (status, body) = server
        .post(
            "/v1/principals",
            json!({"kind": "agent", "name": "helper", "owner": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post("/v1/principals/bob/deactivate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sign_in(chrome, &server, "/console", "admin", ADMIN_PASSWORD).await;
    let counts = text_of(chrome, "#counts").await;
    for (value, label) in [
        ("3", "People"),
        ("1", "Services"),
        ("1", "Agents"),
        ("1", "Live tokens"),
        ("0", "Leak incidents"),
    ] {
        assert!(
            counts.contains(&format!("{value}\n{label}")),
            "{value} {label} in {counts}"
        );
    }
    let hygiene = text_of(chrome, "#hygiene").await;
    assert!(
        hygiene.contains("agent helper: its owner bob is inactive"),
        "{hygiene}"
    );
    let recent = text_of(chrome, "#recent").await;
    assert!(recent.contains("principal.deactivate"), "{recent}");
    let bad = chrome
        .open(&format!("{}/console?unused_days=0", server.url))
        .await;
    assert!(bad.contains("400") && bad.contains("unused_days"), "{bad}");
}

async fn tokens(chrome: &Chromium) {
    let server = server().await;
    sign_in(chrome, &server, "/console/tokens", "admin", ADMIN_PASSWORD).await;

    // Bad input is refused with a clear page and creates nothing.
    let before = token_count(&server).await;
    pick(chrome, "#principal", "ci-bot").await;
    fill(chrome, "#ttl", "forever").await;
    click(chrome, "#create-token button[type=submit]").await;
    let refused = chrome.text().await;
    assert!(
        refused.contains("400") && refused.contains("forever"),
        "{refused}"
    );
    assert_eq!(token_count(&server).await, before);

    // Created through the form, shown once, and it works against the API.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    pick(chrome, "#principal", "ci-bot").await;
    fill(chrome, "#ttl", "1h").await;
    fill(chrome, "#allowed_ips", "127.0.0.1/32, ::1").await;
    fill(chrome, "#description", "made in the console").await;
    click(chrome, "#create-token button[type=submit]").await;
    let secret = text_of(chrome, "#secret").await;
    assert!(secret.starts_with("lzat_"), "{secret}");
    chrome.screenshot("token-secret-1280").await;
    // The copy button is the script's: hidden without it, shown with it.
    let copy = chrome
        .client()
        .find(Locator::Id("copy"))
        .await
        .expect("copy button");
    assert!(
        copy.is_displayed().await.expect("displayed"),
        "the script did not run"
    );
    copy.click().await.expect("click copy");
    let started = Instant::now();
    loop {
        let label = copy.text().await.expect("label");
        if label == "Copied" || label.starts_with("Selected") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "copy said {label}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, me) = whoami(&server, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["principal"]["name"], "ci-bot");
    assert_eq!(me["credential"]["description"], "made in the console");
    assert_eq!(
        me["credential"]["allowed_ips"],
        json!(["127.0.0.1/32", "::1/128"])
    );
    let id = me["credential"]["id"].as_str().expect("id").to_owned();

    // Filters: a service token is listed under services, not agents.
    let row = format!("tr[data-token='{id}']");
    chrome
        .open(&format!("{}/console/tokens?kind=service", server.url))
        .await;
    assert_eq!(count(chrome, &row).await, 1);
    chrome
        .open(&format!("{}/console/tokens?kind=agent", server.url))
        .await;
    assert_eq!(count(chrome, &row).await, 0);
    chrome
        .open(&format!(
            "{}/console/tokens?owner=admin&expiring=1",
            server.url
        ))
        .await;
    assert_eq!(count(chrome, &row).await, 1, "a 1 h token is expiring");
    chrome
        .open(&format!("{}/console/tokens?owner=bob", server.url))
        .await;
    assert_eq!(count(chrome, &row).await, 0);
    // A token nobody used is listed as unused; the one just used is not.
    let (status, idle) = server
        .post("/v1/tokens", json!({"principal": "bob", "ttl": "30d"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{idle}");
    let idle_row = format!("tr[data-token='{}']", idle["id"].as_str().expect("id"));
    chrome
        .open(&format!("{}/console/tokens?unused=1", server.url))
        .await;
    assert_eq!(count(chrome, &idle_row).await, 1, "never used");
    assert_eq!(count(chrome, &row).await, 0, "used a moment ago");
    chrome
        .open(&format!("{}/console/tokens?owner=bob", server.url))
        .await;
    assert_eq!(count(chrome, &idle_row).await, 1);

    // Rolled from the list: a new secret, the old one refused.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    click(chrome, &format!("{row} button[name=roll]")).await;
    let rolled = text_of(chrome, "#secret").await;
    assert_ne!(rolled, secret);
    assert_eq!(whoami(&server, &secret).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&server, &rolled).await.0, StatusCode::OK);

    // Revoked from the list: the API refuses it at once.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    click(chrome, &format!("{row} button[name=revoke]")).await;
    assert_eq!(path_of(chrome).await, "/console/tokens");
    let (status, body) = whoami(&server, &rolled).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(text_of(chrome, &row).await.contains("revoked"));
    assert_eq!(
        count(chrome, &format!("{row} button[name=revoke]")).await,
        0
    );
}

/// How many tokens the server lists.
async fn token_count(server: &TestServer) -> usize {
    server
        .get("/v1/tokens")
        .await
        .1
        .as_array()
        .map_or(0, Vec::len)
}

async fn token_permissions(chrome: &Chromium) {
    let server = server().await;
    sign_in(chrome, &server, "/console/tokens", "admin", ADMIN_PASSWORD).await;
    let read = "input[name=permissions][value='laissez.principals.read']";
    // A permission the principal does not hold: refused, nothing created.
    let before = token_count(&server).await;
    pick(chrome, "#principal", "ci-bot").await;
    toggle(chrome, read).await;
    click(chrome, "#create-token button[type=submit]").await;
    let refused = chrome.text().await;
    assert!(
        refused.contains("400") && refused.contains("does not hold laissez.principals.read"),
        "{refused}"
    );
    assert_eq!(token_count(&server).await, before);
    // The admin's own token, limited to reading principals: it reads them
    // and nothing else.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    pick(chrome, "#principal", "admin").await;
    toggle(chrome, read).await;
    click(chrome, "#create-token button[type=submit]").await;
    let secret = text_of(chrome, "#secret").await;
    let (status, me) = whoami(&server, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["credential"]["restriction"]["permissions"],
        json!(["laissez.principals.read"])
    );
    let (status, _) = server
        .call(Method::GET, "/v1/principals", &secret, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(Method::GET, "/v1/policies", &secret, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The list says what it is limited to.
    let id = me["credential"]["id"].as_str().expect("id");
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    assert!(
        text_of(chrome, &format!("tr[data-token='{id}']"))
            .await
            .contains("laissez.principals.read")
    );
}

async fn principals(chrome: &Chromium) {
    let server = server().await;
    let bob = server.get("/v1/principals/bob").await.1["id"].clone();
    let token = api_token(&server, "ci-bot").await;
    sign_in(
        chrome,
        &server,
        "/console/principals",
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    let row = "tr[data-principal='ci-bot']";
    assert!(
        text_of(chrome, row).await.contains("admin"),
        "owned by admin first"
    );

    pick(chrome, &format!("{row} select[name=owner]"), "bob").await;
    click(chrome, &format!("{row} button[name=transfer]")).await;
    let (_, service) = server.get("/v1/principals/ci-bot").await;
    assert_eq!(service["owner_id"], bob, "{service}");
    assert!(text_of(chrome, row).await.contains("bob"));
    // Its token now answers for bob.
    let (status, me) = whoami(&server, &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["owner"]["name"], "bob", "{me}");
    let (_, log) = server.get("/v1/audit?limit=1000").await;
    assert!(
        log.as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "principal.owner"
                && r["chain"][0]["name"] == "admin"
                && r["detail"]["to"] == bob),
        "the transfer is audited with the person's chain"
    );
    // The API refuses an owner that is not an active person.
    let (status, body) = server
        .post("/v1/principals/ci-bot/owner", json!({"owner": "ci-bot"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    server.add_person("carol", "carol's long password").await;
    let (status, body) = server
        .post("/v1/principals/carol/deactivate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (owner, refused) in [
        ("carol", StatusCode::CONFLICT),
        ("bob", StatusCode::CONFLICT),
    ] {
        let (status, body) = server
            .post("/v1/principals/ci-bot/owner", json!({"owner": owner}))
            .await;
        assert_eq!(status, refused, "to {owner}: {body}");
    }
    // A person cannot be given away, and nothing changed.
    let (status, body) = server
        .post("/v1/principals/alice/owner", json!({"owner": "bob"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(server.get("/v1/principals/ci-bot").await.1["owner_id"], bob);

    click(chrome, &format!("{row} button[name=deactivate]")).await;
    assert_eq!(
        server.get("/v1/principals/ci-bot").await.1["status"],
        "inactive"
    );
    assert_eq!(whoami(&server, &token).await.0, StatusCode::UNAUTHORIZED);
    assert!(text_of(chrome, row).await.contains("inactive"));
    click(chrome, &format!("{row} button[name=activate]")).await;
    assert_eq!(
        server.get("/v1/principals/ci-bot").await.1["status"],
        "active"
    );
    assert_eq!(whoami(&server, &token).await.0, StatusCode::OK);
}

async fn policies(chrome: &Chromium) {
    let server = server().await;
    let (status, body) = server
        .post(
            "/v1/roles",
            json!({"name": "wiki-reader", "permissions": ["wiki.pages.read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    sign_in(
        chrome,
        &server,
        "/console/policies",
        "admin",
        ADMIN_PASSWORD,
    )
    .await;

    pick(chrome, "#grant-principal", "alice").await;
    pick(chrome, "#grant-role", "wiki-reader").await;
    fill(chrome, "#grant-scope", "acme/apps/wiki").await;
    click(chrome, "#grant button[type=submit]").await;
    let (_, granted) = server.get("/v1/policies?principal=alice").await;
    let policy = granted
        .as_array()
        .and_then(|all| all.iter().find(|p| p["role"] == "wiki-reader"))
        .unwrap_or_else(|| panic!("no policy granted: {granted}"))
        .clone();
    assert_eq!(policy["scope"], "acme/apps/wiki");
    let id = policy["id"].as_str().expect("id").to_owned();

    // The token form offers the granted scope and the role, and a token
    // narrowed to both is issued as asked.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    assert_eq!(
        count(chrome, "#known-scopes option[value='acme/apps/wiki']").await,
        1
    );
    pick(chrome, "#principal", "alice").await;
    pick(chrome, "#role", "wiki-reader").await;
    fill(chrome, "#scope", "acme/apps/wiki/pages").await;
    click(chrome, "#create-token button[type=submit]").await;
    let secret = text_of(chrome, "#secret").await;
    let (status, me) = whoami(&server, &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["credential"]["restriction"]["role"], "wiki-reader",
        "{me}"
    );
    assert_eq!(
        me["credential"]["restriction"]["scope"], "acme/apps/wiki/pages",
        "{me}"
    );
    chrome
        .open(&format!("{}/console/policies", server.url))
        .await;

    let explain = |resource: &'static str| async move {
        fill(chrome, "#explain-principal", "alice").await;
        fill(chrome, "#explain-permission", "wiki.pages.read").await;
        fill(chrome, "#explain-resource", resource).await;
        click(chrome, "#explain button[type=submit]").await;
        text_of(chrome, "#explanation").await
    };
    let allowed = explain("acme/apps/wiki/pages/42").await;
    assert!(
        allowed.contains("Allowed") && allowed.contains(&id),
        "{allowed}"
    );
    chrome.screenshot("policies-explained-1280").await;
    let denied = explain("acme/apps/chat").await;
    assert!(denied.contains("Denied"), "{denied}");

    chrome
        .open(&format!("{}/console/policies", server.url))
        .await;
    click(
        chrome,
        &format!("tr[data-policy='{id}'] button[name=remove]"),
    )
    .await;
    let (_, left) = server.get("/v1/policies?principal=alice").await;
    assert!(
        left.as_array()
            .expect("policies")
            .iter()
            .all(|p| p["id"] != id.as_str()),
        "{left}"
    );
    assert_eq!(count(chrome, &format!("tr[data-policy='{id}']")).await, 0);
}

async fn apps(chrome: &Chromium) {
    let server = server().await;
    let (client_id, _) =
        laissez_testkit::browser::connect_public_client(&server.url, "alice", ALICE_PASSWORD, None)
            .await;
    sign_in(chrome, &server, "/console/apps", "admin", ADMIN_PASSWORD).await;
    let row = format!("tr[data-client='{client_id}']");
    assert!(text_of(chrome, &row).await.contains("alice"));
    assert!(text_of(chrome, "#clients").await.contains(&client_id));
    click(chrome, &format!("{row} button[name=disconnect]")).await;
    let (_, left) = server.get("/v1/connected-apps?user=alice").await;
    assert_eq!(left, json!([]), "still connected: {left}");
    assert_eq!(count(chrome, &row).await, 0);
}

async fn audit(chrome: &Chromium) {
    let server = server().await;
    let token = api_token(&server, "ci-bot").await;
    let (_, me) = whoami(&server, &token).await;
    let id = me["credential"]["id"].as_str().expect("id").to_owned();
    let (status, _) = server
        .post(&format!("/v1/tokens/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    sign_in(chrome, &server, "/console/audit", "admin", ADMIN_PASSWORD).await;

    fill(chrome, "#filter-audit input[name=action]", "token.revoke").await;
    click(chrome, "#filter-audit button[type=submit]").await;
    assert_eq!(
        path_of(chrome).await,
        "/console/audit?principal=&action=token.revoke&outcome=&since=&until="
    );
    let rows = chrome
        .client()
        .find_all(Locator::Css("#audit tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "one revocation");
    assert!(rows[0].text().await.expect("text").contains(&id));

    // The outcome filter: the revoked token's refusal is there, nothing else.
    chrome
        .open(&format!(
            "{}/console/audit?outcome=unauthenticated",
            server.url
        ))
        .await;
    assert_eq!(
        count(chrome, "#audit tbody tr").await,
        0,
        "nothing refused yet"
    );
    assert_eq!(whoami(&server, &token).await.0, StatusCode::UNAUTHORIZED);
    // Failed authentications are summarised every few seconds.
    let started = Instant::now();
    loop {
        chrome
            .open(&format!(
                "{}/console/audit?outcome=unauthenticated",
                server.url
            ))
            .await;
        if count(chrome, "#audit tbody tr").await > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the refusal was not audited"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A day filter that excludes everything, and a bad day refused.
    chrome
        .open(&format!("{}/console/audit?until=2000-01-01", server.url))
        .await;
    assert_eq!(count(chrome, "#no-records").await, 1);
    let bad = chrome
        .open(&format!("{}/console/audit?since=2026-02-31", server.url))
        .await;
    assert!(bad.contains("400") && bad.contains("YYYY-MM-DD"), "{bad}");

    chrome.open(&format!("{}/console/audit", server.url)).await;
    click(chrome, "#verify button").await;
    let verified = text_of(chrome, "#verified").await;
    assert!(verified.contains("The chain holds"), "{verified}");
    chrome.screenshot("audit-verified-1280").await;
}

async fn leaks(chrome: &Chromium) {
    let server = server().await;
    let token = api_token(&server, "ci-bot").await;
    let (status, body) = server
        .post(
            "/v1/leaks",
            json!([{"token": token, "type": "laissez", "url": "https://paste.example/p/42", "source": "content"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sign_in(chrome, &server, "/console/leaks", "admin", ADMIN_PASSWORD).await;
    let table = text_of(chrome, "#leaks").await;
    assert!(table.contains("https://paste.example/p/42"), "{table}");
    assert!(table.contains("revoked"), "{table}");
    assert!(
        table.contains(&token[token.len() - 4..]),
        "the token's last four: {table}"
    );
    assert!(!table.contains(&token), "never the whole token: {table}");
}

async fn sessions(chrome: &Chromium) {
    let server = server().await;
    // Another browser of the same person, over plain HTTP.
    let mut other = Browser::new("");
    let login = other
        .open(&format!("{}/console/sessions", server.url))
        .await;
    let landed = other
        .submit(
            &login,
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert!(landed.url.ends_with("/console/sessions"), "{}", landed.url);

    sign_in(
        chrome,
        &server,
        "/console/sessions",
        "admin",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(count(chrome, "#sessions tbody tr").await, 2);
    let rows = chrome
        .client()
        .find_all(Locator::Css("#sessions tbody tr"))
        .await
        .expect("rows");
    let mut others = Vec::new();
    for row in rows {
        if !row.text().await.expect("text").contains("this browser") {
            others.push(
                row.attr("data-session")
                    .await
                    .expect("attr")
                    .expect("handle"),
            );
        }
    }
    assert_eq!(others.len(), 1);
    click(
        chrome,
        &format!("tr[data-session='{}'] button[name=end]", others[0]),
    )
    .await;
    assert_eq!(count(chrome, "#sessions tbody tr").await, 1);
    let ended = other
        .open(&format!("{}/console/sessions", server.url))
        .await;
    assert!(
        ended.body.contains("Sign in"),
        "the other browser is signed out"
    );

    // Signing out ends this session too.
    click(chrome, ".signout button").await;
    let page = chrome.open(&format!("{}/console", server.url)).await;
    assert!(page.contains("Sign in"), "{page}");
    let (_, log) = server.get("/v1/audit?limit=1000").await;
    let ends = log
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "session.end" && r["detail"]["via"] == "console")
        .count();
    assert_eq!(ends, 2);
}

async fn non_admin(chrome: &Chromium) {
    let server = server().await;
    let theirs = api_token(&server, "alice").await;
    sign_in(chrome, &server, "/console", "alice", ALICE_PASSWORD).await;
    let page = chrome.text().await;
    assert!(
        page.contains("403") && page.contains("may not use"),
        "{page}"
    );
    // The refusal keeps the navigation, at both widths.
    photograph(chrome, "refused", 1280).await;
    chrome.set_width(390, 844).await;
    chrome.open(&format!("{}/console", server.url)).await;
    photograph(chrome, "refused", 390).await;
    chrome.set_width(1280, 900).await;
    chrome.open(&format!("{}/console", server.url)).await;
    click(chrome, "nav a[href='/console/sessions']").await;
    assert_eq!(path_of(chrome).await, "/console/sessions");
    for path in [
        "/console/principals",
        "/console/policies",
        "/console/audit",
        "/console/leaks",
        "/console/apps",
    ] {
        let page = chrome.open(&format!("{}{path}", server.url)).await;
        assert!(page.contains("403"), "{path}: {page}");
    }
    // What the API shows a person: their own tokens, only themselves to pick.
    chrome.open(&format!("{}/console/tokens", server.url)).await;
    assert_eq!(count(chrome, "#tokens tbody tr").await, 1);
    assert_eq!(count(chrome, "#principal option").await, 1);
    let (_, me) = whoami(&server, &theirs).await;
    let id = me["credential"]["id"].as_str().expect("id").to_owned();
    assert_eq!(count(chrome, &format!("tr[data-token='{id}']")).await, 1);
    // And their own sessions.
    chrome
        .open(&format!("{}/console/sessions", server.url))
        .await;
    assert_eq!(count(chrome, "#sessions tbody tr").await, 1);

    // An action the API refuses them is refused here, with a valid form.
    let mut http = Browser::new("");
    let login = http.open(&format!("{}/console/tokens", server.url)).await;
    let page = http
        .submit(
            &login,
            &[("username", "alice"), ("password", ALICE_PASSWORD)],
        )
        .await;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let session = http.cookie("laissez_session").expect("session").to_owned();
    let response = reqwest::Client::new()
        .post(format!("{}/console/principals/status", server.url))
        .header("cookie", format!("laissez_session={session}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", "ci-bot"),
            ("status", "inactive"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        server.get("/v1/principals/ci-bot").await.1["status"],
        "active"
    );
    // The owner transfer is the admin API's, refused to them there too.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/principals/ci-bot/owner",
            &theirs,
            Some(&json!({"owner": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, log) = server.get("/v1/audit?limit=1000").await;
    assert!(
        log.as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "authorize"
                && r["outcome"] == "denied"
                && r["chain"][0]["name"] == "alice"),
        "the refusal is audited as the API audits it"
    );
}

async fn csrf(_chrome: &Chromium) {
    let server = server().await;
    let token = api_token(&server, "ci-bot").await;
    let (_, me) = whoami(&server, &token).await;
    let id = me["credential"]["id"].as_str().expect("id").to_owned();
    let mut http = Browser::new("");
    let login = http.open(&format!("{}/console/tokens", server.url)).await;
    http.submit(
        &login,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    let session = http.cookie("laissez_session").expect("session").to_owned();
    for fields in [
        vec![("id", id.as_str())],
        vec![
            ("id", id.as_str()),
            ("csrf", "0123456789abcdef0123456789abcdef"),
        ],
        vec![("id", id.as_str()), ("csrf", "")],
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/console/tokens/revoke", server.url))
            .header("cookie", format!("laissez_session={session}"))
            .form(&fields)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{fields:?}");
    }
    assert_eq!(
        whoami(&server, &token).await.0,
        StatusCode::OK,
        "still works"
    );

    // Scripts run only where the page needs one, and only from this server.
    let http_client = reqwest::Client::new();
    let cookie = format!("laissez_session={session}");
    let list = http_client
        .get(format!("{}/console/tokens", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    let policy = list.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        !policy.contains("script-src") && !policy.contains("unsafe"),
        "{policy}"
    );
    let page = list.text().await.expect("page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    let created = http_client
        .post(format!("{}/console/tokens", server.url))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("principal", "ci-bot"),
            ("ttl", "1h"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), StatusCode::OK);
    let policy = created.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        policy.ends_with("script-src 'self'") && !policy.contains("unsafe"),
        "{policy}"
    );
    let page = created.text().await.expect("page");
    assert!(
        page.contains("<script src=\"/static/console.js\" defer></script>"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let script = http_client
        .get(format!("{}/static/console.js", server.url))
        .send()
        .await
        .expect("script");
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );

    // Without a session, a post changes nothing either (it asks to sign in).
    let response = reqwest::Client::new()
        .post(format!("{}/console/tokens/revoke", server.url))
        .form(&[("id", id.as_str())])
        .send()
        .await
        .expect("post");
    assert!(response.text().await.expect("page").contains("Sign in"));
    assert_eq!(
        whoami(&server, &token).await.0,
        StatusCode::OK,
        "still works"
    );
}

/// Asks, as `agent`, for a two-hour task on `acme` (above the one-hour
/// approval threshold) with notes.read and notes.write; returns its id.
async fn ask_for_approval(
    server: &TestServer,
    agent: &Agent,
    key: &ProofKey,
    what: &str,
) -> String {
    let (status, body) = ask_task(
        server,
        &agent.token,
        key,
        &json!({"description": what, "permissions": ["notes.read", "notes.write"],
            "resources": ["acme"], "ttl": "2h"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["approval_id"]
        .as_str()
        .expect("approval id")
        .to_owned()
}

/// The agent's poll of its task `id` (`POST /v1/tasks/{id}/token`).
async fn poll(server: &TestServer, agent: &Agent, key: &ProofKey, id: &str) -> (StatusCode, Value) {
    let path = format!("/v1/tasks/{id}/token");
    answer(send_signed(server, Method::POST, &path, &agent.token, key, None).await).await
}

/// Alice, who holds notes.read and notes.write, and her agent `bot`, which
/// holds them too.
async fn alice_and_her_agent(server: &TestServer) -> Agent {
    server
        .grant_app_role("alice", &["notes.read", "notes.write"], "/")
        .await;
    agent_of(server, "alice", "bot", &["notes.read", "notes.write"]).await
}

async fn approvals(chrome: &Chromium) {
    let server = server().await;
    let bot = alice_and_her_agent(&server).await;
    let key = ProofKey::generate().expect("a key");
    let first = ask_for_approval(&server, &bot, &key, "nightly cleanup").await;
    let second = ask_for_approval(&server, &bot, &key, "weekly report").await;
    sign_in(
        chrome,
        &server,
        "/console/approvals",
        "alice",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(path_of(chrome).await, "/console/approvals");
    let row = format!("#approvals tr[data-approval='{first}']");
    let shown = text_of(chrome, &row).await;
    for part in [
        "bot",
        "alice",
        "nightly cleanup",
        "notes.read@acme",
        "notes.write@acme",
        "lifetime",
        "2h",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }
    assert_eq!(count(chrome, "#approvals tbody tr").await, 2);
    for (width, height) in [(1280, 900), (390, 844)] {
        chrome.set_width(width, height).await;
        chrome
            .open(&format!("{}/console/approvals", server.url))
            .await;
        photograph(chrome, "approvals-pending", width).await;
    }
    chrome.set_width(1280, 900).await;
    chrome
        .open(&format!("{}/console/approvals", server.url))
        .await;

    // Nothing checked is an error that changes nothing.
    let checkbox = |grant: &str| format!("{row} input[name=grant][value='{grant}']");
    for grant in ["notes.read@acme", "notes.write@acme"] {
        toggle(chrome, &checkbox(grant)).await;
    }
    click(chrome, &format!("{row} button[name=approve]")).await;
    let refused = chrome.text().await;
    assert!(
        refused.contains("400") && refused.contains("at least one grant"),
        "{refused}"
    );
    chrome
        .open(&format!("{}/console/approvals", server.url))
        .await;
    assert_eq!(count(chrome, "#approvals tbody tr").await, 2);

    // Approve only notes.read: the agent collects just that.
    toggle(chrome, &checkbox("notes.write@acme")).await;
    click(chrome, &format!("{row} button[name=approve]")).await;
    assert_eq!(path_of(chrome).await, "/console/approvals");
    let decided = text_of(chrome, &format!("#decided tr[data-approval='{first}']")).await;
    assert!(
        decided.contains("approved") && decided.contains("alice"),
        "{decided}"
    );
    let (status, task) = poll(&server, &bot, &key, &first).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["granted"], json!(["notes.read@acme"]), "{task}");

    // Deny the second: the agent's poll is access_denied.
    click(
        chrome,
        &format!("#approvals tr[data-approval='{second}'] button[name=deny]"),
    )
    .await;
    let decided = text_of(chrome, &format!("#decided tr[data-approval='{second}']")).await;
    assert!(decided.contains("denied"), "{decided}");
    assert_eq!(count(chrome, "#approvals tbody tr").await, 0);
    let (status, polled) = poll(&server, &bot, &key, &second).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{polled}");
    assert_eq!(polled["error"], "access_denied");
    for width in [1280, 390] {
        chrome.set_width(width, 844).await;
        chrome
            .open(&format!("{}/console/approvals", server.url))
            .await;
        photograph(chrome, "approvals-decided", width).await;
    }

    // Audited as the API audits them, with the person's chain.
    let approved = audit_records(&server, "task.approve", |r| r["target"] == first.as_str()).await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["chain"][0]["name"], "alice");
    assert_eq!(approved[0]["detail"]["grants"], json!(["notes.read@acme"]));
    let denied = audit_records(&server, "task.deny", |r| r["target"] == second.as_str()).await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["chain"][0]["name"], "alice");
}

/// Signs `user` in with an HTTP client at `/console/approvals`; returns the
/// session cookie and the page.
async fn console_session(server: &TestServer, user: &str, password: &str) -> (String, String) {
    let mut http = Browser::new("");
    let login = http
        .open(&format!("{}/console/approvals", server.url))
        .await;
    let page = http
        .submit(&login, &[("username", user), ("password", password)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let session = http.cookie("laissez_session").expect("session").to_owned();
    (format!("laissez_session={session}"), page.body)
}

/// The first CSRF token on a page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("a CSRF token")
        .to_owned()
}

/// Posts a console form with the session `cookie`.
async fn post_form(
    server: &TestServer,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .expect("post");
    (response.status(), response.text().await.expect("page"))
}

async fn approvals_refused(_chrome: &Chromium) {
    let server = server().await;
    let bot = alice_and_her_agent(&server).await;
    let key = ProofKey::generate().expect("a key");
    let id = ask_for_approval(&server, &bot, &key, "nightly cleanup").await;

    // Bob may not decide for alice's agent: it is not listed, and a forged
    // form (with his own valid CSRF token) is refused.
    let (bob, page) = console_session(&server, "bob", "bob's long password here").await;
    assert!(!page.contains(&id), "{page}");
    assert!(
        page.contains("Nothing is waiting for your decision"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    for (path, fields) in [
        (
            "/console/approvals/approve",
            vec![
                ("csrf", csrf.as_str()),
                ("id", id.as_str()),
                ("grant", "notes.read@acme"),
            ],
        ),
        (
            "/console/approvals/deny",
            vec![("csrf", csrf.as_str()), ("id", id.as_str())],
        ),
    ] {
        let (status, body) = post_form(&server, &bob, path, &fields).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{path}: {status} {body}"
        );
        assert!(body.contains("class=\"problem\""), "{path}: {body}");
    }

    // Alice's forms without the right CSRF token are refused.
    let (alice, page) = console_session(&server, "alice", ALICE_PASSWORD).await;
    assert!(page.contains(&id), "{page}");
    for path in ["/console/approvals/approve", "/console/approvals/deny"] {
        for fields in [
            vec![("id", id.as_str()), ("grant", "notes.read@acme")],
            vec![
                ("id", id.as_str()),
                ("csrf", "0123456789abcdef0123456789abcdef"),
            ],
            vec![("id", id.as_str()), ("csrf", "")],
        ] {
            let (status, _) = post_form(&server, &alice, path, &fields).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {fields:?}");
        }
    }
    // A choice wider than what was asked is the API's 400, and so is none.
    let csrf = csrf_of(&page);
    for (grants, why) in [
        (
            vec!["notes.read@acme", "billing.read@acme"],
            "was not asked for",
        ),
        (vec!["notes.read@globex"], "was not asked for"),
        (vec![], "at least one grant"),
    ] {
        let mut fields = vec![("csrf", csrf.as_str()), ("id", id.as_str())];
        fields.extend(grants.iter().map(|g| ("grant", *g)));
        let (status, body) =
            post_form(&server, &alice, "/console/approvals/approve", &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{grants:?}: {body}");
        assert!(body.contains(why), "{grants:?}: {body}");
    }

    // Nothing changed: still pending, nothing decided or audited as decided.
    let (status, approval) = server.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{approval}");
    assert_eq!(approval["decided_by"], Value::Null, "{approval}");
    let (_, polled) = poll(&server, &bot, &key, &id).await;
    assert_eq!(polled["error"], "authorization_pending", "{polled}");
    let (_, log) = server.get("/v1/audit?limit=1000").await;
    assert!(
        !log.as_array()
            .expect("records")
            .iter()
            .any(|r| r["action"] == "task.approve" || r["action"] == "task.deny"),
        "{log}"
    );
}

async fn every_page_fits(chrome: &Chromium) {
    let server = server().await;
    // Something in every list.
    let token = api_token(&server, "ci-bot").await;
    server
        .post(
            "/v1/leaks",
            json!([{"token": token, "type": "laissez", "url": "https://paste.example/a/very/long/path/that/should/not/widen/the/page", "source": "content"}]),
        )
        .await;
    laissez_testkit::browser::connect_public_client(&server.url, "alice", ALICE_PASSWORD, None)
        .await;
    server
        .grant_app_role("admin", &["notes.read", "notes.write"], "/")
        .await;
    let helper = agent_of(
        &server,
        "admin",
        "helper-bot",
        &["notes.read", "notes.write"],
    )
    .await;
    let key = ProofKey::generate().expect("a key");
    ask_for_approval(&server, &helper, &key, "nightly cleanup of the whole wiki").await;
    sign_in(chrome, &server, "/console", "admin", ADMIN_PASSWORD).await;
    let pages = [
        ("overview", "/console"),
        ("tokens", "/console/tokens"),
        ("principals", "/console/principals"),
        ("policies", "/console/policies"),
        ("apps", "/console/apps"),
        ("audit", "/console/audit"),
        ("leaks", "/console/leaks"),
        ("sessions", "/console/sessions"),
        ("approvals", "/console/approvals"),
    ];
    for (width, height) in [(1280, 900), (390, 844)] {
        chrome.set_width(width, height).await;
        for (name, path) in pages {
            let text = chrome.open(&format!("{}{path}", server.url)).await;
            assert!(!text.contains("Not allowed"), "{name} at {path}: {text}");
            photograph(chrome, name, width).await;
        }
        // The pages an action leads to: a secret shown once, an explanation.
        chrome.open(&format!("{}/console/tokens", server.url)).await;
        pick(chrome, "#principal", "ci-bot").await;
        click(chrome, "#create-token button[type=submit]").await;
        photograph(chrome, "token-secret", width).await;
        chrome
            .open(&format!(
                "{}/console/policies/explain?principal=alice&permission=wiki.pages.read&resource=acme",
                server.url
            ))
            .await;
        photograph(chrome, "explain", width).await;
    }
}

/// Saves a screenshot of the page as `<name>-<width>.png` and checks that
/// the navigation is all shown and nothing makes the page wider than the
/// window.
async fn photograph(chrome: &Chromium, name: &str, width: u32) {
    let shot = chrome.screenshot(&format!("{name}-{width}")).await;
    assert!(std::fs::metadata(&shot).expect("saved").len() > 1000);
    let links = chrome
        .client()
        .find_all(Locator::Css("nav a"))
        .await
        .expect("links");
    assert_eq!(links.len(), 9, "{name}");
    for link in links {
        assert!(
            link.is_displayed().await.expect("shown"),
            "{name}: a hidden link"
        );
    }
    let fits = chrome
        .client()
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            Vec::new(),
        )
        .await
        .expect("measure");
    let (scroll, inner) = (
        fits[0].as_u64().unwrap_or(u64::MAX),
        fits[1].as_u64().unwrap_or(0),
    );
    assert_eq!(
        inner,
        u64::from(width),
        "{name}: the window is {inner} px wide"
    );
    assert!(
        scroll <= u64::from(width),
        "{name} at {width} px is {scroll} px wide"
    );
}
