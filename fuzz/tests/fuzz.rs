//! Runs every fuzz target for a bounded time (`LAISSEZ_FUZZ_SECONDS`, 30 by
//! default) after replaying its corpus, and fails on any crash, naming the
//! reproducer written to `fuzz/corpus/<target>/`.

use std::path::Path;
use std::time::Duration;

fn budget() -> Duration {
    let seconds = std::env::var("LAISSEZ_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

fn fuzz(name: &str) {
    let target = laissez_fuzz::find(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seed = std::env::var("LAISSEZ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let outcome = laissez_fuzz::driver::run(target, &corpus, budget(), seed);
    eprintln!(
        "fuzz {name}: seed {seed}, {} executions, {} corpus files, slowest input {:?}",
        outcome.executions, outcome.replayed, outcome.slowest
    );
    assert!(
        outcome.crashes.is_empty(),
        "fuzz {name} (seed {seed}) crashed; reproducers: {:?}",
        outcome.crashes
    );
    assert!(
        outcome.executions > outcome.replayed as u64,
        "the mutator ran"
    );
}

#[test]
fn every_target_is_run_here() {
    let here = include_str!("fuzz.rs");
    for target in laissez_fuzz::all() {
        assert!(
            here.contains(&format!("fuzz(\"{}\")", target.name)),
            "{} has no test",
            target.name
        );
    }
}

#[test]
fn client_assertion() {
    fuzz("client_assertion");
}

#[test]
fn token_parse() {
    fuzz("token_parse");
}

#[test]
fn redirect_match() {
    fuzz("redirect_match");
}

#[test]
fn client_metadata() {
    fuzz("client_metadata");
}

#[test]
fn scan_engine() {
    fuzz("scan_engine");
}

#[test]
fn path_normalize() {
    fuzz("path_normalize");
}

#[test]
fn task_grant() {
    fuzz("task_grant");
}

#[test]
fn intent_propose() {
    fuzz("intent_propose");
}

#[test]
fn dpop_proof() {
    fuzz("dpop_proof");
}

#[test]
fn rpc_calls() {
    fuzz("rpc_calls");
}

#[test]
fn return_target() {
    fuzz("return_target");
}

#[test]
fn decode_escapes() {
    fuzz("decode_escapes");
}

#[test]
fn jws_verify() {
    fuzz("jws_verify");
}

#[test]
fn address_filter() {
    fuzz("address_filter");
}
