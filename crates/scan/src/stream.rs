//! Scanning a body as it streams, with bounded memory, for the gate's DLP.
//!
//! Bytes are released a line at a time: a complete line can be judged, and
//! server-sent events (which end in a blank line) pass without delay. The
//! scanner holds back only the unfinished last line, a match that may still
//! grow, and an opened multi-line block (a private key) until it closes, each
//! bounded, so a secret split across chunks is still found and can still be
//! redacted, and a body of any size never sits whole in memory.
//!
//! A secret written in an escaped form (URL-encoded, `ghp%5Fabc…` or every
//! character `%XX`; JSON-escaped, `ghp\u005fabc…`; or both mixed, or one
//! layer inside the other) is found too: the held bytes are also scanned
//! with those escapes decoded ([`decode_escapes`]), and each find is mapped
//! back to the bytes it came from, which are redacted (or blocked) as they
//! were sent. Decoding works on the held bytes only, so memory stays
//! bounded the same way.

use std::sync::Arc;

use crate::{Engine, Hit};

/// A secret found in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFind {
    /// Index into the engine's detectors.
    pub detector: usize,
    /// The secret.
    pub secret: String,
}

/// The scanner of one body.
#[derive(Debug)]
pub struct StreamScanner {
    engine: Arc<Engine>,
    pending: Vec<u8>,
    redact: bool,
    boundary: Boundary,
}

/// Where held text may be released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// After a complete line: bodies, files, server-sent events.
    Line,
    /// After whitespace: text generated a few characters at a time (AI
    /// completions), where waiting for a line would stall the stream.
    /// Secrets without whitespace (tokens, keys) are still found whole.
    Word,
}

/// What one step released.
#[derive(Debug, Default)]
pub struct Released {
    /// Bytes to pass on (secrets replaced when redacting).
    pub bytes: Vec<u8>,
    /// Valid secrets in those bytes.
    pub finds: Vec<StreamFind>,
}

/// The longest unfinished line held back before it is released anyway.
const MAX_HELD_LINE: usize = 8 * 1024;
/// How long an opened multi-line block is held waiting for its end.
const MAX_HELD_BLOCK: usize = 16 * 1024;
/// What stays held of an over-long line: enough for any token-shaped secret.
const LONG_LINE_TAIL: usize = 512;

impl StreamScanner {
    /// A scanner for one body; `redact` replaces each valid secret with
    /// [`redaction`] of the same length.
    pub fn new(engine: Arc<Engine>, redact: bool) -> StreamScanner {
        StreamScanner::with_boundary(engine, redact, Boundary::Line)
    }

    /// A scanner releasing text at `boundary`.
    pub fn with_boundary(engine: Arc<Engine>, redact: bool, boundary: Boundary) -> StreamScanner {
        StreamScanner {
            engine,
            pending: Vec::new(),
            redact,
            boundary,
        }
    }

    /// Takes the next chunk; returns what can be released now.
    pub fn push(&mut self, chunk: &[u8]) -> Released {
        self.pending.extend_from_slice(chunk);
        self.release(false)
    }

    /// Ends the body: releases everything held.
    pub fn finish(&mut self) -> Released {
        self.release(true)
    }

    /// Takes the last chunk and ends the body.
    pub fn finish_with(&mut self, chunk: &[u8]) -> Released {
        self.pending.extend_from_slice(chunk);
        self.release(true)
    }

