//! Administering Laissez through its own policy engine.
//!
//! Every admin API call names one of the permissions below and a resource, and
//! is allowed only if [`authorize`] says so: there is no side door. Most
//! actions concern the whole installation and are checked on the root `/`;
//! granting a policy is checked on the policy's own scope, so an account's
//! administrator can grant within that account and nowhere else.
//!
//! One rule comes from ownership rather than policies: a human may manage the
//! credentials of themselves and of the principals they own (that is what
//! owning them means), still within any restriction on the credential they
//! present. Non-human principals get no such rule: a leaked service token
//! cannot mint new tokens unless a policy says it may.

use crate::{
    Decision, DenyReason, Permission, PolicySet, PrincipalKind, PrincipalRef, Restriction, Role,
    Scope,
};

/// Read principals (users, services, agents, tasks) and the hygiene report.
pub const PRINCIPALS_READ: &str = "laissez.principals.read";
/// Create and deactivate principals.
pub const PRINCIPALS_WRITE: &str = "laissez.principals.write";
/// List credentials of any principal.
pub const TOKENS_READ: &str = "laissez.tokens.read";
/// Create, roll and revoke credentials of any principal.
pub const TOKENS_WRITE: &str = "laissez.tokens.write";
/// Read roles.
pub const ROLES_READ: &str = "laissez.roles.read";
/// Create roles.
pub const ROLES_WRITE: &str = "laissez.roles.write";
/// Read policies and run checks.
pub const POLICIES_READ: &str = "laissez.policies.read";
/// Grant and remove policies (checked on the policy's scope).
pub const POLICIES_WRITE: &str = "laissez.policies.write";
/// Read, verify and export the audit log.
pub const AUDIT_READ: &str = "laissez.audit.read";
/// Change organization settings (token lifetimes).
pub const SETTINGS_WRITE: &str = "laissez.settings.write";

/// Append records to the audit log (gates reporting their decisions).
pub const AUDIT_WRITE: &str = "laissez.audit.write";
/// Read protected resources and their gates' configuration.
pub const RESOURCES_READ: &str = "laissez.resources.read";
/// Report leaked credentials to the leak intake and ask whether found tokens are live.
pub const LEAKS_REPORT: &str = "laissez.leaks.report";
/// Read leak incidents.
pub const LEAKS_READ: &str = "laissez.leaks.read";

/// See every task credential and approval (agents and owners see their own).
pub const TASKS_READ: &str = "laissez.tasks.read";
/// End any task and decide any approval (owners decide their agents' own).
pub const TASKS_WRITE: &str = "laissez.tasks.write";

/// Change one's own password and email address with a narrowed credential
/// (a token restricted to a role carrying it); full credentials need none.
pub const SELF_MANAGE: &str = "laissez.self.manage";

/// Every permission Laissez itself checks.
pub const ALL: [&str; 17] = [
    PRINCIPALS_READ,
    PRINCIPALS_WRITE,
    TOKENS_READ,
    TOKENS_WRITE,
    ROLES_READ,
    ROLES_WRITE,
    POLICIES_READ,
    POLICIES_WRITE,
    AUDIT_READ,
    SETTINGS_WRITE,
    AUDIT_WRITE,
    RESOURCES_READ,
    LEAKS_REPORT,
    LEAKS_READ,
    SELF_MANAGE,
    TASKS_READ,
    TASKS_WRITE,
];

/// Name of the built-in role a gate's credential needs to report decisions.
pub const GATE_ROLE: &str = "laissez-gate";

/// Name of the built-in role holding every Laissez permission.
pub const ADMIN_ROLE: &str = "laissez-admin";
/// Name of the built-in read-only role.
pub const AUDITOR_ROLE: &str = "laissez-auditor";
/// Name of the built-in role that manages principals and credentials but not policies.
pub const OPERATOR_ROLE: &str = "laissez-operator";
/// Name of the built-in role of scanners (CI jobs) that report leaks.
pub const LEAK_REPORTER_ROLE: &str = "laissez-leak-reporter";

