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
    /// The server did not answer in time.
    #[error(
        "the Laissez server at {url} did not answer within {seconds} s; check it is running, or raise --timeout (LAISSEZ_TIMEOUT)"
    )]
    Timeout {
        /// The server URL.
        url: String,
        /// The timeout.
        seconds: f64,
    },
    /// Something answered that is not a Laissez server.
    #[error(
        "not a Laissez server at {url}: HTTP {status} {media_type}; check --server (LAISSEZ_URL)"
    )]
    NotLaissez {
        /// The server URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The answer's media type.
        media_type: String,
    },
    /// The server answered with a problem document.
    #[error("{detail} ({status}){hint}")]
    Problem {
        /// HTTP status.
        status: u16,
        /// The problem's detail.
        detail: String,
        /// The OAuth-style error code (`error`), when it has one.
        code: Option<String>,
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
    /// A token was given (--token or LAISSEZ_TOKEN) but is empty.
    #[error(
        "the token given by --token or LAISSEZ_TOKEN is empty; set it to a token, or unset LAISSEZ_TOKEN to use the data folder's admin token"
    )]
    EmptyToken,
    /// Something local went wrong (input, files).
    #[error("{0}")]
    Local(String),
    /// The server could not start.
    #[error("{0}")]
    Start(#[from] laissez_server::run::StartError),
    /// A check answered deny (exit 1 without an error line).
    #[error("denied")]
    Denied,
    /// The command `task run` ran exited with this code (passed on
    /// without an error line; 128 + the signal when a signal ended it).
    #[error("the command exited with code {0}")]
    Exited(u8),
}

impl CliError {
    /// The error as JSON, for `--json` mode: `{"error": {"message", "status"?}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "message": self.to_string() });
        match self {
            CliError::Problem {
                status,
                detail,
                code,
                ..
            } => {
                error["status"] = (*status).into();
                error["detail"] = detail.as_str().into();
                if let Some(code) = code {
                    error["code"] = code.as_str().into();
                }
            }
            CliError::NotLaissez { status, .. } => error["status"] = (*status).into(),
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
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
