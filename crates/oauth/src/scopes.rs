//! OAuth scope strings (RFC 6749 §3.3): space-separated tokens of printable
//! ASCII without `"` or `\`. Not to be confused with Laissez resource scopes
//! (paths such as `acme/apps/wiki`), which policies use.

use std::collections::BTreeSet;
use std::fmt;

use crate::{ErrorCode, OAuthError};

/// Most scopes one request may carry.
pub const MAX_SCOPES: usize = 64;

/// A set of OAuth scopes, kept sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthScopes(BTreeSet<String>);

impl OAuthScopes {
    /// Parses a `scope` parameter. Absent or empty means no scopes.
    pub fn parse(text: Option<&str>) -> Result<OAuthScopes, OAuthError> {
        let mut set = BTreeSet::new();
        for token in text.unwrap_or("").split(' ').filter(|t| !t.is_empty()) {
            if token.len() > 128
                || !token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!(
                        "scope '{}' is not a valid scope token",
                        token.chars().take(40).collect::<String>()
                    ),
                ));
            }
            set.insert(token.to_owned());
        }
        if set.len() > MAX_SCOPES {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("at most {MAX_SCOPES} scopes"),
            ));
        }
        Ok(OAuthScopes(set))
    }

    /// A set from names already known to be valid.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> OAuthScopes {
        OAuthScopes(names.into_iter().map(str::to_owned).collect())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &OAuthScopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes in both.
    pub fn intersection(&self, other: &OAuthScopes) -> OAuthScopes {
        OAuthScopes(self.0.intersection(&other.0).cloned().collect())
    }

    /// The scopes in either (for step-up: old ∪ new).
    pub fn union(&self, other: &OAuthScopes) -> OAuthScopes {
        OAuthScopes(self.0.union(&other.0).cloned().collect())
    }

    /// The scopes in `self` but not in `other`.
    pub fn difference(&self, other: &OAuthScopes) -> OAuthScopes {
        OAuthScopes(self.0.difference(&other.0).cloned().collect())
    }

    /// Iterates the scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for OAuthScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s = OAuthScopes::parse(Some("b a  a offline_access")).unwrap();
        assert_eq!(s.to_string(), "a b offline_access");
        assert!(OAuthScopes::parse(None).unwrap().is_empty());
        assert!(OAuthScopes::parse(Some("a\"b")).is_err());
        assert!(OAuthScopes::parse(Some("caf\u{e9}")).is_err());
    }

    #[test]
    fn set_algebra() {
        let a = OAuthScopes::parse(Some("read write")).unwrap();
        let b = OAuthScopes::parse(Some("write admin")).unwrap();
        assert_eq!(a.union(&b).to_string(), "admin read write");
        assert_eq!(a.intersection(&b).to_string(), "write");
        assert_eq!(a.difference(&b).to_string(), "read");
        assert!(OAuthScopes::parse(Some("read")).unwrap().is_subset(&a));
    }
}