/// The built-in roles, present in every store.
pub fn builtin_roles() -> Vec<Role> {
    let role = |name: &str, description: &str, permissions: &[&'static str]| Role {
        name: crate::Name::parse(name, "role")
            .unwrap_or_else(|_| unreachable!("built-in names are valid")),
        permissions: permissions
            .iter()
            .map(|p| Permission::from_static(p))
            .collect(),
        builtin: true,
        description: description.to_owned(),
    };
    vec![
        role(ADMIN_ROLE, "Everything in Laissez's admin API", &ALL),
        role(
            GATE_ROLE,
            "Read its app's configuration, report gate decisions to the audit log and leaks seen in traffic",
            &[AUDIT_WRITE, RESOURCES_READ, LEAKS_REPORT],
        ),
        role(
            LEAK_REPORTER_ROLE,
            "Report leaked credentials (laissez scan --report) and check found tokens (--verify)",
            &[LEAKS_REPORT],
        ),
        role(
            AUDITOR_ROLE,
            "Read principals, credentials, roles, policies and the audit log",
            &[
                PRINCIPALS_READ,
                TOKENS_READ,
                ROLES_READ,
                POLICIES_READ,
                AUDIT_READ,
                RESOURCES_READ,
                TASKS_READ,
                LEAKS_READ,
            ],
        ),
        role(
            OPERATOR_ROLE,
            "Manage principals and their credentials",
            &[
                PRINCIPALS_READ,
                PRINCIPALS_WRITE,
                TOKENS_READ,
                TOKENS_WRITE,
                ROLES_READ,
                POLICIES_READ,
                TASKS_READ,
                TASKS_WRITE,
            ],
        ),
    ]
}

/// The one way the admin API decides. `target_owner` is set for actions on one
/// principal's credentials: the target principal's id and its owner's id.
pub fn authorize(
    policies: &PolicySet,
    caller: &[PrincipalRef],
    restriction: Option<&Restriction>,
    permission: &str,
    resource: &Scope,
    target: Option<(&str, Option<&str>)>,
) -> Decision {
    let permission = Permission::from_static_or_parse(permission);
    let decision = policies.evaluate(caller, restriction, &permission, resource);
    if decision.is_allow() {
        return decision;
    }
    if matches!(permission.as_str(), TOKENS_READ | TOKENS_WRITE)
        && let (Some((target_id, target_owner)), [me]) = (target, caller)
    {
        let owns = me.kind == PrincipalKind::User
            && (target_id == me.id || target_owner == Some(me.id.as_str()));
        let within =
            restriction.is_none_or(|r| policies.restriction_allows(r, &permission, &Scope::root()));
        if owns && within {
            return Decision::Allow { grants: Vec::new() };
        }
        if owns {
            return Decision::Deny {
                reason: DenyReason::OutsideRestriction,
            };
        }
    }
    decision
}

/// Whether a caller stands above a target principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The caller holds every Laissez permission the target holds, where it holds it.
    Covers,
    /// The target holds these Laissez permissions on these scopes and the caller does not.
    Exceeded {
        /// What the caller lacks, and where.
        missing: Vec<(Permission, Scope)>,
    },
}

impl Standing {
    /// Whether the caller covers the target.
    pub fn covers(&self) -> bool {
        matches!(self, Standing::Covers)
    }
}

/// Whether `caller` (with its credential's `restriction`) holds every
/// Laissez permission (`laissez.*`) that `target_id`'s policies grant, on each
/// of those policies' scopes. `policies` must hold the policies of the
/// caller's chain and of the target. A policy naming an unknown role grants
/// nothing and so asks for nothing.
pub fn standing(
    policies: &PolicySet,
    caller: &[PrincipalRef],
    restriction: Option<&Restriction>,
    target_id: &str,
) -> Standing {
    let mut missing: Vec<(Permission, Scope)> = Vec::new();
    for policy in policies.policies_of(target_id) {
        let Some(role) = policies.role(&policy.role) else {
            continue;
        };
        for permission in role
            .permissions
            .iter()
            .filter(|p| p.as_str().starts_with("laissez."))
        {
            let held = policies
                .evaluate(caller, restriction, permission, &policy.scope)
                .is_allow();
            let entry = (permission.clone(), policy.scope.clone());
            if !held && !missing.contains(&entry) {
                missing.push(entry);
            }
        }
    }
    if missing.is_empty() {
        Standing::Covers
    } else {
        missing.sort_by(|a, b| (a.0.as_str(), a.1.as_key()).cmp(&(b.0.as_str(), b.1.as_key())));
        Standing::Exceeded { missing }
    }
}

