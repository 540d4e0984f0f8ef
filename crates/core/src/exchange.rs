//! Token exchange bounds: what a task credential may hold, as one pure
//! function over what the server gathered. A grant (`permission@resource`)
//! survives only if, in this order, the resource admits it (an app must be
//! registered and define the permission), the requesting credential's own
//! restriction admits it, every link of the requester's delegation chain
//! holds it (owner first, agent last), the user it acts for holds it and
//! delegated it (the subject token's scopes and audience), and the parent
//! task holds it (sub-tasks). Everything else is dropped, with the first
//! bound that refused it, so the answer can say why. No input widens
//! anything: every bound can only remove.

use std::collections::BTreeSet;

use crate::task::{Bounded, Ceiling, TaskGrant, TaskResource, bound, covered_by};
use crate::{PolicySet, PrincipalRef, Restriction, Scope};

/// An app behind a gate, as the bounds see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppBound {
    /// The node of the scope tree its permissions are evaluated on (its
    /// gate's account, or the root).
    pub scope: Scope,
    /// The permissions (OAuth scopes) it defines, when it defines any.
    pub defined: Option<BTreeSet<String>>,
}

/// The user a task acts for, through a delegated access token.
#[derive(Clone, Copy, Debug)]
pub struct Delegation<'a> {
    /// The user.
    pub user: &'a PrincipalRef,
    /// The delegated token's scopes.
    pub scopes: &'a BTreeSet<String>,
    /// The delegated token's audience (an app URL).
    pub audience: &'a TaskResource,
}

/// Everything that bounds one exchange.
#[derive(Clone, Copy)]
pub struct ExchangeBounds<'a> {
    /// Roles and the policies of every principal below.
    pub policies: &'a PolicySet,
    /// The requester's chain, human first, agent (or service) last.
    pub chain: &'a [PrincipalRef],
    /// The requesting credential's own narrowing.
    pub restriction: Option<&'a Restriction>,
    /// The user acted for, when any.
    pub delegation: Option<Delegation<'a>>,
    /// The parent task's grants, when narrowing a task.
    pub parent: Option<&'a [TaskGrant]>,
    /// The apps the server knows, by normalised URL.
    pub apps: &'a dyn Fn(&str) -> Option<AppBound>,
}

