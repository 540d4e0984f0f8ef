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
