//! The key index of pauselog (docs/rules.md R10, R11, R19a): where each integration key's
//! records are in a log, on disk, so that what stays in memory is bounded by
//! configuration, not by the queue.
//!
//! A [`KeyRuns`] takes `(key, seq)` pairs in increasing seq order. It keeps
//! the latest ones in a memory run and writes every
//! [`RunOptions::run_records_max`] of them as an immutable, CRC-checked run
//! file, mapped read-only; it answers the seqs of one key in a seq range by
//! reading only that key's postings. Which of those records are still in a
//! list (queued, or a catch-up error) is the owner's business. [`Cursor`]s
//! are the versioned, checked page cursors. It knows nothing of the log
//! format or of table maps; everything in it is derived from a log and can
//! be rebuilt from it.
//!
//! ```
//! use pauselog_index::{KeyRuns, RunOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let options = RunOptions { run_records_max: 2, ..RunOptions::default() };
//! let (mut keys, _) = KeyRuns::open(dir.path(), options)?;
//! for seq in 1..=5 {
//!     keys.insert(if seq % 2 == 0 { "USMF|CUST-2" } else { "USMF|CUST-1" }, seq)?;
//! }
//! assert_eq!(keys.run_ranges(), [1..=2, 3..=4]); // two run files, seq 5 in memory
//! assert_eq!(keys.seqs("USMF|CUST-1", 0..=u64::MAX, 10), [1, 3, 5]);
//! assert_eq!(keys.seqs("USMF|CUST-1", 2..=u64::MAX, 1), [3]);
//!
//! // A reopen finds the runs again; the owner re-adds what came after them.
//! keys.flush()?;
//! drop(keys);
//! let (keys, report) = KeyRuns::open(dir.path(), options)?;
//! assert_eq!((report.runs_loaded, keys.covered_through()), (3, 5));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
// One unsafe block maps a run file (`runs.rs`); it says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cursor;
mod runs;

pub use cursor::Cursor;
pub use runs::{key_hash, KeyRuns, OpenReport, RunOptions, RUN_MAGIC, RUN_VERSION};

/// One page of seqs of a list: what a page of records is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqPage {
    /// The seqs of this page, ascending.
    pub seqs: Vec<u64>,
    /// Cursor for the next page; `Some` iff more matching entries existed
    /// beyond this page at the time of the call.
    pub next: Option<String>,
    /// Total matching entries (the list's size, or the key's).
    pub total: u64,
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An insert did not go above every seq the index ever accepted.
    #[error(
        "seq {seq} inserted after seq {last}: an index only accepts increasing seqs; \
         this is a bug in the caller, rebuild the index from the log"
    )]
    OutOfOrder {
        /// The seq refused.
        seq: u64,
        /// The highest seq the index had accepted.
        last: u64,
    },
    /// A page cursor that this index did not hand out for this query.
    #[error(
        "invalid page cursor: {reason}; pass back a page's `next` exactly as returned, \
         with the same key filter, or start again from the first page"
    )]
    BadCursor {
        /// What is wrong with it.
        reason: String,
    },
    /// A file of the index could not be read or written.
    #[error(
        "key index file {path}: {source}; the index is derived data, so it can be deleted and rebuilt from the log"
    )]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A run handed to the index does not fit it (a bug in the caller).
    #[error("invalid key index run: {reason}")]
    InvalidRun {
        /// What is wrong.
        reason: String,
    },
}