impl ExchangeBounds<'_> {
    /// The node a grant's permission is evaluated on, if the resource is known.
    fn node_of(&self, grant: &TaskGrant) -> Option<Scope> {
        match &grant.resource {
            TaskResource::Node(scope) => Some(scope.clone()),
            TaskResource::App(url) => (self.apps)(url).map(|app| app.scope),
        }
    }

    fn holds(&self, principal_id: &str, grant: &TaskGrant) -> bool {
        self.node_of(grant).is_some_and(|node| {
            self.policies
                .grant_for(principal_id, &grant.permission, &node)
                .is_some()
        })
    }

    /// The intersection of `asked` with every bound.
    pub fn bound(&self, asked: &[TaskGrant]) -> Bounded {
        let mut ceilings = vec![Ceiling::new(
            "the resource",
            |grant: &TaskGrant| match &grant.resource {
                TaskResource::Node(_) => true,
                TaskResource::App(url) => (self.apps)(url).is_some_and(|app| {
                    app.defined
                        .as_ref()
                        .is_none_or(|d| d.contains(grant.permission.as_str()))
                }),
            },
        )];
        if let Some(restriction) = self.restriction {
            ceilings.push(Ceiling::new(
                "the credential's restriction",
                move |grant: &TaskGrant| {
                    self.node_of(grant).is_some_and(|node| {
                        self.policies
                            .restriction_allows(restriction, &grant.permission, &node)
                    })
                },
            ));
        }
        if self.chain.is_empty() {
            // Deny by default: with no principal nothing is held.
            ceilings.push(Ceiling::new("anyone", |_: &TaskGrant| false));
        }
        for link in self.chain {
            ceilings.push(Ceiling::new(link.to_string(), move |grant: &TaskGrant| {
                self.holds(&link.id, grant)
            }));
        }
        if let Some(delegation) = &self.delegation {
            ceilings.push(Ceiling::new(
                delegation.user.to_string(),
                move |grant: &TaskGrant| self.holds(&delegation.user.id, grant),
            ));
            ceilings.push(Ceiling::new(
                "the delegated token",
                move |grant: &TaskGrant| {
                    delegation.scopes.contains(grant.permission.as_str())
                        && delegation.audience.covers(&grant.resource)
                },
            ));
        }
        if let Some(parent) = self.parent {
            ceilings.push(Ceiling::new("the parent task", move |grant: &TaskGrant| {
                covered_by(grant, parent)
            }));
        }
        bound(asked, &ceilings)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{Name, Permission, Policy, PrincipalKind, Role};

    fn reference(id: &str, kind: PrincipalKind, name: &str) -> PrincipalRef {
        PrincipalRef {
            id: id.into(),
            kind,
            name: name.into(),
        }
    }

    fn role(name: &str, permissions: &[&str]) -> Role {
        Role {
            name: Name::parse(name, "role").unwrap(),
            permissions: permissions
                .iter()
                .map(|p| Permission::parse(p).unwrap())
                .collect(),
            builtin: false,
            description: String::new(),
        }
    }

    fn policy(principal: &str, role: &str, scope: &str) -> Policy {
        Policy {
            id: format!("pol_{principal}_{role}"),
            principal_id: principal.into(),
            role: Name::parse(role, "role").unwrap(),
            scope: Scope::parse(scope).unwrap(),
            created_at: 0,
        }
    }

    fn grants(text: &[&str]) -> Vec<TaskGrant> {
        text.iter().map(|g| g.parse().unwrap()).collect()
    }

    fn names(grants: &[TaskGrant]) -> Vec<String> {
        grants.iter().map(ToString::to_string).collect()
    }

    /// Alice owns the bot; both hold notes on the notes app (in account
    /// acme) and tickets.read at `acme/support`; only alice holds notes.write.
    fn world() -> PolicySet {
        PolicySet::new(
            [
                role("notes-reader", &["notes.read"]),
                role(
                    "notes-writer",
                    &["notes.read", "notes.write", "notes.delete"],
                ),
                role("tickets", &["tickets.read"]),
            ],
            [
                policy("usr_alice", "notes-writer", "acme"),
                policy("usr_alice", "tickets", "acme"),
                policy("agt_bot", "notes-reader", "acme"),
                policy("agt_bot", "tickets", "acme/support"),
                policy("usr_bob", "notes-reader", "acme"),
            ],
        )
    }

    fn apps(url: &str) -> Option<AppBound> {
        (url == "https://notes.example/").then(|| AppBound {
            scope: Scope::parse("acme").unwrap(),
            defined: Some(["notes.read", "notes.write"].map(String::from).into()),
        })
    }

    #[test]
    fn every_bound_removes_and_names_itself() {
        let policies = world();
        let alice = reference("usr_alice", PrincipalKind::User, "alice");
        let bot = reference("agt_bot", PrincipalKind::Agent, "bot");
        let bob = reference("usr_bob", PrincipalKind::User, "bob");
        let chain = [alice.clone(), bot.clone()];
        let asked = grants(&[
            "notes.read@https://notes.example/",
            "notes.write@https://notes.example/",
            "notes.delete@https://notes.example/",
            "notes.read@https://other.example/",
            "tickets.read@acme/support/queue-1",
            "tickets.read@acme",
        ]);
        let alone = ExchangeBounds {
            policies: &policies,
            chain: &chain,
            restriction: None,
            delegation: None,
            parent: None,
            apps: &apps,
        };
        let got = alone.bound(&asked);
        assert_eq!(
            names(&got.granted),
            [
                "notes.read@https://notes.example/",
                "tickets.read@acme/support/queue-1"
            ]
        );
        let reasons: Vec<_> = got.dropped.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "not held by agent:bot",
                "not held by the resource",
                "not held by the resource",
                "not held by agent:bot"
            ]
        );

        // Acting for bob: his policies and his token's scopes bound too.
        let scopes: BTreeSet<String> = ["notes.read".to_owned()].into();
        let audience = TaskResource::parse("https://notes.example/").unwrap();
        let for_bob = ExchangeBounds {
            delegation: Some(Delegation {
                user: &bob,
                scopes: &scopes,
                audience: &audience,
            }),
            ..alone
        };
        let got = for_bob.bound(&asked);
        assert_eq!(names(&got.granted), ["notes.read@https://notes.example/"]);
        assert!(
            got.dropped
                .iter()
                .any(|d| d.reason == "not held by user:bob")
        );

        // A token bob never delegated (empty scopes) yields nothing.
        let none = BTreeSet::new();
        let undelegated = ExchangeBounds {
            delegation: Some(Delegation {
                user: &bob,
                scopes: &none,
                audience: &audience,
            }),
            ..for_bob
        };
        assert!(undelegated.bound(&asked).granted.is_empty());

        // A sub-task gets at most its parent's grants.
        let parent = grants(&["tickets.read@acme/support/queue-1"]);
        let child = ExchangeBounds {
            parent: Some(&parent),
            ..alone
        };
        let got = child.bound(&grants(&[
            "tickets.read@acme/support/queue-1/42",
            "tickets.read@acme/support/queue-2",
            "notes.read@https://notes.example/",
        ]));
        assert_eq!(
            names(&got.granted),
            ["tickets.read@acme/support/queue-1/42"]
        );
        assert!(
            got.dropped
                .iter()
                .all(|d| d.reason == "not held by the parent task")
        );

        // A restricted credential narrows further.
        let restriction = Restriction {
            role: Some(Name::parse("tickets", "role").unwrap()),
            scope: None,
            permissions: None,
        };
        let narrowed = ExchangeBounds {
            restriction: Some(&restriction),
            ..alone
        };
        assert_eq!(
            names(&narrowed.bound(&asked).granted),
            ["tickets.read@acme/support/queue-1"]
        );

        // No chain: nothing.
        let nobody = ExchangeBounds {
            chain: &[],
            ..alone
        };
        assert!(nobody.bound(&asked).granted.is_empty());
    }

    fn grant_strategy() -> impl Strategy<Value = TaskGrant> {
        let permission = prop::sample::select(vec![
            "notes.read",
            "notes.write",
            "notes.delete",
            "tickets.read",
            "admin.all",
        ]);
        let resource = prop::sample::select(vec![
            "https://notes.example/",
            "https://notes.example/a/",
            "https://other.example/",
            "acme",
            "acme/support",
            "acme/support/q",
            "other",
        ]);
        (permission, resource).prop_map(|(p, r)| format!("{p}@{r}").parse().unwrap())
    }

    proptest! {
        /// Whatever is asked, every granted grant is held by every link,
        /// by the user acted for and by the parent, and adding a bound never
        /// grants more.
        #[test]
        fn nothing_granted_exceeds_any_bound(
            asked in prop::collection::vec(grant_strategy(), 0..12),
            parent in prop::collection::vec(grant_strategy(), 0..6),
        ) {
            let policies = world();
            let alice = reference("usr_alice", PrincipalKind::User, "alice");
            let bot = reference("agt_bot", PrincipalKind::Agent, "bot");
            let chain = [alice, bot];
            let base = ExchangeBounds {
                policies: &policies,
                chain: &chain,
                restriction: None,
                delegation: None,
                parent: None,
                apps: &apps,
            };
            let wide = base.bound(&asked);
            let narrow = ExchangeBounds { parent: Some(&parent), ..base }.bound(&asked);
            for grant in &wide.granted {
                for link in ["usr_alice", "agt_bot"] {
                    prop_assert!(base.holds(link, grant), "{grant} not held by {link}");
                }
            }
            for grant in &narrow.granted {
                prop_assert!(wide.granted.contains(grant));
                prop_assert!(covered_by(grant, &parent));
            }
            prop_assert_eq!(
                wide.granted.len() + wide.dropped.len(),
                asked.iter().collect::<std::collections::HashSet<_>>().len()
            );
        }
    }
}
