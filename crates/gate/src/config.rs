//! What a gate fronts and how requests map to required scopes.

use url::Url;

/// Scopes a matching request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The HTTP method, or any.
    pub method: Option<String>,
    /// The path prefix it applies to.
    pub path_prefix: String,
    /// Every scope the operation needs.
    pub scopes: Vec<String>,
    /// For MCP: the tool whose `tools/call` this rule is about.
    pub tool: Option<String>,
}

fn parse_scopes(text: &str) -> Result<Vec<String>, String> {
    let scopes: Vec<String> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    laissez_oauth::OAuthScopes::parse(Some(&scopes.join(" "))).map_err(|e| e.description)?;
    Ok(scopes)
}

impl Rule {
    /// Parses `"[METHOD] /prefix scope1,scope2"`, e.g. `"POST /api write"`,
    /// or `"tool:NAME scope1,scope2"` for calls of one MCP tool.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if let [target, scopes] = parts.as_slice()
            && let Some(tool) = target.strip_prefix("tool:")
        {
            if tool.is_empty() || tool.len() > 128 {
                return Err(format!("rule '{text}' names no tool"));
            }
            return Ok(Rule {
                method: Some("POST".into()),
                path_prefix: "/".into(),
                scopes: parse_scopes(scopes)?,
                tool: Some(tool.to_owned()),
            });
        }
        let (method, prefix, scopes) = match parts.as_slice() {
            [prefix, scopes] if prefix.starts_with('/') => (None, *prefix, *scopes),
            [method, prefix, scopes] if prefix.starts_with('/') => {
                (Some(method.to_ascii_uppercase()), *prefix, *scopes)
            }
            _ => {
                return Err(format!(
                    "rule '{text}' must look like '[METHOD] /path scope1,scope2'"
                ));
            }
        };
        // Rules are written in the form requests are matched in; a trailing
        // slash covers the path without it too (apps often serve both).
        let mut prefix = crate::facts::normalize_path(prefix, true)
            .map_err(|e| format!("rule '{text}': {e}"))?;
        if prefix.len() > 1 && prefix.ends_with('/') {
            prefix.pop();
        }
        Ok(Rule {
            method,
            path_prefix: prefix,
            scopes: parse_scopes(scopes)?,
            tool: None,
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && (path == self.path_prefix
                || path.starts_with(&self.path_prefix)
                    && (self.path_prefix.ends_with('/')
                        || path[self.path_prefix.len()..].starts_with('/')))
    }
}

/// A gate's configuration.
#[derive(Clone, Debug)]
pub struct GateConfig {
    /// The app's name, for logs and headers.
    pub app: String,
    /// The public base URL agents connect to (the resource identifier).
    pub resource: Url,
    /// Where the app really is.
    pub upstream: Url,
    /// The authorization server's issuer URL.
    pub issuer: String,
    /// Scopes every request needs unless a rule says otherwise.
    pub default_scopes: Vec<String>,
    /// Per-route scope requirements; the first match wins.
    pub rules: Vec<Rule>,
    /// A Laissez token with `laissez.audit.write`: report every decision to the audit log.
    pub audit_token: Option<String>,
    /// The gate's credential for the revocation feed (a token with the
    /// `laissez-gate` role), when it differs from `audit_token` or the gate
    /// reports nothing; without either the feed refuses the gate.
    pub feed_token: Option<String>,
    /// Send browsers without a token to sign in, and keep them signed in with a cookie.
    pub browser_login: bool,
    /// The account the app belongs to: tokens whose consent did not grant it
    /// (or every account) are refused.
    pub account: Option<String>,
    /// Credentials in request and response bodies.
    pub dlp: crate::dlp::DlpSettings,
    /// Let encoded `/` and `\` (`%2F`, `%5C`) through in paths, undecoded.
    /// Off by default: an app that decodes them would route the request
    /// somewhere the rules did not see.
    pub allow_encoded_slash: bool,
    /// Proxies in front of the gate whose `X-Forwarded-*` and `Forwarded`
    /// headers are kept (the peer appended); from anyone else the gate
    /// replaces them.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Accept only DPoP-bound tokens (RFC 9449; `dpop_bound_access_tokens_required`).
    pub require_dpop: bool,
    /// DPoP proofs must carry this gate's nonce (`DPoP-Nonce`).
    pub dpop_nonce: bool,
    /// The gate is ready only while its revocation feed was read less than
    /// this long ago; it long-polls the feed at least three times as often.
    pub feed_max_age: std::time::Duration,
    /// `Accept: text/markdown` requests whose app answers HTML get Markdown.
    pub markdown_for_agents: bool,
    /// CA certificates (PEM) the issuer's https certificate may chain to,
    /// besides the public roots: an issuer on a private PKI.
    pub issuer_ca: Option<Vec<u8>>,
}

/// Default of [`GateConfig::feed_max_age`].
pub const FEED_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(90);

impl GateConfig {
    /// A client builder for calls to the issuer: the public roots, and the
    /// CAs of [`GateConfig::issuer_ca`] when set.
    pub fn issuer_client(&self) -> Result<reqwest::ClientBuilder, crate::GateError> {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &self.issuer_ca {
            let roots = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                crate::GateError::Config(format!("the issuer CA file is not PEM certificates: {e}"))
            })?;
            if roots.is_empty() {
                return Err(crate::GateError::Config(
                    "the issuer CA file holds no certificate".into(),
                ));
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        Ok(builder)
    }

