//! The store's error type.

/// Why a store operation failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The row to change does not exist.
    #[error("{what} '{key}' not found")]
    NotFound {
        /// What kind of row.
        what: &'static str,
        /// The id or name looked for.
        key: String,
    },
    /// The change would break a uniqueness or state rule.
    #[error("{0}")]
    Conflict(String),
    /// The database could not be opened, read or written (disk full,
    /// read-only, locked, missing).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be read back as a domain value.
    #[error("the store holds a row it cannot read: {0}")]
    Corrupt(String),
    /// The store was shut down.
    #[error("the store is shut down")]
    Closed,
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Error {
        match &error {
            rusqlite::Error::SqliteFailure(code, _)
                if code.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Conflict(error.to_string())
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => Error::Corrupt(error.to_string()),
            _ => Error::Unavailable(error.to_string()),
        }
    }
}
