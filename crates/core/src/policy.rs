//! Roles, policies and their evaluation.
//!
//! A policy is principal + role + scope: the principal holds every permission
//! of the role on the scope's node and everything below it. Evaluation denies
//! by default. A delegate's effective permissions are the intersection along
//! its delegation chain (`user → agent → task`), further narrowed by a
//! credential's own restriction: a permission on a resource is allowed only if
//! every link in the chain holds it there.
//!
//! [`PolicySet`] indexes policies by principal and scope so that a check costs
//! one hash lookup per chain link per ancestor of the resource, however many
//! policies exist.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Name, Permission, PrincipalRef, Scope, UnixTime};

/// A named set of permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    /// Unique role name.
    pub name: Name,
    /// What the role grants.
    #[schema(value_type = Vec<String>)]
    pub permissions: BTreeSet<Permission>,
    /// Whether Laissez defines it (built-in roles cannot be changed).
    pub builtin: bool,
    /// Free text for people.
    pub description: String,
}

/// Principal + role + scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// Stable identifier, e.g. `pol_...`.
    pub id: String,
    /// Who it grants to.
    pub principal_id: String,
    /// What it grants.
    pub role: Name,
    /// Where it grants it: this node and everything below.
    pub scope: Scope,
    /// When it was created.
    pub created_at: UnixTime,
}

/// A credential's own narrowing: it may use at most `role`, and at most
/// `permissions`, on `scope`, and never more than its principal holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Restriction {
    /// The role the credential is limited to, if any.
    pub role: Option<Name>,
    /// The scope the credential is limited to, if any.
    pub scope: Option<Scope>,
    /// The individual permissions the credential is limited to, if any
    /// (with a role too, only those of them the role has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub permissions: Option<BTreeSet<Permission>>,
}

impl Restriction {
    /// Whether it narrows anything at all.
    pub fn narrows(&self) -> bool {
        self.role.is_some() || self.scope.is_some() || self.permissions.is_some()
    }

    /// Whether it limits what may be done (a role or permissions), not
    /// only where.
    pub fn limits_permissions(&self) -> bool {
        self.role.is_some() || self.permissions.is_some()
    }
}

/// What allowed one link of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// The principal this grant belongs to.
    pub principal: PrincipalRef,
    /// The policy that granted it.
    pub policy_id: String,
    /// The policy's role.
    pub role: Name,
    /// The policy's scope.
    pub scope: Scope,
}

/// The answer to "may this chain do this here?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Decision {
    /// Allowed; one grant per link of the chain, human first.
    Allow {
        /// What allowed each link.
        grants: Vec<Grant>,
    },
    /// Denied, and why.
    Deny {
        /// Why nothing allowed it.
        reason: DenyReason,
    },
}

impl Decision {
    /// Whether the decision allows.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Why a decision denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyReason {
    /// No policy of this link grants the permission on a scope covering the resource.
    NoGrant {
        /// The link that lacks it.
        principal: PrincipalRef,
    },
    /// The credential's restriction does not include the permission or resource.
    OutsideRestriction,
    /// There was no principal to evaluate.
    EmptyChain,
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DenyReason::NoGrant { principal } => write!(
                f,
                "no policy of {principal} grants this permission on a scope covering the resource"
            ),
            DenyReason::OutsideRestriction => {
                f.write_str("the credential is restricted to a role or scope that excludes this")
            }
            DenyReason::EmptyChain => f.write_str("no principal"),
        }
    }
}

/// Roles and policies, indexed for evaluation. Immutable once built, so a
/// clone shares it (stores keep one between changes and hand out clones).
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    roles: Arc<HashMap<Name, Role>>,
    policies: Arc<Vec<Policy>>,
    // principal id -> scope key -> indices into `policies`.
    index: Arc<HashMap<String, HashMap<String, Vec<usize>>>>,
}

