//! Fuzz targets for the parsers that read untrusted input, and the driver
//! that runs them.
//!
//! Each target is a plain `fn(&[u8])` of a few lines: it feeds the bytes to
//! one parser and asserts the properties that must hold for every input (no
//! panic, and where a parser accepts something, that the accepted value is
//! consistent). Because targets are plain functions, any engine can drive
//! them; this crate ships its own mutation-based driver ([`driver`]) so they
//! run on the stable toolchain, in CI, with seed corpora and crash
//! reproducers kept in `fuzz/corpus/<target>/`.

pub mod driver;
pub mod targets;

/// One fuzz target: its name (also its corpus folder) and its body.
pub struct Target {
    /// The name, e.g. `token_parse`.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Fragments the mutator splices in (tokens of the format being parsed).
    pub dictionary: &'static [&'static [u8]],
}

/// Every target.
pub fn all() -> &'static [Target] {
    targets::ALL
}

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    all().iter().find(|t| t.name == name)
}
