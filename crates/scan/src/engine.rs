//! The matching engine: finds candidate secrets in a byte slice.
//!
//! One Aho-Corasick automaton holds every Laissez prefix (each configured
//! namespace times each kind) and every rule's keywords; its SIMD prefilter
//! skips over text that contains none of them. Only around a hit does the
//! engine do more: a Laissez candidate is checked byte by byte and its
//! checksum verified, and a rule's regex runs on the line that holds the
//! keyword (or a bounded window after it for multi-line rules). A text without
//! any literal costs one prefilter pass and nothing else.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use laissez_token::{BODY_LEN, CHECKSUM_LEN, Kind, Namespace};

use crate::Error;
use crate::rules::{self, Confidence, Rule};

/// Which rules an engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSet {
    /// Laissez tokens only: the fastest mode.
    Laissez,
    /// Laissez tokens and every third-party rule.
    All,
    /// Laissez tokens and the rules fit for live traffic (the gate's DLP):
    /// no heuristics, no JWTs.
    Traffic,
}

/// A kind of secret the engine reports: a Laissez token kind or a rule.
#[derive(Clone, Debug)]
pub struct Detector {
    /// Stable id, e.g. `laissez-user-token` or `github-token`.
    pub id: String,
    /// What it finds, for people.
    pub description: String,
    /// The Laissez token kind, for Laissez detectors.
    pub kind: Option<Kind>,
    /// How sure its finds are: [`Confidence::High`] for Laissez tokens
    /// (checksummed), the rule's own for rules.
    pub confidence: Confidence,
}

/// One candidate secret in a scanned text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index of the detector in [`Engine::detectors`].
    pub detector: usize,
    /// Byte range of the secret.
    pub start: usize,
    /// End of the secret (exclusive).
    pub end: usize,
    /// Byte range of the whole match (the secret plus its context, e.g. a
    /// variable name); streaming uses it to know what is complete.
    pub match_start: usize,
    /// End of the whole match (exclusive).
    pub match_end: usize,
    /// False when the secret has a checksum and it fails: not a credential,
    /// reported only on request.
    pub valid: bool,
}

/// What a literal in the automaton stands for.
#[derive(Clone, Debug)]
enum Literal {
    /// A Laissez prefix: this detector's kind, prefix length in bytes.
    Laissez { detector: usize },
    /// A keyword of these rules (indices into `Engine::rules`).
    Keyword(Vec<usize>),
}

/// Literals matched exactly or in any case, and what each stands for.
#[derive(Clone, Debug)]
struct Literals {
    automaton: AhoCorasick,
    meaning: Vec<Literal>,
}

impl Literals {
    fn build(
        patterns: &[String],
        meaning: Vec<Literal>,
        ignore_case: bool,
    ) -> Result<Option<Literals>, Error> {
        if patterns.is_empty() {
            return Ok(None);
        }
        // Leftmost-first keeps the SIMD (Teddy) prefilter, which the standard
        // overlapping semantics lose; the scan restarts one byte after each
        // match's start, so keywords inside others are still found.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .ascii_case_insensitive(ignore_case)
            .build(patterns)
            .map_err(|e| Error::Config(format!("cannot build the literal matcher: {e}")))?;
        Ok(Some(Literals { automaton, meaning }))
    }
}

/// A compiled scanner: detectors, rules and the literal automata.
#[derive(Clone, Debug)]
pub struct Engine {
    detectors: Vec<Detector>,
    rules: Vec<Rule>,
    /// Laissez prefixes and case-sensitive keywords, in groups small enough
    /// for the SIMD (Teddy) prefilter: one fast pass each beats one pass
    /// without it.
    exact: Vec<Literals>,
    /// Keywords matched in any case, if any rule has them.
    folded: Option<Literals>,
    /// Longest whole match a rule can produce, for streaming.
    max_match_len: usize,
    /// Prefixes of checksummed formats (Laissez prefixes, keywords of rules
    /// with a checksum): a generic rule never reports a secret starting with
    /// one, since the checksum alone decides whether those are credentials.
    checksummed_prefixes: Vec<Vec<u8>>,
}

/// Longest line a single-line rule looks at on each side of its keyword.
const LINE_WINDOW: usize = 4096;
/// How far after its keyword a multi-line rule may match.
const MULTILINE_WINDOW: usize = 16 * 1024;

