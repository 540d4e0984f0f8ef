//! A person at a browser, for tests: a cookie jar that follows redirects
//! and fills in forms ([`Browser`]), and [`approve`], which signs in through
//! Laissez's form, approves the consent page as shown (every scope and
//! account offered) and returns where the server redirects the browser.

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
            (unescape(&name), unescape(value))
        })
        .collect()
}

/// Signs in as `username` and approves every scope and account asked;
/// returns the redirect the authorization server sends the browser to.
pub async fn approve(authorization_url: &str, username: &str, password: &str) -> String {
    let origin = url::Url::parse(authorization_url)
        .expect("url")
        .origin()
        .ascii_serialization();
    let mut browser = Browser::new("");
    browser.stay_within = Some(origin);
    let login = browser.open(authorization_url).await;
    let consent = browser
        .submit(&login, &[("username", username), ("password", password)])
        .await;
    let mut fields: Vec<(String, String)> = Vec::new();
    for field in ["grant_scope", "grant_account"] {
        for value in consent
            .body
            .split(&format!("name=\"{field}\" value=\""))
            .skip(1)
        {
            fields.push((
                field.into(),
                value.split('"').next().unwrap_or_default().to_owned(),
            ));
        }
    }
    fields.push(("decision".into(), "approve".into()));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = browser.submit(&consent, &fields).await;
    assert!(
        answer.status.is_redirection(),
        "the consent was not answered with a redirect: {answer:?}"
    );
    answer.url
}

/// A browser with a cookie jar that follows redirects across servers (the
/// authorization server, an upstream identity provider) and submits forms,
/// for flows that pass through pages nobody here wrote.
pub struct Browser {
    http: reqwest::Client,
    jar: Vec<(String, String)>,
    /// Redirects to URLs starting with this are returned, not followed (the
    /// client's redirect URI, where nothing listens).
    pub stop_at: String,
    /// When set, redirects leaving this origin are returned, not followed.
    pub stay_within: Option<String>,
}

/// Where a browser ended up.
#[derive(Debug)]
pub struct Landed {
    /// The page's URL (or the redirect target it stopped at).
    pub url: String,
    /// The status of the last response.
    pub status: reqwest::StatusCode,
    /// The page.
    pub body: String,
}

/// Decodes the character references a page may use in attribute values:
/// `&amp;`, `&quot;`, `&apos;`, `&lt;`, `&gt;`, and numeric ones
/// (`&#38;`, `&#x27;`), as a browser does.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Browser {
    /// A browser with an empty jar.
    pub fn new(stop_at: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: Vec::new(),
            stop_at: stop_at.to_owned(),
            stay_within: None,
        }
    }

    /// The jar's value for `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Forgets every cookie (another browser).
    pub fn clear_cookies(&mut self) {
        self.jar.clear();
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let Some((name, rest)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), rest.trim().to_owned());
            self.jar.retain(|(k, _)| *k != name);
            if !text.to_ascii_lowercase().contains("max-age=0") && !value.is_empty() {
                self.jar.push((name, value));
            }
        }
    }

    async fn follow(&mut self, mut response: reqwest::Response) -> Landed {
        loop {
            self.keep_cookies(&response);
            let url = response.url().clone();
            let status = response.status();
            if !status.is_redirection() {
                let body = response.text().await.expect("page");
                return Landed {
                    url: url.to_string(),
                    status,
                    body,
                };
            }
            let location = response
                .headers()
                .get(LOCATION)
                .expect("redirect without Location")
                .to_str()
                .expect("ascii");
            let next = url.join(location).expect("redirect target").to_string();
            let leaves = self
                .stay_within
                .as_ref()
                .is_some_and(|origin| !next.starts_with(&format!("{origin}/")));
            if (!self.stop_at.is_empty() && next.starts_with(&self.stop_at)) || leaves {
                return Landed {
                    url: next,
                    status,
                    body: String::new(),
                };
            }
            response = self.send(self.http.get(&next)).await;
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        request
            .header(COOKIE, cookies.join("; "))
            .send()
            .await
            .expect("request")
    }

    /// Opens `url` and follows redirects.
    pub async fn open(&mut self, url: &str) -> Landed {
        let response = self.send(self.http.get(url)).await;
        self.follow(response).await
    }

    /// Submits the first form on `page` with its hidden fields plus `fields`,
    /// and follows redirects.
    pub async fn submit(&mut self, page: &Landed, fields: &[(&str, &str)]) -> Landed {
        let form = page
            .body
            .split("<form")
            .nth(1)
            .unwrap_or_else(|| panic!("no form on {}:\n{}", page.url, page.body));
        let action = form
            .split("action=\"")
            .nth(1)
            .and_then(|a| a.split('"').next())
            .map(unescape)
            .unwrap_or_default();
        let target = url::Url::parse(&page.url)
            .expect("page url")
            .join(&action)
            .expect("form action")
            .to_string();
        let mut data = hidden_fields(form);
        data.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = self.send(self.http.post(&target).form(&data)).await;
        self.follow(response).await
    }

    /// Follows the link on `page` whose `href` starts with `prefix`.
    pub async fn click(&mut self, page: &Landed, prefix: &str) -> Landed {
        let href = page
            .body
            .split(&format!("href=\"{prefix}"))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|rest| format!("{prefix}{}", unescape(rest)))
            .unwrap_or_else(|| panic!("no link to {prefix} on {}:\n{}", page.url, page.body));
        let target = url::Url::parse(&page.url)
            .expect("page url")
            .join(&href)
            .expect("link")
            .to_string();
        self.open(&target).await
    }
}

/// Registers a public client (authorization code + refresh, redirect
/// `http://127.0.0.1:9/cb`), has `username` approve `offline_access` (for
/// `resource`, if given) and exchanges the code; returns the client id and
/// the token answer, with its refresh token.
pub async fn connect_public_client(
    server_url: &str,
    username: &str,
    password: &str,
    resource: Option<&str>,
) -> (String, serde_json::Value) {
    let http = reqwest::Client::new();
    // Registered with the test server's admin credential (which holds the
    // gate role), so that many registrations are not rate limited.
    let mut register = http.post(format!("{server_url}/oauth/register"));
    if let Some(admin) = crate::admin_token_of(server_url) {
        register = register.bearer_auth(admin);
    }
    let client: serde_json::Value = register
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("registration answer");
    let client_id = client["client_id"].as_str().expect("client_id").to_owned();
    let verifier = "connect-verifier-connect-verifier-connect-verifier-connect";
    let mut authorize = url::Url::parse(&format!("{server_url}/oauth/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:9/cb")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            &laissez_oauth::pkce::challenge_for(verifier),
        )
        .append_pair("code_challenge_method", "S256");
    // Refresh tokens come only with offline_access (the only scope asked).
    authorize
        .query_pairs_mut()
        .append_pair("scope", "offline_access");
    if let Some(resource) = resource {
        authorize
            .query_pairs_mut()
            .append_pair("resource", resource);
    }
    let back = approve(authorize.as_str(), username, password).await;
    let code = url::Url::parse(&back)
        .expect("redirect")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code in the redirect")
        .1
        .into_owned();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9/cb"),
        ("code_verifier", verifier),
        ("client_id", client_id.as_str()),
    ];
    if let Some(resource) = resource {
        form.push(("resource", resource));
    }
    let tokens = http
        .post(format!("{server_url}/oauth/token"))
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token answer");
    (client_id, tokens)
}
