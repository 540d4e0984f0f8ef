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

/// Every permission Laissez itself checks.
pub const ALL: [&str; 14] = [
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
}