    /// Bytes currently held back.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    fn release(&mut self, last: bool) -> Released {
        let hits = self.hits();
        let len = self.pending.len();
        let mut boundary = if last {
            len
        } else {
            let line_end = match self.boundary {
                Boundary::Line => memchr::memrchr(b'\n', &self.pending).map_or(0, |i| i + 1),
                Boundary::Word => self
                    .pending
                    .iter()
                    .rposition(|b| b.is_ascii_whitespace())
                    .map_or(0, |i| i + 1),
            };
            if len - line_end > MAX_HELD_LINE {
                len - LONG_LINE_TAIL
            } else {
                line_end
            }
        };
        if !last {
            // An opened block whose end has not arrived yet.
            let raw: Vec<Hit> = hits.iter().map(|(h, _)| *h).collect();
            if let Some(open) = self.engine.open_block(&self.pending, &raw)
                && len - open < MAX_HELD_BLOCK
            {
                boundary = boundary.min(open);
            }
            // A match reaching the boundary may continue in the next chunk.
            for (hit, _) in &hits {
                if hit.match_start < boundary && hit.match_end >= boundary {
                    boundary = boundary.min(hit.match_start);
                }
            }
        }
        let mut released = Released::default();
        let mut copied = 0;
        for (hit, secret) in hits
            .iter()
            .filter(|(h, _)| h.valid && h.match_end <= boundary)
        {
            if hit.start < copied {
                continue;
            }
            let detector = &self.engine.detectors()[hit.detector];
            released.finds.push(StreamFind {
                detector: hit.detector,
                secret: secret.clone(),
            });
            if self.redact {
                released
                    .bytes
                    .extend_from_slice(&self.pending[copied..hit.start]);
                released
                    .bytes
                    .extend_from_slice(redaction(&detector.id, hit.end - hit.start).as_bytes());
                copied = hit.end;
            }
        }
        released
            .bytes
            .extend_from_slice(&self.pending[copied..boundary]);
        self.pending.drain(..boundary);
        released
    }
}

impl StreamScanner {
    /// Every candidate in the held bytes, as sent and with escapes decoded,
    /// ordered by position, each with the secret it stands for. A decoded
    /// find is mapped back to the bytes it was sent as, and dropped when a
    /// valid find as sent already covers them.
    fn hits(&self) -> Vec<(Hit, String)> {
        let text = &self.pending;
        let mut hits: Vec<(Hit, String)> = self
            .engine
            .scan(text)
            .into_iter()
            .map(|h| {
                (
                    h,
                    String::from_utf8_lossy(&text[h.start..h.end]).into_owned(),
                )
            })
            .collect();
        let Some(decoded) = decode_escapes(text) else {
            return hits;
        };
        let direct: Vec<(usize, usize)> = hits
            .iter()
            .filter(|(h, _)| h.valid)
            .map(|(h, _)| (h.start, h.end))
            .collect();
        for hit in self.engine.scan(&decoded.bytes) {
            let secret = String::from_utf8_lossy(&decoded.bytes[hit.start..hit.end]).into_owned();
            let mapped = Hit {
                start: decoded.origin(hit.start),
                end: decoded.origin(hit.end),
                match_start: decoded.origin(hit.match_start),
                match_end: decoded.origin(hit.match_end),
                ..hit
            };
            let covered = direct
                .iter()
                .any(|&(start, end)| mapped.start < end && start < mapped.end);
            if !covered && mapped.start < mapped.end {
                hits.push((mapped, secret));
            }
        }
        hits.sort_by_key(|(h, _)| (h.start, std::cmp::Reverse(h.end)));
        hits
    }
}

/// Bytes with their escapes decoded, and where each came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the offset in the original text where the
    /// bytes it came from start; one more entry for the end of the text.
    pub origins: Vec<u32>,
}

impl Decoded {
    /// The original offset of decoded offset `at`.
    pub fn origin(&self, at: usize) -> usize {
        self.origins.get(at).map_or(usize::MAX, |&o| o as usize)
    }
}

/// `text` with `%XX` escapes and JSON escapes (`\uXXXX`, surrogate pairs
/// included, and `\/`) decoded, twice over for an escape inside another
/// (`%5Cu005f`); `None` when there is nothing to decode. Invalid escapes
/// stay as they are. The result is never longer than `text`.
pub fn decode_escapes(text: &[u8]) -> Option<Decoded> {
    if text.len() >= u32::MAX as usize {
        return None;
    }
    let first = decode_once(text)?;
    let Some(second) = decode_once(&first.bytes) else {
        return Some(first);
    };
    // Compose: a byte of the second pass came from bytes of the first.
    let origins = second
        .origins
        .iter()
        .map(|&o| first.origins[o as usize])
        .collect();
    Some(Decoded {
        bytes: second.bytes,
        origins,
    })
}

