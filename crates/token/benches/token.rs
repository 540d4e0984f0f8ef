//! Token generation (with SHA-256 of the result, as the server stores it) and offline checks.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use laissez_token::{Kind, Namespace, Token};
use sha2::{Digest, Sha256};

fn bench(c: &mut Criterion) {
    let namespace = Namespace::default();
    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("generate_and_hash", |b| {
        b.iter(|| {
            let token = Token::generate(&namespace, Kind::User).unwrap();
            Sha256::digest(token.expose().as_bytes())
        })
    });
    let token = Token::generate(&namespace, Kind::User).unwrap();
    let text = token.expose().to_owned();
    group.bench_function("check_offline", |b| {
        b.iter(|| Token::parse(std::hint::black_box(&text)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
