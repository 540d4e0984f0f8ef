//! Rules for third-party credentials: the data file format, its loading and
//! compilation, and the check that every rule finds its own test vectors.
//!
//! The built-in rules are `rules.toml` at the crate's root, compiled into the
//! binary. Users add rules in a file of the same shape (`laissez scan --rules
//! FILE`); each added rule must carry test vectors, and they are checked when
//! the file is loaded, so a rule that does not find what it claims is refused
//! before it scans anything.

use regex::bytes::Regex;
use serde::Deserialize;

use crate::Error;

/// The built-in rules file.
pub const BUILTIN_RULES: &str = include_str!("../rules.toml");

/// A validated, compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique id, e.g. `github-token`.
    pub id: String,
    /// What the credential is.
    pub description: String,
    /// Literals one of which occurs in every match (matched case-insensitively).
    pub keywords: Vec<String>,
    /// The compiled pattern.
    pub regex: Regex,
    /// The capture group that holds the secret.
    pub secret_group: usize,
    /// An offline checksum the secret must pass.
    pub checksum: Option<Checksum>,
    /// Minimum Shannon entropy of the secret, in bits per character.
    pub min_entropy: Option<f64>,
    /// Lowercase substrings that mark a placeholder rather than a secret.
    pub exclude: Vec<String>,
    /// Lowercase substrings of the text before the secret (the name it is
    /// assigned to) that mark something other than a secret, such as
    /// `token_type`.
    pub exclude_names: Vec<String>,
    /// Whether a match may span lines.
    pub multiline: bool,
    /// Whether this is a heuristic, dropped where a specific rule matched.
    pub generic: bool,
    /// Whether the keywords match in any case.
    pub ignore_case: bool,
    /// Whether the gate's DLP runs this rule on traffic.
    pub traffic: bool,
    /// How sure a find of this rule is to be a credential.
    pub confidence: Confidence,
    /// Strings this rule must find and must not find.
    pub tests: Vectors,
}

/// How sure a detector's find is to be a credential rather than something
/// shaped like one. Ordered: `Low < Medium < High`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A heuristic (a keyword next to a high-entropy value): often
    /// something else.
    Low,
    /// A distinctive prefix with a loose body, or a keyword-anchored shape.
    Medium,
    /// A distinctive prefix with a checksum or a rigid structure, and
    /// Laissez's own checksummed tokens.
    High,
}

impl Confidence {
    /// Every level, lowest first.
    pub const ALL: [Confidence; 3] = [Confidence::Low, Confidence::Medium, Confidence::High];

    /// The level's name: `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// Whether a find of this confidence is kept when the scan asks for at
    /// least `minimum` (`--min-confidence`).
    pub fn meets(self, minimum: Confidence) -> bool {
        self >= minimum
    }
}

impl std::str::FromStr for Confidence {
    type Err = String;

    fn from_str(text: &str) -> Result<Confidence, String> {
        Confidence::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| {
                format!("confidence {text:?} is not one of \"high\", \"medium\", \"low\"")
            })
    }
}

impl std::fmt::Display for Confidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An offline checksum scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    /// GitHub's token format, which npm's tokens share: the last six
    /// characters are the base62 CRC-32 of the thirty random characters
    /// between the `_` and them.
    Github,
    /// Grafana's service account tokens: `glsa_`, 32 characters, `_`, then
    /// the CRC-32 of everything before that last `_`, as the hex of its four
    /// bytes in little-endian order.
    Grafana,
    /// Atlassian's API tokens (`ATATT3…`): everything up to and including
    /// the last `=` (or its percent-encoding, `%3D`), then the CRC-32 of
    /// the token up to that `=` as eight hex digits.
    Atlassian,
    /// Bech32 (BIP 173), as age's secret keys are written: a
    /// human-readable part, `1`, then data ending in a six-character
    /// checksum.
    Bech32,
}

