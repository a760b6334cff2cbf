//! What the parts of an open log share: [`Shared`], one per log behind an
//! `Arc`, and the [`State`] under its lock. The writer (`writer.rs`), the
//! group commit (`group_commit.rs`), readers (`reader.rs`), the background
//! check (`check.rs`) and the public API (`log.rs`) all work on it; it
//! knows none of them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::epoch::Epoch;
use crate::error::{Damage, Error, Result};
use crate::janitor::Janitor;
use crate::latency::LatencyCounters;
use crate::options::WalOptions;
use crate::release_log::ReleaseLog;
use crate::segment::{Segment, SEGMENT_HEADER_BYTES};
use crate::storage::Storage;

/// A log's shared parts. Everything that changes lives in [`State`] under
/// its lock, or in the atomics here, which mirror what callers must see
/// without that lock.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: WalOptions,
    pub storage: Arc<dyn Storage>,
    pub state: Mutex<State>,
    /// Advanced after every group fsync, and when the log is poisoned:
    /// callers waiting for durability sleep until it changes.
    pub sync_epoch: Epoch,
    /// The last seq appended (mirrors `State::next_seq - 1` without its
    /// lock), so a gathering group sees arrivals without it.
    pub appended_seq: AtomicU64,
    /// fdatasyncs of the active segment issued to make appends durable.
    pub sync_count: AtomicU64,
    /// How long each of those took.
    pub sync_latency: LatencyCounters,
    /// Every seq `<=` this is durable.
    pub durable_seq: AtomicU64,
    /// Deletes released segments off the caller's thread (`janitor.rs`).
    pub janitor: Arc<Janitor>,
    poisoned: AtomicBool,
    poison_reason: Mutex<String>,
    /// The first damage found in this process (by the background check, a
    /// reader or `Wal::verify`).
    damage: Mutex<Option<Damage>>,
}

/// The log's mutable state, under `Shared::state`.
pub(crate) struct State {
    /// Ordered by `first_seq`; the last one is active (receives appends).
    pub segments: VecDeque<Segment>,
    pub next_seq: u64,
    /// Frames appended to the active segment but not yet written to the
    /// file. Readers read them here (see `reader.rs`).
    pub buffer: Vec<u8>,
    /// Offset in the active segment where `buffer` starts.
    pub flushed_end: u64,
    /// Last seq whose frame is in a file.
    pub flushed_seq: u64,
    pub live_bytes: u64,
    pub live_records: u64,
    pub release_log: ReleaseLog,
    /// Allocated length of the active file.
    pub allocated_bytes: u64,
    /// Below this offset the active file's blocks hold written data or
    /// zeros (see `writer::zero_fill`).
    pub zeroed_end: u64,
    /// Below this offset written data was handed to the device (see
    /// `writer::WRITEBACK_CHUNK_BYTES`).
    pub writeback_end: u64,
    pub last_sync: Instant,
    /// The active segment's file has the sidecar of the last clean close
    /// (`segment::SidecarKind::Closed`); it must be gone, durably, before
    /// anything is written to that file (see `writer::flush`).
    pub closed_sidecar: bool,
}

impl Shared {
    /// The shared parts of a log just recovered into `state`.
    pub fn new(dir: PathBuf, options: WalOptions, storage: Arc<dyn Storage>, state: State) -> Shared {
        let durable_seq = state.next_seq - 1;
        Shared {
            dir,
            options,
            storage,
            state: Mutex::new(state),
            sync_epoch: Epoch::default(),
            appended_seq: AtomicU64::new(durable_seq),
            sync_count: AtomicU64::new(0),
            sync_latency: LatencyCounters::default(),
            durable_seq: AtomicU64::new(durable_seq),
            janitor: Arc::default(),
            poisoned: AtomicBool::new(false),
            poison_reason: Mutex::new(String::new()),
            damage: Mutex::new(None),
        }
    }

    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(Poisoned)` once an fsync (or a write) failed.
    pub fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.poison_reason.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(Error::Poisoned { dir: self.dir.clone(), reason });
        }
        Ok(())
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Poisons the log after `error`, and returns the error to report.
    pub fn poison(&self, error: &Error) -> Error {
        *self.poison_reason.lock().unwrap_or_else(|p| p.into_inner()) = error.to_string();
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(dir = %self.dir.display(), %error, "wal poisoned");
        // Wake every caller sleeping in `sync_through`, so each sees the
        // poison now: a failed write (not only a failed group fsync) can
        // poison the log while a group gathers, and the holder of its
        // deadline then returns the error instead of syncing the group.
        self.sync_epoch.advance();
        Error::Poisoned { dir: self.dir.clone(), reason: error.to_string() }
    }

    /// Keeps the first damage found, and logs each.
    pub fn note_damage(&self, damage: Damage) {
        tracing::error!(path = %damage.path.display(), offset = damage.offset, reason = %damage.reason, "damage found in a log file");
        self.damage.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(damage);
    }

    /// `error`, after noting it if it is damage.
    pub fn noted(&self, error: Error) -> Error {
        if let Error::Corrupt { path, offset, reason } = &error {
            self.note_damage(Damage { path: path.clone(), offset: *offset, reason: reason.clone() });
        }
        error
    }

    /// The first damage found so far.
    pub fn damage(&self) -> Option<Damage> {
        self.damage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl State {
    /// The segment holding `seq`, if any.
    pub fn find(&self, seq: u64) -> Option<&Segment> {
        let index = self.segments.partition_point(|s| s.end_seq() <= seq);
        self.segments.get(index).filter(|s| s.contains(seq))
    }

    pub fn active(&mut self) -> &mut Segment {
        self.segments.back_mut().expect("an open writable log always has an active segment")
    }

    /// Makes a newly created (empty, preallocated) segment the active one,
    /// with the write offsets of the active file reset to its header.
    pub fn push_active(&mut self, segment: Segment, options: &WalOptions) {
        self.segments.push_back(segment);
        self.closed_sidecar = false;
        self.flushed_end = SEGMENT_HEADER_BYTES;
        self.zeroed_end = SEGMENT_HEADER_BYTES;
        self.writeback_end = SEGMENT_HEADER_BYTES;
        self.allocated_bytes = if options.preallocate { options.segment_bytes_max } else { SEGMENT_HEADER_BYTES };
    }

    /// The shadow accounting: the counters equal the per-segment sums.
    #[cfg(debug_assertions)]
    pub fn check_accounting(&self) {
        let bytes: u64 = self.segments.iter().map(|s| s.live_bytes).sum();
        let records: u64 = self.segments.iter().map(|s| s.record_count() - s.released_count).sum();
        assert_eq!(bytes, self.live_bytes, "shadow byte accounting disagrees with the counter");
        assert_eq!(records, self.live_records, "shadow record accounting disagrees with the counter");
    }
}
