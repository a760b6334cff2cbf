//! The secondary index on integration key of pauselog (docs/rules.md R10, R11, R19a).
//!
//! A [`KeyIndex`] covers one list of queued records (a map's queue, or its
//! catch-up errors). The engine feeds it `(key, seq)` pairs in increasing seq
//! order; the index answers pages in seq order with opaque, checked cursors,
//! exact counts (total and per key), and moves or drops seq ranges between
//! lists without touching each record. It knows nothing of the log format
//! or of table maps. An [`IndexStore`] saves indexes to sled so that opening
//! a full queue does not rescan its log; everything it holds is derived and
//! can be rebuilt from the log.
//!
//! ```
//! use pauselog_index::{Checkpoint, IndexStore, KeyIndex};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut queue = KeyIndex::new();
//! for seq in 1..=5 {
//!     queue.insert(if seq % 2 == 0 { "USMF|CUST-2" } else { "USMF|CUST-1" }, seq)?;
//! }
//!
//! // One key, two at a time, following the cursor.
//! let first = queue.page(Some("USMF|CUST-1"), None, 2)?;
//! assert_eq!((first.seqs.as_slice(), first.total), (&[1, 3][..], 3));
//! let second = queue.page(Some("USMF|CUST-1"), first.next.as_deref(), 2)?;
//! assert_eq!((second.seqs.as_slice(), second.next), (&[5][..], None));
//!
//! // The replay delivered seqs 1..=2; skip-to-live preserves the rest.
//! queue.release_through(2);
//! let mut errors = KeyIndex::new();
//! queue.move_range_into(0..=u64::MAX, &mut errors);
//! assert_eq!((queue.len(), errors.count(Some("USMF|CUST-2"))), (0, 1));
//!
//! // Saved indexes come back without a log scan.
//! let dir = tempfile::tempdir()?;
//! let store = IndexStore::open(dir.path())?;
//! let checkpoint = Checkpoint { applied_through: 5, tag: 0 };
//! store.save("customers.errors", &errors, checkpoint)?;
//! let (loaded, at) = store.load("customers.errors")?.expect("just saved");
//! assert_eq!((loaded.seqs_in(0..=u64::MAX, 10), at), (vec![3, 4, 5], checkpoint));
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
// One unsafe block maps a run file (`runs.rs`); it says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cursor;
mod index;
mod posting;
mod ranges;
mod runs;
mod store;

pub use cursor::Cursor;
pub use index::{KeyIndex, SeqPage};
pub use runs::{key_hash, KeyRuns, OpenReport, RunOptions, RUN_MAGIC, RUN_VERSION};
pub use store::{Checkpoint, IndexStore, CHUNK_BYTES_TARGET, LOCK_WAIT_MAX};

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the index and its store.
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
    /// The sled store failed.
    #[error(
        "index store failed: {0}; the index is derived data, so deleting the index \
         directory loses nothing and the next open rebuilds it from the logs"
    )]
    Store(#[from] sled::Error),
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
    /// A stored index failed its checks.
    #[error(
        "stored index `{name}` is corrupt ({reason}); rebuild it from the log \
         (it is derived data: deleting the index directory loses nothing)"
    )]
    CorruptStore {
        /// The index name given to [`IndexStore::save`].
        name: String,
        /// What failed.
        reason: String,
    },
}
