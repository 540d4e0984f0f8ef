//! Client ID Metadata Documents: a `client_id` that is an https URL names a
//! JSON document, served there by the client's publisher, with the same
//! fields as a dynamic registration. MCP clients try this before dynamic
//! registration.
//!
//! Fetching a URL a stranger chose is a server-side request forgery risk, so
//! the fetch refuses anything but https on port 443 to public addresses (the
//! address checked is the address connected to), follows no redirects, reads
//! at most 64 KiB within 5 seconds, and caches by `Cache-Control: max-age`
//! (5 minutes by default, an hour at most). The document's `client_id` must
//! equal its URL. Operators (and tests, since nothing here has public https)
//! can map URL prefixes to other locations explicitly; mapped fetches skip
//! the address check because the operator vouched for them.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use laissez_oauth::address::is_public;
use laissez_oauth::client::{Client, ClientKind, RegistrationRequest};
use laissez_oauth::{ErrorCode, OAuthError};

/// Largest document accepted.
pub const MAX_DOCUMENT: usize = 64 * 1024;
const DEFAULT_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(3600);

/// Resolves and caches metadata documents.
#[derive(Default)]
pub struct MetadataDocuments {
    /// URL prefix → replacement prefix (e.g. `https://app.example/` → `http://127.0.0.1:9000/`).
    mappings: Vec<(String, String)>,
    cache: RwLock<HashMap<String, (Client, Instant)>>,
}

fn invalid(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, why)
}

/// Whether a `client_id` names a metadata document.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

impl MetadataDocuments {
    /// Documents fetched through these explicit prefix mappings.
    pub fn with_mappings(mappings: Vec<(String, String)>) -> MetadataDocuments {
        MetadataDocuments {
            mappings,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The client described at `url`.
    pub async fn resolve(&self, url: &str) -> Result<Client, OAuthError> {
        if let Some((client, at)) = self.cache.read().ok().and_then(|c| c.get(url).cloned())
            && at > Instant::now()
        {
            return Ok(client);
        }
        let parsed = url::Url::parse(url).map_err(|_| invalid("client_id is not a valid URL"))?;
        if parsed.scheme() != "https"
            || parsed.path() == "/"
            || parsed.fragment().is_some()
            || url.len() > 2048
        {
            return Err(invalid(
                "a metadata document client_id must be an https URL with a path and no fragment",
            ));
        }
        let mapped = self
            .mappings
            .iter()
            .find(|(from, _)| url.starts_with(from.as_str()))
            .map(|(from, to)| format!("{to}{}", &url[from.len()..]));
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5));
        let fetch_url = match &mapped {
            Some(target) => target.clone(),
            None => {
                // Resolve once, check, and pin the connection to the checked address.
                let host = parsed.host_str().unwrap_or_default().to_owned();
                let port = parsed.port_or_known_default().unwrap_or(443);
                if port != 443 {
                    return Err(invalid("metadata documents are fetched from port 443 only"));
                }
                let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| invalid(format!("cannot resolve {host}: {e}")))?
                    .collect();
                let addr = addrs
                    .iter()
                    .copied()
                    .find(|a| is_public(a.ip()))
                    .filter(|_| addrs.iter().all(|a| is_public(a.ip())))
                    .ok_or_else(|| {
                        invalid(format!("{host} resolves to a non-public address; refused"))
                    })?;
                builder = builder.resolve(&host, addr);
                url.to_owned()
            }
        };
        let http = builder.build().map_err(|e| invalid(e.to_string()))?;
        let mut response = http
            .get(&fetch_url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| invalid(format!("cannot fetch the client metadata document: {e}")))?;
        if !response.status().is_success() {
            return Err(invalid(format!(
                "the client metadata document answered HTTP {}",
                response.status()
            )));
        }
        let ttl = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
            })
            .map(|s| Duration::from_secs(s).min(MAX_TTL))
            .unwrap_or(DEFAULT_TTL);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| invalid(format!("cannot read the client metadata document: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(invalid(
                    "the client metadata document is larger than 64 KiB",
                ));
            }
        }
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the client metadata document is not JSON: {e}")))?;
        if document["client_id"] != url {
            return Err(invalid("the document's client_id does not equal its URL"));
        }
        let request: RegistrationRequest = serde_json::from_value(document).map_err(|e| {
            invalid(format!(
                "the client metadata document has the wrong shape: {e}"
            ))
        })?;
        let metadata = request.validate(ClientKind::MetadataDocument)?;
        if metadata.is_confidential() {
            return Err(invalid(
                "metadata document clients are public: token_endpoint_auth_method must be none",
            ));
        }
        let client = Client {
            client_id: url.to_owned(),
            kind: ClientKind::MetadataDocument,
            metadata,
            owner_id: None,
            principal_id: None,
            created_at: 0,
        };
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(url.to_owned(), (client.clone(), Instant::now() + ttl));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "100.64.0.1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn refuses_private_targets_and_bad_urls() {
        let documents = MetadataDocuments::default();
        assert!(
            documents
                .resolve("https://127.0.0.1/client.json")
                .await
                .is_err()
        );
        assert!(
            documents
                .resolve("https://localhost/client.json")
                .await
                .is_err()
        );
        assert!(
            documents
                .resolve("http://public.example/client.json")
                .await
                .is_err()
        );
        assert!(documents.resolve("https://public.example/").await.is_err());
        assert!(
            documents
                .resolve("https://public.example:8443/c.json")
                .await
                .is_err()
        );
    }
}
