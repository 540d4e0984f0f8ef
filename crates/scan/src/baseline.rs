//! Baselines: a file of accepted finds that later scans suppress.
//!
//! A baseline holds each accepted find's fingerprint (a SHA-256 of its rule,
//! secret and file, never the secret) with its rule and place for people
//! reading it. Matching is by fingerprint alone: an accepted test fixture
//! stays accepted when lines around it move, a new secret on the same line
//! does not, and neither does the same secret found in another file.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Find, Location};

/// Accepted finds.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    fingerprints: HashSet<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generated_by: Option<String>,
    finds: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    fingerprint: String,
    rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

impl Baseline {
    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let bad = |message: String| Error::Baseline {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: BaselineFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a Laissez baseline: {e}")))?;
        if file.version == 1 {
            return Err(bad(
                "version 1 matched finds by secret alone, wherever they were; write a new baseline with `laissez scan --write-baseline`".into(),
            ));
        }
        if file.version != VERSION {
            return Err(bad(format!(
                "version {} is not supported (expected {VERSION})",
                file.version
            )));
        }
        let mut fingerprints = HashSet::new();
        for entry in file.finds {
            let well_formed = entry.fingerprint.len() == 64
                && entry.fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
            if !well_formed {
                return Err(bad(format!(
                    "fingerprint '{}' is not 64 hex characters",
                    entry.fingerprint
                )));
            }
            fingerprints.insert(entry.fingerprint.to_ascii_lowercase());
        }
        Ok(Baseline { fingerprints })
    }

    /// Whether `find` was accepted.
    pub fn accepts(&self, find: &Find) -> bool {
        self.fingerprints.contains(&find.fingerprint())
    }

    /// Writes a baseline accepting every one of `finds`.
    pub fn write(path: &Path, finds: &[Find]) -> Result<(), Error> {
        let mut seen = HashSet::new();
        let finds = finds
            .iter()
            .filter(|find| seen.insert(find.fingerprint()))
            .map(|find| Entry {
                fingerprint: find.fingerprint(),
                rule: find.rule.clone(),
                location: Some(find.location.clone()),
            })
            .collect();
        let file = BaselineFile {
            version: VERSION,
            generated_by: Some(format!("laissez scan {}", env!("CARGO_PKG_VERSION"))),
            finds,
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| Error::Baseline {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text + "\n").map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The baseline format: 2 fingerprints rule, secret and file.
const VERSION: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn find(path: &str, line: usize, secret: &str) -> Find {
        Find {
            rule: "github-token".into(),
            description: "GitHub token".into(),
            location: Location {
                path: path.into(),
                commit: None,
                line,
                column: 1,
            },
            valid: true,
            confidence: crate::Confidence::High,
            secret: secret.into(),
            kind: None,
        }
    }

    #[test]
    fn a_baseline_accepts_a_secret_in_its_file_only() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("baseline.json");
        Baseline::write(&path, &[find("./tests/fixture.txt", 3, "ghp_secret")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("ghp_secret"), "{text}");
        let baseline = Baseline::load(&path).unwrap();
        let table = [
            (find("./tests/fixture.txt", 3, "ghp_secret"), true),
            (find("tests/fixture.txt", 40, "ghp_secret"), true),
            (find("./deploy.env", 3, "ghp_secret"), false),
            (find("./tests/fixture.txt", 3, "ghp_other"), false),
        ];
        for (find, accepted) in table {
            assert_eq!(baseline.accepts(&find), accepted, "{find:?}");
        }
    }

    #[test]
    fn a_version_1_baseline_is_refused_with_what_to_do() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("baseline.json");
        std::fs::write(&path, r#"{"version": 1, "finds": []}"#).unwrap();
        let error = Baseline::load(&path).unwrap_err().to_string();
        assert!(error.contains("--write-baseline"), "{error}");
    }
}
