//! What the authorization server remembers between steps of the
//! authorization code flow: the code (single use, a minute long) and the
//! refresh token family it starts (rotated on every use; a reused refresh
//! token revokes the whole family, RFC 9700 §4.14.2).

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, OAuthError, OAuthScopes};

/// How long an authorization code is valid, seconds.
pub const CODE_TTL: i64 = 60;
/// How long a refresh token is valid, seconds.
pub const REFRESH_TTL: i64 = 30 * 86_400;

/// An issued authorization code (stored by the hash of the code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who consented.
    pub user_id: String,
    /// The redirect URI of the authorization request (must be repeated exactly).
    pub redirect_uri: String,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience), if the request named one.
    pub resource: Option<String>,
    /// The user's accounts the application may act in (`/` for all).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Expiry.
    pub expires_at: i64,
}

/// One refresh token of a family (stored by the hash of the token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// All rotations of one grant share a family; reuse revokes it.
    pub family_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience).
    pub resource: Option<String>,
    /// The user's accounts the application may act in.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Expiry.
    pub expires_at: i64,
    /// When this token of the family was issued (a disconnect refuses older ones).
    #[serde(default)]
    pub issued_at: i64,
    /// The same in milliseconds (0 in tokens stored before it was kept).
    #[serde(default)]
    pub issued_at_ms: i64,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449
    /// §5): a refresh needs a proof of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl RefreshGrant {
    /// When it was issued, in milliseconds; a token stored without the
    /// milliseconds counts as issued at the start of its second (so a
    /// disconnect anywhere in that second still ends it).
    pub fn issued_ms(&self) -> i64 {
        if self.issued_at_ms > 0 {
            self.issued_at_ms
        } else {
            self.issued_at.saturating_mul(1000)
        }
    }
}

/// An application a user has let act for them (one per user and client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedApp {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// The client's name, if it gave one.
    pub client_name: Option<String>,
    /// Scopes last granted.
    pub scope: String,
    /// The resource last granted.
    pub resource: Option<String>,
    /// The accounts last granted.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// First consent.
    pub granted_at: i64,
    /// When it last obtained tokens.
    pub last_used_at: Option<i64>,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// A live token, now spent: rotate it.
    Fresh(RefreshGrant),
    /// A spent token presented again: its family is now revoked.
    Reused(RefreshGrant),
    /// Unknown, expired or revoked.
    Invalid,
}

/// The scopes a client acting with no person present (client credentials)
/// obtains: what it asked for (its registered scopes when it asks for
/// none), and only if every one is registered for the client, registered by
/// the resource, and allowed by the policies of the principal the token
/// speaks for (`allowed`, evaluated along its whole chain). Anything beyond
/// is refused, never silently dropped.
pub fn scopes_acting_alone(
    requested: Option<&OAuthScopes>,
    client_registered: &OAuthScopes,
    resource_registered: &OAuthScopes,
    allowed: impl Fn(&str) -> bool,
) -> Result<OAuthScopes, OAuthError> {
    let wanted = requested.unwrap_or(client_registered);
    let refuse = |what: &str, extra: OAuthScopes| {
        Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("{what}: {extra}"),
        ))
    };
    let beyond_client = wanted.difference(client_registered);
    if !beyond_client.is_empty() {
        return refuse("the client is not registered for", beyond_client);
    }
    let beyond_resource = wanted.difference(resource_registered);
    if !beyond_resource.is_empty() {
        return refuse("the resource does not define", beyond_resource);
    }
    let denied = OAuthScopes::from_names(wanted.iter().filter(|s| !allowed(s)));
    if !denied.is_empty() {
        return refuse(
            "the principal behind the client holds no policy granting",
            denied,
        );
    }
    Ok(wanted.clone())
}

/// The scope a client asks for to be given a refresh token (OpenID Connect
/// Core §11, as certified providers apply it).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether redeeming an authorization code also starts a refresh token
/// family: only for a client registered for the refresh_token grant that
/// was granted `offline_access`. A client that did not ask must not get one
/// (holding one, it would refresh, which cannot widen scope, instead of
/// authorizing again when it needs more).
pub fn issues_refresh(client_allows_refresh: bool, granted: &OAuthScopes) -> bool {
    client_allows_refresh && granted.contains(OFFLINE_ACCESS)
}

/// Scopes that are the authorization server's own, not a resource's: any
/// person may grant them (they reach no resource by themselves).
pub const SERVER_SCOPES: [&str; 1] = [OFFLINE_ACCESS];