fn decode_once(text: &[u8]) -> Option<Decoded> {
    // Nothing to decode without an escape.
    memchr::memchr2(b'%', b'\\', text)?;
    let mut bytes = Vec::with_capacity(text.len());
    let mut origins = Vec::with_capacity(text.len() + 1);
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        let (decoded, used) = match text[i] {
            b'%' => match hex(text, i + 1, 2) {
                Some(value) => (Some(Utf8Or::Byte(value as u8)), 3),
                None => (None, 1),
            },
            b'\\' if text.get(i + 1) == Some(&b'/') => (Some(Utf8Or::Byte(b'/')), 2),
            b'\\' if text.get(i + 1) == Some(&b'u') => match json_escape(text, i) {
                Some((c, used)) => (Some(Utf8Or::Char(c)), used),
                None => (None, 1),
            },
            _ => (None, 1),
        };
        match decoded {
            Some(Utf8Or::Byte(b)) => {
                bytes.push(b);
                origins.push(i as u32);
                changed = true;
            }
            Some(Utf8Or::Char(c)) => {
                let mut buffer = [0; 4];
                for b in c.encode_utf8(&mut buffer).bytes() {
                    bytes.push(b);
                    origins.push(i as u32);
                }
                changed = true;
            }
            None => {
                bytes.push(text[i]);
                origins.push(i as u32);
            }
        }
        i += used;
    }
    origins.push(text.len() as u32);
    changed.then_some(Decoded { bytes, origins })
}

enum Utf8Or {
    Byte(u8),
    Char(char),
}

/// The value of `digits` hex digits at `at`.
fn hex(text: &[u8], at: usize, digits: usize) -> Option<u32> {
    let digits = text.get(at..at + digits)?;
    digits.iter().try_fold(0u32, |value, &d| {
        Some(value * 16 + (d as char).to_digit(16)?)
    })
}

/// The character of the JSON escape `\uXXXX` (or a surrogate pair of
/// them) at `at`, and how many bytes it takes.
fn json_escape(text: &[u8], at: usize) -> Option<(char, usize)> {
    let high = hex(text, at + 2, 4)?;
    if (0xD800..0xDC00).contains(&high) {
        if text.get(at + 6..at + 8) != Some(&b"\\u"[..]) {
            return None;
        }
        let low = hex(text, at + 8, 4)?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?;
        return Some((c, 12));
    }
    Some((char::from_u32(high)?, 6))
}

/// What replaces a secret of `len` bytes found by `rule`: `[REDACTED:rule]`
/// padded with `*` to the same length (or `[REDACTED]`, or only `*`, when
/// the secret is shorter), so a redacted body keeps its length: a
/// `Content-Length` stays true and the body can stream.
pub fn redaction(rule: &str, len: usize) -> String {
    let named = format!("[REDACTED:{rule}]");
    let marker = if named.len() <= len {
        named
    } else if len >= 10 {
        "[REDACTED]".to_owned()
    } else {
        String::new()
    };
    let padding = len - marker.len();
    marker + &"*".repeat(padding)
}

#[cfg(test)]
mod tests {
    use laissez_token::{Kind, Namespace, Token};