/// Whether `principal` holds every Laissez permission on the root: an
/// administrator of the whole installation.
pub fn is_administrator(policies: &PolicySet, principal: &PrincipalRef) -> bool {
    ALL.iter().all(|p| {
        policies
            .evaluate(
                std::slice::from_ref(principal),
                None,
                &Permission::from_static_or_parse(p),
                &Scope::root(),
            )
            .is_allow()
    })
}

/// Whether deactivating `target_id` would leave no active administrator.
/// `active_users` are the active human users; `policies` holds their policies.
/// Only people count: a service or agent acts for its owner and is never
/// more than its owner.
pub fn leaves_no_administrator(
    policies: &PolicySet,
    active_users: &[PrincipalRef],
    target_id: &str,
) -> bool {
    let target_is_admin = active_users
        .iter()
        .any(|u| u.id == target_id && is_administrator(policies, u));
    target_is_admin
        && !active_users
            .iter()
            .any(|u| u.id != target_id && is_administrator(policies, u))
}

/// What a credential presented for a change to its own person's password or
/// email address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfService {
    /// A person's own credential, not narrowed: it may change them.
    Full,
    /// A person's own narrowed credential carrying [`SELF_MANAGE`]: it may change them.
    Explicit,
    /// A person's own credential narrowed to a role or scope.
    Narrowed,
    /// A person's own credential usable only from some addresses.
    AddressBound,
    /// Not the person's own credential (a delegate's, or someone else's).
    NotOwn,
}

impl SelfService {
    /// Decides for a credential of `caller` (its chain, human first) with
    /// `restriction` and `ip_bound` (whether it is limited to IP ranges),
    /// changing the sign-in secrets of `target_id`. `policies` holds the
    /// caller's policies.
    pub fn decide(
        policies: &PolicySet,
        caller: &[PrincipalRef],
        restriction: Option<&Restriction>,
        ip_bound: bool,
        target_id: &str,
    ) -> SelfService {
        let own = matches!(caller, [me] if me.id == target_id && me.kind == PrincipalKind::User);
        if !own {
            return SelfService::NotOwn;
        }
        let narrowed = restriction.is_some_and(Restriction::narrows);
        if !narrowed && !ip_bound {
            return SelfService::Full;
        }
        let explicit = restriction.is_some_and(Restriction::limits_permissions)
            && policies
                .evaluate(
                    caller,
                    restriction,
                    &Permission::from_static_or_parse(SELF_MANAGE),
                    &Scope::root(),
                )
                .is_allow();
        match (explicit, ip_bound) {
            (true, _) => SelfService::Explicit,
            (false, true) => SelfService::AddressBound,
            (false, false) => SelfService::Narrowed,
        }
    }

    /// Whether the credential may make the change by itself.
    pub fn allows(self) -> bool {
        matches!(self, SelfService::Full | SelfService::Explicit)
    }
}

