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
}

impl ProtectedResource {
    /// The description of `scope`, if the resource gives one.
    pub fn describe(&self, scope: &str) -> Option<&str> {
        self.scopes.get(scope).map(String::as_str)
    }
}
