//! Scopes: nodes in the resource tree, named by paths.
//!
//! `acme` is an account, `acme/apps/wiki` a part of it, `acme/apps/wiki/pages/42`
//! one resource. `/` is the root that holds every account. A policy's scope
//! covers its node and everything below it, and nothing beside or above it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Longest accepted scope path, in bytes.
pub const MAX_SCOPE_LEN: usize = 1024;
/// Deepest accepted scope path, in segments.
pub const MAX_SCOPE_DEPTH: usize = 32;
/// Longest accepted segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;

/// A node in the resource tree. The root is written `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    // Segments joined by '/', empty for the root. Each segment is
    // [A-Za-z0-9._~-]{1,128} and not "." or "..".
    path: String,
}

impl Scope {
    /// The root of the tree: covers every account and resource.
    pub fn root() -> Scope {
        Scope {
            path: String::new(),
        }
    }

    /// Parses `acme/apps/wiki` or `/`. Leading and trailing slashes are not
    /// allowed except for the root, so each node has exactly one spelling.
    pub fn parse(input: &str) -> Result<Scope, Error> {
        let bad = |why| Error::InvalidScope {
            input: input.chars().take(80).collect(),
            why,
        };
        if input == "/" {
            return Ok(Scope::root());
        }
        if input.is_empty() {
            return Err(bad("a scope cannot be empty; use '/' for the root"));
        }
        if input.len() > MAX_SCOPE_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        if input.starts_with('/') || input.ends_with('/') {
            return Err(bad(
                "write paths without leading or trailing '/', like acme/apps/wiki",
            ));
        }
        let mut depth = 0;
        for segment in input.split('/') {
            depth += 1;
            if segment.is_empty() {
                return Err(bad("empty path segment ('//')"));
            }
            if segment.len() > MAX_SEGMENT_LEN {
                return Err(bad("a path segment is longer than 128 bytes"));
            }
            if segment == "." || segment == ".." {
                return Err(bad("'.' and '..' are not allowed as segments"));
            }
            if !segment.bytes().all(is_segment_byte) {
                return Err(bad(
                    "segments may hold only letters, digits, '.', '_', '~' and '-'",
                ));
            }
        }
        if depth > MAX_SCOPE_DEPTH {
            return Err(bad("deeper than 32 segments"));
        }
        Ok(Scope {
            path: input.to_owned(),
        })
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    /// The account this scope belongs to (its first segment), none for the root.
    pub fn account(&self) -> Option<&str> {
        self.path.split('/').next().filter(|s| !s.is_empty())
    }

    /// Whether this scope covers `other`: `other` is this node or below it.
    pub fn covers(&self, other: &Scope) -> bool {
        if self.is_root() {
            return true;
        }
        match other.path.strip_prefix(&self.path) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// This node and every node above it, from the root down.
    pub fn ancestors_and_self(&self) -> impl Iterator<Item = &str> {
        let root = std::iter::once("");
        let below = self
            .path
            .match_indices('/')
            .map(|(i, _)| &self.path[..i])
            .chain((!self.path.is_empty()).then_some(self.path.as_str()));
        root.chain(below)
    }

    /// The path as stored: empty for the root. See `Display` for the printed form.
    pub fn as_key(&self) -> &str {
        &self.path
    }
}

fn is_segment_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'~' | b'-')
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            f.write_str("/")
        } else {
            f.write_str(&self.path)
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Scope, Error> {
        Scope::parse(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(deserializer)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A node in the resource tree: '/' for the root, else a path like acme/apps/wiki",
            ))
            .examples(["acme/apps/wiki"])
            .into()
    }
}

impl utoipa::ToSchema for Scope {}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn covers_self_and_below_only() {
        let wiki = scope("acme/apps/wiki");
        assert!(wiki.covers(&scope("acme/apps/wiki")));
        assert!(wiki.covers(&scope("acme/apps/wiki/pages/42")));
        assert!(!wiki.covers(&scope("acme/apps/wikipedia")));
        assert!(!wiki.covers(&scope("acme/apps")));
        assert!(!wiki.covers(&scope("acme/apps/blog")));
        assert!(Scope::root().covers(&wiki));
        assert!(!wiki.covers(&Scope::root()));
    }

    #[test]
    fn ancestors() {
        let abc = scope("a/b/c");
        let got: Vec<_> = abc.ancestors_and_self().collect();
        assert_eq!(got, ["", "a", "a/b", "a/b/c"]);
        let root = Scope::root();
        let got: Vec<_> = root.ancestors_and_self().collect();
        assert_eq!(got, [""]);
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in ["", "/acme", "acme/", "a//b", "a/../b", "a b", "a/é", "."] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(scope("/"), Scope::root());
        assert_eq!(scope("/").to_string(), "/");
        assert_eq!(scope("acme").account(), Some("acme"));
    }
}
