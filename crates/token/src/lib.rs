//! The Laissez scannable credential format.
//!
//! A token is `prefix "_" body checksum`: the prefix is a namespace (`lz` by
//! default) followed by a two-letter [`Kind`], the body is 40 characters drawn
//! uniformly from the base62 alphabet by the operating system's CSPRNG, and the
//! checksum is the CRC-32/ISO-HDLC of everything before it, in base62, exactly
//! six characters, left-padded with `0`. The format is normative: see
//! `DESIGN.md`, "Scannable credential format".
//!
//! This crate does no I/O beyond asking the OS for random bytes. Parsing checks
//! the checksum offline, so a token with one changed character is rejected
//! before anything looks it up. A parsed [`Token`] never prints its secret
//! through `Debug`.

use std::fmt;

/// Number of random characters in a token's body.
pub const BODY_LEN: usize = 40;
/// Number of characters in a token's checksum.
pub const CHECKSUM_LEN: usize = 6;
/// The base62 alphabet, in the order the checksum encoding uses.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "lz";
/// Longest namespace accepted.
pub const MAX_NAMESPACE_LEN: usize = 16;

/// What a token is for; the two letters after the namespace in its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `ut`: a user API token a human creates for their own scripts.
    User,
    /// `at`: an account API token, owned by the account with a named human owner.
    Account,
    /// `tt`: a temporary credential for one agent task.
    Task,
    /// `rt`: an OAuth refresh token.
    Refresh,
    /// `cs`: an OAuth client secret.
    ClientSecret,
}

impl Kind {
    /// Every kind, in prefix order.
    pub const ALL: [Kind; 5] = [
        Kind::User,
        Kind::Account,
        Kind::Task,
        Kind::Refresh,
        Kind::ClientSecret,
    ];

    /// The two-letter code that appears in the prefix.
    pub fn code(self) -> &'static str {
        match self {
            Kind::User => "ut",
            Kind::Account => "at",
            Kind::Task => "tt",
            Kind::Refresh => "rt",
            Kind::ClientSecret => "cs",
        }
    }

    /// The kind with this two-letter code, if any.
    pub fn from_code(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// A short human description of the kind.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::User => "user API token",
            Kind::Account => "account API token",
            Kind::Task => "task token",
            Kind::Refresh => "OAuth refresh token",
            Kind::ClientSecret => "OAuth client secret",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A token namespace: 1 to 16 lowercase ASCII letters or digits, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// Parses a namespace, refusing anything outside `[a-z][a-z0-9]{0,15}`.
    pub fn new(name: &str) -> Result<Namespace, Error> {
        if is_namespace(name.as_bytes()) {
            Ok(Namespace(name.to_owned()))
        } else {
            Err(Error::BadNamespace)
        }
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Namespace {
        Namespace(DEFAULT_NAMESPACE.to_owned())
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A well-formed token whose checksum has been verified.
///
/// Holding a `Token` proves only that the text is a syntactically valid Laissez
/// token; whether it is live is for the server to say. `Debug` shows the
/// prefix and nothing secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token {
    text: String,
    namespace_len: usize,
    kind: Kind,
}

impl Token {
    /// Generates a fresh token of `kind` in `namespace` from the OS CSPRNG.
    pub fn generate(namespace: &Namespace, kind: Kind) -> Result<Token, Error> {
        let mut text = String::with_capacity(namespace.0.len() + 3 + BODY_LEN + CHECKSUM_LEN);
        text.push_str(&namespace.0);
        text.push_str(kind.code());
        text.push('_');
        push_random(&mut text, BODY_LEN)?;
        let checksum = checksum(text.as_bytes());
        // The checksum is ASCII from ALPHABET.
        text.push_str(std::str::from_utf8(&checksum).unwrap_or_default());
        Ok(Token {
            text,
            namespace_len: namespace.0.len(),
            kind,
        })
    }

    /// Parses `text` as a token and verifies its checksum offline.
    pub fn parse(text: &str) -> Result<Token, Error> {
        let bytes = text.as_bytes();
        let separator = bytes
            .iter()
            .position(|&b| b == b'_')
            .ok_or(Error::MissingSeparator)?;
        let prefix = &bytes[..separator];
        if prefix.len() < 3 {
            return Err(Error::BadPrefix);
        }
        let (namespace, code) = prefix.split_at(prefix.len() - 2);
        if !is_namespace(namespace) {
            return Err(Error::BadPrefix);
        }
        let kind = std::str::from_utf8(code)
            .ok()
            .and_then(Kind::from_code)
            .ok_or(Error::UnknownKind)?;
        let tail = &bytes[separator + 1..];
        if tail.len() != BODY_LEN + CHECKSUM_LEN {
            return Err(Error::BadLength {
                expected: BODY_LEN + CHECKSUM_LEN,
                found: tail.len(),
            });
        }
        if let Some(position) = tail.iter().position(|&b| !is_alphabet(b)) {
            return Err(Error::BadCharacter {
                position: separator + 1 + position,
            });
        }
        let signed_len = separator + 1 + BODY_LEN;
        if checksum(&bytes[..signed_len]) != bytes[signed_len..] {
            return Err(Error::ChecksumMismatch);
        }
        Ok(Token {
            text: text.to_owned(),
            namespace_len: namespace.len(),
            kind,
        })
    }

    /// The whole token. This is the secret: never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The kind named in the prefix.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The namespace named in the prefix.
    pub fn namespace(&self) -> &str {
        &self.text[..self.namespace_len]
    }

    /// The prefix including the trailing `_`, e.g. `lzut_`. Not secret.
    pub fn prefix(&self) -> &str {
        &self.text[..self.namespace_len + 3]
    }

    /// The last four characters, shown in listings to tell tokens apart. Not secret.
    pub fn last4(&self) -> &str {
        &self.text[self.text.len() - 4..]
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…{})", self.prefix(), self.last4())
    }
}

/// Why a text is not a valid token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No `_` separates the prefix from the body.
    #[error("not a token: no '_' after the prefix")]
    MissingSeparator,
    /// The prefix is not a namespace (lowercase letters and digits) followed by a kind.
    #[error(
        "not a token: the prefix must be a lowercase namespace followed by a kind, like 'lzut_'"
    )]
    BadPrefix,
    /// The namespace is not `[a-z][a-z0-9]{0,15}`.
    #[error("a namespace is 1 to 16 lowercase letters or digits, starting with a letter")]
    BadNamespace,
    /// The two letters before `_` are not a known kind.
    #[error("not a token: unknown kind (expected one of ut, at, tt, rt, cs before the '_')")]
    UnknownKind,
    /// The part after `_` has the wrong length.
    #[error("not a token: {found} characters after the prefix, expected {expected}")]
    BadLength {
        /// Characters a token has after its prefix.
        expected: usize,
        /// Characters this text has after its prefix.
        found: usize,
    },
    /// A character outside the base62 alphabet.
    #[error("not a token: character {position} is outside the base62 alphabet")]
    BadCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// The checksum does not match: a typo, a truncation, or not a real token.
    #[error("invalid token: the checksum does not match (mistyped or altered)")]
    ChecksumMismatch,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator is unavailable")]
    RandomUnavailable,
}