impl PolicySet {
    /// Indexes `roles` and `policies`. Policies naming unknown roles grant nothing.
    pub fn new(
        roles: impl IntoIterator<Item = Role>,
        policies: impl IntoIterator<Item = Policy>,
    ) -> PolicySet {
        let roles = roles.into_iter().map(|r| (r.name.clone(), r)).collect();
        let policies: Vec<Policy> = policies.into_iter().collect();
        let mut index: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, policy) in policies.iter().enumerate() {
            index
                .entry(policy.principal_id.clone())
                .or_default()
                .entry(policy.scope.as_key().to_owned())
                .or_default()
                .push(i);
        }
        PolicySet {
            roles: Arc::new(roles),
            policies: Arc::new(policies),
            index: Arc::new(index),
        }
    }

    /// The role with this name.
    pub fn role(&self, name: &Name) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Whether any role grants `permission` (a name no role has is a typo).
    pub fn knows(&self, permission: &Permission) -> bool {
        self.roles
            .values()
            .any(|role| role.permissions.contains(permission))
    }

    /// Every policy of one principal.
    pub fn policies_of<'a>(&'a self, principal_id: &'a str) -> impl Iterator<Item = &'a Policy> {
        self.index
            .get(principal_id)
            .into_iter()
            .flat_map(|by_scope| by_scope.values().flatten())
            .map(|&i| &self.policies[i])
    }

    /// The first policy (from the root down) of `principal_id` that grants
    /// `permission` on a scope covering `resource`.
    pub fn grant_for(
        &self,
        principal_id: &str,
        permission: &Permission,
        resource: &Scope,
    ) -> Option<&Policy> {
        let by_scope = self.index.get(principal_id)?;
        resource
            .ancestors_and_self()
            .filter_map(|key| by_scope.get(key))
            .flatten()
            .map(|&i| &self.policies[i])
            .find(|policy| self.role_grants(&policy.role, permission))
    }

    /// Evaluates `permission` on `resource` for a delegation chain (human
    /// first) and an optional credential restriction. Deny by default.
    pub fn evaluate(
        &self,
        chain: &[PrincipalRef],
        restriction: Option<&Restriction>,
        permission: &Permission,
        resource: &Scope,
    ) -> Decision {
        if chain.is_empty() {
            return Decision::Deny {
                reason: DenyReason::EmptyChain,
            };
        }
        if let Some(restriction) = restriction
            && !self.restriction_allows(restriction, permission, resource)
        {
            return Decision::Deny {
                reason: DenyReason::OutsideRestriction,
            };
        }
        let mut grants = Vec::with_capacity(chain.len());
        for link in chain {
            match self.grant_for(&link.id, permission, resource) {
                Some(policy) => grants.push(Grant {
                    principal: link.clone(),
                    policy_id: policy.id.clone(),
                    role: policy.role.clone(),
                    scope: policy.scope.clone(),
                }),
                None => {
                    return Decision::Deny {
                        reason: DenyReason::NoGrant {
                            principal: link.clone(),
                        },
                    };
                }
            }
        }
        Decision::Allow { grants }
    }

    /// Whether a restriction by itself admits `permission` on `resource`.
    pub fn restriction_allows(
        &self,
        restriction: &Restriction,
        permission: &Permission,
        resource: &Scope,
    ) -> bool {
        let role_ok = match &restriction.role {
            Some(role) => self.role_grants(role, permission),
            None => true,
        };
        let permission_ok = restriction
            .permissions
            .as_ref()
            .is_none_or(|listed| listed.contains(permission));
        let scope_ok = match &restriction.scope {
            Some(scope) => scope.covers(resource),
            None => true,
        };
        role_ok && permission_ok && scope_ok
    }

    /// The permissions of `role` that the chain (with its restriction) does not
    /// hold on all of `scope`. Empty means a credential restricted to
    /// `role` on `scope` would be no wider than the chain: the rule for
    /// narrowing tokens and for granting roles to others.
    pub fn missing_for(
        &self,
        chain: &[PrincipalRef],
        restriction: Option<&Restriction>,
        role: &Name,
        scope: &Scope,
    ) -> Result<Vec<Permission>, UnknownRole> {
        let role = self.roles.get(role).ok_or(UnknownRole)?;
        Ok(role
            .permissions
            .iter()
            .filter(|p| !self.evaluate(chain, restriction, p, scope).is_allow())
            .cloned()
            .collect())
    }

    /// Every permission any policy of the chain's last link grants; a bound for
    /// narrowing by scope alone (the role part is all of these).
    pub fn permissions_of(&self, principal_id: &str) -> BTreeSet<Permission> {
        self.policies_of(principal_id)
            .filter_map(|p| self.roles.get(&p.role))
            .flat_map(|r| r.permissions.iter().cloned())
            .collect()
    }

    fn role_grants(&self, role: &Name, permission: &Permission) -> bool {
        self.roles
            .get(role)
            .is_some_and(|r| r.permissions.contains(permission))
    }
}