/// The scopes a person can let a client have: those asked for, that the
/// resource defines (`resource_registered`, when it defines any), and that
/// the person's own policies grant (`held`, each scope read as a
/// permission on the node that concerns the resource); the server's own
/// scopes need no policy. Scopes the person does not hold are dropped
/// (consent and refresh narrow); when something beyond the server's own
/// was asked for and nothing of it remains, `invalid_scope`.
pub fn scopes_for_person(
    requested: &OAuthScopes,
    resource_registered: Option<&OAuthScopes>,
    held: impl Fn(&str) -> bool,
) -> Result<OAuthScopes, OAuthError> {
    let own = |s: &str| SERVER_SCOPES.contains(&s);
    let kept = requested
        .iter()
        .filter(|s| own(s) || (resource_registered.is_none_or(|r| r.contains(s)) && held(s)));
    let kept = OAuthScopes::from_names(kept);
    let asked_beyond_own = requested.iter().any(|s| !own(s));
    if asked_beyond_own && kept.iter().all(own) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("you hold none of the permissions asked for: {requested}"),
        ));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> OAuthScopes {
        OAuthScopes::parse(Some(text)).unwrap()
    }

    #[test]
    fn acting_alone_is_bounded_three_ways() {
        let client = set("notes.read notes.write admin");
        let resource = set("notes.read notes.write");
        let policy = |s: &str| s == "notes.read";
        for (asked, expected) in [
            (Some("notes.read"), Ok("notes.read")),
            (Some(""), Ok("")),
            (Some("notes.write"), Err(())),
            (Some("admin"), Err(())),
            (Some("other"), Err(())),
            (Some("notes.read other"), Err(())),
            (None, Err(())),
        ] {
            let asked = asked.map(set);
            let got = scopes_acting_alone(asked.as_ref(), &client, &resource, policy);
            match expected {
                Ok(scopes) => assert_eq!(got.unwrap(), set(scopes)),
                Err(()) => assert_eq!(got.unwrap_err().error, ErrorCode::InvalidScope),
            }
        }
        let narrow = set("notes.read");
        assert_eq!(
            scopes_acting_alone(None, &narrow, &resource, policy).unwrap(),
            narrow
        );
    }

    #[test]
    fn only_offline_access_starts_a_refresh_family() {
        for (allows, granted, expected) in [
            (true, "notes.read offline_access", true),
            (true, "offline_access", true),
            (true, "notes.read", false),
            (true, "", false),
            (false, "notes.read offline_access", false),
            (false, "notes.read", false),
        ] {
            assert_eq!(
                issues_refresh(allows, &set(granted)),
                expected,
                "{allows} {granted}"
            );
        }
    }

    #[test]
    fn a_person_grants_only_what_they_hold() {
        let resource = set("notes.read notes.write");
        let alice = |s: &str| s == "notes.read" || s == "admin";
        for (asked, bound, expected) in [
            ("notes.read notes.write", Some(&resource), Ok("notes.read")),
            (
                "notes.read notes.write offline_access",
                Some(&resource),
                Ok("notes.read offline_access"),
            ),
            ("notes.write", Some(&resource), Err(())),
            ("notes.write offline_access", Some(&resource), Err(())),
            ("admin", Some(&resource), Err(())),
            ("admin notes.write", None, Ok("admin")),
            ("offline_access", Some(&resource), Ok("offline_access")),
            ("", Some(&resource), Ok("")),
            ("other", None, Err(())),
        ] {
            let got = scopes_for_person(&set(asked), bound, alice);
            match expected {
                Ok(scopes) => assert_eq!(got.unwrap(), set(scopes), "{asked}"),
                Err(()) => assert_eq!(got.unwrap_err().error, ErrorCode::InvalidScope, "{asked}"),
            }
        }
        assert!(scopes_for_person(&set("notes.read"), Some(&resource), |_| false).is_err());
    }

    proptest::proptest! {
        #[test]
        fn a_person_never_grants_beyond_the_request_or_what_they_hold(
            asked in proptest::collection::btree_set("[a-d]|offline_access", 0..5),
            held in proptest::collection::btree_set("[a-d]", 0..5),
            bound in proptest::option::of(proptest::collection::btree_set("[a-d]", 0..5)),
        ) {
            let asked = OAuthScopes::from_names(asked.iter().map(String::as_str));
            let bound = bound.map(|b| OAuthScopes::from_names(b.iter().map(String::as_str)));
            if let Ok(got) = scopes_for_person(&asked, bound.as_ref(), |s| held.contains(s)) {
                proptest::prop_assert!(got.is_subset(&asked));
                for s in got.iter() {
                    proptest::prop_assert!(
                        SERVER_SCOPES.contains(&s)
                            || (held.contains(s) && bound.as_ref().is_none_or(|b| b.contains(s)))
                    );
                }
            }
        }
    }
}
