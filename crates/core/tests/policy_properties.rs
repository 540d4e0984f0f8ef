//! Property tests for the policy engine and the audit chain: grants never
//! leak to siblings or parents, intersection along a chain never widens,
//! restrictions only narrow, decisions name real policies, and parsers never
//! panic on arbitrary input.

use std::collections::BTreeSet;

use laissez_core::audit::{AuditEvent, AuditRecord, GENESIS_HASH, Head, verify};
use laissez_core::{
    Decision, Name, Permission, Policy, PolicySet, PrincipalKind, PrincipalRef, Restriction, Role,
    Scope, Ttl,
};
use proptest::prelude::*;

const SEGMENTS: [&str; 5] = ["acme", "apps", "wiki", "wiki2", "x"];
const PERMISSIONS: [&str; 4] = [
    "wiki.pages.read",
    "wiki.pages.write",
    "blog.read",
    "tokens.create",
];

fn scope_strategy() -> impl Strategy<Value = Scope> {
    prop::collection::vec(prop::sample::select(&SEGMENTS[..]), 0..4).prop_map(|segments| {
        if segments.is_empty() {
            Scope::root()
        } else {
            Scope::parse(&segments.join("/")).unwrap()
        }
    })
}

fn permission_strategy() -> impl Strategy<Value = Permission> {
    prop::sample::select(&PERMISSIONS[..]).prop_map(|p| Permission::parse(p).unwrap())
}

fn roles() -> Vec<Role> {
    (0..4)
        .map(|r| Role {
            name: Name::parse(&format!("role{r}"), "role").unwrap(),
            // role r holds the permissions whose index bit is set in r+1.
            permissions: PERMISSIONS
                .iter()
                .enumerate()
                .filter(|(i, _)| (r + 1) & (1 << i) != 0)
                .map(|(_, p)| Permission::parse(p).unwrap())
                .collect(),
            builtin: false,
            description: String::new(),
        })
        .collect()
}

fn who(i: usize) -> PrincipalRef {
    PrincipalRef {
        id: format!("p{i}"),
        kind: if i == 0 {
            PrincipalKind::User
        } else {
            PrincipalKind::Agent
        },
        name: format!("p{i}"),
    }
}

fn policies_strategy() -> impl Strategy<Value = Vec<Policy>> {
    prop::collection::vec((0usize..4, 0usize..4, scope_strategy()), 0..16).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (principal, role, scope))| Policy {
                id: format!("pol{i}"),
                principal_id: format!("p{principal}"),
                role: Name::parse(&format!("role{role}"), "role").unwrap(),
                scope,
                created_at: 0,
            })
            .collect()
    })
}

