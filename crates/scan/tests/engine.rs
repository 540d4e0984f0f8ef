//! The engine against the normative token vectors, every rule's own test
//! vectors, and random text with planted tokens (recall and false positives).

use laissez_scan::{Confidence, Engine, RuleSet, Scanner, rules};
use laissez_token::{Kind, Namespace, Token};

fn namespaces(names: &[&str]) -> Vec<Namespace> {
    names.iter().map(|n| Namespace::new(n).unwrap()).collect()
}

fn scanner(set: RuleSet, include_invalid: bool) -> Scanner {
    Scanner::new(
        Engine::new(&namespaces(&["lz", "acme"]), set, Vec::new()).unwrap(),
        include_invalid,
    )
}

#[test]
fn the_scanner_agrees_with_every_normative_token_vector() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../token/tests/token-vectors.json")).unwrap();
    for set in [RuleSet::Laissez, RuleSet::All] {
        let strict = scanner(set, false);
        let lenient = scanner(set, true);
        for vector in vectors["valid"].as_array().unwrap() {
            let token = vector["token"].as_str().unwrap();
            let text = format!("export TOKEN={token}\n");
            let finds = strict.scan_text(text.as_bytes(), "x", None);
            assert_eq!(finds.len(), 1, "{token} in {set:?}");
            assert_eq!(finds[0].secret, token);
            assert!(finds[0].is_laissez_token());
            assert_eq!(finds[0].location.column, 14);
            assert_eq!(
                finds[0].kind.map(|k| k.code()),
                vector["kind"].as_str(),
                "{token}"
            );
        }
        for vector in vectors["invalid"].as_array().unwrap() {
            let token = vector["token"].as_str().unwrap();
            let text = format!("token = \"{token}\"\n");
            let finds = strict.scan_text(text.as_bytes(), "x", None);
            assert!(
                finds.is_empty(),
                "{token} ({}) in {set:?}: {finds:?}",
                vector["why"]
            );
            // A checksum failure is listed, marked invalid, only on request.
            let listed = lenient.scan_text(text.as_bytes(), "x", None);
            assert!(listed.iter().all(|f| !f.valid), "{token}");
            if vector["why"]
                .as_str()
                .unwrap()
                .contains("checksum mismatch")
            {
                assert_eq!(listed.len(), 1, "{token}");
            }
        }
    }
}

/// Keywords of different rules may overlap (`:AA` of Telegram bot tokens
/// and the run of `A`s that opens a Twitter bearer token, `sk.eyJ` of Mapbox
/// and `eyJ` of JWTs): one keyword's occurrence must not hide the other's.
#[test]
fn a_keyword_inside_another_rules_keyword_is_still_seen() {
    let scanner = scanner(RuleSet::All, false);
    let twitter = format!(
        "{}{}",
        "A".repeat(21),
        "q7Rk2mXvB9tZ4pLwN8sH3dF6gJ1cY5eU0aVoIiKxTrWbQzMnE4lPuSjDhG7fC2yR9kX3vB6tZ8pLwN5s"
    );
    let text = format!("bearer:{twitter}\n");
    let finds = scanner.scan_text(text.as_bytes(), "x", None);
    assert!(
        finds
            .iter()
            .any(|f| f.rule == "twitter-bearer-token" && f.secret == twitter),
        "{finds:?}"
    );
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let text = format!("sk.{jwt}\n");
    let finds = scanner.scan_text(text.as_bytes(), "x", None);
    assert!(
        finds.iter().any(|f| f.rule == "jwt" && f.secret == jwt),
        "{finds:?}"
    );
}

/// No two rules have keywords where one starts the other: at one position
/// the literal matcher reports only the first, and the other rule would not
/// run there.
#[test]
fn no_rules_keyword_is_a_prefix_of_another_rules() {
    let builtin = rules::builtin().unwrap();
    for a in &builtin {
        for b in builtin
            .iter()
            .filter(|b| b.id != a.id && b.ignore_case == a.ignore_case)
        {
            for ka in &a.keywords {
                for kb in &b.keywords {
                    let (ka, kb) = if a.ignore_case {
                        (ka.to_ascii_lowercase(), kb.to_ascii_lowercase())
                    } else {
                        (ka.clone(), kb.clone())
                    };
                    assert!(
                        !kb.starts_with(&ka),
                        "{} ({ka}) starts {} ({kb})",
                        a.id,
                        b.id
                    );
                }
            }
        }
    }
}

