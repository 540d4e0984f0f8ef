//! In-process figures for the summary table: token generation + hash, offline
//! check, policy evaluation over 10,000 policies. (The criterion benches in
//! crates/token and crates/core measure the same things in more detail.)

use std::hint::black_box;
use std::time::Instant;

use laissez_core::credential::hash_secret;
use laissez_core::{Name, Permission, Policy, PolicySet, PrincipalKind, PrincipalRef, Role, Scope};
use laissez_token::{Kind, Namespace, Token};

/// Median operations per second over `rounds` rounds of `n` operations.
fn median_rate(rounds: usize, n: usize, mut op: impl FnMut(usize)) -> f64 {
    let mut rates: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                op(i);
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Tokens generated (OS CSPRNG) and SHA-256 hashed per second.
pub fn generate_and_hash() -> f64 {
    let ns = Namespace::default();
    median_rate(7, 20_000, |_| {
        let token = Token::generate(&ns, Kind::Account).expect("token");
        black_box(hash_secret(token.expose()));
    })
}

/// Offline checksum checks per second.
pub fn check_offline() -> f64 {
    let ns = Namespace::default();
    let tokens: Vec<String> = (0..1000)
        .map(|_| {
            Token::generate(&ns, Kind::Account)
                .expect("token")
                .expose()
                .to_owned()
        })
        .collect();
    median_rate(7, 200_000, |i| {
        black_box(Token::parse(black_box(&tokens[i % tokens.len()])).is_ok());
    })
}

/// Policy checks per second with 10,000 policies over 1,000 principals.
pub fn policy_checks() -> f64 {
    let name = |s: String| Name::parse(&s, "bench").expect("name");
    let roles: Vec<Role> = (0..50)
        .map(|r| Role {
            name: name(format!("role-{r}")),
            permissions: (0..10)
                .map(|p| Permission::parse(&format!("app{r}.thing{p}.read")).expect("permission"))
                .collect(),
            builtin: false,
            description: String::new(),
        })
        .collect();
    let policies: Vec<Policy> = (0..10_000)
        .map(|i| Policy {
            id: format!("pol_{i}"),
            principal_id: format!("p{}", i % 1000),
            role: name(format!("role-{}", i % 50)),
            scope: Scope::parse(&format!("acct{}/apps/app{}", i % 100, i % 37)).expect("scope"),
            created_at: 0,
        })
        .collect();
    let set = PolicySet::new(roles, policies);
    let chain = [PrincipalRef {
        id: "p7".into(),
        kind: PrincipalKind::Service,
        name: "p7".into(),
    }];
    // p7 holds role-7 on acct7/apps/app7 (policy 7).
    let permission = Permission::parse("app7.thing3.read").expect("permission");
    let resource = Scope::parse("acct7/apps/app7/items/42").expect("scope");
    assert!(
        set.evaluate(&chain, None, &permission, &resource)
            .is_allow()
    );
    median_rate(7, 200_000, |_| {
        black_box(set.evaluate(black_box(&chain), None, &permission, &resource));
    })
}
