//! The engine's error type.

use std::path::PathBuf;

use crate::Limit;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. `Display` says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cap is reached; nothing was written (R8).
    #[error("table map {map} is blocked by its {limit:?} limit; nothing was written. Resume the map and let the backlog drain (or skip to live) before submitting more")]
    Blocked {
        /// The map.
        map: String,
        /// The cap reached.
        limit: Limit,
    },
    /// The map's state does not allow the call (R20).
    #[error("table map {map} is {state}; {action} is not allowed in that state")]
    InvalidState {
        /// The map.
        map: String,
        /// The current state, in words.
        state: String,
        /// What was asked.
        action: String,
    },
    /// Bad input; nothing changed (R20).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A malformed, tampered or foreign page cursor (R20).
    #[error("invalid page cursor: {0}; start again without `after`")]
    BadCursor(String),
    /// The destination rejected a live record (R1).
    #[error("destination rejected the record for table map {map}: {reason}")]
    Rejected {
        /// The map.
        map: String,
        /// The destination's reason.
        reason: String,
    },
    /// The destination was unavailable for a live record (R1).
    #[error("destination unavailable for table map {map}: {reason}; retry later, or configure a DestinationUnavailable rule so such records are queued")]
    Unavailable {
        /// The map.
        map: String,
        /// The destination's reason.
        reason: String,
    },
    /// Preserving the queue would pass `max_error_bytes`; nothing changed (R16).
    #[error("table map {map}: preserving {needed_bytes} queued bytes would take the catch-up errors past their cap of {cap_bytes} bytes ({error_bytes} used); discard or retry errors first, or skip with discard")]
    ErrorsFull {
        /// The map.
        map: String,
        /// Bytes that would move.
        needed_bytes: u64,
        /// Bytes already in the errors list.
        error_bytes: u64,
        /// The cap.
        cap_bytes: u64,
    },
    /// `wait_for` or `RetryJob::wait` ran out of time.
    #[error("timed out")]
    Timeout,
    /// The data directory is held by another process or engine (R20).
    #[error("data directory {dir} is in use by {holder}; stop it or use another directory")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Who holds it.
        holder: String,
    },
    /// Damage to durable data (R19).
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An fsync failed; the map refuses writes until the engine is reopened (R17).
    #[error("table map {map} refuses writes after a failed fsync: {reason}. Reopen the engine; nothing acknowledged is lost")]
    Poisoned {
        /// The map.
        map: String,
        /// The original failure.
        reason: String,
    },
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The index store (sled) failed.
    #[error("index store error: {0}")]
    Index(String),
    /// The engine is closed.
    #[error("the engine is closed")]
    Closed,
}

impl Error {
    pub(crate) fn invalid_state(map: &str, state: &crate::MapState, action: &str) -> Error {
        let state = match state {
            crate::MapState::Running => "Running".to_owned(),
            crate::MapState::Paused { .. } => "Paused".to_owned(),
            crate::MapState::CatchingUp { .. } => "CatchingUp".to_owned(),
        };
        Error::InvalidState { map: map.to_owned(), state, action: action.to_owned() }
    }

    /// A record that passed its CRC but does not decode: names its file
    /// and frame offset (R19).
    pub(crate) fn undecodable(entry: &pauselog_wal::Entry, what: &str) -> Error {
        Error::Corrupt {
            path: entry.path().to_path_buf(),
            offset: entry.offset(),
            reason: format!("seq {} passed its CRC but {what}", entry.seq()),
        }
    }

    pub(crate) fn from_wal(map: &str, error: pauselog_wal::Error) -> Error {
        use pauselog_wal::Error as W;
        match error {
            W::Io { path, source } => Error::Io { path, source },
            W::Corrupt { path, offset, reason } => Error::Corrupt { path, offset, reason },
            W::Locked { dir, holder } => Error::Locked { dir, holder },
            W::Poisoned { reason, .. } => Error::Poisoned { map: map.to_owned(), reason },
            other => Error::Io { path: PathBuf::from(map), source: std::io::Error::other(other.to_string()) },
        }
    }

    pub(crate) fn from_index(error: pauselog_index::Error) -> Error {
        match error {
            pauselog_index::Error::BadCursor { reason } => Error::BadCursor(reason),
            other => Error::Index(other.to_string()),
        }
    }
}