    use super::*;
    use crate::RuleSet;

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::new(&[Namespace::default()], RuleSet::All, Vec::new()).unwrap())
    }

    fn run(scanner: &mut StreamScanner, chunks: &[&[u8]]) -> Released {
        let mut all = Released::default();
        for chunk in chunks {
            let step = scanner.push(chunk);
            all.bytes.extend(step.bytes);
            all.finds.extend(step.finds);
        }
        let step = scanner.finish();
        all.bytes.extend(step.bytes);
        all.finds.extend(step.finds);
        all
    }

    #[test]
    fn a_token_split_across_chunks_is_found_and_redacted() {
        let token = Token::generate(&Namespace::default(), Kind::User).unwrap();
        let body = format!("{{\"prompt\": \"use {} please\"}}\n", token.expose());
        for split in [1, 10, 20, 30, body.len() - 3] {
            let (a, b) = body.as_bytes().split_at(split);
            let mut scanner = StreamScanner::new(engine(), true);
            let out = run(&mut scanner, &[a, b]);
            assert_eq!(out.finds.len(), 1, "split at {split}");
            assert_eq!(out.finds[0].secret, token.expose());
            let expected = format!(
                "{{\"prompt\": \"use {} please\"}}\n",
                redaction("laissez-user-token", token.expose().len())
            );
            assert_eq!(String::from_utf8(out.bytes).unwrap(), expected);
            assert_eq!(expected.len(), body.len());
        }
    }

    #[test]
    fn complete_lines_flow_without_waiting_and_memory_stays_bounded() {
        let mut scanner = StreamScanner::new(engine(), false);
        let step = scanner.push(b"data: {\"x\": 1}\n\ndata: partial");
        assert_eq!(step.bytes, b"data: {\"x\": 1}\n\n");
        assert_eq!(scanner.held(), b"data: partial".len());
        let line = vec![b'a'; 100_000];
        let step = scanner.push(&line);
        assert!(step.bytes.len() > 90_000);
        assert!(scanner.held() <= MAX_HELD_LINE);
    }

    #[test]
    fn escaped_tokens_are_found_and_redacted_as_sent() {
        let token = Token::generate(&Namespace::default(), Kind::User).unwrap();
        let plain = token.expose().to_owned();
        let url_all: String = plain.bytes().map(|b| format!("%{b:02X}")).collect();
        let json_all: String = plain
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let mixed: String = plain
            .chars()
            .enumerate()
            .map(|(i, c)| match (c, i % 3) {
                ('_', _) => "%5F".to_owned(),
                (c, 0) => format!("\\u{:04X}", c as u32),
                (c, 1) => format!("%{:02x}", c as u32),
                (c, _) => c.to_string(),
            })
            .collect();
        let forms = [
            plain.replace('_', "%5F"),
            plain.replace('_', "%5f"),
            plain.replace('_', "\\u005f"),
            plain.replace('_', "%5Cu005f"),
            url_all,
            json_all,
            mixed,
        ];
        for form in forms {
            let body = format!("{{\"prompt\": \"use {form} please\"}}\n");
            for split in [1, body.len() / 2, body.len() - 2] {
                let (a, b) = body.as_bytes().split_at(split);
                let mut scanner = StreamScanner::new(engine(), true);
                let out = run(&mut scanner, &[a, b]);
                assert_eq!(out.finds.len(), 1, "{form} split at {split}");
                assert_eq!(out.finds[0].secret, plain, "the secret as it decodes");
                let expected = format!(
                    "{{\"prompt\": \"use {} please\"}}\n",
                    redaction("laissez-user-token", form.len())
                );
                assert_eq!(String::from_utf8(out.bytes).unwrap(), expected, "{form}");
            }
        }
    }

    #[test]
    fn decoding_maps_back_to_the_bytes_sent() {
        let decoded = decode_escapes(b"a%41\\u00e9\\ud83d\\ude00%zz\\/b").unwrap();
        assert_eq!(decoded.bytes, "aA\u{e9}\u{1f600}%zz/b".as_bytes());
        assert_eq!(decoded.origin(0), 0);
        assert_eq!(decoded.origin(1), 1);
        assert_eq!(decoded.origin(2), 4);
        assert_eq!(decoded.origin(4), 10);
        assert_eq!(decoded.origin(decoded.bytes.len()), 28);
        assert!(decode_escapes(b"nothing to see").is_none());
        assert!(decode_escapes(b"100% \\x").is_none());
        assert!(decoded.bytes.len() <= 28);
    }

    #[test]
    fn a_private_key_arriving_line_by_line_is_redacted_whole() {
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg3jB9pQ0Zx8Lw2Kt7Rv4Nb1Hd6Jf3Sg9Yp5Ec0Wm\noAoGCCqGSM49AwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\n";
        let lines: Vec<&[u8]> = key.split_inclusive('\n').map(str::as_bytes).collect();
        let mut scanner = StreamScanner::new(engine(), true);
        let out = run(&mut scanner, &lines);
        let text = String::from_utf8(out.bytes).unwrap();
        assert_eq!(text.len(), key.len());
        assert!(text.starts_with("[REDACTED:private-key]***"), "{text}");
        assert!(!text.contains("MHcCAQ"));
    }

    proptest::proptest! {
        /// Any bytes: the map back stays within the text, in order.
        #[test]
        fn decoding_takes_any_input(text in proptest::collection::vec(proptest::sample::select(b"%5Fu0\\/aZ9".to_vec()), 0..120)) {
            if let Some(decoded) = decode_escapes(&text) {
                proptest::prop_assert_eq!(decoded.origins.len(), decoded.bytes.len() + 1);
                proptest::prop_assert!(decoded.bytes.len() <= text.len());
                proptest::prop_assert!(decoded.origins.windows(2).all(|w| w[0] <= w[1]));
                proptest::prop_assert_eq!(decoded.origin(decoded.bytes.len()), text.len());
            }
        }
    }
}