#[test]
fn every_builtin_rule_finds_its_valid_vectors_and_nothing_in_its_invalid_ones() {
    let scanner = scanner(RuleSet::All, false);
    let builtin = rules::builtin().unwrap();
    assert!(builtin.len() >= 12);
    scanner.check_vectors(&builtin).unwrap();
    // The check has teeth: a rule claiming a vector it cannot find fails.
    let mut wrong = builtin[0].clone();
    wrong.tests.valid.push("nothing to see here".into());
    let error = scanner.check_vectors(&[wrong]).unwrap_err().to_string();
    assert!(
        error.contains("does not find its own test vector"),
        "{error}"
    );
}

#[test]
fn user_rules_extend_the_builtin_ones() {
    let extra = rules::parse(
        r#"
        [[rule]]
        id = "acme-internal-key"
        description = "ACME internal service key"
        keywords = ["acmekey-"]
        regex = '(acmekey-[0-9a-f]{32})'
        secret_group = 1
        tests.valid = ["acmekey-0123456789abcdef0123456789abcdef"]
        "#,
        "extra.toml",
    )
    .unwrap();
    let engine = Engine::new(&namespaces(&["lz"]), RuleSet::All, extra.clone()).unwrap();
    let scanner = Scanner::new(engine, false);
    let finds = scanner.scan_text(b"key: acmekey-0123456789abcdef0123456789abcdef", "x", None);
    assert_eq!(finds[0].rule, "acme-internal-key");
    // An id may not be defined twice.
    let twice = [extra.clone(), extra].concat();
    assert!(Engine::new(&namespaces(&["lz"]), RuleSet::All, twice).is_err());
}

