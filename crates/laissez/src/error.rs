//! The CLI's error type: every failure becomes one line on stderr and a
//! non-zero exit.

use std::fmt;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached.
    #[error(
        "cannot reach the Laissez server at {url} ({why}); start it with `laissez serve` or pass --server"
    )]
    Unreachable {
        /// The server URL.
        url: String,
        /// The transport error.
        why: String,
    },
    /// The server answered with a problem document.
    #[error("{detail} ({status}){hint}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// The problem's detail.
        detail: String,
        /// Extra advice, possibly empty.
        hint: Hint,
    },
    /// The server's answer was not what the CLI expected.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    /// No token was given and none could be found.
    #[error(
        "no token: pass --token or set LAISSEZ_TOKEN (beside a local server, {0} is read automatically)"
    )]
    NoToken(String),
    /// Something local went wrong (input, files).
    #[error("{0}")]
    Local(String),
    /// The server could not start.
    #[error("{0}")]
    Start(#[from] laissez_server::run::StartError),
    /// A check answered deny (exit 1 without an error line).
    #[error("denied")]
    Denied,
}

/// Advice appended to a problem.
#[derive(Debug, Default)]
pub struct Hint(pub Option<&'static str>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}