impl Checksum {
    /// Whether `secret` passes this checksum.
    pub fn verify(self, secret: &[u8]) -> bool {
        match self {
            Checksum::Github => {
                let Some(separator) = secret.iter().position(|&b| b == b'_') else {
                    return false;
                };
                let tail = &secret[separator + 1..];
                if tail.len() != 36 {
                    return false;
                }
                let (random, check) = tail.split_at(30);
                base62_crc32(random) == check
            }
            Checksum::Grafana => {
                let Some(separator) = secret.iter().rposition(|&b| b == b'_') else {
                    return false;
                };
                let (covered, check) = (&secret[..separator], &secret[separator + 1..]);
                let crc = crc32fast::hash(covered).to_le_bytes();
                check.eq_ignore_ascii_case(hex::encode(crc).as_bytes())
            }
            Checksum::Atlassian => {
                // The checksum covers the '=' itself, which a URL carries
                // percent-encoded: the token is the same either way.
                let split = secret.len().checked_sub(8).and_then(|at| {
                    let (head, check) = secret.split_at(at);
                    let body = head
                        .strip_suffix(b"=")
                        .or_else(|| head.strip_suffix(b"%3D"))
                        .or_else(|| head.strip_suffix(b"%3d"))?;
                    Some((body, check))
                });
                let Some((body, check)) = split else {
                    return false;
                };
                let mut crc = crc32fast::Hasher::new();
                crc.update(body);
                crc.update(b"=");
                check.eq_ignore_ascii_case(hex::encode(crc.finalize().to_be_bytes()).as_bytes())
            }
            Checksum::Bech32 => bech32_valid(secret),
        }
    }
}

/// Whether `text` is a bech32 string whose checksum holds (BIP 173: one
/// case throughout, the last `1` separating the human-readable part from
/// data in the 32-character alphabet, of which the last six are the
/// checksum).
fn bech32_valid(text: &[u8]) -> bool {
    const ALPHABET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if text.iter().any(u8::is_ascii_uppercase) && text.iter().any(u8::is_ascii_lowercase) {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let Some(separator) = lower.iter().rposition(|&b| b == b'1') else {
        return false;
    };
    let (hrp, data) = (&lower[..separator], &lower[separator + 1..]);
    if hrp.is_empty() || data.len() < 6 || !hrp.iter().all(|b| (33..=126).contains(b)) {
        return false;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.iter().map(|b| b >> 5));
    values.push(0);
    values.extend(hrp.iter().map(|b| b & 31));
    for c in data {
        match ALPHABET.iter().position(|a| a == c) {
            // A position in a 32-entry table always fits in a u8.
            Some(v) => values.push(v as u8),
            None => return false,
        }
    }
    bech32_polymod(&values) == 1
}

/// BIP 173's checksum polynomial over 5-bit values.
fn bech32_polymod(values: &[u8]) -> u32 {
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    values.iter().fold(1u32, |check, &value| {
        let top = check >> 25;
        let mut next = ((check & 0x01ff_ffff) << 5) ^ u32::from(value);
        for (i, generator) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                next ^= generator;
            }
        }
        next
    })
}

/// Test vectors of one rule.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    /// Texts in which the rule must find a secret.
    #[serde(default)]
    pub valid: Vec<String>,
    /// Texts in which the rule must find nothing.
    #[serde(default)]
    pub invalid: Vec<String>,
}

/// A rules file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// One rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    description: String,
    keywords: Vec<String>,
    regex: String,
    #[serde(default)]
    secret_group: usize,
    checksum: Option<Checksum>,
    min_entropy: Option<f64>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_names: Vec<String>,
    #[serde(default)]
    multiline: bool,
    #[serde(default)]
    generic: bool,
    #[serde(default)]
    ignore_case: bool,
    #[serde(default = "yes")]
    traffic: bool,
    /// Read as text, so an unknown level is refused naming the rule.
    confidence: Option<String>,
    #[serde(default)]
    tests: Vectors,
}

fn yes() -> bool {
    true
}

