//! Policy evaluation with 10,000 policies over 1,000 principals and 50 roles:
//! a one-link check, a three-link delegation chain, and a denial.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use laissez_core::{Name, Permission, Policy, PolicySet, PrincipalKind, PrincipalRef, Role, Scope};
use std::hint::black_box;

fn name(s: &str) -> Name {
    Name::parse(s, "bench").unwrap()
}

fn set() -> PolicySet {
    let roles = (0..50).map(|r| Role {
        name: name(&format!("role-{r}")),
        permissions: (0..10)
            .map(|p| Permission::parse(&format!("app{r}.thing{p}.read")).unwrap())
            .collect(),
        builtin: false,
        description: String::new(),
    });
    let policies = (0..10_000).map(|i| Policy {
        id: format!("pol_{i}"),
        principal_id: format!("p{}", i % 1000),
        role: name(&format!("role-{}", i % 50)),
        scope: Scope::parse(&format!("acct{}/apps/app{}", i % 100, i % 37)).unwrap(),
        created_at: 0,
    });
    PolicySet::new(roles, policies)
}

fn who(id: &str) -> PrincipalRef {
    PrincipalRef {
        id: id.into(),
        kind: PrincipalKind::Agent,
        name: id.into(),
    }
}

fn bench(c: &mut Criterion) {
    let set = set();
    // p7 holds role-7 on acct7/apps/app7 (policy 7). A three-link chain of the
    // same principal costs what any three links holding it do.
    let permission = Permission::parse("app7.thing3.read").unwrap();
    let resource = Scope::parse("acct7/apps/app7/items/42").unwrap();
    let one = [who("p7")];
    assert!(set.evaluate(&one, None, &permission, &resource).is_allow());
    let three = [who("p7"), who("p7"), who("p7")];
    assert!(
        set.evaluate(&three, None, &permission, &resource)
            .is_allow()
    );
    let denied_resource = Scope::parse("acct8/apps/app7/items/42").unwrap();
    assert!(
        !set.evaluate(&one, None, &permission, &denied_resource)
            .is_allow()
    );

    let mut group = c.benchmark_group("policy check, 10,000 policies");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one link, allowed", |b| {
        b.iter(|| set.evaluate(black_box(&one), None, &permission, &resource))
    });
    group.bench_function("three links, allowed", |b| {
        b.iter(|| set.evaluate(black_box(&three), None, &permission, &resource))
    });
    group.bench_function("one link, denied", |b| {
        b.iter(|| set.evaluate(black_box(&one), None, &permission, &denied_resource))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