/// A policy or restriction named a role that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRole;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrincipalKind;

    fn name(s: &str) -> Name {
        Name::parse(s, "test").unwrap()
    }
    fn perm(s: &str) -> Permission {
        Permission::parse(s).unwrap()
    }
    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }
    fn who(id: &str, kind: PrincipalKind) -> PrincipalRef {
        PrincipalRef {
            id: id.into(),
            kind,
            name: id.into(),
        }
    }
    fn role(n: &str, perms: &[&str]) -> Role {
        Role {
            name: name(n),
            permissions: perms.iter().map(|p| perm(p)).collect(),
            builtin: false,
            description: String::new(),
        }
    }
    fn policy(id: &str, principal: &str, role: &str, s: &str) -> Policy {
        Policy {
            id: id.into(),
            principal_id: principal.into(),
            role: name(role),
            scope: scope(s),
            created_at: 0,
        }
    }

    fn set() -> PolicySet {
        PolicySet::new(
            [
                role("wiki-reader", &["wiki.pages.read"]),
                role("wiki-editor", &["wiki.pages.read", "wiki.pages.write"]),
            ],
            [
                policy("p1", "alice", "wiki-editor", "acme/apps/wiki"),
                policy("p2", "bot", "wiki-editor", "acme"),
                policy("p3", "carol", "wiki-reader", "acme/apps/wiki/pages/42"),
            ],
        )
    }

    #[test]
    fn deny_by_default_and_scope_covers_below() {
        let set = set();
        let alice = [who("alice", PrincipalKind::User)];
        let read = perm("wiki.pages.read");
        assert!(
            set.evaluate(&alice, None, &read, &scope("acme/apps/wiki/pages/42"))
                .is_allow()
        );
        assert!(
            !set.evaluate(&alice, None, &read, &scope("acme/apps/blog"))
                .is_allow()
        );
        assert!(!set.evaluate(&alice, None, &read, &scope("acme")).is_allow());
        assert!(
            !set.evaluate(
                &alice,
                None,
                &perm("wiki.pages.delete"),
                &scope("acme/apps/wiki")
            )
            .is_allow()
        );
        let nobody = [who("nobody", PrincipalKind::User)];
        assert!(
            !set.evaluate(&nobody, None, &read, &scope("acme/apps/wiki"))
                .is_allow()
        );
        assert!(
            !set.evaluate(&[], None, &read, &scope("acme/apps/wiki"))
                .is_allow()
        );
    }

    #[test]
    fn chain_is_an_intersection() {
        let set = set();
        // bot holds wiki-editor on all of acme, but acts for alice, who holds it on the wiki only.
        let chain = [
            who("alice", PrincipalKind::User),
            who("bot", PrincipalKind::Agent),
        ];
        let write = perm("wiki.pages.write");
        assert!(
            set.evaluate(&chain, None, &write, &scope("acme/apps/wiki/x"))
                .is_allow()
        );
        let denied = set.evaluate(&chain, None, &write, &scope("acme/apps/blog"));
        assert_eq!(
            denied,
            Decision::Deny {
                reason: DenyReason::NoGrant {
                    principal: who("alice", PrincipalKind::User)
                }
            }
        );
    }

    #[test]
    fn restriction_narrows() {
        let set = set();
        let alice = [who("alice", PrincipalKind::User)];
        let restriction = Restriction {
            role: Some(name("wiki-reader")),
            scope: Some(scope("acme/apps/wiki/pages")),
            permissions: None,
        };
        let r = Some(&restriction);
        assert!(
            set.evaluate(
                &alice,
                r,
                &perm("wiki.pages.read"),
                &scope("acme/apps/wiki/pages/1")
            )
            .is_allow()
        );
        assert!(
            !set.evaluate(
                &alice,
                r,
                &perm("wiki.pages.write"),
                &scope("acme/apps/wiki/pages/1")
            )
            .is_allow()
        );
        assert!(
            !set.evaluate(
                &alice,
                r,
                &perm("wiki.pages.read"),
                &scope("acme/apps/wiki")
            )
            .is_allow()
        );
    }

    #[test]
    fn a_permission_list_narrows_alone_and_within_a_role() {
        let set = set();
        let alice = [who("alice", PrincipalKind::User)];
        let page = scope("acme/apps/wiki/pages/1");
        let listed = |role: Option<&str>, permissions: &[&str]| Restriction {
            role: role.map(name),
            scope: None,
            permissions: Some(permissions.iter().map(|p| perm(p)).collect()),
        };
        // (restriction, permission, allowed)
        let table = [
            (listed(None, &["wiki.pages.read"]), "wiki.pages.read", true),
            (
                listed(None, &["wiki.pages.read"]),
                "wiki.pages.write",
                false,
            ),
            // Listing a permission the principal lacks grants nothing.
            (listed(None, &["wiki.admin"]), "wiki.admin", false),
            // With a role, only what both admit.
            (
                listed(Some("wiki-reader"), &["wiki.pages.write"]),
                "wiki.pages.write",
                false,
            ),
            (
                listed(Some("wiki-editor"), &["wiki.pages.write"]),
                "wiki.pages.write",
                true,
            ),
            (
                listed(Some("wiki-editor"), &["wiki.pages.write"]),
                "wiki.pages.read",
                false,
            ),
            // An empty list allows nothing.
            (listed(None, &[]), "wiki.pages.read", false),
        ];
        for (restriction, permission, allowed) in table {
            assert_eq!(
                set.evaluate(&alice, Some(&restriction), &perm(permission), &page)
                    .is_allow(),
                allowed,
                "{restriction:?} {permission}"
            );
        }
    }

    #[test]
    fn missing_for_reports_what_a_narrowing_would_widen() {
        let set = set();
        let carol = [who("carol", PrincipalKind::User)];
        let missing = set
            .missing_for(
                &carol,
                None,
                &name("wiki-editor"),
                &scope("acme/apps/wiki/pages/42"),
            )
            .unwrap();
        assert_eq!(missing, vec![perm("wiki.pages.write")]);
        let missing = set
            .missing_for(&carol, None, &name("wiki-reader"), &scope("acme/apps/wiki"))
            .unwrap();
        assert_eq!(missing, vec![perm("wiki.pages.read")]);
        assert!(
            set.missing_for(&carol, None, &name("nope"), &scope("acme"))
                .is_err()
        );
    }
}
