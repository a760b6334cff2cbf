//! The log's errors, and the damage they report.

use std::io;
use std::path::{Path, PathBuf};

use crate::frame::FRAME_BODY_BYTES_MAX;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the log. Every variant says which file or directory and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Damage that is not a torn tail: a sealed segment, or a segment header.
    #[error("corrupt log file {path} at offset {offset}: {reason}. This is damage to data that was already durable, not a torn write; restore the file from a backup (pauselog never skips it silently)")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the first damaged frame or header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Another process (or handle) holds the directory.
    #[error("log directory {dir} is locked by {holder}; stop that process or open another directory")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says about the holder.
        holder: String,
    },
    /// An fsync failed earlier; the log refuses all writes until reopened.
    #[error("log {dir} is poisoned: an fsync failed ({reason}); the kernel may have dropped the unsynced pages, so nothing is retried or acknowledged on this file — reopen the log to recover from what is durable (see \"Can Applications Recover from fsync Failures?\", ATC'20)")]
    Poisoned {
        /// The directory.
        dir: PathBuf,
        /// The original error.
        reason: String,
    },
    /// The append would pass [`crate::WalOptions::live_bytes_max`]; nothing was written.
    #[error("append of {needed_bytes} bytes refused: {live_bytes} live bytes + {needed_bytes} would pass the cap of {cap_bytes} bytes; release records first")]
    CapExceeded {
        /// Live bytes before the append.
        live_bytes: u64,
        /// Encoded bytes the append needed.
        needed_bytes: u64,
        /// The cap.
        cap_bytes: u64,
    },
    /// A record larger than [`FRAME_BODY_BYTES_MAX`].
    #[error("record of {body_bytes} bytes is larger than the frame limit of {FRAME_BODY_BYTES_MAX} bytes")]
    TooLarge {
        /// The record's size.
        body_bytes: u64,
    },
    /// The log was opened read-only.
    #[error("log {dir} is open read-only")]
    ReadOnly {
        /// The directory.
        dir: PathBuf,
    },
    /// Bad options.
    #[error("invalid log options: {0}")]
    InvalidOptions(String),
}

/// Damage found in a log file: the file, the byte offset of the first
/// damaged frame, header or entry, and what is wrong. [`Error::Corrupt`]
/// carries the same three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte offset of the damage in the file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}: {}", self.path.display(), self.offset, self.reason)
    }
}

impl From<Damage> for Error {
    fn from(damage: Damage) -> Self {
        Error::Corrupt { path: damage.path, offset: damage.offset, reason: damage.reason }
    }
}

pub(crate) fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}