impl Engine {
    /// Builds an engine for `namespaces` (at least one) and `set`, with
    /// `extra` rules added after the built-in ones.
    pub fn new(namespaces: &[Namespace], set: RuleSet, extra: Vec<Rule>) -> Result<Engine, Error> {
        if namespaces.is_empty() {
            return Err(Error::Config("give at least one token namespace".into()));
        }
        let mut detectors: Vec<Detector> = Kind::ALL
            .into_iter()
            .map(|kind| Detector {
                id: laissez_detector_id(kind).to_owned(),
                description: format!("Laissez {}", kind.describe()),
                kind: Some(kind),
                confidence: Confidence::High,
            })
            .collect();
        let mut rules = match set {
            RuleSet::Laissez => Vec::new(),
            RuleSet::All => rules::builtin()?,
            RuleSet::Traffic => rules::builtin()?
                .into_iter()
                .filter(|r| r.traffic)
                .collect(),
        };
        for rule in extra {
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(Error::Config(format!(
                    "rule '{}' is defined twice; give added rules new ids",
                    rule.id
                )));
            }
            rules.push(rule);
        }
        // Case-sensitive literals, in groups; a rule's keywords all go in one
        // group, so each rule still sees its keywords in order.
        let mut groups: Vec<(Vec<String>, Vec<Literal>)> = vec![(Vec::new(), Vec::new())];
        let mut folded_patterns: Vec<String> = Vec::new();
        let mut folded_literals = Vec::new();
        for namespace in namespaces {
            for (detector, kind) in Kind::ALL.into_iter().enumerate() {
                groups[0]
                    .0
                    .push(format!("{}{}_", namespace.as_str(), kind.code()));
                groups[0].1.push(Literal::Laissez { detector });
            }
        }
        let mut checksummed_prefixes: Vec<Vec<u8>> =
            groups[0].0.iter().map(|p| p.as_bytes().to_vec()).collect();
        for (index, rule) in rules.iter().enumerate() {
            detectors.push(Detector {
                id: rule.id.clone(),
                description: rule.description.clone(),
                kind: None,
                confidence: rule.confidence,
            });
            let (patterns, literals) = if rule.ignore_case {
                (&mut folded_patterns, &mut folded_literals)
            } else {
                let full = groups
                    .last()
                    .is_some_and(|(p, _)| p.len() + rule.keywords.len() > GROUP_PATTERNS);
                if full {
                    groups.push((Vec::new(), Vec::new()));
                }
                let Some((patterns, literals)) = groups.last_mut() else {
                    unreachable!("groups starts with one group")
                };
                (patterns, literals)
            };
            add_keywords(rule, index, patterns, literals);
        }
        // Any kind code, known or not: `<namespace>??_` is Laissez's shape.
        checksummed_prefixes.extend(
            namespaces
                .iter()
                .map(|n| format!("{}??_", n.as_str()).into_bytes()),
        );
        for rule in rules.iter().filter(|r| r.checksum.is_some()) {
            checksummed_prefixes.extend(
                rule.keywords
                    .iter()
                    .map(|k| k.to_ascii_lowercase().into_bytes()),
            );
        }
        let mut exact = Vec::with_capacity(groups.len());
        for (patterns, literals) in groups {
            exact.extend(Literals::build(&patterns, literals, false)?);
        }
        if exact.is_empty() {
            return Err(Error::Config("no literals to match".into()));
        }
        let folded = Literals::build(&folded_patterns, folded_literals, true)?;
        let max_match_len = if rules.is_empty() {
            namespaces
                .iter()
                .map(|n| n.as_str().len())
                .max()
                .unwrap_or(2)
                + 3
                + BODY_LEN
                + CHECKSUM_LEN
                + 2
        } else {
            MULTILINE_WINDOW + LINE_WINDOW
        };
        Ok(Engine {
            detectors,
            rules,
            exact,
            folded,
            max_match_len,
            checksummed_prefixes,
        })
    }

    /// Every detector, Laissez kinds first.
    pub fn detectors(&self) -> &[Detector] {
        &self.detectors
    }

    /// The longest whole match any detector produces: a streaming scanner
    /// holds back this many bytes so a secret split across chunks is found.
    pub fn max_match_len(&self) -> usize {
        self.max_match_len
    }

    /// Where a multi-line match may have begun without ending yet: the last
    /// keyword of a multi-line rule in `text` from which its pattern does not
    /// match, unless one of `hits` already covers it.
    pub fn open_block(&self, text: &[u8], hits: &[Hit]) -> Option<usize> {
        let mut open = None;
        for (index, rule) in self.rules.iter().enumerate().filter(|(_, r)| r.multiline) {
            for keyword in &rule.keywords {
                let found = if rule.ignore_case {
                    rfind_ignore_case(text, keyword.as_bytes())
                } else {
                    memchr::memmem::rfind(text, keyword.as_bytes())
                };
                let Some(at) = found else {
                    continue;
                };
                let detector = Kind::ALL.len() + index;
                let covered = hits
                    .iter()
                    .any(|h| h.detector == detector && h.match_start <= at && at < h.match_end);
                if !covered && !rule.regex.is_match(&text[at..]) {
                    open = Some(open.map_or(at, |o: usize| o.min(at)));
                }
            }
        }
        open
    }

    /// Finds every candidate in `text`, valid or not, ordered by position.
    /// Generic matches that overlap a specific one (valid or not) are dropped.
    pub fn scan(&self, text: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        // Per rule: the end of the last window its regex already ran over.
        let mut evaluated_until = vec![0usize; self.rules.len()];
        // Each rule's keywords are in one of the two automata, so each rule
        // still sees its keywords in order.
        for literals in self.exact.iter().chain(&self.folded) {
            self.scan_literals(literals, text, &mut evaluated_until, &mut hits);
        }
        settle(&self.rules, &self.detectors, hits)
    }

    fn scan_literals(
        &self,
        literals: &Literals,
        text: &[u8],
        evaluated_until: &mut [usize],
        hits: &mut Vec<Hit>,
    ) {
        // Each search starts one byte after the last keyword's start, not
        // after its end: a keyword of one rule inside another rule's (`eyJ`
        // in `sk.eyJ`) is still seen. Keywords never start one another
        // across rules (a test holds the built-in rules to it), so one match
        // per position misses none.
        let mut at = 0;
        while let Some(found) = literals.automaton.find(Input::new(text).range(at..)) {
            at = found.start() + 1;
            match &literals.meaning[found.pattern().as_usize()] {
                Literal::Laissez { detector } => {
                    if let Some(hit) =
                        laissez_candidate(text, found.start(), found.end(), *detector)
                    {
                        hits.push(hit);
                    }
                }
                Literal::Keyword(owners) => {
                    for &rule_index in owners {
                        let rule = &self.rules[rule_index];
                        let (from, to) = window(text, found.start(), rule.multiline);
                        if rule.multiline {
                            // Keywords inside a match already found add nothing.
                            if found.start() < evaluated_until[rule_index] {
                                continue;
                            }
                            let last = self.run_rule(rule_index, text, from, to, hits);
                            evaluated_until[rule_index] = last.unwrap_or(found.end());
                        } else {
                            // Another keyword on a line already looked at.
                            if to <= evaluated_until[rule_index] {
                                continue;
                            }
                            self.run_rule(rule_index, text, from, to, hits);
                            evaluated_until[rule_index] = to;
                        }
                    }
                }
            }
        }
    }

    /// Runs one rule's regex over `text[from..to]`; returns the end of the
    /// last match, if any.
    fn run_rule(
        &self,
        rule_index: usize,
        text: &[u8],
        from: usize,
        to: usize,
        hits: &mut Vec<Hit>,
    ) -> Option<usize> {
        let rule = &self.rules[rule_index];
        let window = &text[from..to];
        let mut last_end = None;
        for captures in rule.regex.captures_iter(window) {
            let (Some(whole), Some(secret)) = (captures.get(0), captures.get(rule.secret_group))
            else {
                continue;
            };
            last_end = Some(from + whole.end());
            if rule.generic
                && self.checksummed_prefixes.iter().any(|prefix| {
                    secret.as_bytes().len() >= prefix.len()
                        && secret.as_bytes()[..prefix.len()]
                            .iter()
                            .zip(prefix)
                            .all(|(a, b)| *b == b'?' || a.eq_ignore_ascii_case(b))
                })
            {
                continue;
            }
            let name = &window[whole.start()..secret.start()];
            if !rule.accepts(name, secret.as_bytes()) {
                continue;
            }
            let valid = rule
                .checksum
                .is_none_or(|checksum| checksum.verify(secret.as_bytes()));
            hits.push(Hit {
                detector: Kind::ALL.len() + rule_index,
                start: from + secret.start(),
                end: from + secret.end(),
                match_start: from + whole.start(),
                match_end: from + whole.end(),
                valid,
            });
        }
        last_end
    }
}

