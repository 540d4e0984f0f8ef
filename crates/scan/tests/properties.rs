//! Properties of the scanner over arbitrary input (the parsers' fuzzing):
//! no panic on any bytes or rules text, streaming releases exactly the input
//! when not redacting, and chunking never changes what is found or redacted.

use std::sync::Arc;

use laissez_scan::stream::StreamScanner;
use laissez_scan::{Engine, RuleSet, rules};
use laissez_token::{Kind, Namespace, Token};
use proptest::prelude::*;

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(&[Namespace::default()], RuleSet::All, Vec::new()).unwrap())
}

fn stream(
    engine: &Arc<Engine>,
    text: &[u8],
    cuts: &[usize],
    redact: bool,
) -> (Vec<u8>, Vec<String>) {
    let mut scanner = StreamScanner::new(engine.clone(), redact);
    let mut out = Vec::new();
    let mut finds = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (text.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([text.len()]) {
        let released = scanner.push(&text[at..cut]);
        out.extend(released.bytes);
        finds.extend(released.finds.into_iter().map(|f| f.secret));
        at = cut;
    }
    let released = scanner.finish();
    out.extend(released.bytes);
    finds.extend(released.finds.into_iter().map(|f| f.secret));
    (out, finds)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_scan_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let engine = engine();
        let _ = engine.scan(&bytes);
        let (out, _) = stream(&engine, &bytes, &[17, 300, 2000], false);
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn any_rules_text_parses_or_errors_without_panicking(text in "\\PC{0,400}") {
        let _ = rules::parse(&text, "fuzz");
    }

    #[test]
    fn chunking_never_changes_what_is_found_or_redacted(
        prefix in "[ -~\n]{0,300}",
        suffix in "[ -~\n]{0,300}",
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        kind in 0usize..5,
    ) {
        let token = Token::generate(&Namespace::default(), Kind::ALL[kind]).unwrap();
        let text = format!("{prefix} {} {suffix}", token.expose());
        let engine = engine();
        let (whole, whole_finds) = stream(&engine, text.as_bytes(), &[], true);
        let (chunked, chunked_finds) = stream(&engine, text.as_bytes(), &cuts, true);
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole_finds, &chunked_finds);
        prop_assert!(whole_finds.iter().any(|f| f == token.expose()));
        let redacted = String::from_utf8(chunked).unwrap();
        prop_assert!(!redacted.contains(token.expose()));
    }
}

proptest! {
    /// Random secrets are never mistaken for names, whatever separators they
    /// hold: every part of a name is one word or a short number.
    #[test]
    fn random_secrets_are_not_identifier_like(
        parts in proptest::collection::vec("[0-9A-Za-z]{6,20}", 1..4),
        separator in "[_.]",
    ) {
        let value = parts.join(&separator);
        let mixed = parts.iter().all(|p| {
            p.bytes().any(|b| b.is_ascii_digit()) && p.bytes().any(|b| b.is_ascii_alphabetic())
                || p.bytes().skip(1).any(|b| b.is_ascii_uppercase()) && p.bytes().any(|b| b.is_ascii_lowercase())
        });
        prop_assume!(mixed);
        prop_assert!(!rules::is_identifier_like(value.as_bytes()), "{}", value);
    }
}
