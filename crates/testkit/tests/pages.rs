//! The pages people see: a landing page at `/` that says what the server is
//! and links onward, one stylesheet, and the sign-in, consent and account
//! pages rendered from templates under a content security policy that
//! allows no inline style or script, with every value escaped.

use laissez_testkit::TestServer;
use reqwest::StatusCode;

fn csp(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn assert_strict(csp: &str) {
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_says_what_this_is_and_links_onward() {
    let server = TestServer::start();
    let response = server.client().get(&server.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        response.headers()
    );
    assert_strict(&csp(&response));
    let page = response.text().await.unwrap();
    for link in [
        "/account",
        "/openapi.json",
        "/.well-known/oauth-authorization-server",
        "/static/laissez.css",
    ] {
        assert!(
            page.contains(&format!("href=\"{link}\"")),
            "{link} in {page}"
        );
    }
    assert!(page.contains(&server.url), "{page}");

    let css = server
        .client()
        .get(format!("{}/static/laissez.css", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("font-family"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_pages_allow_nothing_inline_and_escape_what_they_carry() {
    let server = TestServer::start();
    // The account page of a browser that is not signed in is the sign-in form.
    let response = server
        .client()
        .get(format!("{}/account", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_strict(&csp(&response));
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let page = response.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "{page}");
    assert!(
        !page.contains("<style") && !page.contains("style="),
        "{page}"
    );
    assert!(page.contains("<link rel=\"stylesheet\" href=\"/static/laissez.css\">"));

    // An error page quotes what it was given, escaped.
    let response = server
        .client()
        .get(format!(
            "{}/oauth/authorize?client_id=%3Cscript%3Ealert(1)%3C/script%3E&redirect_uri=http://127.0.0.1/cb&response_type=code",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_strict(&csp(&response));
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
}