/// `len` characters drawn uniformly from [`ALPHABET`] by the OS CSPRNG (for
/// identifiers and other non-token randomness).
pub fn random_base62(len: usize) -> Result<String, Error> {
    let mut text = String::with_capacity(len);
    push_random(&mut text, len)?;
    Ok(text)
}

fn push_random(text: &mut String, len: usize) -> Result<(), Error> {
    let mut filled = 0;
    let mut random = [0u8; 64];
    while filled < len {
        getrandom::fill(&mut random).map_err(|_| Error::RandomUnavailable)?;
        // Rejection sampling: 248 = 4 * 62, so `byte % 62` is uniform on the
        // bytes we keep.
        for &byte in random.iter().filter(|&&b| b < 248) {
            if filled == len {
                break;
            }
            text.push(char::from(ALPHABET[usize::from(byte % 62)]));
            filled += 1;
        }
    }
    Ok(())
}

/// The six-character base62 CRC-32 checksum of `signed` (prefix, `_` and body).
pub fn checksum(signed: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(signed);
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// Whether `byte` belongs to the base62 alphabet.
pub fn is_alphabet(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

fn is_namespace(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'a'..=b'z'))
        && name.len() <= MAX_NAMESPACE_LEN
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_left_padded() {
        // crc32("") is 0, which encodes as six zeros.
        assert_eq!(&checksum(b""), b"000000");
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = Token::generate(&Namespace::default(), Kind::User).unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()[5..40]), "{shown}");
        assert!(shown.starts_with("Token(lzut_"));
    }

    #[test]
    fn namespace_rules() {
        assert!(Namespace::new("acme").is_ok());
        assert!(Namespace::new("a1").is_ok());
        for bad in ["", "1a", "Acme", "ac-me", "abcdefghijklmnopq"] {
            assert_eq!(Namespace::new(bad), Err(Error::BadNamespace), "{bad}");
        }
    }

    #[test]
    fn parse_never_panics_on_odd_text() {
        for text in [
            "",
            "_",
            "lz_",
            "lzut_",
            "ut_",
            "é_",
            "lzut_é",
            "lzutlzut",
            "__________",
        ] {
            assert!(Token::parse(text).is_err(), "{text}");
        }
    }
}
