//! A person at a browser, for tests: opens an authorization URL, signs in
//! through Laissez's form (with its cookie and CSRF token), approves the
//! consent page as shown, and returns where the server redirects the browser.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap_or_default().to_owned();
            let value = rest
                .split("value=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or_default();
            (
                name,
                value
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'"),
            )
        })
        .collect()
}

fn cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned()
}

/// Signs in as `username` and approves every scope asked; returns the
/// redirect the authorization server sends the browser to.
pub async fn approve(authorization_url: &str, username: &str, password: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let origin = url::Url::parse(authorization_url)
        .expect("url")
        .origin()
        .ascii_serialization();
    let login = browser
        .get(authorization_url)
        .send()
        .await
        .expect("login page");
    let login_cookie = cookie(&login);
    let mut form = hidden_fields(&login.text().await.expect("page"));
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let signed_in = browser
        .post(format!("{origin}/oauth/login"))
        .header(COOKIE, login_cookie)
        .form(&form)
        .send()
        .await
        .expect("sign in");
    let session = cookie(&signed_in);
    let next = signed_in
        .headers()
        .get(LOCATION)
        .expect("signed in")
        .to_str()
        .expect("ascii")
        .to_owned();
    let consent = browser
        .get(next)
        .header(COOKIE, &session)
        .send()
        .await
        .expect("consent page")
        .text()
        .await
        .expect("page");
    let mut form = hidden_fields(&consent);
    for scope in consent.split("name=\"grant_scope\" value=\"").skip(1) {
        form.push((
            "grant_scope".into(),
            scope.split('"').next().unwrap_or_default().to_owned(),
        ));
    }
    form.push(("decision".into(), "approve".into()));
    let answer = browser
        .post(format!("{origin}/oauth/consent"))
        .header(COOKIE, &session)
        .form(&form)
        .send()
        .await
        .expect("approve");
    answer
        .headers()
        .get(LOCATION)
        .expect("redirect")
        .to_str()
        .expect("ascii")
        .to_owned()
}
