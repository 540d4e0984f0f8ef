//! Redirect URIs: what may be registered, and whether a request's URI
//! matches a registered one.
//!
//! Matching is exact string comparison (OAuth 2.1), with one exception from
//! RFC 8252 §7.3: for loopback redirects (`http://127.0.0.1`, `http://[::1]`
//! and `http://localhost`) the port may differ, because native apps and CLI
//! agents listen on whatever port is free. Everything else about them
//! (scheme, host, path, query) must still be identical.

use url::{Host, Url};

use crate::{ErrorCode, OAuthError};

/// Longest redirect URI accepted.
pub const MAX_LEN: usize = 2048;

fn invalid(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, why)
}

/// Whether `url` is an `http` loopback URL.
pub fn is_loopback(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// Checks a redirect URI offered at registration: absolute, no fragment,
/// https (or http on loopback), or a private-use scheme for native apps.
pub fn validate(uri: &str) -> Result<Url, OAuthError> {
    if uri.len() > MAX_LEN {
        return Err(invalid(format!(
            "redirect_uri is longer than {MAX_LEN} characters"
        )));
    }
    let url = Url::parse(uri)
        .map_err(|e| invalid(format!("redirect_uri '{uri}' is not an absolute URI: {e}")))?;
    if url.fragment().is_some() {
        return Err(invalid("a redirect_uri must not contain a fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(format!(
                "redirect_uri '{uri}' uses http on a non-loopback host; use https"
            )));
        }
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            return Err(invalid(format!(
                "redirect_uri scheme '{}' is not allowed",
                url.scheme()
            )));
        }
        // Private-use schemes (RFC 8252 §7.1) must look like reversed domain names.
        scheme if scheme.contains('.') => {}
        scheme => {
            return Err(invalid(format!(
                "redirect_uri scheme '{scheme}' is not allowed; native apps use a reversed domain such as com.example.app:/callback"
            )));
        }
    }
    Ok(url)
}

/// Whether the `requested` redirect URI matches one of `registered`.
pub fn matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(requested_url) = Url::parse(requested) else {
        return false;
    };
    if !is_loopback(&requested_url) {
        return false;
    }
    registered.iter().any(|r| {
        let Ok(registered_url) = Url::parse(r) else {
            return false;
        };
        is_loopback(&registered_url)
            && registered_url.host() == requested_url.host()
            && registered_url.path() == requested_url.path()
            && registered_url.query() == requested_url.query()
            && registered_url.username() == requested_url.username()
            && registered_url.password() == requested_url.password()
            && requested_url.fragment().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_elsewhere() {
        let r = reg(&["https://app.example.com/cb"]);
        assert!(matches(&r, "https://app.example.com/cb"));
        assert!(!matches(&r, "https://app.example.com/cb/"));
        assert!(!matches(&r, "https://app.example.com/cb?x=1"));
        assert!(!matches(&r, "https://app.example.com:8443/cb"));
        assert!(!matches(&r, "https://evil.example.com/cb"));
    }

    #[test]
    fn loopback_any_port() {
        let r = reg(&["http://127.0.0.1/callback", "http://localhost:3000/cb"]);
        assert!(matches(&r, "http://127.0.0.1:53121/callback"));
        assert!(matches(&r, "http://localhost:9999/cb"));
        assert!(!matches(&r, "http://127.0.0.1:53121/other"));
        assert!(
            !matches(&r, "http://localhost:9999/callback"),
            "host must match the registered one"
        );
        assert!(!matches(&r, "http://127.0.0.2.evil.com:1/callback"));
        assert!(!matches(&r, "https://127.0.0.1:1/callback"));
    }

    #[test]
    fn registration_rules() {
        assert!(validate("https://app.example.com/cb").is_ok());
        assert!(validate("http://127.0.0.1:8080/cb").is_ok());
        assert!(validate("http://localhost/cb").is_ok());
        assert!(validate("com.example.app:/oauth").is_ok());
        assert!(validate("http://app.example.com/cb").is_err());
        assert!(validate("https://app.example.com/cb#frag").is_err());
        assert!(validate("javascript:alert(1)").is_err());
        assert!(validate("/relative").is_err());
        assert!(validate("myapp:/cb").is_err());
    }
}