    /// A gate for `app` at `resource` in front of `upstream`, trusting
    /// `issuer`: no scopes required, no rules, no audit reporting, no
    /// browser sign-in, any account.
    pub fn new(app: &str, resource: Url, upstream: Url, issuer: &str) -> GateConfig {
        GateConfig {
            app: app.to_owned(),
            resource,
            upstream,
            issuer: issuer.to_owned(),
            default_scopes: Vec::new(),
            rules: Vec::new(),
            audit_token: None,
            feed_token: None,
            browser_login: false,
            account: None,
            dlp: crate::dlp::DlpSettings::default(),
            allow_encoded_slash: false,
            trusted_proxies: Vec::new(),
            require_dpop: false,
            dpop_nonce: false,
            feed_max_age: FEED_MAX_AGE,
            issuer_ca: None,
            markdown_for_agents: false,
        }
    }

    /// Whether `peer` is a proxy this gate trusts.
    pub fn trusts_proxy(&self, peer: Option<std::net::IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted_proxies.iter().any(|net| net.contains(&ip)))
    }

    /// The gate a registered resource's stored configuration describes.
    pub fn from_resource(
        resource: &laissez_oauth::protected::ProtectedResource,
        issuer: &str,
    ) -> Result<GateConfig, String> {
        let gate = resource
            .gate
            .as_ref()
            .ok_or_else(|| format!("'{}' has no gate configuration", resource.name))?;
        let url = |text: &str, what: &str| {
            Url::parse(text).map_err(|e| format!("{what} '{text}' is not a URL: {e}"))
        };
        let mut config = GateConfig::new(
            &resource.name,
            url(&resource.resource, "resource")?,
            url(&gate.upstream, "upstream")?,
            issuer,
        );
        config.default_scopes = gate.required_scopes.clone();
        config.rules = gate
            .rules
            .iter()
            .map(|r| Rule::parse(r))
            .collect::<Result<_, _>>()?;
        config.account = gate.account.clone();
        config.browser_login = gate.browser_login;
        config.require_dpop = gate.dpop_required;
        config.dpop_nonce = gate.dpop_nonce;
        config.dlp = crate::dlp::DlpSettings {
            request: crate::dlp::DlpAction::parse(&gate.dlp_request)?,
            response: crate::dlp::DlpAction::parse(&gate.dlp_response)?,
            ai_api: gate.ai_api,
        };
        Ok(config)
    }

    /// Whether a token granted for `accounts` may act in this app's account.
    pub fn account_allowed(&self, accounts: &[String]) -> bool {
        self.account
            .as_ref()
            .is_none_or(|wanted| accounts.iter().any(|a| a == wanted || a == "/"))
    }

    /// The scopes a request needs.
    pub fn required_scopes(&self, method: &str, path: &str) -> &[String] {
        self.rules
            .iter()
            .filter(|r| r.tool.is_none())
            .find(|r| r.matches(method, path))
            .map(|r| r.scopes.as_slice())
            .unwrap_or(&self.default_scopes)
    }

    /// The scopes a call of MCP tool `tool` needs beyond the route's, if a rule names it.
    pub fn tool_scopes(&self, tool: &str) -> Option<&[String]> {
        self.rules
            .iter()
            .find(|r| r.tool.as_deref() == Some(tool))
            .map(|r| r.scopes.as_slice())
    }

    /// The route a request counts under in metrics and the access log: the
    /// path prefix of the first rule that matches it, or `/*` (the
    /// default scopes). A bounded set, fixed by the configuration.
    pub fn route_label(&self, method: &str, path: &str) -> &str {
        self.rules
            .iter()
            .filter(|r| r.tool.is_none())
            .find(|r| r.matches(method, path))
            .map(|r| r.path_prefix.as_str())
            .unwrap_or("/*")
    }

    /// Whether any rule is about MCP tools (then JSON-RPC bodies are read).
    pub fn has_tool_rules(&self) -> bool {
        self.rules.iter().any(|r| r.tool.is_some())
    }

    /// Every scope the app knows (for metadata).
    pub fn scopes_supported(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .default_scopes
            .iter()
            .chain(self.rules.iter().flat_map(|r| r.scopes.iter()))
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_method_and_path_segment() {
        let rule = Rule::parse("post /api notes.write,notes.read").unwrap();
        assert_eq!(rule.method.as_deref(), Some("POST"));
        assert!(rule.matches("POST", "/api"));
        assert!(rule.matches("POST", "/api/notes"));
        assert!(!rule.matches("POST", "/apix"));
        assert!(!rule.matches("GET", "/api"));
        assert!(Rule::parse("nonsense").is_err());
        assert_eq!(Rule::parse("/%61dmin a").unwrap().path_prefix, "/admin");
        let slashed = Rule::parse("//admin/./x/.. a").unwrap();
        assert_eq!(slashed.path_prefix, "/admin");
        assert!(slashed.matches("GET", "/admin") && slashed.matches("GET", "/admin/x"));
        assert_eq!(Rule::parse("/ a").unwrap().path_prefix, "/");
        assert!(Rule::parse("/admin%zz a").is_err());
    }
}
