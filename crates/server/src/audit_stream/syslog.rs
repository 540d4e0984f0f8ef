//! RFC 5424 syslog messages for audit records, framed for TCP by octet
//! counting (RFC 6587 §3.4.1), so a collector never splits a record whose
//! JSON holds a newline.
//!
//! One record is one message: facility `authpriv` (10), severity `info` for
//! a success and `notice` for a denial or a failed authentication, APP-NAME
//! `laissez`, MSGID `audit`, the record's position, action, outcome, target
//! and hash as structured data under the documentation enterprise number
//! (`laissez@32473`, RFC 5612), and the whole record as JSON in MSG (UTF-8,
//! after a BOM). Everything here is pure; the streamer does the I/O.

use laissez_core::audit::{AuditRecord, Outcome};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The structured-data id: a private name under the documentation
/// enterprise number of RFC 5612.
pub const SD_ID: &str = "laissez@32473";

/// `authpriv`: security and authorization messages.
const FACILITY: u8 = 10;

/// Why a syslog destination is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyslogError {
    /// Not `tcp://host:port`.
    #[error("--audit-syslog {0}: give tcp://host:port (RFC 5424 over TCP, octet-counted)")]
    BadTarget(String),
}

/// A collector's address, from `tcp://host:port`.
pub fn parse_target(target: &str) -> Result<String, SyslogError> {
    let bad = || SyslogError::BadTarget(target.chars().take(200).collect());
    let rest = target.strip_prefix("tcp://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if port_ok && host_ok {
        Ok(rest.to_owned())
    } else {
        Err(bad())
    }
}

/// A HOSTNAME field: printable ASCII without spaces, at most 255
/// characters, `-` when nothing is left (RFC 5424 §6.2.4).
pub fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

/// An SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3) and
/// control characters left out (the record in MSG keeps them).
fn param_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 6,
        Outcome::Denied | Outcome::Unauthenticated => 5,
    }
}

/// The RFC 5424 message for `record`, sent by `hostname` (process `procid`).
pub fn message(record: &AuditRecord, hostname: &str, procid: u32) -> Vec<u8> {
    let timestamp = OffsetDateTime::from_unix_timestamp(record.at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into());
    let header = format!(
        "<{}>1 {timestamp} {} laissez {procid} audit [{SD_ID} seq=\"{}\" action=\"{}\" outcome=\"{}\" target=\"{}\" hash=\"{}\"] \u{feff}",
        FACILITY * 8 + severity(record.outcome),
        header_field(hostname, 255),
        record.seq,
        param_value(&record.action),
        record.outcome.as_str(),
        param_value(&record.target),
        param_value(&record.hash),
    );
    let mut bytes = header.into_bytes();
    // Serializing plain data cannot fail.
    bytes.extend(serde_json::to_vec(record).unwrap_or_default());
    bytes
}

/// One message framed by octet counting: `LEN SP MSG`.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = format!("{} ", message.len()).into_bytes();
    framed.extend_from_slice(message);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(action: &str, target: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            seq: 42,
            at: 1_764_547_200,
            chain: Vec::new(),
            action: action.into(),
            target: target.into(),
            outcome,
            client_ip: None,
            detail: serde_json::json!({"note": "line one\nline two"}),
            prev_hash: "0".repeat(64),
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn a_record_is_one_rfc5424_message_with_structured_data() {
        let text = String::from_utf8(message(
            &record("token.create", "tok_1", Outcome::Success),
            "laissez.example",
            7,
        ))
        .unwrap();
        let expected = format!(
            "<86>1 2025-12-01T00:00:00Z laissez.example laissez 7 audit [laissez@32473 seq=\"42\" action=\"token.create\" outcome=\"success\" target=\"tok_1\" hash=\"{}\"] \u{feff}{{",
            "ab".repeat(32)
        );
        assert!(text.starts_with(&expected), "{text}");
        let json = text.split('\u{feff}').nth(1).unwrap();
        let back: AuditRecord = serde_json::from_str(json).unwrap();
        assert_eq!(back, record("token.create", "tok_1", Outcome::Success));
    }

    #[test]
    fn refusals_are_notices_and_special_characters_are_escaped() {
        let text = String::from_utf8(message(
            &record("authenticate", "a\"b]c\\d", Outcome::Unauthenticated),
            "host with spaces\n",
            1,
        ))
        .unwrap();
        assert!(text.starts_with("<85>1 "), "{text}");
        assert!(text.contains(" hostwithspaces laissez 1 audit "), "{text}");
        assert!(text.contains(r#"target="a\"b\]c\\d""#), "{text}");
        assert!(
            String::from_utf8(message(&record("x", "y", Outcome::Denied), "", 1))
                .unwrap()
                .starts_with("<85>1 2025-12-01T00:00:00Z - laissez 1 audit ")
        );
    }

    #[test]
    fn frames_count_octets_not_characters() {
        assert_eq!(frame("héllo".as_bytes()), b"6 h\xc3\xa9llo".to_vec());
    }

    #[test]
    fn targets_are_tcp_host_and_port() {
        assert_eq!(
            parse_target("tcp://127.0.0.1:6514").as_deref(),
            Ok("127.0.0.1:6514")
        );
        assert_eq!(
            parse_target("tcp://logs.example:514").as_deref(),
            Ok("logs.example:514")
        );
        for bad in [
            "udp://127.0.0.1:514",
            "127.0.0.1:514",
            "tcp://:514",
            "tcp://host",
            "tcp://host:0",
            "tcp://host:99999",
            "tcp://ho st:514",
            "tcp://host/x:514",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever a record's action and target hold, its structured data
        /// stays one element that ends right before MSG: no unescaped quote
        /// or bracket ends it early, no line break splits the message.
        #[test]
        fn structured_data_cannot_be_broken_out_of(action in ".{0,40}", target in ".{0,40}") {
            let text = String::from_utf8(message(
                &record(&action, &target, Outcome::Success), "h", 1)).unwrap();
            let start = text.find('[').unwrap();
            let mut escaped = false;
            let mut quoted = false;
            let mut closed_at = None;
            for (i, c) in text[start..].char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => quoted = !quoted,
                    (false, ']') if !quoted => { closed_at = Some(start + i); break; }
                    _ => {}
                }
            }
            let closed_at = closed_at.expect("the structured data ends");
            let msg_starts = text[closed_at + 1..].starts_with(" \u{feff}{\"seq\":42");
            prop_assert!(msg_starts, "{}", text);
            prop_assert!(!text[..closed_at].contains(['\n', '\r']));
        }
    }
}
