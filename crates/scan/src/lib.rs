//! The Laissez scanner: finds credentials in files, directories, standard
//! input, git history, staged changes and streamed bodies.
//!
//! Laissez tokens of every kind and configured namespace are recognised by
//! their prefix and shape and validated offline by their checksum, so a random
//! string that merely looks like one is never reported as a credential.
//! Third-party credentials are found by the rules in `rules.toml`, which users
//! can extend. The [`engine`] does the matching; [`walk`] and [`git`] feed it
//! files and blobs in parallel; [`report`] writes text, JSON and SARIF 2.1.0;
//! [`baseline`] suppresses accepted finds; [`stream`] scans bodies chunk by
//! chunk with bounded memory for the gate's DLP. Every detector has a
//! [`Confidence`] (Laissez tokens and checksummed or rigid formats high,
//! heuristics low) that each find carries; a [`Scanner`] may report only
//! finds at or above a minimum.

pub mod baseline;
pub mod engine;
pub mod git;
pub mod report;
pub mod rules;
pub mod stream;
pub mod walk;

use std::fmt;

use laissez_token::Kind;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use engine::{Detector, Engine, Hit, RuleSet};
pub use rules::Confidence;

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rules file is malformed or a rule fails its own test vectors.
    #[error("{origin}: {message}")]
    Rules {
        /// The file (or "built-in rules").
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The scanner was configured wrongly.
    #[error("{0}")]
    Config(String),
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A git command failed.
    #[error("git: {0}")]
    Git(String),
    /// A baseline file is malformed.
    #[error("baseline {path}: {message}")]
    Baseline {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Marker that suppresses finds on its line, for accepted test fixtures.
pub const ALLOW_MARKER: &[u8] = b"laissez:allow";

/// The engine plus the choices of one scan.
#[derive(Clone, Debug)]
pub struct Scanner {
    engine: Engine,
    include_invalid: bool,
    min_confidence: Confidence,
}

/// Where a find is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Location {
    /// The file path (relative as given), `<stdin>`, or the path in a commit.
    pub path: String,
    /// The commit that introduced the blob, for history scans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One credential found.
#[derive(Clone, Serialize)]
pub struct Find {
    /// The detector's id, e.g. `laissez-user-token` or `github-token`.
    pub rule: String,
    /// What the credential is.
    pub description: String,
    /// Where it is.
    pub location: Location,
    /// False when the text has a credential's shape but fails its checksum
    /// (listed only with `--include-invalid`).
    pub valid: bool,
    /// How sure the detector is that this is a credential.
    pub confidence: Confidence,
    /// The secret. Never printed: reports show [`Find::masked`].
    #[serde(skip)]
    pub secret: String,
    /// The Laissez token kind, for Laissez tokens.
    #[serde(skip)]
    pub kind: Option<Kind>,
}

impl fmt::Debug for Find {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Find")
            .field("rule", &self.rule)
            .field("secret", &self.masked())
            .field("location", &self.location)
            .field("valid", &self.valid)
            .field("confidence", &self.confidence)
            .finish()
    }
}

impl Find {
    /// The secret with all but its first and last four characters hidden.
    pub fn masked(&self) -> String {
        mask(&self.secret)
    }

    /// A stable fingerprint of the rule, the secret and the file it is in
    /// (SHA-256, hex) for baselines and SARIF. Lines may move and the find
    /// stays accepted; the same secret found in another file is a new find,
    /// since a fixture copied into a config file is a leak, not a fixture.
    pub fn fingerprint(&self) -> String {
        let path = self.location.path.trim_start_matches("./");
        let mut hasher = Sha256::new();
        for part in [
            self.rule.as_bytes(),
            self.secret.as_bytes(),
            path.as_bytes(),
        ] {
            // Length-prefixed, so no two different triples hash the same bytes.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hex::encode(hasher.finalize())
    }

    /// Whether this is a Laissez token with a valid checksum.
    pub fn is_laissez_token(&self) -> bool {
        self.kind.is_some() && self.valid
    }
}

/// `secret` with everything but its first and last four characters replaced
/// by `…` (short secrets show only their first character).
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        let first: String = chars.iter().take(1).collect();
        return format!("{first}…");
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    mask_parts(secret, &tail)
}

/// The same mask as [`mask`] from what a listing keeps of a secret: its
/// visible start (e.g. a token's `lzat_` prefix) and its last four
/// characters. `token list` and `scan` show a token the same way.
pub fn mask_parts(start: &str, last4: &str) -> String {
    let head: String = start.chars().take(4).collect();
    format!("{head}…{last4}")
}

impl Scanner {
    /// A scanner over `engine` that reports finds of every confidence;
    /// `include_invalid` also lists strings that fail their checksum.
    pub fn new(engine: Engine, include_invalid: bool) -> Scanner {
        Scanner {
            engine,
            include_invalid,
            min_confidence: Confidence::Low,
        }
    }

    /// The same scanner reporting only finds of at least `minimum`
    /// confidence (`--min-confidence`), on every path that scans through it:
    /// files, standard input, git history and staged changes.
    pub fn with_min_confidence(self, minimum: Confidence) -> Scanner {
        Scanner {
            min_confidence: minimum,
            ..self
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Checks that each of `rules` finds every one of its valid test
    /// vectors and none of its invalid ones, with everything else this
    /// scanner runs alongside it, whatever confidence the scan asks for.
    pub fn check_vectors(&self, rules: &[rules::Rule]) -> Result<(), Error> {
        for rule in rules {
            let finds = |text: &str| {
                self.scan_text_from(text.as_bytes(), "", None, Confidence::Low)
                    .iter()
                    .any(|f| f.rule == rule.id)
            };
            let fail = |message: String| Error::Rules {
                origin: format!("rule '{}'", rule.id),
                message,
            };
            if let Some(text) = rule.tests.valid.iter().find(|t| !finds(t)) {
                return Err(fail(format!("does not find its own test vector {text:?}")));
            }
            if let Some(text) = rule.tests.invalid.iter().find(|t| finds(t)) {
                return Err(fail(format!("finds its invalid test vector {text:?}")));
            }
        }
        Ok(())
    }

    /// Scans one text whose finds are located at `path` (and `commit`).
    /// Lines holding [`ALLOW_MARKER`] are skipped, and so are finds below
    /// the scanner's minimum confidence.
    pub fn scan_text(&self, text: &[u8], path: &str, commit: Option<&str>) -> Vec<Find> {
        self.scan_text_from(text, path, commit, self.min_confidence)
    }

    /// [`Scanner::scan_text`] with its own minimum confidence.
    fn scan_text_from(
        &self,
        text: &[u8],
        path: &str,
        commit: Option<&str>,
        min_confidence: Confidence,
    ) -> Vec<Find> {
        let hits = self.engine.scan(text);
        let detectors = self.engine.detectors();
        let mut finds = Vec::new();
        let mut line = 1;
        let mut counted_to = 0;
        for hit in hits {
            let detector = &detectors[hit.detector];
            if (!hit.valid && !self.include_invalid) || !detector.confidence.meets(min_confidence) {
                continue;
            }
            line += memchr::memchr_iter(b'\n', &text[counted_to..hit.start]).count();
            counted_to = hit.start;
            let line_start = memchr::memrchr(b'\n', &text[..hit.start]).map_or(0, |i| i + 1);
            let line_end =
                memchr::memchr(b'\n', &text[hit.end..]).map_or(text.len(), |i| hit.end + i);
            if memchr::memmem::find(&text[line_start..line_end], ALLOW_MARKER).is_some() {
                continue;
            }
            let column = 1 + text[line_start..hit.start]
                .iter()
                .filter(|&&b| (b & 0xC0) != 0x80)
                .count();
            finds.push(Find {
                rule: detector.id.clone(),
                description: detector.description.clone(),
                location: Location {
                    path: path.to_owned(),
                    commit: commit.map(str::to_owned),
                    line,
                    column,
                },
                valid: hit.valid,
                confidence: detector.confidence,
                secret: String::from_utf8_lossy(&text[hit.start..hit.end]).into_owned(),
                kind: detector.kind,
            });
        }
        finds
    }
}

/// Whether `bytes` look binary: a NUL byte in the first 8000, as git judges.
pub fn looks_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(8000)]).is_some()
}
