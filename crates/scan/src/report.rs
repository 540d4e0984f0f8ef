//! Writing finds as human text, JSON, or SARIF 2.1.0 (read by GitHub code
//! scanning and IDEs). Secrets are always masked: the first and last four
//! characters only. Every find carries its detector's confidence: in text
//! after the rule id, in JSON as `confidence`, in SARIF as the result's
//! `properties.confidence` and the rule's `properties.precision` (the
//! property GitHub code scanning reads for how often a rule is right).
//! SARIF's `level` stays the severity of a leak, which does not depend on
//! how sure the detector is.

use std::io::Write;

use serde_json::{Value, json};

use crate::{Detector, Find};

/// How a scan's finds are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One block per find, for people.
    Text,
    /// A JSON document: `{"finds": [...]}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// Extra facts about a find a report may add (from `--verify`).
pub type Status<'a> = &'a dyn Fn(&Find) -> Option<String>;

/// Writes `finds` in `format` to `out`.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    finds: &[Find],
    detectors: &[Detector],
    status: Status<'_>,
) -> std::io::Result<()> {
    match format {
        Format::Text => text(out, finds, status),
        Format::Json => {
            let finds: Vec<Value> = finds.iter().map(|f| json_find(f, status)).collect();
            serde_json::to_writer_pretty(&mut *out, &json!({ "finds": finds }))?;
            writeln!(out)
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(finds, detectors, status))?;
            writeln!(out)
        }
    }
}

fn text(out: &mut dyn Write, finds: &[Find], status: Status<'_>) -> std::io::Result<()> {
    for find in finds {
        let place = match &find.location.commit {
            Some(commit) => format!(
                "{}:{}:{} in commit {}",
                find.location.path,
                find.location.line,
                find.location.column,
                &commit[..commit.len().min(12)]
            ),
            None => format!(
                "{}:{}:{}",
                find.location.path, find.location.line, find.location.column
            ),
        };
        let validity = if find.valid {
            ""
        } else {
            " (checksum fails: not a credential)"
        };
        writeln!(
            out,
            "{place}: {} [{}, {} confidence] {}{validity}",
            find.description,
            find.rule,
            find.confidence,
            find.masked()
        )?;
        if let Some(status) = status(find) {
            writeln!(out, "    status: {status}")?;
        }
    }
    let live = finds.iter().filter(|f| f.valid).count();
    match live {
        0 => writeln!(out, "No credentials found."),
        1 => writeln!(out, "1 credential found."),
        n => writeln!(out, "{n} credentials found."),
    }
}

fn json_find(find: &Find, status: Status<'_>) -> Value {
    let mut value = json!({
        "rule": find.rule,
        "description": find.description,
        "secret_masked": find.masked(),
        "fingerprint": find.fingerprint(),
        "valid_checksum": find.valid,
        "confidence": find.confidence,
        "location": find.location,
    });
    if let Some(status) = status(find) {
        value["status"] = Value::String(status);
    }
    value
}

fn sarif(finds: &[Find], detectors: &[Detector], status: Status<'_>) -> Value {
    let rules: Vec<Value> = detectors
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "name": d.id,
                "shortDescription": { "text": d.description },
                "fullDescription": { "text": format!("{} found in the scanned content. Revoke it and remove it from history.", d.description) },
                "defaultConfiguration": { "level": "error" },
                "properties": {
                    "tags": ["security", "secret"],
                    "precision": d.confidence.as_str(),
                }
            })
        })
        .collect();
    let results: Vec<Value> = finds
        .iter()
        .map(|find| {
            let rule_index = detectors.iter().position(|d| d.id == find.rule);
            let mut message = format!("{} {}", find.description, find.masked());
            if !find.valid {
                message.push_str(" (checksum fails: not a credential)");
            }
            if let Some(status) = status(find) {
                message.push_str(&format!(" ({status})"));
            }
            let mut result = json!({
                "ruleId": find.rule,
                "level": if find.valid { "error" } else { "note" },
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&find.location.path) },
                        "region": {
                            "startLine": find.location.line,
                            "startColumn": find.location.column,
                            "endColumn": find.location.column + find.secret.chars().count(),
                        }
                    }
                }],
                "partialFingerprints": { "laissezSecret/v2": find.fingerprint() },
                "properties": { "confidence": find.confidence },
            });
            if let Some(index) = rule_index {
                result["ruleIndex"] = json!(index);
            }
            if let Some(commit) = &find.location.commit {
                result["properties"]["commit"] = json!(commit);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "laissez",
                    "informationUri": "https://github.com/laissez/laissez",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// A relative path as a SARIF URI reference: forward slashes, no leading `./`,
/// spaces and other reserved characters percent-encoded.
fn uri(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(byte))
            }
            b'\\' => out.push('/'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