/// The detector id of a Laissez token kind.
pub fn laissez_detector_id(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "laissez-user-token",
        Kind::Account => "laissez-account-token",
        Kind::Task => "laissez-task-token",
        Kind::Refresh => "laissez-refresh-token",
        Kind::ClientSecret => "laissez-client-secret",
    }
}

/// Checks a Laissez prefix found at `start..prefix_end`: a word boundary
/// before it, exactly 46 base62 characters after it and a boundary after
/// those; then the checksum decides whether it is valid.
fn laissez_candidate(text: &[u8], start: usize, prefix_end: usize, detector: usize) -> Option<Hit> {
    if start > 0 && text[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    // The automaton may be case-insensitive (when rules are loaded); a
    // prefix is lowercase.
    if text[start..prefix_end]
        .iter()
        .any(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    let end = prefix_end + BODY_LEN + CHECKSUM_LEN;
    let tail = text.get(prefix_end..end)?;
    if !tail.iter().all(|&b| laissez_token::is_alphabet(b)) {
        return None;
    }
    if text.get(end).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let signed = prefix_end + BODY_LEN;
    let valid = laissez_token::checksum(&text[start..signed]) == text[signed..end];
    Some(Hit {
        detector,
        start,
        end,
        match_start: start,
        match_end: end,
        valid,
    })
}

/// The bytes a rule's regex runs over for a keyword at `at`: its line
/// (bounded), or for multi-line rules from the line's start to a bounded
/// distance after the keyword.
fn window(text: &[u8], at: usize, multiline: bool) -> (usize, usize) {
    let floor = at.saturating_sub(LINE_WINDOW);
    let from = memchr::memrchr(b'\n', &text[floor..at]).map_or(floor, |i| floor + i + 1);
    let to = if multiline {
        (at + MULTILINE_WINDOW).min(text.len())
    } else {
        let ceiling = (at + LINE_WINDOW).min(text.len());
        memchr::memchr(b'\n', &text[at..ceiling]).map_or(ceiling, |i| at + i)
    };
    (from, to)
}

/// Case-sensitive literals in one automaton at most: above this Teddy, the
/// SIMD prefilter, is not used (aho-corasick's packed searcher takes fewer
/// than 128, and verifies fewer false candidates with fewer).
const GROUP_PATTERNS: usize = 48;

/// Adds `rule`'s keywords to one automaton's literals; a keyword already
/// there as another rule's gains this rule as an owner.
fn add_keywords(
    rule: &Rule,
    index: usize,
    patterns: &mut Vec<String>,
    literals: &mut Vec<Literal>,
) {
    for keyword in &rule.keywords {
        let keyword = if rule.ignore_case {
            keyword.to_ascii_lowercase()
        } else {
            keyword.clone()
        };
        let existing = patterns
            .iter()
            .position(|p| *p == keyword)
            .filter(|&i| matches!(literals[i], Literal::Keyword(_)));
        match existing {
            Some(i) => {
                if let Literal::Keyword(owners) = &mut literals[i] {
                    owners.push(index);
                }
            }
            None => {
                patterns.push(keyword);
                literals.push(Literal::Keyword(vec![index]));
            }
        }
    }
}

/// Orders hits, removes duplicates of one span (keeping a specific rule's),
/// and drops generic hits that overlap a specific one.
fn settle(rules: &[Rule], detectors: &[Detector], mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() < 2 {
        return hits;
    }
    let is_generic = |hit: &Hit| {
        detectors[hit.detector].kind.is_none() && rules[hit.detector - Kind::ALL.len()].generic
    };
    // Of hits on one span, a specific rule's is kept whatever the rules'
    // order: rules added after the generic one must not lose to it.
    hits.sort_by_key(|h| (h.start, is_generic(h), h.detector));
    hits.dedup_by(|later, earlier| later.start == earlier.start && later.end == earlier.end);
    let specific: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| !is_generic(h))
        .map(|h| (h.start, h.end))
        .collect();
    hits.retain(|hit| {
        !is_generic(hit)
            || !specific
                .iter()
                .any(|&(start, end)| start < hit.end && hit.start < end)
    });
    hits
}

/// The last position of `needle` in `haystack`, ignoring ASCII case.
fn rfind_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}
