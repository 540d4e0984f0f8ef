//! Scanning a body as it streams, with bounded memory, for the gate's DLP.
//!
//! Bytes are released a line at a time: a complete line can be judged, and
//! server-sent events (which end in a blank line) pass without delay. The
//! scanner holds back only the unfinished last line, a match that may still
//! grow, and an opened multi-line block (a private key) until it closes, each
//! bounded, so a secret split across chunks is still found and can still be
//! redacted, and a body of any size never sits whole in memory.

use std::sync::Arc;

use crate::Engine;

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
        let hits = self.engine.scan(&self.pending);
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
            if let Some(open) = self.engine.open_block(&self.pending, &hits)
                && len - open < MAX_HELD_BLOCK
            {
                boundary = boundary.min(open);
            }
            // A match reaching the boundary may continue in the next chunk.
            for hit in &hits {
                if hit.match_start < boundary && hit.match_end >= boundary {
                    boundary = boundary.min(hit.match_start);
                }
            }
        }
        let mut released = Released::default();
        let mut copied = 0;
        for hit in hits.iter().filter(|h| h.valid && h.match_end <= boundary) {
            if hit.start < copied {
                continue;
            }
            let detector = &self.engine.detectors()[hit.detector];
            released.finds.push(StreamFind {
                detector: hit.detector,
                secret: String::from_utf8_lossy(&self.pending[hit.start..hit.end]).into_owned(),
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
}
