//! Names of principals and roles, and permission names.
//!
//! Names are lowercase so that `Alice` and `alice` can never be two different
//! principals. Permissions are dotted (`wiki.pages.read`); Laissez's own start
//! with `laissez.`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A principal or role name: 1 to 64 of `a-z 0-9 . _ @ -`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Parses a name; `what` says what it names, for the error message.
    pub fn parse(input: &str, what: &'static str) -> Result<Name, Error> {
        let bad = |why| Error::InvalidName {
            what,
            input: input.chars().take(80).collect(),
            why,
        };
        if input.is_empty() || input.len() > 64 {
            return Err(bad("must be 1 to 64 characters"));
        }
        if !input
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(bad("must start with a lowercase letter or a digit"));
        }
        if !input.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
        }) {
            return Err(bad(
                "may hold only lowercase letters, digits, '.', '_', '@' and '-'",
            ));
        }
        Ok(Name(input.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A permission: dotted lowercase words such as `wiki.pages.read`. There are no
/// wildcards: a role lists exactly what it grants.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(String);

impl Permission {
    /// Parses a permission name.
    pub fn parse(input: &str) -> Result<Permission, Error> {
        let bad = |why| Error::InvalidName {
            what: "permission",
            input: input.chars().take(80).collect(),
            why,
        };
        if input.is_empty() || input.len() > 128 {
            return Err(bad("must be 1 to 128 characters"));
        }
        for word in input.split('.') {
            let ok = !word.is_empty()
                && word.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                return Err(bad(
                    "must be dotted words of lowercase letters, digits, '_' and '-', like wiki.pages.read",
                ));
            }
        }
        Ok(Permission(input.to_owned()))
    }

    /// Builds a permission from a name known at compile time to be valid.
    pub(crate) fn from_static(name: &'static str) -> Permission {
        Permission(name.to_owned())
    }

    /// The permission as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_type_impls {
    ($ty:ident, $parse:expr, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(deserializer)?;
                ($parse)(&text).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($what))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {}
    };
}

text_type_impls!(
    Name,
    |t: &str| Name::parse(t, "name"),
    "A lowercase name: letters, digits, '.', '_', '@', '-'"
);
text_type_impls!(
    Permission,
    Permission::parse,
    "A dotted permission such as wiki.pages.read"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::parse("alice@example.com", "user").is_ok());
        assert!(Name::parse("ci-deploy", "service").is_ok());
        for bad in ["", "Alice", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(Name::parse(bad, "user").is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions() {
        assert!(Permission::parse("wiki.pages.read").is_ok());
        for bad in ["", "wiki..read", ".wiki", "Wiki.read", "wiki.*"] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
    }
}
