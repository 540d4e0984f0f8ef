//! A mutation-based fuzz driver for the stable toolchain.
//!
//! It first replays every file of the target's corpus folder (seeds and
//! reproducers of past crashes), then mutates them for a bounded time: bit
//! flips, interesting bytes, inserted and deleted runs, duplicated chunks,
//! splices of two inputs and fragments from the target's dictionary. An
//! input that panics is written to the corpus folder as `crash-<sha256>` so
//! that it is replayed on every later run, and the run fails naming it.
//! Inputs that took long are reported too (a parser must not be slow on
//! small input).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::Target;

/// Longest input the mutator builds.
pub const MAX_INPUT: usize = 64 * 1024;

/// What a run found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Inputs executed.
    pub executions: u64,
    /// Corpus files replayed.
    pub replayed: usize,
    /// Crash reproducers written (or replayed and still crashing).
    pub crashes: Vec<PathBuf>,
    /// The slowest input's time.
    pub slowest: Duration,
}

/// The corpus folder of a target under `root` (the `fuzz/corpus` folder).
pub fn corpus_dir(root: &Path, target: &Target) -> PathBuf {
    root.join(target.name)
}

/// Replays the corpus, then mutates for `budget`, with a seeded generator.
pub fn run(target: &Target, corpus_root: &Path, budget: Duration, seed: u64) -> Outcome {
    let dir = corpus_dir(corpus_root, target);
    let mut corpus = read_corpus(&dir);
    let mut outcome = Outcome::default();
    quiet_panics();
    for (path, input) in &corpus {
        outcome.replayed += 1;
        if !execute(target, input, &mut outcome) {
            outcome.crashes.push(path.clone());
        }
    }
    let mut inputs: Vec<Vec<u8>> = corpus.drain(..).map(|(_, bytes)| bytes).collect();
    if inputs.is_empty() {
        inputs.push(Vec::new());
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    while started.elapsed() < budget {
        for _ in 0..64 {
            let input = mutate(&mut rng, &inputs, target.dictionary);
            if !execute(target, &input, &mut outcome) {
                outcome.crashes.push(save_crash(&dir, &input));
                return outcome;
            }
            // Keep a few mutants so that mutations stack.
            if rng.u8(..) == 0 && inputs.len() < 4096 {
                inputs.push(input);
            }
        }
    }
    outcome
}

fn execute(target: &Target, input: &[u8], outcome: &mut Outcome) -> bool {
    let started = Instant::now();
    let ok = catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_ok();
    outcome.slowest = outcome.slowest.max(started.elapsed());
    outcome.executions += 1;
    ok
}

fn read_corpus(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
        .collect();
    files.sort();
    files
}

fn save_crash(dir: &Path, input: &[u8]) -> PathBuf {
    let name = format!("crash-{}", hex::encode(Sha256::digest(input)));
    let path = dir.join(name);
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&path, input);
    path
}

/// Panics are expected while fuzzing: report them once, not per input.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::env::var_os("LAISSEZ_FUZZ_VERBOSE").is_some() {
                default(info);
            } else {
                eprintln!("fuzz: panic: {info}");
            }
        }));
    });
}

const INTERESTING: [u8; 16] = [
    0, 1, 0x7f, 0x80, 0xff, b'%', b'\\', b'"', b'/', b'.', b'{', b'}', b'[', b']', b'\n', b'_',
];

/// One new input from the pool.
pub fn mutate(rng: &mut fastrand::Rng, pool: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut input = pool[rng.usize(..pool.len())].clone();
    for _ in 0..rng.usize(1..=8) {
        match rng.u8(..9) {
            0 if !input.is_empty() => {
                let i = rng.usize(..input.len());
                input[i] ^= 1 << rng.u8(..8);
            }
            1 if !input.is_empty() => {
                let i = rng.usize(..input.len());
                input[i] = INTERESTING[rng.usize(..INTERESTING.len())];
            }
            2 => {
                let i = rng.usize(..=input.len());
                let n = rng.usize(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                input.splice(i..i, bytes);
            }
            3 if !input.is_empty() => {
                let start = rng.usize(..input.len());
                let end = rng.usize(start..=input.len().min(start + 64));
                input.drain(start..end);
            }
            4 if !input.is_empty() => {
                let start = rng.usize(..input.len());
                let end = rng.usize(start..=input.len());
                let chunk = input[start..end].to_vec();
                let at = rng.usize(..=input.len());
                for _ in 0..rng.usize(1..=4) {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            5 => {
                let other = &pool[rng.usize(..pool.len())];
                let cut = rng.usize(..=input.len());
                let from = rng.usize(..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 | 7 if !dictionary.is_empty() => {
                let word = dictionary[rng.usize(..dictionary.len())];
                let i = rng.usize(..=input.len());
                input.splice(i..i, word.iter().copied());
            }
            _ if !input.is_empty() => {
                // Replace a run with an ASCII printable one: parsers mostly read text.
                let start = rng.usize(..input.len());
                let end = rng.usize(start..=input.len().min(start + 8));
                for byte in &mut input[start..end] {
                    *byte = rng.u8(0x20..0x7f);
                }
            }
            _ => input.push(rng.u8(..)),
        }
    }
    input.truncate(MAX_INPUT);
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planted(data: &[u8]) {
        if data.windows(4).any(|w| w == b"%2F/") {
            panic!("planted bug");
        }
    }

    #[test]
    fn finds_a_planted_bug_and_replays_its_reproducer() {
        let target = Target {
            name: "planted",
            run: planted,
            dictionary: &[b"%2F", b"/"],
        };
        let root = std::env::temp_dir().join(format!("laissez-fuzz-{}", std::process::id()));
        let first = run(&target, &root, Duration::from_secs(20), 7);
        assert_eq!(
            first.crashes.len(),
            1,
            "the mutator finds the planted input"
        );
        let again = run(&target, &root, Duration::from_millis(10), 8);
        assert!(
            again.crashes.contains(&first.crashes[0]),
            "the reproducer is replayed"
        );
        let _ = std::fs::remove_dir_all(root);
    }
}