/// Parses a user's rules file (`origin` names it in errors) and compiles its
/// rules; a rule without `confidence` is [`Confidence::Medium`].
pub fn parse(text: &str, origin: &str) -> Result<Vec<Rule>, Error> {
    parse_with(text, origin, Some(Confidence::Medium))
}

/// Parses and compiles the built-in rules, each of which must state its
/// confidence.
pub fn builtin() -> Result<Vec<Rule>, Error> {
    parse_with(BUILTIN_RULES, "built-in rules", None)
}

/// Parses a rules file; `default_confidence` is the level of a rule that
/// states none (`None`: every rule must state one).
fn parse_with(
    text: &str,
    origin: &str,
    default_confidence: Option<Confidence>,
) -> Result<Vec<Rule>, Error> {
    let file: RulesFile = toml::from_str(text).map_err(|e| Error::Rules {
        origin: origin.to_owned(),
        message: e.message().to_owned(),
    })?;
    file.rule
        .into_iter()
        .map(|spec| spec.compile(origin, default_confidence))
        .collect()
}

impl RuleSpec {
    fn compile(self, origin: &str, default_confidence: Option<Confidence>) -> Result<Rule, Error> {
        let fail = |message: String| Error::Rules {
            origin: origin.to_owned(),
            message: format!("rule '{}': {message}", self.id),
        };
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(fail(
                "an id is 1 to 64 lowercase letters, digits or '-'".into(),
            ));
        }
        if self.id.starts_with("laissez-") {
            return Err(fail("ids starting with 'laissez-' are reserved".into()));
        }
        if self.keywords.is_empty() || self.keywords.iter().any(|k| k.len() < 3) {
            return Err(fail(
                "give at least one keyword, each at least 3 characters, that every match contains"
                    .into(),
            ));
        }
        if self.tests.valid.is_empty() {
            return Err(fail(
                "give at least one test vector in tests.valid that the rule must find".into(),
            ));
        }
        let confidence = match (&self.confidence, default_confidence) {
            (Some(text), _) => text.parse().map_err(fail)?,
            (None, Some(default)) => default,
            (None, None) => {
                return Err(fail(
                    "give its confidence: \"high\", \"medium\" or \"low\"".into(),
                ));
            }
        };
        let regex = Regex::new(&self.regex).map_err(|e| fail(format!("bad regex: {e}")))?;
        if self.secret_group >= regex.captures_len() {
            return Err(fail(format!(
                "secret_group {} does not exist; the regex has {} groups",
                self.secret_group,
                regex.captures_len() - 1
            )));
        }
        Ok(Rule {
            keywords: self.keywords,
            regex,
            secret_group: self.secret_group,
            checksum: self.checksum,
            min_entropy: self.min_entropy,
            exclude: self
                .exclude
                .iter()
                .map(|e| e.to_ascii_lowercase())
                .collect(),
            exclude_names: self
                .exclude_names
                .iter()
                .map(|e| e.to_ascii_lowercase())
                .collect(),
            multiline: self.multiline,
            generic: self.generic,
            ignore_case: self.ignore_case,
            traffic: self.traffic,
            confidence,
            tests: self.tests,
            description: self.description,
            id: self.id,
        })
    }
}

impl Rule {
    /// Whether a candidate secret passes this rule's filters (placeholders,
    /// names that are not secrets', entropy); `name` is the matched text
    /// before the secret. The checksum is judged separately.
    pub fn accepts(&self, name: &[u8], secret: &[u8]) -> bool {
        if self.generic && (is_laissez_identifier(secret) || is_identifier_like(secret)) {
            return false;
        }
        if contains_any(secret, &self.exclude) || contains_any(name, &self.exclude_names) {
            return false;
        }
        match self.min_entropy {
            Some(min) => shannon_entropy(secret) >= min,
            None => true,
        }
    }
}

