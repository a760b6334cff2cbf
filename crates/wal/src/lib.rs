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
//! [`mod@format`].
//!
//! ## Modules
//!
//! Imports run one way, from the top of this list down; a module knows
//! nothing of those above it.
//!
//! - `log`: the public API, [`Wal`]: it owns the parts below and delegates.
//! - `recovery` (open), `reader` (scans and point reads), `check` (the
//!   background check of what open did not verify), `audit` (a directory
//!   re-read from its bytes alone).
//! - `group_commit`: concurrent callers share fsyncs.
//! - `writer`: append, write out, sync, seal and rotate, release. The only
//!   module that writes segment files; readers never flush or rotate.
//! - `state`: what the parts share (the segment index, the write buffer,
//!   the counters, poisoning, damage found).
//! - `janitor` (deleting released segments), `ahead` (checking frames and
//!   mapping pages ahead of a scan).
//! - `segment`, `offsets`, `release_log`, `torn`: the files and what their
//!   bytes mean; `options`, `error`; `frame`, `epoch`, [`storage`]: the
//!   ground floor.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
// The log needs unsafe (memmap2, fallocate, sync_file_range, the futex, a
// prefetch hint); each block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

mod ahead;
mod audit;
mod check;
mod epoch;
mod error;
pub mod format;
mod frame;
mod group_commit;
mod janitor;
mod latency;
mod log;
mod offsets;
mod options;
mod reader;
mod recovery;
mod release_log;
mod segment;
mod state;
pub mod storage;
mod torn;
mod writer;

pub use audit::{audit, audit_with_storage, Audit};
pub use error::{Damage, Error, Result};
pub use frame::{frame_bytes, FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};
pub use latency::{SyncLatency, SYNC_LATENCY_BOUNDS_US};
pub use log::{Wal, WalStats};
pub use options::{SyncPolicy, WalOptions};
pub use reader::{Entry, Reader};
pub use segment::{SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use storage::{CrashMode, FsStorage, SimStorage, Storage, ViewEvent};
pub use torn::TORN_WRITE_WINDOW_BYTES;