impl Permission {
    fn from_static_or_parse(name: &str) -> Permission {
        Permission::parse(name)
            .unwrap_or_else(|_| unreachable!("admin permissions are valid names"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Name, Policy};

    fn who(id: &str, kind: PrincipalKind) -> PrincipalRef {
        PrincipalRef {
            id: id.into(),
            kind,
            name: id.into(),
        }
    }

    #[test]
    fn builtin_permissions_are_valid() {
        for p in ALL {
            assert!(Permission::parse(p).is_ok(), "{p}");
        }
        assert_eq!(builtin_roles().len(), 5);
    }

    #[test]
    fn owners_manage_their_own_credentials_only() {
        let set = PolicySet::new(builtin_roles(), []);
        let alice = [who("alice", PrincipalKind::User)];
        let root = Scope::root();
        assert!(
            authorize(
                &set,
                &alice,
                None,
                TOKENS_WRITE,
                &root,
                Some(("alice", None))
            )
            .is_allow()
        );
        assert!(
            authorize(
                &set,
                &alice,
                None,
                TOKENS_WRITE,
                &root,
                Some(("bot", Some("alice")))
            )
            .is_allow()
        );
        assert!(
            !authorize(&set, &alice, None, TOKENS_WRITE, &root, Some(("bob", None))).is_allow()
        );
        assert!(
            !authorize(
                &set,
                &alice,
                None,
                PRINCIPALS_WRITE,
                &root,
                Some(("alice", None))
            )
            .is_allow()
        );
        // A service may not mint its own tokens without a policy.
        let svc = [who("svc", PrincipalKind::Service)];
        assert!(
            !authorize(
                &set,
                &svc,
                None,
                TOKENS_WRITE,
                &root,
                Some(("svc", Some("alice")))
            )
            .is_allow()
        );
        // A restricted credential cannot use the ownership rule.
        let narrow = Restriction {
            role: None,
            scope: Some(Scope::parse("acme").unwrap()),
            permissions: None,
        };
        assert!(
            !authorize(
                &set,
                &alice,
                Some(&narrow),
                TOKENS_WRITE,
                &root,
                Some(("alice", None))
            )
            .is_allow()
        );
    }

    #[test]
    fn admin_policy_at_root_allows_everything() {
        let policy = Policy {
            id: "p".into(),
            principal_id: "root".into(),
            role: Name::parse(ADMIN_ROLE, "role").unwrap(),
            scope: Scope::root(),
            created_at: 0,
        };
        let set = PolicySet::new(builtin_roles(), [policy]);
        let admin = [who("root", PrincipalKind::User)];
        for p in ALL {
            assert!(
                authorize(&set, &admin, None, p, &Scope::root(), None).is_allow(),
                "{p}"
            );
        }
    }

    fn policy(id: &str, principal: &str, role: &str, scope: &str) -> Policy {
        Policy {
            id: id.into(),
            principal_id: principal.into(),
            role: Name::parse(role, "role").unwrap(),
            scope: Scope::parse(scope).unwrap(),
            created_at: 0,
        }
    }

    #[test]
    fn standing_table() {
        let set = PolicySet::new(
            builtin_roles(),
            [
                policy("p1", "root", ADMIN_ROLE, "/"),
                policy("p2", "op", OPERATOR_ROLE, "/"),
                policy("p3", "acme-admin", ADMIN_ROLE, "acme"),
                policy("p4", "gate", GATE_ROLE, "/"),
            ],
        );
        let root = [who("root", PrincipalKind::User)];
        let op = [who("op", PrincipalKind::User)];
        let acme = [who("acme-admin", PrincipalKind::User)];
        let nobody = [who("alice", PrincipalKind::User)];
        // (caller, target, covers)
        let table: &[(&[PrincipalRef], &str, bool)] = &[
            (&root, "root", true),
            (&root, "op", true),
            (&root, "acme-admin", true),
            (&op, "root", false),
            (&op, "op", true),
            (&op, "alice", true),
            (&op, "gate", false),
            (&op, "acme-admin", false),
            (&acme, "root", false),
            (&acme, "op", false),
            (&acme, "alice", true),
            (&nobody, "alice", true),
            (&nobody, "op", false),
        ];
        for (caller, target, covers) in table {
            assert_eq!(
                standing(&set, caller, None, target).covers(),
                *covers,
                "{} on {target}",
                caller[0].id
            );
        }
        // An administrator's token narrowed to the operator role is an operator.
        let narrow = Restriction {
            role: Some(Name::parse(OPERATOR_ROLE, "role").unwrap()),
            scope: None,
            permissions: None,
        };
        assert!(!standing(&set, &root, Some(&narrow), "root").covers());
        assert!(standing(&set, &root, Some(&narrow), "op").covers());
        match standing(&set, &op, None, "root") {
            Standing::Exceeded { missing } => {
                assert!(
                    missing
                        .iter()
                        .any(|(p, s)| p.as_str() == POLICIES_WRITE && s.is_root())
                );
                assert!(!missing.iter().any(|(p, _)| p.as_str() == PRINCIPALS_WRITE));
            }
            Standing::Covers => panic!("an operator does not cover an administrator"),
        }
    }

    #[test]
    fn the_last_administrator_stays() {
        let set = PolicySet::new(
            builtin_roles(),
            [
                policy("p1", "root", ADMIN_ROLE, "/"),
                policy("p2", "op", OPERATOR_ROLE, "/"),
                policy("p3", "second", ADMIN_ROLE, "/"),
                policy("p4", "partial", ADMIN_ROLE, "acme"),
            ],
        );
        let users = |ids: &[&str]| -> Vec<PrincipalRef> {
            ids.iter().map(|id| who(id, PrincipalKind::User)).collect()
        };
        assert!(leaves_no_administrator(
            &set,
            &users(&["root", "op", "partial"]),
            "root"
        ));
        assert!(!leaves_no_administrator(
            &set,
            &users(&["root", "second"]),
            "root"
        ));
        assert!(!leaves_no_administrator(
            &set,
            &users(&["root", "op"]),
            "op"
        ));
        // The other administrator is already inactive (not in the list).
        assert!(leaves_no_administrator(&set, &users(&["root"]), "root"));
    }

    #[test]
    fn self_service_table() {
        let self_role = Role {
            name: Name::parse("self", "role").unwrap(),
            permissions: [Permission::parse(SELF_MANAGE).unwrap()].into(),
            builtin: false,
            description: String::new(),
        };
        let mut roles = builtin_roles();
        roles.push(self_role);
        let set = PolicySet::new(roles, [policy("p1", "alice", "self", "/")]);
        let alice = [who("alice", PrincipalKind::User)];
        let bob = [who("bob", PrincipalKind::User)];
        let alice_bot = [
            who("alice", PrincipalKind::User),
            who("bot", PrincipalKind::Agent),
        ];
        let scoped = Restriction {
            role: None,
            scope: Some(Scope::parse("acme").unwrap()),
            permissions: None,
        };
        let roled = Restriction {
            role: Some(Name::parse(AUDITOR_ROLE, "role").unwrap()),
            scope: None,
            permissions: None,
        };
        let explicit = Restriction {
            role: Some(Name::parse("self", "role").unwrap()),
            scope: None,
            permissions: None,
        };
        let empty = Restriction {
            role: None,
            scope: None,
            permissions: None,
        };
        // Listing permissions narrows like a role does; listing this one is explicit.
        let listed = |names: &[&str]| Restriction {
            permissions: Some(
                names
                    .iter()
                    .map(|p| Permission::parse(p).unwrap())
                    .collect(),
            ),
            ..Restriction::default()
        };
        let listed_other = listed(&[TOKENS_READ]);
        let listed_self = listed(&[SELF_MANAGE]);
        let table: &[(&[PrincipalRef], Option<&Restriction>, bool, SelfService)] = &[
            (&alice, None, false, SelfService::Full),
            (&alice, Some(&empty), false, SelfService::Full),
            (&alice, None, true, SelfService::AddressBound),
            (&alice, Some(&scoped), false, SelfService::Narrowed),
            (&alice, Some(&roled), false, SelfService::Narrowed),
            (&alice, Some(&roled), true, SelfService::AddressBound),
            (&alice, Some(&explicit), false, SelfService::Explicit),
            (&alice, Some(&explicit), true, SelfService::Explicit),
            (&alice, Some(&listed_other), false, SelfService::Narrowed),
            (&alice, Some(&listed_self), false, SelfService::Explicit),
            (&bob, None, false, SelfService::NotOwn),
            (&alice_bot, None, false, SelfService::NotOwn),
        ];
        for (caller, restriction, ip_bound, expected) in table {
            let got = SelfService::decide(&set, caller, *restriction, *ip_bound, "alice");
            assert_eq!(got, *expected, "{restriction:?} ip_bound={ip_bound}");
            assert_eq!(
                got.allows(),
                matches!(expected, SelfService::Full | SelfService::Explicit)
            );
        }
        // Bob holds no self-management policy, so the role alone is not enough.
        let bob_explicit = SelfService::decide(&set, &bob, Some(&explicit), false, "bob");
        assert_eq!(bob_explicit, SelfService::Narrowed);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const ROLES: [&str; 4] = [ADMIN_ROLE, OPERATOR_ROLE, AUDITOR_ROLE, GATE_ROLE];
        const SCOPES: [&str; 5] = ["/", "acme", "acme/apps", "acme/apps/wiki", "other"];

        fn policies(owner: &'static str) -> impl Strategy<Value = Vec<Policy>> {
            proptest::collection::vec((0..ROLES.len(), 0..SCOPES.len()), 0..4).prop_map(
                move |picks| {
                    picks
                        .into_iter()
                        .enumerate()
                        .map(|(i, (r, s))| {
                            policy(&format!("{owner}{i}"), owner, ROLES[r], SCOPES[s])
                        })
                        .collect()
                },
            )
        }

        proptest! {
            /// Whoever covers a target holds, everywhere, every Laissez
            /// permission the target holds: acting as the target gains nothing.
            #[test]
            fn covering_means_no_gain(caller in policies("caller"), target in policies("target")) {
                let set = PolicySet::new(builtin_roles(), caller.into_iter().chain(target));
                let me = [who("caller", PrincipalKind::User)];
                let them = [who("target", PrincipalKind::User)];
                let covers = standing(&set, &me, None, "target").covers();
                let mut gains = false;
                for p in ALL {
                    let p = Permission::parse(p).unwrap();
                    for s in SCOPES {
                        let s = Scope::parse(s).unwrap();
                        if set.evaluate(&them, None, &p, &s).is_allow()
                            && !set.evaluate(&me, None, &p, &s).is_allow()
                        {
                            gains = true;
                        }
                    }
                }
                prop_assert_eq!(covers, !gains);
            }

            /// A narrowed or address-bound credential changes its person's
            /// sign-in secrets only when it carries the explicit permission,
            /// and nobody else's credential ever does.
            #[test]
            fn self_service_never_widens(
                role in proptest::option::of(0..ROLES.len()),
                scope in proptest::option::of(0..SCOPES.len()),
                ip_bound in any::<bool>(),
                delegated in any::<bool>(),
                other in any::<bool>(),
                caller in policies("alice"),
            ) {
                let set = PolicySet::new(builtin_roles(), caller);
                let mut chain = vec![who("alice", PrincipalKind::User)];
                if delegated {
                    chain.push(who("bot", PrincipalKind::Agent));
                }
                let restriction = Restriction {
                    role: role.map(|r| Name::parse(ROLES[r], "role").unwrap()),
                    scope: scope.map(|s| Scope::parse(SCOPES[s]).unwrap()),
                    permissions: None,
                };
                let target = if other { "bob" } else { "alice" };
                let decided = SelfService::decide(&set, &chain, Some(&restriction), ip_bound, target);
                let narrowed = restriction.role.is_some() || restriction.scope.is_some();
                if delegated || other {
                    prop_assert_eq!(decided, SelfService::NotOwn);
                }
                if decided.allows() && (narrowed || ip_bound) {
                    prop_assert_eq!(decided, SelfService::Explicit);
                    prop_assert!(set
                        .evaluate(&chain, Some(&restriction), &Permission::parse(SELF_MANAGE).unwrap(), &Scope::root())
                        .is_allow());
                }
                if !narrowed && !ip_bound && !delegated && !other {
                    prop_assert_eq!(decided, SelfService::Full);
                }
            }
        }
    }
}