#[test]
fn planted_tokens_are_all_found_in_random_text_and_nothing_else_is() {
    let scanner = scanner(RuleSet::Laissez, true);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = laissez_token::ALPHABET;
    let mut text = Vec::with_capacity(4 << 20);
    let mut planted = Vec::new();
    while text.len() < 4 << 20 {
        match next() % 50 {
            // Planted valid tokens of every kind and namespace.
            0 => {
                let namespace = if next() % 2 == 0 { "lz" } else { "acme" };
                let kind = Kind::ALL[(next() % 5) as usize];
                let token = Token::generate(&Namespace::new(namespace).unwrap(), kind).unwrap();
                text.extend_from_slice(b" ");
                text.extend_from_slice(token.expose().as_bytes());
                text.extend_from_slice(b"\n");
                planted.push(token.expose().to_owned());
            }
            // Look-alikes: a prefix and 46 random characters.
            1 => {
                text.extend_from_slice(b" lzut_");
                for _ in 0..46 {
                    text.push(alphabet[(next() % 62) as usize]);
                }
                text.extend_from_slice(b"\n");
            }
            // Base62 noise in words.
            _ => {
                let len = 1 + next() % 60;
                for _ in 0..len {
                    text.push(alphabet[(next() % 62) as usize]);
                }
                text.push(if next() % 8 == 0 { b'\n' } else { b' ' });
            }
        }
    }
    let finds = scanner.scan_text(&text, "corpus", None);
    let valid: Vec<&str> = finds
        .iter()
        .filter(|f| f.valid)
        .map(|f| f.secret.as_str())
        .collect();
    assert_eq!(
        valid,
        planted.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Every look-alike failed its checksum (a 1 in 2^32 chance each otherwise).
    assert!(finds.iter().filter(|f| !f.valid).count() > 1000);
}

#[test]
fn a_line_marked_allowed_is_skipped_and_finds_are_masked() {
    let token = Token::generate(&Namespace::default(), Kind::Account).unwrap();
    let scanner = scanner(RuleSet::All, false);
    let text = format!("a = \"{0}\" # laissez:allow\nb = {0}\n", token.expose());
    let finds = scanner.scan_text(text.as_bytes(), "x", None);
    assert_eq!(finds.len(), 1);
    assert_eq!(finds[0].location.line, 2);
    let masked = finds[0].masked();
    assert!(masked.starts_with("lzat") && masked.ends_with(token.last4()));
    assert!(!format!("{:?}", finds[0]).contains(token.expose()));
}

#[test]
fn the_traffic_set_leaves_out_heuristics_and_jwts_that_apps_exchange_on_purpose() {
    let traffic = Scanner::new(
        Engine::new(&namespaces(&["lz"]), RuleSet::Traffic, Vec::new()).unwrap(),
        false,
    );
    let jwt = "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c3JfMTIzIn0.Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1Sg5Yp0Ec";
    let assignment = "client_secret = \"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1\"";
    assert!(traffic.scan_text(jwt.as_bytes(), "x", None).is_empty());
    assert!(
        traffic
            .scan_text(assignment.as_bytes(), "x", None)
            .is_empty()
    );
    let github = "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";
    assert_eq!(
        traffic.scan_text(github.as_bytes(), "x", None)[0].rule,
        "github-token"
    );
    let all = scanner(RuleSet::All, false);
    assert_eq!(all.scan_text(jwt.as_bytes(), "x", None)[0].rule, "jwt");
}

#[test]
fn credential_ids_in_audit_exports_are_not_secrets() {
    // A line of `laissez audit export`: ids name credentials and principals.
    let line = br#"{"seq":7,"action":"token.create","target":"tok_3kT9aB7cD1eF5gH2iJ4k","detail":{"credential":"tok_Q8wE2rT6yU1iO9pA3sD7","token_id":"tok_Zx4Cv8Bn2Mq6Wl1Er5Ty"}}"#;
    let finds = scanner(RuleSet::All, true).scan_text(line, "audit.jsonl", None);
    assert!(finds.is_empty(), "{finds:?}");
    // A real high-entropy secret in the same place is still found.
    let secret = br#"{"credential":"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1"}"#;
    let finds = scanner(RuleSet::All, false).scan_text(secret, "audit.jsonl", None);
    assert_eq!(finds.len(), 1, "{finds:?}");
}

#[test]
fn a_minimum_confidence_drops_lower_finds_and_keeps_the_rest() {
    let text = "GITHUB_TOKEN=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\n\
                client_secret = \"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1\"\n\
                huggingface = 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\n";
    let rules_of = |minimum: Confidence| {
        let scanner = scanner(RuleSet::All, false).with_min_confidence(minimum);
        let finds = scanner.scan_text(text.as_bytes(), "x", None);
        finds
            .iter()
            .map(|f| (f.rule.clone(), f.confidence))
            .collect::<Vec<_>>()
    };
    let github = ("github-token".to_owned(), Confidence::High);
    let huggingface = ("huggingface-token".to_owned(), Confidence::Medium);
    let generic = ("generic-secret-assignment".to_owned(), Confidence::Low);
    assert_eq!(
        rules_of(Confidence::Low),
        [github.clone(), generic, huggingface.clone()]
    );
    assert_eq!(rules_of(Confidence::Medium), [github.clone(), huggingface]);
    assert_eq!(rules_of(Confidence::High), [github]);

    // A user's rule below the minimum still has its vectors checked.
    let extra = rules::parse(
        r#"
        [[rule]]
        id = "acme-hint"
        description = "ACME hint"
        confidence = "low"
        keywords = ["acmehint-"]
        regex = '(acmehint-[0-9a-f]{16})'
        tests.valid = ["acmehint-0123456789abcdef"]
        "#,
        "extra.toml",
    )
    .unwrap();
    let engine = Engine::new(&namespaces(&["lz"]), RuleSet::All, extra.clone()).unwrap();
    let strict = Scanner::new(engine, false).with_min_confidence(Confidence::High);
    strict.check_vectors(&extra).unwrap();
    assert!(
        strict
            .scan_text(b"acmehint-0123456789abcdef", "x", None)
            .is_empty()
    );
}
