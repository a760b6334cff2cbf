//! `pauselog-wal`: a segmented, append-only write-ahead log.
//!
//! Records are opaque byte strings. Each gets a strictly increasing `u64`
//! sequence number (starting at 1), is framed with its length, sequence number
//! and a CRC32, and is appended to the active segment file. Segments rotate at
//! [`WalOptions::segment_bytes_max`]. The log keeps exact byte accounting of
//! the records not yet released, can refuse appends past a cap, shares fsyncs
//! between concurrent appenders (group commit), serves readers through
//! memmap2 while appends continue, and deletes a segment once every record in
//! it is released. It knows nothing of table maps.
//!
//! ```
//! use pauselog_wal::{Wal, WalOptions, SyncPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Always))?;
//! let first = wal.append(b"hello")?;
//! let second = wal.append(b"world")?;
//! assert_eq!((first, second), (1, 2));
//!
//! let bodies: Vec<Vec<u8>> = wal.reader(1).map(|e| e.map(|e| e.body().to_vec())).collect::<Result<_, _>>()?;
//! assert_eq!(bodies, [b"hello".to_vec(), b"world".to_vec()]);
//!
//! wal.release_through(first)?;               // bytes are released at once
//! assert_eq!(wal.live_bytes(), pauselog_wal::frame_bytes(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The on-disk format and what a crash at each step leaves behind are in
//! [`format`].
#![deny(missing_docs)]

mod ahead;
mod audit;
mod check;
mod epoch;
pub mod format;
mod frame;
mod latency;
mod log;
mod reader;
mod recovery;
mod release_log;
mod segment;
pub mod storage;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit::{audit, audit_with_storage, Audit};
pub use frame::{frame_bytes, FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};
pub use latency::{SyncLatency, SYNC_LATENCY_BOUNDS_US};
pub use log::{Wal, WalStats};
pub use reader::{Entry, Reader};
pub use recovery::TORN_WRITE_WINDOW_BYTES;
pub use segment::{SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use storage::{CrashMode, FsStorage, SimStorage, Storage, ViewEvent};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// When an appended record is on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `append` returns only after the record is fsynced; concurrent appenders
    /// share one fsync (group commit). Survives a process crash and a power loss.
    #[default]
    Always,
    /// An append is written to the OS (`pwrite`) before it returns;
    /// concurrent appenders share that write as they share fsyncs. An append
    /// that finds the last sync older than the interval also syncs (group
    /// commit as above); [`Wal::sync`] and close sync too. Survives a process
    /// crash; a power loss may lose the appends since the last sync, at most
    /// an interval's worth while appends keep coming.
    Interval(Duration),
    /// No fsync except on rotation, [`Wal::sync`] and close. Appends are
    /// buffered in memory (1 MiB): a process crash may lose the buffer, a power
    /// loss anything since the last sync. For tests and benches.
    Never,
}

/// Options for [`Wal::open`]. Built with chained setters from `default()`.
#[derive(Debug, Clone)]
#[must_use]
pub struct WalOptions {
    /// Size at which the active segment is sealed and a new one started, in
    /// bytes. A frame larger than this gets a segment of its own.
    /// Default: 64 MiB. Range: 4 KiB ..= 1 GiB.
    pub segment_bytes_max: u64,
    /// Durability of appends. Default: [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// Cap on live (appended, not released) bytes, framing included. An append
    /// that would pass it fails with [`Error::CapExceeded`] and writes nothing.
    /// Default: none.
    pub live_bytes_max: Option<u64>,
    /// Open without the lock and without repairing anything; appends fail.
    /// For inspecting a log another process holds. Default: false.
    pub read_only: bool,
    /// Preallocate segment files (fallocate) so durable appends skip size
    /// metadata. Default: true.
    pub preallocate: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes_max: 64 * 1024 * 1024,
            sync: SyncPolicy::Always,
            live_bytes_max: None,
            read_only: false,
            preallocate: true,
        }
    }
}

impl WalOptions {
    /// Sets [`WalOptions::segment_bytes_max`].
    pub fn segment_bytes_max(mut self, bytes: u64) -> Self {
        self.segment_bytes_max = bytes;
        self
    }
    /// Sets [`WalOptions::sync`].
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
    /// Sets [`WalOptions::live_bytes_max`].
    pub fn live_bytes_max(mut self, bytes: Option<u64>) -> Self {
        self.live_bytes_max = bytes;
        self
    }
    /// Sets [`WalOptions::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Sets [`WalOptions::preallocate`].
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.preallocate = preallocate;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(4096..=1 << 30).contains(&self.segment_bytes_max) {
            return Err(Error::InvalidOptions(format!(
                "segment_bytes_max is {} bytes; it must be between 4 KiB and 1 GiB",
                self.segment_bytes_max
            )));
        }
        Ok(())
    }
}

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
    /// The append would pass [`WalOptions::live_bytes_max`]; nothing was written.
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
