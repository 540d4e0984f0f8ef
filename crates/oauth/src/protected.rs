//! Protected resources the authorization server knows: the apps behind
//! gates, with their scopes described in plain words for consent pages and
//! the scopes a request that names none receives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A registered protected resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResource {
    /// Its normalized resource URL.
    pub resource: String,
    /// A name for people.
    pub name: String,
    /// Each scope and what it lets an application do, in plain words.
    pub scopes: BTreeMap<String, String>,
    /// Scopes given to requests that ask for none.
    pub default_scopes: Vec<String>,
    /// How a gate fronts it, when the gate's configuration lives here (for
    /// `laissez gate --app NAME` and the gates `laissez serve` runs itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateSettings>,
}

/// A gate's configuration, kept with the resource it protects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
    /// Where the app really is.
    pub upstream: String,
    /// Where `laissez serve` runs this gate itself (none: a separate `laissez gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Scopes every request needs unless a rule says otherwise.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Route rules: `"[METHOD] /path scope1,scope2"` or `"tool:NAME scope1,scope2"`.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The account the app belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Send browsers without a token to sign in.
    #[serde(default)]
    pub browser_login: bool,
    /// What the gate does with credentials in request bodies: `off`,
    /// `block`, `redact` or `report`.
    #[serde(default = "dlp_off")]
    pub dlp_request: String,
    /// The same for response bodies.
    #[serde(default = "dlp_off")]
    pub dlp_response: String,
    /// The app is an OpenAI-compatible AI API (streamed completions are
    /// inspected as text).
    #[serde(default)]
    pub ai_api: bool,
    /// Accept only DPoP-bound tokens (RFC 9449).
    #[serde(default)]
    pub dpop_required: bool,
    /// DPoP proofs must carry the gate's nonce.
    #[serde(default)]
    pub dpop_nonce: bool,
}

fn dlp_off() -> String {
    "off".to_owned()
}

impl ProtectedResource {
    /// The description of `scope`, if the resource gives one.
    pub fn describe(&self, scope: &str) -> Option<&str> {
        self.scopes.get(scope).map(String::as_str)
    }
}