fn restriction_strategy() -> impl Strategy<Value = Restriction> {
    (
        prop::option::of(0usize..4),
        prop::option::of(scope_strategy()),
        prop::option::of(prop::collection::btree_set(permission_strategy(), 0..3)),
    )
        .prop_map(|(role, scope, permissions)| Restriction {
            role: role.map(|r| Name::parse(&format!("role{r}"), "role").unwrap()),
            scope,
            permissions,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_grant_covers_its_subtree_and_nothing_else(scope in scope_strategy(), resource in scope_strategy()) {
        let policy = Policy {
            id: "pol".into(),
            principal_id: "p0".into(),
            role: Name::parse("role0", "role").unwrap(), // role0 = wiki.pages.read
            scope: scope.clone(),
            created_at: 0,
        };
        let set = PolicySet::new(roles(), [policy]);
        let read = Permission::parse("wiki.pages.read").unwrap();
        let decision = set.evaluate(&[who(0)], None, &read, &resource);
        // Allowed exactly when the resource is the scope or below it, by path segments.
        let below = scope.is_root()
            || resource.to_string() == scope.to_string()
            || resource.to_string().starts_with(&format!("{scope}/"));
        prop_assert_eq!(decision.is_allow(), below);
        let write = Permission::parse("wiki.pages.write").unwrap();
        prop_assert!(!set.evaluate(&[who(0)], None, &write, &resource).is_allow());
    }

    #[test]
    fn intersection_never_widens(
        policies in policies_strategy(),
        len in 1usize..4,
        permission in permission_strategy(),
        resource in scope_strategy(),
        restriction in restriction_strategy(),
    ) {
        let set = PolicySet::new(roles(), policies.clone());
        let chain: Vec<PrincipalRef> = (0..len).map(who).collect();
        let longer: Vec<PrincipalRef> = (0..=len).map(who).collect();
        let short = set.evaluate(&chain, None, &permission, &resource);
        let long = set.evaluate(&longer, None, &permission, &resource);
        if long.is_allow() {
            prop_assert!(short.is_allow(), "adding a delegate widened the chain");
        }
        // Allow for a chain means every link alone is allowed.
        if short.is_allow() {
            for link in &chain {
                prop_assert!(set.evaluate(std::slice::from_ref(link), None, &permission, &resource).is_allow());
            }
        }
        // A restriction only narrows.
        let restricted = set.evaluate(&chain, Some(&restriction), &permission, &resource);
        if restricted.is_allow() {
            prop_assert!(short.is_allow());
            // Within every part of it: the listed permissions, the role, the scope.
            prop_assert!(restriction.permissions.as_ref().is_none_or(|listed| listed.contains(&permission)));
            prop_assert!(restriction.scope.as_ref().is_none_or(|scope| scope.covers(&resource)));
        }
        // An allow names, per link, a real policy of that link that grants it here.
        if let Decision::Allow { grants } = &short {
            prop_assert_eq!(grants.len(), chain.len());
            for (grant, link) in grants.iter().zip(&chain) {
                let policy = policies.iter().find(|p| p.id == grant.policy_id).unwrap();
                prop_assert_eq!(&policy.principal_id, &link.id);
                prop_assert!(policy.scope.covers(&resource));
                prop_assert!(set.role(&policy.role).unwrap().permissions.contains(&permission));
            }
        }
    }

    #[test]
    fn missing_for_matches_evaluation(
        policies in policies_strategy(),
        len in 1usize..3,
        role in 0usize..4,
        scope in scope_strategy(),
    ) {
        let set = PolicySet::new(roles(), policies);
        let chain: Vec<PrincipalRef> = (0..len).map(who).collect();
        let role = Name::parse(&format!("role{role}"), "role").unwrap();
        let missing: BTreeSet<Permission> = set.missing_for(&chain, None, &role, &scope).unwrap().into_iter().collect();
        for permission in &set.role(&role).unwrap().permissions {
            let allowed = set.evaluate(&chain, None, permission, &scope).is_allow();
            prop_assert_eq!(allowed, !missing.contains(permission));
        }
    }

    #[test]
    fn empty_policy_set_denies_everything(permission in permission_strategy(), resource in scope_strategy()) {
        let set = PolicySet::new(roles(), []);
        prop_assert!(!set.evaluate(&[who(0)], None, &permission, &resource).is_allow());
        prop_assert!(!set.evaluate(&[], None, &permission, &resource).is_allow());
    }

    #[test]
    fn covers_is_a_partial_order(a in scope_strategy(), b in scope_strategy(), c in scope_strategy()) {
        prop_assert!(a.covers(&a));
        if a.covers(&b) && b.covers(&c) {
            prop_assert!(a.covers(&c));
        }
        if a.covers(&b) && b.covers(&a) {
            prop_assert_eq!(&a, &b);
        }
        prop_assert_eq!(Scope::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn parsers_never_panic(input in ".{0,80}") {
        let _ = Scope::parse(&input);
        let _ = Ttl::parse(&input);
        let _ = Name::parse(&input, "name");
        let _ = Permission::parse(&input);
    }

    #[test]
    fn ttl_refuses_non_positive_and_over_ten_years(n in -1000i64..=0, unit in prop::sample::select(&["s", "m", "h", "d", "w", "y"][..])) {
        let text = format!("{}{}", n, unit);
        prop_assert!(Ttl::parse(&text).is_err(), "{} accepted", text);
        prop_assert!(Ttl::parse("11y").is_err());
        prop_assert!(Ttl::parse("3651d").is_err());
    }
}

fn log(n: usize) -> Vec<AuditRecord> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=n as i64)
        .map(|seq| {
            let record = AuditEvent::success(&[who(0)], "token.create", format!("tok_{seq}"))
                .seal(seq, seq, &prev);
            prev = record.hash.clone();
            record
        })
        .collect()
}

fn head(records: &[AuditRecord]) -> Option<Head> {
    records.last().map(|r| Head {
        seq: r.seq,
        hash: r.hash.clone(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_edit_or_deletion_is_named(n in 1usize..30, pick in any::<prop::sample::Index>(), field in 0usize..4, delete in any::<bool>()) {
        let mut records = log(n);
        let h = head(&records);
        prop_assert_eq!(verify(records.clone(), h.as_ref()).first_break, None);
        let i = pick.index(n);
        if delete {
            records.remove(i);
        } else {
            let r = &mut records[i];
            match field {
                0 => r.target.push('x'),
                1 => r.at += 1,
                2 => r.action = "token.revoke".into(),
                _ => r.chain.clear(),
            }
        }
        let broken = verify(records, h.as_ref()).first_break.expect("tampering must be detected");
        prop_assert_eq!(broken.seq, i as i64 + 1);
    }
}
