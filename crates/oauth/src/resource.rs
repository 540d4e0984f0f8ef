//! Resource indicators (RFC 8707): the URL of the API a token is for. It
//! becomes the token's audience, so two spellings of the same resource must
//! compare equal: `https://host` and `https://host/` are one resource, the
//! host is case-insensitive and default ports are dropped.

use url::Url;

use crate::{ErrorCode, OAuthError};

/// A normalized resource identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(String);

impl Resource {
    /// Parses and normalizes a resource indicator: an absolute http(s) URI
    /// without a fragment.
    pub fn parse(text: &str) -> Result<Resource, OAuthError> {
        let invalid = |why: &str| {
            OAuthError::new(ErrorCode::InvalidTarget, format!("resource '{text}' {why}"))
        };
        if text.len() > 2048 {
            return Err(invalid("is too long"));
        }
        let url = Url::parse(text).map_err(|_| invalid("is not an absolute URI"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid("must be an http or https URL"));
        }
        if url.fragment().is_some() {
            return Err(invalid("must not contain a fragment"));
        }
        // `Url` lowercases the host, drops default ports and turns an empty
        // path into "/"; drop a lone trailing slash so both spellings agree.
        let mut normalized = url.to_string();
        if url.path() == "/" && url.query().is_none() && normalized.ends_with('/') {
            normalized.pop();
        }
        Ok(Resource(normalized))
    }

    /// The normalized URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a request to `url` lies within this resource (RFC 9728
    /// §3.3: a client must not use metadata whose `resource` does not match
    /// the URL it fetched): the same origin (scheme, host and port), and a
    /// path equal to the resource's or below it. A resource with a query
    /// covers only itself.
    pub fn covers(&self, url: &str) -> bool {
        let (Ok(resource), Ok(target)) = (Url::parse(&self.0), Url::parse(url)) else {
            return false;
        };
        if resource.origin() != target.origin() || !target.username().is_empty() {
            return false;
        }
        if resource.query().is_some() {
            return Resource::parse(url).is_ok_and(|r| r == *self);
        }
        let base = resource.path().trim_end_matches('/');
        let path = target.path();
        base.is_empty() || path == base || path.starts_with(&format!("{base}/"))
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_resource_agree() {
        let a = Resource::parse("https://API.example.com").unwrap();
        assert_eq!(a, Resource::parse("https://api.example.com/").unwrap());
        assert_eq!(a, Resource::parse("https://api.example.com:443/").unwrap());
        assert_eq!(a.as_str(), "https://api.example.com");
        assert_ne!(a, Resource::parse("https://api.example.com/mcp").unwrap());
        assert_eq!(
            Resource::parse("http://127.0.0.1:8080/mcp")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/mcp"
        );
    }

    #[test]
    fn which_urls_a_resource_covers() {
        for (resource, url, covered) in [
            (
                "https://api.example.com",
                "https://api.example.com/mcp",
                true,
            ),
            ("https://api.example.com", "https://api.example.com", true),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcp",
                true,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcp/",
                true,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcp/tools?x=1",
                true,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcpx",
                false,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/",
                false,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/other/../mcp",
                true,
            ),
            (
                "https://api.example.com/mcp",
                "https://api.example.com/mcp/../admin",
                false,
            ),
            (
                "https://api.example.com",
                "http://api.example.com/mcp",
                false,
            ),
            (
                "https://api.example.com",
                "https://api.example.com:8443/mcp",
                false,
            ),
            ("https://api.example.com", "https://evil.example/mcp", false),
            (
                "https://api.example.com",
                "https://api.example.com.evil.example/mcp",
                false,
            ),
            (
                "https://api.example.com",
                "https://user@api.example.com/mcp",
                false,
            ),
            ("http://127.0.0.1:8800", "http://127.0.0.1:8801/mcp", false),
            ("http://127.0.0.1:8800", "http://127.0.0.1:8800/mcp", true),
            (
                "https://api.example.com/a?x=1",
                "https://api.example.com/a?x=1",
                true,
            ),
            (
                "https://api.example.com/a?x=1",
                "https://api.example.com/a/b",
                false,
            ),
            ("https://api.example.com", "not a url", false),
        ] {
            let r = Resource::parse(resource).unwrap();
            assert_eq!(r.covers(url), covered, "{resource} covers {url}");
        }
    }

    #[test]
    fn bad_resources() {
        for bad in ["api.example.com", "ftp://x", "https://x/#f", "urn:x"] {
            assert_eq!(
                Resource::parse(bad).unwrap_err().error,
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
    }
}
