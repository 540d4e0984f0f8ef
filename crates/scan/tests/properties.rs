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

proptest! {
    /// Every checksum scheme answers for any bytes, never panics, and
    /// refuses a valid token with any one character it covers changed (each
    /// is a CRC or BCH code, which catches every single-character error;
    /// GitHub's scheme covers the characters after the prefix only, which
    /// the rules' patterns pin).
    #[test]
    fn checksums_refuse_any_one_character_changed(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        position in any::<proptest::sample::Index>(),
        replacement in "[02-9A-Za-z]",
    ) {
        use rules::Checksum;
        for scheme in [Checksum::Github, Checksum::Grafana, Checksum::Atlassian, Checksum::Bech32] {
            let _ = scheme.verify(&bytes);
        }
        for (scheme, valid, covered_from) in [
            (Checksum::Github, "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", 4),
            (Checksum::Grafana, "glsa_4ic5ltrtfI5xi2fOIB6CSVRjVBtlJrJC_e5ca1646", 0),
            (Checksum::Atlassian, "ATATT3xFfGF0GsRZOyWYKOtTKWIpiF_BaxmtQSWYgLLwhVjTwQ_2AzeKjxuVPQD4xy_TymlGCscHFaveEA-52B43cirmXbsG8DEmcQBvvsTBQLY1PtSFu5lbb7IGb2ztzHC-fCmc6sFtfqCIQpghLfl41qrccyCKv--vA4_xFgp1Grkhbl4LDSF=5E46C8D5", 0),
            (Checksum::Bech32, "AGE-SECRET-KEY-15FERYXHRDZ9M6Y09MR8WRERWZGJ6F8NTXVHXYRDLM5AAHN0T09NLEAJUME", 0),
        ] {
            prop_assert!(scheme.verify(valid.as_bytes()));
            let mut changed = valid.as_bytes().to_vec();
            let at = covered_from + position.index(changed.len() - covered_from);
            let new = replacement.as_bytes()[0];
            // Only a real change counts; a case change of a hex or bech32
            // character is the same token.
            prop_assume!(!changed[at].eq_ignore_ascii_case(&new));
            changed[at] = new;
            prop_assert!(!scheme.verify(&changed), "{:?} {}", scheme, String::from_utf8_lossy(&changed));
        }
    }
}