/// Whether `text`, lowercased, contains one of `needles` (lowercase).
fn contains_any(text: &[u8], needles: &[String]) -> bool {
    if needles.is_empty() {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    needles
        .iter()
        .any(|n| memchr::memmem::find(&lower, n.as_bytes()).is_some())
}

/// Whether `value` reads as a name rather than a secret: words of one case
/// (or capitalised) and short numbers joined by `_` or `.`, such as
/// `SERVER_HANDSHAKE_TRAFFIC_SECRET`, `client_secret_basic` or
/// `laissez.audit.write`. Random secrets mix cases and digits inside their
/// parts, so a generic rule's value that reads as a name is not reported.
/// Words joined by `-` are still reported: passphrases are written so.
pub fn is_identifier_like(value: &[u8]) -> bool {
    let parts: Vec<&[u8]> = value.split(|b| matches!(b, b'_' | b'.')).collect();
    let word = |part: &&[u8]| match part {
        [] => true,
        [first, rest @ ..] => {
            let lower = rest.iter().all(u8::is_ascii_lowercase);
            (first.is_ascii_alphabetic() && lower)
                || part.iter().all(u8::is_ascii_uppercase)
                || (part.len() <= 4 && part.iter().all(u8::is_ascii_digit))
        }
    };
    parts.len() >= 2
        && parts.iter().all(word)
        && parts
            .iter()
            .any(|p| p.len() >= 3 && p.iter().all(u8::is_ascii_alphabetic))
}

/// Whether `value` is a Laissez identifier (`tok_`, `usr_`, `pol_`… and 20
/// base62 characters): a name for a credential or principal, as audit
/// exports and API answers carry them, not a secret.
pub fn is_laissez_identifier(value: &[u8]) -> bool {
    let [a, b, c, b'_', rest @ ..] = value else {
        return false;
    };
    [a, b, c].iter().all(|x| x.is_ascii_lowercase())
        && rest.len() == 20
        && rest.iter().all(u8::is_ascii_alphanumeric)
}

/// Shannon entropy of `bytes`, in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// The six-character base62 CRC-32 of `bytes`, as GitHub and Laissez write it.
fn base62_crc32(bytes: &[u8]) -> [u8; 6] {
    laissez_token::checksum(bytes)
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_are_identifier_like_and_random_values_are_not() {
        for name in [
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "client_secret_basic",
            "laissez.audit.write",
            "Max_Age_Seconds",
        ] {
            assert!(is_identifier_like(name.as_bytes()), "{name}");
        }
        for value in [
            "Zm9vYmFyYmF6cXV4cXV1eA",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "9f86d081884c7d65-9a2feaa0c55ad015",
            "aB3dE5_gH7jK9mN1pQ",
            "abcdefghijklmnopqrst",
            "xK2_9pQ",
            "a1b2c3d4.e5f6g7h8.i9j0",
            "correct-horse-battery-staple",
        ] {
            assert!(!is_identifier_like(value.as_bytes()), "{value}");
        }
    }
    use super::*;

    #[test]
    fn github_checksum_accepts_only_matching_tokens() {
        assert!(Checksum::Github.verify(b"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"));
        assert!(!Checksum::Github.verify(b"ghp_Ky9Pf34qY6Nb3wWD25RQ4F5ZR3qa7y3gm1IM"));
        assert!(!Checksum::Github.verify(b"ghp_short"));
    }

    /// Synthetic tokens made by each scheme (which was checked against
    /// tokens published in public repositories), then with one character
    /// changed, and shapes with no checksum at all.
    #[test]
    fn grafana_and_atlassian_checksums_accept_only_matching_tokens() {
        let grafana = "glsa_4ic5ltrtfI5xi2fOIB6CSVRjVBtlJrJC_e5ca1646";
        assert!(Checksum::Grafana.verify(grafana.as_bytes()));
        assert!(Checksum::Grafana.verify(grafana.replace("e5ca", "E5CA").as_bytes()));
        assert!(!Checksum::Grafana.verify(grafana.replace("4ic5", "4ic6").as_bytes()));
        assert!(!Checksum::Grafana.verify(b"glsa_nochecksum"));
        assert!(!Checksum::Grafana.verify(b"glsa_4ic5ltrtfI5xi2fOIB6CSVRjVBtlJrJC_"));
        let atlassian = "ATATT3xFfGF0GsRZOyWYKOtTKWIpiF_BaxmtQSWYgLLwhVjTwQ_2AzeKjxuVPQD4xy_TymlGCscHFaveEA-52B43cirmXbsG8DEmcQBvvsTBQLY1PtSFu5lbb7IGb2ztzHC-fCmc6sFtfqCIQpghLfl41qrccyCKv--vA4_xFgp1Grkhbl4LDSF=5E46C8D5";
        assert!(Checksum::Atlassian.verify(atlassian.as_bytes()));
        assert!(Checksum::Atlassian.verify(atlassian.replace("C8D5", "c8d5").as_bytes()));
        assert!(!Checksum::Atlassian.verify(atlassian.replace("GsRZ", "GsRY").as_bytes()));
        assert!(!Checksum::Atlassian.verify(b"ATATT3xFfGF0nochecksum"));
        assert!(!Checksum::Atlassian.verify(b"ATATT3xFfGF0="));
        // In a URL the '=' is percent-encoded; the token is the same.
        let encoded = atlassian.replace("=5E46", "%3D5E46");
        assert!(Checksum::Atlassian.verify(encoded.as_bytes()));
        assert!(Checksum::Atlassian.verify(encoded.replace("%3D", "%3d").as_bytes()));
        assert!(!Checksum::Atlassian.verify(encoded.replace("GsRZ", "GsRY").as_bytes()));
        assert!(!Checksum::Atlassian.verify(atlassian.replace("=5E46", "%3E5E46").as_bytes()));
    }

    /// Synthetic age keys made by BIP 173's checksum (the implementation
    /// was checked against age's published fixture keys), one character
    /// changed, mixed case, and characters outside the alphabet.
    #[test]
    fn bech32_checksum_accepts_only_matching_keys() {
        let key = "AGE-SECRET-KEY-15FERYXHRDZ9M6Y09MR8WRERWZGJ6F8NTXVHXYRDLM5AAHN0T09NLEAJUME";
        assert!(Checksum::Bech32.verify(key.as_bytes()));
        assert!(Checksum::Bech32.verify(key.to_ascii_lowercase().as_bytes()));
        assert!(!Checksum::Bech32.verify(key.replace("5FER", "5FES").as_bytes()));
        assert!(!Checksum::Bech32.verify(key.replace("AJUME", "AJUMe").as_bytes()));
        assert!(!Checksum::Bech32.verify(key.replace("5FER", "5FEB").as_bytes()));
        assert!(!Checksum::Bech32.verify(b"AGE-SECRET-KEY-1"));
        assert!(!Checksum::Bech32.verify(b"no separator"));
    }

    #[test]
    fn laissez_identifiers_are_names_not_secrets() {
        let table: [(&[u8], bool); 7] = [
            (b"tok_3kT9aB7cD1eF5gH2iJ4k", true),
            (b"usr_00000000000000000000", true),
            (b"tok_3kT9aB7cD1eF5gH2iJ4", false),
            (b"tok_3kT9aB7cD1eF5gH2iJ4kX", false),
            (b"TOK_3kT9aB7cD1eF5gH2iJ4k", false),
            (b"tok-3kT9aB7cD1eF5gH2iJ4k", false),
            (b"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1", false),
        ];
        for (value, expected) in table {
            assert_eq!(
                is_laissez_identifier(value),
                expected,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn entropy_ranks_random_above_repetitive() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!(shannon_entropy(b"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1") > 4.0);
    }

    /// One rule with `confidence` set to `level` (or left out).
    fn rule_with_confidence(level: Option<&str>) -> String {
        let confidence = level.map_or(String::new(), |l| format!("confidence = \"{l}\"\n"));
        format!(
            "[[rule]]\nid = \"x-key\"\ndescription = \"x\"\n{confidence}\
             keywords = [\"xkey\"]\nregex = 'xkey_[a-z]{{8}}'\ntests.valid = [\"xkey_abcdefgh\"]\n"
        )
    }

    #[test]
    fn confidence_is_parsed_defaults_to_medium_for_users_and_is_required_built_in() {
        for (level, expected) in [
            (Some("high"), Confidence::High),
            (Some("medium"), Confidence::Medium),
            (Some("low"), Confidence::Low),
            (None, Confidence::Medium),
        ] {
            let rules = parse(&rule_with_confidence(level), "extra.toml").unwrap();
            assert_eq!(rules[0].confidence, expected, "{level:?}");
        }
        // Built-in rules must say it.
        let error = parse_with(&rule_with_confidence(None), "built-in rules", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rule 'x-key'") && error.contains("confidence"),
            "{error}"
        );
        // An unknown level is refused, naming the rule and the levels.
        for wrong in ["High", "certain", ""] {
            let error = parse(&rule_with_confidence(Some(wrong)), "extra.toml")
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("extra.toml: rule 'x-key': confidence")
                    && error.contains("\"high\", \"medium\", \"low\""),
                "{error}"
            );
        }
    }

    #[test]
    fn every_builtin_rule_states_its_confidence() {
        let rules = builtin().unwrap();
        assert_eq!(
            rules.len(),
            BUILTIN_RULES.matches("\n[[rule]]").count(),
            "every rule compiled"
        );
        assert_eq!(
            BUILTIN_RULES.matches("\nconfidence = ").count(),
            rules.len(),
            "one confidence line per rule"
        );
        // Heuristics are never more than low.
        assert!(
            rules
                .iter()
                .filter(|r| r.generic)
                .all(|r| r.confidence == Confidence::Low)
        );
    }

    #[test]
    fn a_find_meets_a_minimum_at_or_below_its_confidence() {
        use Confidence::{High, Low, Medium};
        let table = [
            (Low, Low, true),
            (Low, Medium, false),
            (Low, High, false),
            (Medium, Low, true),
            (Medium, Medium, true),
            (Medium, High, false),
            (High, Low, true),
            (High, Medium, true),
            (High, High, true),
        ];
        for (find, minimum, kept) in table {
            assert_eq!(
                find.meets(minimum),
                kept,
                "{find} at --min-confidence {minimum}"
            );
        }
        for level in Confidence::ALL {
            assert_eq!(level.as_str().parse::<Confidence>(), Ok(level));
        }
    }

    #[test]
    fn an_excluded_name_drops_the_value_assigned_to_it() {
        let rules = builtin().unwrap();
        let generic = rules
            .iter()
            .find(|r| r.id == "generic-secret-assignment")
            .unwrap();
        let secret = b"Zq8Lm2Xw7Kt4Rv9Nb3Hd6Jf1";
        assert!(generic.accepts(b"client_secret = \"", secret));
        assert!(!generic.accepts(b"token_type = \"", secret));
        assert!(!generic.accepts(b"secretType: \"", secret));
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        let no_vectors = r#"
            [[rule]]
            id = "x-key"
            description = "x"
            keywords = ["xkey"]
            regex = 'xkey_[a-z]{8}'
        "#;
        let error = parse(no_vectors, "extra.toml").unwrap_err().to_string();
        assert!(error.contains("tests.valid"), "{error}");
        let bad_regex = r#"
            [[rule]]
            id = "x-key"
            description = "x"
            keywords = ["xkey"]
            regex = 'xkey_[a-z'
            tests.valid = ["xkey_abcdefgh"]
        "#;
        let error = parse(bad_regex, "extra.toml").unwrap_err().to_string();
        assert!(error.contains("bad regex"), "{error}");
        let unknown_field = r#"
            [[rule]]
            id = "x-key"
            description = "x"
            keywords = ["xkey"]
            regex = 'xkey'
            severity = "high"
            tests.valid = ["xkey"]
        "#;
        assert!(parse(unknown_field, "extra.toml").is_err());
    }
}
