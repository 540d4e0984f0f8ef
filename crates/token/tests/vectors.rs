//! The token format against `shared/token-vectors.json` and property tests.

use laissez_token::{ALPHABET, Kind, Namespace, Token};
use proptest::prelude::*;

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/token-vectors.json");
    let text = std::fs::read_to_string(path).expect("token-vectors.json is in the repository");
    serde_json::from_str(&text).expect("token-vectors.json is JSON")
}

#[test]
fn every_valid_vector_parses_with_its_namespace_and_kind() {
    let vectors = vectors();
    let valid = vectors["valid"].as_array().unwrap();
    assert!(valid.len() >= 11);
    for vector in valid {
        let text = vector["token"].as_str().unwrap();
        let token = Token::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(token.namespace(), vector["namespace"].as_str().unwrap());
        assert_eq!(token.kind().code(), vector["kind"].as_str().unwrap());
        assert_eq!(token.expose(), text);
    }
}

#[test]
fn every_invalid_vector_is_refused() {
    let vectors = vectors();
    let invalid = vectors["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 8);
    for vector in invalid {
        let text = vector["token"].as_str().unwrap();
        assert!(
            Token::parse(text).is_err(),
            "{text} ({}) was accepted",
            vector["why"]
        );
    }
}

#[test]
fn the_vectors_file_matches_the_shared_one() {
    // The copy under tests/ keeps the crate self-contained; when the shared
    // design folder sits beside the checkout it must be the same file.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/token-vectors.json"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        let shared: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(shared, vectors());
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn namespace() -> impl Strategy<Value = Namespace> {
    "[a-z][a-z0-9]{0,15}".prop_map(|name| Namespace::new(&name).unwrap())
}

proptest! {
    #[test]
    fn every_generated_token_validates(namespace in namespace(), kind in kind()) {
        let token = Token::generate(&namespace, kind).unwrap();
        let parsed = Token::parse(token.expose()).unwrap();
        prop_assert_eq!(parsed.kind(), kind);
        prop_assert_eq!(parsed.namespace(), namespace.as_str());
        prop_assert_eq!(token.expose().len(), namespace.as_str().len() + 3 + 46);
    }

    #[test]
    fn every_single_character_change_fails(
        namespace in namespace(),
        kind in kind(),
        position in 0usize..200,
        replacement in 0usize..62,
    ) {
        let token = Token::generate(&namespace, kind).unwrap();
        let text = token.expose();
        // Change one character after the separator to another alphabet character.
        let tail_start = text.find('_').unwrap() + 1;
        let position = tail_start + position % (text.len() - tail_start);
        let mut bytes = text.as_bytes().to_vec();
        let mut new = ALPHABET[replacement];
        if new == bytes[position] {
            new = ALPHABET[(replacement + 1) % 62];
        }
        bytes[position] = new;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(Token::parse(&changed).is_err(), "{} accepted", changed);
    }

    #[test]
    fn any_change_in_the_prefix_fails_or_changes_meaning(
        kind in kind(),
        position in 0usize..5,
        byte in 0x20u8..0x7f,
    ) {
        let token = Token::generate(&Namespace::default(), kind).unwrap();
        let mut bytes = token.expose().as_bytes().to_vec();
        prop_assume!(bytes[position] != byte);
        bytes[position] = byte;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(Token::parse(&changed).is_err(), "{} accepted", changed);
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,80}") {
        let _ = Token::parse(&text);
    }
}
