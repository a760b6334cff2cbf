//! The writer side: append, group commit, rotation, release.

use std::collections::VecDeque;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ahead::Job;
use crate::check::Checker;
use crate::epoch::Epoch;
use crate::frame::{self, frame_bytes, FRAME_BODY_BYTES_MAX};
use crate::latency::{LatencyCounters, SyncLatency};
use crate::reader::{Entry, Reader};
use crate::release_log::{ReleaseLog, COMPACT_ENTRIES};
use crate::segment::{encode_header, encode_sidecar, segment_path, sidecar_path, Segment, SEGMENT_HEADER_BYTES};
use crate::storage::{FsStorage, Storage, StorageFile};
use crate::{io_error, Damage, Error, Result, SyncPolicy, WalOptions};

/// How far ahead of the appends the active segment is zero-filled under
/// `SyncPolicy::Always` (see `Inner::zero_fill_locked`).
const ZERO_FILL_AHEAD_BYTES: u64 = 1024 * 1024;

/// Under `Interval` and `Never`, written data is handed to the device in
/// chunks of this size (see `Inner::flush_locked`).
const WRITEBACK_CHUNK_BYTES: u64 = 1024 * 1024;

/// Appended frames wait in memory up to this many bytes before one `pwrite`.
const BUFFER_BYTES_MAX: usize = 1024 * 1024;

/// A segmented write-ahead log. `Send + Sync`; share it with `Arc`.
pub struct Wal {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub dir: PathBuf,
    pub options: WalOptions,
    pub storage: Arc<dyn Storage>,
    pub state: Mutex<State>,
    /// Serialises fsyncs.
    sync_lock: Mutex<()>,
    /// Group commit state of [`Wal::sync_through`].
    group: Mutex<GroupCommit>,
    /// Advanced after every group fsync; waiters sleep until it changes.
    sync_epoch: Epoch,
    /// The last seq appended (mirrors `State::next_seq - 1` without its lock),
    /// so a gathering group sees arrivals without it.
    appended_seq: AtomicU64,
    /// fdatasyncs of the active segment issued to make appends durable.
    sync_count: AtomicU64,
    /// How long each of those took.
    sync_latency: LatencyCounters,
    /// Every seq `<=` this is durable.
    durable_seq: AtomicU64,
    poisoned: AtomicBool,
    poison_reason: Mutex<String>,
    closed: AtomicBool,
    /// Deletes released segments off the caller's thread (see `Janitor`).
    janitor: Mutex<JanitorSlot>,
    /// The background check of the frames open did not verify (`check.rs`).
    checker: Mutex<Option<Checker>>,
    /// The first damage found in this process (by the background check, a
    /// reader or `Wal::verify`).
    damage: Mutex<Option<Damage>>,
    _lock: Option<Box<dyn fmt::Debug + Send + Sync>>,
}

/// Group commit bookkeeping, under `Inner::group`.
#[derive(Debug)]
struct GroupCommit {
    /// A thread is flushing and syncing for everyone.
    syncing: bool,
    /// While no fsync runs and the group is not complete: the deadline the
    /// first waiter holds.
    gathering: Option<Gathering>,
    /// Gathering rounds started (identifies the holder of a deadline).
    gathering_rounds: u64,
    /// Records the next group is expected to hold: those the last fsync
    /// covered plus those appended while it ran. Each of those writers is
    /// about to append again.
    expected_records: u64,
    /// How long the last fsync took (bounds the gathering wait).
    last_sync_duration: Duration,
}

/// A caller waiting for a group fsync polls, yielding its core, instead of
/// sleeping for up to this many times the last fsync's duration (and at most
/// [`SPIN_MAX`]) from the moment it starts to wait; then it sleeps. A waiter
/// that polls sees the fsync end without being woken, and re-appends at
/// once: the wake-up of 7 sleeping writers on this project's 2-core VM took
/// 30-40 µs per group, a quarter of the fsync itself. A yielding thread
/// gives its core to any other runnable thread (RocksDB's write thread
/// waits the same way, `enable_write_thread_adaptive_yield`), and the bound
/// keeps a stalled device from holding cores busy: after it, the waiter
/// sleeps on the futex. With 8 writers, 9 alternating runs measured 55-71k
/// acks/s against 34-51k when only the holder of the group's deadline polled
/// (that alone had raised 35.5k to 40.5k over every waiter sleeping).
const SPIN_SYNCS: u32 = 2;
const SPIN_MAX: Duration = Duration::from_millis(1);

/// Waiters other than the deadline's holder poll only while groups hold at
/// most this many records. A large group shares its wake-up among many
/// records, and its many waiters would only take turns on the cores the
/// group's own work needs: 128 writers on 2 cores reached 152-160k acks/s
/// with every waiter polling against 166-179k with only the holder, while
/// 8 writers reach 52-76k against 42-52k (alternating runs of each).
const POLL_GROUP_RECORDS_MAX: u64 = 16;

/// The wait of an incomplete group for its expected writers.
#[derive(Debug, Clone, Copy)]
struct Gathering {
    /// When the holder stops waiting and syncs what there is.
    deadline: Instant,
    round: u64,
}

/// A group waits for its expected writers at most this fraction of the last
/// fsync's duration (and at most [`GATHER_WAIT_MAX`]).
const GATHER_WAIT_DIVISOR: u32 = 2;
const GATHER_WAIT_MAX: Duration = Duration::from_millis(1);

pub(crate) struct State {
    /// Ordered by `first_seq`; the last one is active (receives appends).
    pub segments: VecDeque<Segment>,
    pub next_seq: u64,
    /// Frames appended to the active segment but not yet written to the file.
    pub buffer: Vec<u8>,
    /// Offset in the active segment where `buffer` starts.
    pub flushed_end: u64,
    /// Last seq whose frame is in a file (visible to readers).
    pub flushed_seq: u64,
    pub live_bytes: u64,
    pub live_records: u64,
    pub release_log: ReleaseLog,
    /// Allocated length of the active file.
    pub allocated_bytes: u64,
    /// Below this offset the active file's blocks hold written data or
    /// zeros (see [`Inner::zero_fill_locked`]).
    pub zeroed_end: u64,
    /// Below this offset written data was handed to the device (see
    /// [`WRITEBACK_CHUNK_BYTES`]).
    pub writeback_end: u64,
    pub last_sync: Instant,
}

/// Figures of a log at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended and not released.
    pub live_records: u64,
    /// Encoded bytes (framing included) of those records.
    pub live_bytes: u64,
    /// Segment files on disk.
    pub segment_count: u64,
    /// The seq the next append gets.
    pub next_seq: u64,
    /// Every seq up to this one is durable.
    pub durable_seq: u64,
    /// fdatasyncs issued to make appends durable since open (group commits,
    /// [`Wal::sync`], close): records appended divided by this is the
    /// number of acknowledgements each fsync carried.
    pub sync_count: u64,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal").field("dir", &self.inner.dir).field("stats", &self.stats()).finish()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir` on the real file system, recovering
    /// from a crash if needed (see [`crate::format`]).
    pub fn open(dir: &Path, options: WalOptions) -> Result<Wal> {
        Self::open_with_storage(dir, options, Arc::new(FsStorage))
    }

    /// Opens the log on any [`Storage`] (e.g. [`crate::SimStorage`]).
    pub fn open_with_storage(dir: &Path, options: WalOptions, storage: Arc<dyn Storage>) -> Result<Wal> {
        options.validate()?;
        let lock = if options.read_only {
            None
        } else {
            storage.create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            let holder = format!(
                "pid {} ({})",
                std::process::id(),
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()
            );
            match storage.lock_dir(dir, &holder) {
                Ok(lock) => Some(lock),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(Error::Locked { dir: dir.to_path_buf(), holder: e.to_string() })
                }
                Err(e) => return Err(io_error(dir, e)),
            }
        };
        let state = crate::recovery::recover(dir, &options, storage.as_ref())?;
        let durable_seq = state.next_seq - 1;
        let wal = Wal {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                options,
                storage,
                state: Mutex::new(state),
                sync_lock: Mutex::new(()),
                group: Mutex::new(GroupCommit {
                    syncing: false,
                    gathering: None,
                    gathering_rounds: 0,
                    expected_records: 1,
                    last_sync_duration: Duration::ZERO,
                }),
                sync_epoch: Epoch::default(),
                appended_seq: AtomicU64::new(durable_seq),
                sync_count: AtomicU64::new(0),
                sync_latency: LatencyCounters::default(),
                durable_seq: AtomicU64::new(durable_seq),
                poisoned: AtomicBool::new(false),
                poison_reason: Mutex::new(String::new()),
                closed: AtomicBool::new(false),
                janitor: Mutex::new(JanitorSlot::Idle),
                checker: Mutex::new(None),
                damage: Mutex::new(None),
                _lock: lock,
            }),
        };
        if !wal.inner.options.read_only {
            *wal.inner.checker.lock().unwrap_or_else(|p| p.into_inner()) = Checker::start(&wal.inner);
        }
        tracing::debug!(dir = %dir.display(), stats = ?wal.stats(), "wal opened");
        Ok(wal)
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends one record; returns its seq once durable under the sync policy.
    pub fn append(&self, body: &[u8]) -> Result<u64> {
        let seq = self.append_unsynced(body)?;
        self.commit(seq)?;
        Ok(seq)
    }

    /// Appends records as one unit (the cap is checked for all of them
    /// together); returns their seqs once durable under the sync policy.
    pub fn append_batch<B: AsRef<[u8]>>(&self, bodies: &[B]) -> Result<RangeInclusive<u64>> {
        let seqs = self.append_batch_unsynced(bodies)?;
        self.commit(*seqs.end())?;
        Ok(seqs)
    }

    /// Appends one record without waiting for durability: readers see it, and
    /// [`Wal::commit`] or [`Wal::sync_through`] make it durable. Lets a caller
    /// append under its own lock and wait for the fsync outside it.
    pub fn append_unsynced(&self, body: &[u8]) -> Result<u64> {
        Ok(*self.append_batch_unsynced(&[body])?.start())
    }

    /// Batch form of [`Wal::append_unsynced`]. An empty batch is refused.
    pub fn append_batch_unsynced<B: AsRef<[u8]>>(&self, bodies: &[B]) -> Result<RangeInclusive<u64>> {
        self.check_writable()?;
        let mut needed_bytes = 0u64;
        for body in bodies {
            let body_bytes = body.as_ref().len() as u64;
            if body_bytes > FRAME_BODY_BYTES_MAX {
                return Err(Error::TooLarge { body_bytes });
            }
            needed_bytes += frame_bytes(body.as_ref().len());
        }
        if bodies.is_empty() {
            return Err(Error::InvalidOptions("append_batch needs at least one record".into()));
        }
        let mut state = self.inner.lock_state();
        if let Some(cap_bytes) = self.inner.options.live_bytes_max {
            if state.live_bytes + needed_bytes > cap_bytes {
                return Err(Error::CapExceeded { live_bytes: state.live_bytes, needed_bytes, cap_bytes });
            }
        }
        let first_seq = state.next_seq;
        for body in bodies {
            self.inner.append_locked(&mut state, body.as_ref())?;
        }
        Ok(first_seq..=state.next_seq - 1)
    }

    /// Applies the sync policy to everything appended up to `seq`: under
    /// `Always` it is durable when this returns; under `Interval` it is
    /// written to the OS (and durable if the interval was due); under
    /// `Never` nothing happens.
    pub fn commit(&self, seq: u64) -> Result<()> {
        match self.inner.options.sync {
            SyncPolicy::Always => self.sync_through(seq),
            SyncPolicy::Interval(interval) => {
                let mut state = self.inner.lock_state();
                if state.last_sync.elapsed() >= interval {
                    drop(state);
                    return self.sync_through(seq);
                }
                // Not due: hand the frames to the OS so that they survive a
                // crash of this process. The first committer to get here
                // writes every buffered frame, its own and those of the
                // committers behind it, which then find theirs written.
                if state.flushed_seq < seq {
                    self.inner.flush_locked(&mut state)?;
                }
                Ok(())
            }
            SyncPolicy::Never => Ok(()),
        }
    }

    /// Makes every record up to `seq` durable. Concurrent callers share one
    /// fsync (group commit). A group is complete when as many records are
    /// pending as the last fsync covered plus those appended while it ran
    /// (those writers are about to append again); the caller that completes
    /// it flushes and fsyncs for everyone at once, so nobody has to be woken
    /// to do it. Earlier callers sleep until that fsync ends; if the group
    /// stays incomplete for half the last fsync's duration, the first of
    /// them (who holds that deadline) syncs what there is. After the fsync
    /// every sleeping caller is woken; those it did not cover form the next
    /// group. Waiters poll for a bounded time before they sleep
    /// (`SPIN_SYNCS`), unless groups are large (`POLL_GROUP_RECORDS_MAX`).
    ///
    /// A lone writer never waits: its last group held one record, its own.
    /// Without the gathering, groups alternate between the writers that the
    /// last fsync released and those that arrived during it, so each fsync
    /// carries only half of them. Sleepers are woken all at once and return
    /// without taking the group lock (see `epoch.rs`).
    pub fn sync_through(&self, seq: u64) -> Result<()> {
        let inner = &self.inner;
        // The gathering round whose deadline this caller holds, if any, and
        // until when it polls rather than sleeps (fixed when it first waits).
        let mut held_round = None;
        let mut spin_end: Option<Instant> = None;
        loop {
            if inner.durable_seq.load(Ordering::Acquire) >= seq {
                if let Some(round) = held_round {
                    inner.hand_off_gathering(round);
                }
                return inner.check_poison();
            }
            let mut group = inner.group.lock().unwrap_or_else(|p| p.into_inner());
            inner.check_poison()?;
            if inner.durable_seq.load(Ordering::Acquire) >= seq {
                continue; // returns above
            }
            let mut deadline = None;
            if !group.syncing {
                let pending = inner
                    .appended_seq
                    .load(Ordering::Acquire)
                    .saturating_sub(inner.durable_seq.load(Ordering::Acquire));
                let now = Instant::now();
                if pending >= group.expected_records || group.gathering.is_some_and(|g| now >= g.deadline) {
                    held_round = None;
                    inner.sync_group(group, seq)?;
                    continue;
                }
                // The first to wait for the group to fill holds its deadline
                // and syncs when it passes; the others sleep until an fsync
                // ends, so only one sleeper per group has a timer.
                if group.gathering.is_none() {
                    let budget = (group.last_sync_duration / GATHER_WAIT_DIVISOR).min(GATHER_WAIT_MAX);
                    group.gathering_rounds += 1;
                    group.gathering = Some(Gathering { deadline: now + budget, round: group.gathering_rounds });
                    held_round = Some(group.gathering_rounds);
                }
                deadline = group.gathering.filter(|g| Some(g.round) == held_round).map(|g| g.deadline);
            }
            // Read under the group lock, after `syncing` (or the gathering)
            // was seen: the epoch advances only after those change, so no
            // wake-up can fall between this and the sleep.
            let epoch = inner.sync_epoch.current();
            // `poison` sets the flag, then advances the epoch: checked after
            // the read, one of the two is always seen.
            if inner.poisoned.load(Ordering::Acquire) {
                continue;
            }
            let end =
                *spin_end.get_or_insert_with(|| Instant::now() + (group.last_sync_duration * SPIN_SYNCS).min(SPIN_MAX));
            let poll = held_round.is_some() || group.expected_records <= POLL_GROUP_RECORDS_MAX;
            drop(group);
            // Poll through the gathering and the fsync (see SPIN_SYNCS),
            // then sleep; the holder of the deadline wakes up for it.
            let changed =
                poll && inner.sync_epoch.spin_while(epoch, deadline.map_or(end, |deadline| deadline.min(end)));
            if !changed {
                inner.sync_epoch.wait_while(epoch, deadline);
            }
        }
    }

    /// Writes buffered appends to the file (no fsync): they survive a crash
    /// of this process, not a power loss.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let mut state = self.inner.lock_state();
        self.inner.flush_locked(&mut state)
    }

    /// Makes everything appended so far durable, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        let _sync = self.inner.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.check_poison()?;
        if self.inner.options.read_only {
            return Ok(());
        }
        self.inner.sync_locked()
    }

    /// Makes the next append get `seq` when that is ahead of the tail; the
    /// seqs in between are never assigned. The engine calls this when its
    /// meta log is ahead of the data log after a crash, so that no seq is
    /// ever given to two different records. Costs one segment rotation.
    pub fn skip_to(&self, seq: u64) -> Result<()> {
        self.check_writable()?;
        let mut state = self.inner.lock_state();
        if seq <= state.next_seq {
            return Ok(());
        }
        self.inner.rotate_locked(&mut state)?;
        {
            // The active segment is empty now: seal it at its header (an
            // empty sealed segment is deleted below, or at the next open).
            let active = state.active();
            let (file, path) = (active.file.clone(), active.path.clone());
            file.set_len(SEGMENT_HEADER_BYTES).map_err(|e| self.inner.poison(&io_error(&path, e)))?;
            file.sync_all().map_err(|e| self.inner.poison(&io_error(&path, e)))?;
            active.end = SEGMENT_HEADER_BYTES;
            active.sealed = true;
        }
        let segment = create_segment(self.inner.storage.as_ref(), &self.inner.dir, seq, &self.inner.options)
            .map_err(|e| self.inner.poison(&e))?;
        state.push_active(segment, &self.inner.options);
        state.next_seq = seq;
        state.flushed_seq = seq - 1;
        self.inner.durable_seq.fetch_max(seq - 1, Ordering::AcqRel);
        tracing::warn!(dir = %self.inner.dir.display(), seq, "sequence numbers skipped ahead so none is reused");
        self.inner.delete_released_segments(&mut state)
    }

    /// Seals the active segment and starts a new one.
    pub fn rotate(&self) -> Result<()> {
        self.check_writable()?;
        let mut state = self.inner.lock_state();
        self.inner.rotate_locked(&mut state)
    }

    /// Releases every record with seq `<= seq`.
    pub fn release_through(&self, seq: u64) -> Result<()> {
        self.release(1..=seq)
    }

    /// Releases the records in `seqs` (already released ones are skipped):
    /// their bytes leave the accounting at once, and every sealed segment left
    /// with no live record is deleted. Cost: proportional to the segments
    /// touched plus the records of the (at most two) partly covered ones.
    ///
    /// The release is written to release.log first: if that write fails,
    /// the call returns [`Error::Io`] and nothing is released (an error
    /// compacting release.log afterwards is returned too, with the records
    /// released).
    pub fn release(&self, seqs: RangeInclusive<u64>) -> Result<()> {
        self.check_writable()?;
        let mut state = self.inner.lock_state();
        // Seq 0 is never assigned, and release.log reads an entry with lo 0
        // as a torn tail (dropping it and every later entry), so clamp.
        let (lo, hi) = ((*seqs.start()).max(1), (*seqs.end()).min(state.next_seq - 1));
        if lo > hi {
            return Ok(());
        }
        let covers_live = state
            .segments
            .iter()
            .any(|segment| segment.local_range(lo, hi).is_some_and(|(from, to)| segment.has_live_in(from, to)));
        if !covers_live {
            return Ok(());
        }
        state.release_log.append(lo, hi)?;
        let (mut records, mut bytes) = (0, 0);
        for segment in state.segments.iter_mut() {
            let Some((from, to)) = segment.local_range(lo, hi) else { continue };
            let (segment_records, segment_bytes) = segment.release(from, to);
            records += segment_records;
            bytes += segment_bytes;
        }
        state.live_records -= records;
        state.live_bytes -= bytes;
        self.inner.delete_released_segments(&mut state)
    }

    /// Reads from `from_seq` (or the first live record after it) to the tail
    /// as it grows; released records are skipped.
    pub fn reader(&self, from_seq: u64) -> Reader {
        Reader::new(self.inner.clone(), from_seq)
    }

    /// CRC-checks every frame not yet checked in this process — the frames
    /// of sealed segments that open loaded from their sidecar index instead
    /// of scanning, released ones included — and returns how many it
    /// checked, or the first damage as [`Error::Corrupt`] with file and
    /// offset. Works on a read-only log (e.g. for a `verify` command); does
    /// not block appends while it reads.
    pub fn verify(&self) -> Result<u64> {
        let unverified: Vec<Job> = {
            let state = self.inner.lock_state();
            let mut unverified = Vec::new();
            for segment in state.segments.iter().filter(|segment| !segment.is_verified()) {
                let view = segment.file.map().map_err(|e| io_error(&segment.path, e))?;
                unverified.extend(Job::of(segment, view));
            }
            unverified
        };
        unverified.iter().try_fold(0, |checked, job| Ok(checked + job.check_all().map_err(|e| self.inner.noted(e))?))
    }

    /// The first damage found in this log since it was opened: by the
    /// background check of the sealed segments open did not read (see
    /// [`crate::format`], "Damage found early"), by a reader, or by
    /// [`Wal::verify`]. Each is also logged with `tracing::error!`. `None`
    /// means none found *yet*: see [`Wal::wait_background_check`].
    pub fn damage(&self) -> Option<Damage> {
        self.inner.damage.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the background check has checked every frame open did
    /// not verify, then returns [`Wal::damage`]. Returns at once when there
    /// is no check (nothing to check, or a read-only log).
    pub fn wait_background_check(&self) -> Option<Damage> {
        let checker = self.inner.checker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(checker) = checker {
            checker.finish();
        }
        self.damage()
    }

    /// Reads one record, or `None` if it was released or never appended.
    pub fn read(&self, seq: u64) -> Result<Option<Entry>> {
        Ok(self.read_many(&[seq])?.pop().flatten())
    }

    /// Reads the records of `seqs` (any order, repeats allowed) under one
    /// acquisition of the log's lock, as a page of a secondary index needs:
    /// one entry per seq, `None` where the record was released or never
    /// appended. Appends wait while the seqs are planned, so read a bounded
    /// number at a time (a page, a chunk).
    pub fn read_many(&self, seqs: &[u64]) -> Result<Vec<Option<Entry>>> {
        crate::reader::read_points(&self.inner, seqs)
    }

    /// Encoded bytes of a live record, or `None`.
    pub fn record_bytes(&self, seq: u64) -> Option<u64> {
        let state = self.inner.lock_state();
        let segment = state.find(seq)?;
        let index = (seq - segment.first_seq) as usize;
        (!segment.is_released(index)).then(|| segment.frame_bytes(index))
    }

    /// Encoded bytes of the live records in `seqs`.
    pub fn range_bytes(&self, seqs: RangeInclusive<u64>) -> u64 {
        self.sum_live(seqs, |segment| segment.live_bytes, Segment::frame_bytes)
    }

    /// Live records in `seqs`, counted from the log's index (nothing is
    /// read from the files).
    pub fn range_records(&self, seqs: RangeInclusive<u64>) -> u64 {
        self.sum_live(seqs, |segment| segment.record_count() - segment.released_count, |_, _| 1)
    }

    /// Sums `of_record` over the live records in `seqs`, taking `of_segment`
    /// for a segment that lies wholly inside them.
    fn sum_live(
        &self,
        seqs: RangeInclusive<u64>,
        of_segment: impl Fn(&Segment) -> u64,
        of_record: impl Fn(&Segment, usize) -> u64,
    ) -> u64 {
        let state = self.inner.lock_state();
        let mut sum = 0;
        for segment in &state.segments {
            let Some((from, to)) = segment.local_range(*seqs.start(), *seqs.end()) else { continue };
            if from == 0 && to == segment.offsets.len() {
                sum += of_segment(segment);
            } else {
                sum += (from..to).filter(|&i| !segment.is_released(i)).map(|i| of_record(segment, i)).sum::<u64>();
            }
        }
        sum
    }

    /// Up to `limit` live seqs in `seqs`, ascending, from the log's index
    /// (nothing is read from the files) under one acquisition of the log's
    /// lock; fully released segments are skipped whole.
    pub fn live_seqs(&self, seqs: RangeInclusive<u64>, limit: usize) -> Vec<u64> {
        let state = self.inner.lock_state();
        let mut found = Vec::new();
        let start = state.segments.partition_point(|s| s.end_seq() <= *seqs.start());
        for segment in state.segments.range(start..) {
            let Some((from, to)) = segment.local_range(*seqs.start(), *seqs.end()) else { break };
            if segment.is_fully_released() {
                continue;
            }
            for index in (from..to).filter(|&i| !segment.is_released(i)) {
                if found.len() == limit {
                    return found;
                }
                found.push(segment.first_seq + index as u64);
            }
        }
        found
    }

    /// For each of `seqs` (ascending), whether it is a live record, under
    /// one acquisition of the log's lock.
    pub fn live_mask(&self, seqs: &[u64]) -> Vec<bool> {
        let state = self.inner.lock_state();
        let mut segments = state.segments.iter().peekable();
        seqs.iter()
            .map(|&seq| {
                while segments.peek().is_some_and(|segment| segment.end_seq() <= seq) {
                    segments.next();
                }
                segments.peek().is_some_and(|segment| {
                    segment.contains(seq) && !segment.is_released((seq - segment.first_seq) as usize)
                })
            })
            .collect()
    }

    /// Encoded bytes of live records (framing included).
    pub fn live_bytes(&self) -> u64 {
        self.inner.lock_state().live_bytes
    }

    /// The first live seq, if any.
    pub fn first_live_seq(&self) -> Option<u64> {
        let state = self.inner.lock_state();
        state.segments.iter().find_map(|segment| {
            (0..segment.offsets.len()).find(|&i| !segment.is_released(i)).map(|i| segment.first_seq + i as u64)
        })
    }

    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock_state().next_seq
    }

    /// Figures of the log now.
    pub fn stats(&self) -> WalStats {
        let state = self.inner.lock_state();
        WalStats {
            live_records: state.live_records,
            live_bytes: state.live_bytes,
            segment_count: state.segments.len() as u64,
            next_seq: state.next_seq,
            durable_seq: self.inner.durable_seq.load(Ordering::Acquire),
            sync_count: self.inner.sync_count.load(Ordering::Relaxed),
        }
    }

    /// How long the fsyncs counted by [`WalStats::sync_count`] took.
    pub fn sync_latency(&self) -> SyncLatency {
        self.inner.sync_latency.snapshot()
    }

    /// Waits until the segments released so far are deleted from disk (they
    /// are deleted by a background thread; closing the log also waits).
    pub fn settle(&self) {
        self.inner.settle_janitor();
    }

    /// Syncs and closes. Dropping the log does the same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    fn check_writable(&self) -> Result<()> {
        if self.inner.options.read_only {
            return Err(Error::ReadOnly { dir: self.inner.dir.clone() });
        }
        self.inner.check_poison()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.inner.close() {
            tracing::warn!(dir = %self.inner.dir.display(), %error, "wal close on drop failed");
        }
    }
}

impl State {
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
        self.flushed_end = SEGMENT_HEADER_BYTES;
        self.zeroed_end = SEGMENT_HEADER_BYTES;
        self.writeback_end = SEGMENT_HEADER_BYTES;
        self.allocated_bytes = if options.preallocate { options.segment_bytes_max } else { SEGMENT_HEADER_BYTES };
    }
}

impl Inner {
    pub fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.poison_reason.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(Error::Poisoned { dir: self.dir.clone(), reason });
        }
        Ok(())
    }

    fn poison(&self, error: &Error) -> Error {
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

    /// The holder of a gathering deadline was made durable by something else
    /// than a group fsync (`Wal::sync`, a rotation) and leaves: if its round
    /// still gathers, end it and wake the sleepers, so that one of those
    /// not yet durable takes the deadline over.
    fn hand_off_gathering(&self, round: u64) {
        let mut group = self.group.lock().unwrap_or_else(|p| p.into_inner());
        if group.gathering.is_some_and(|g| g.round == round) {
            group.gathering = None;
            drop(group);
            self.sync_epoch.advance();
        }
    }

    /// Flushes and fsyncs for a whole group, then wakes every
    /// sleeping caller.
    fn sync_group(&self, mut group: MutexGuard<'_, GroupCommit>, seq: u64) -> Result<()> {
        group.syncing = true;
        group.gathering = None;
        drop(group);
        let before = self.durable_seq.load(Ordering::Acquire);
        let started = Instant::now();
        let result = {
            let _sync = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            if self.durable_seq.load(Ordering::Acquire) >= seq {
                self.check_poison()
            } else {
                self.check_poison().and_then(|()| self.sync_locked())
            }
        };
        let mut group = self.group.lock().unwrap_or_else(|p| p.into_inner());
        group.syncing = false;
        group.last_sync_duration = started.elapsed();
        group.expected_records = self.appended_seq.load(Ordering::Acquire).saturating_sub(before).max(1);
        drop(group);
        // After the unlock, so the woken callers not covered do not queue on
        // it; one that read the old epoch after `syncing` was cleared only
        // wakes once more than needed.
        self.sync_epoch.advance();
        result
    }

    fn append_locked(&self, state: &mut State, body: &[u8]) -> Result<()> {
        let frame_len = frame_bytes(body.len());
        let active = state.active();
        let would_end = active.end + frame_len;
        if would_end > self.options.segment_bytes_max && active.record_count() > 0 {
            self.rotate_locked(state)?;
        }
        let seq = state.next_seq;
        frame::encode_into(&mut state.buffer, seq, body);
        state.active().push(frame_len);
        state.next_seq += 1;
        self.appended_seq.store(seq, Ordering::Release);
        state.live_bytes += frame_len;
        state.live_records += 1;
        if state.buffer.len() >= BUFFER_BYTES_MAX {
            self.flush_locked(state)?;
        }
        Ok(())
    }

    /// Writes the buffered frames into the active file (no fsync).
    pub fn flush_locked(&self, state: &mut State) -> Result<()> {
        if state.buffer.is_empty() {
            return Ok(());
        }
        let needed = state.flushed_end + state.buffer.len() as u64;
        if needed > state.allocated_bytes {
            let target = needed.max(self.options.segment_bytes_max);
            let active = state.segments.back().expect("active segment");
            let result = if self.options.preallocate { active.file.allocate(target) } else { Ok(()) };
            result.map_err(|e| self.poison(&io_error(&active.path, e)))?;
            state.allocated_bytes = target;
        }
        if needed > state.zeroed_end && self.options.preallocate && self.options.sync == SyncPolicy::Always {
            self.zero_fill_locked(state, needed)?;
        }
        let active = state.segments.back().expect("active segment");
        if let Err(e) = active.file.write_all_at(&state.buffer, state.flushed_end) {
            // A failed write may have left part of the buffer in the page
            // cache: treat it like a failed fsync.
            return Err(self.poison(&io_error(&active.path, e)));
        }
        // Under Interval and Never, hand full chunks to the device as they
        // are written (RocksDB's `bytes_per_sync`): the next fsync, at the
        // latest the one that seals the segment, then finds them written
        // instead of flushing the whole segment at once. 256 MiB of bulk
        // appends took 90-110 ms with this and 155-165 ms without.
        if self.options.sync != SyncPolicy::Always && needed - state.writeback_end >= WRITEBACK_CHUNK_BYTES {
            // Only a hint: an error here changes nothing that fsync reports.
            let _ = active.file.start_writeback(state.writeback_end, needed - state.writeback_end);
            state.writeback_end = needed;
        }
        state.flushed_end = needed;
        state.flushed_seq = state.next_seq - 1;
        state.buffer.clear();
        Ok(())
    }

    /// Under `SyncPolicy::Always`, writes zeros over the preallocated
    /// blocks up to [`ZERO_FILL_AHEAD_BYTES`] ahead of the appends. fallocate
    /// leaves its blocks *unwritten*, so the first fdatasync of data in one
    /// must also journal the extent's conversion: on this project's VM a
    /// group's 8 KiB fdatasync cost 1.3-1.6x a 1 KiB one there, and about
    /// the same as a 1 KiB one over written blocks. The zeros reach the disk
    /// with the next fdatasync, once per [`ZERO_FILL_AHEAD_BYTES`] of appends.
    fn zero_fill_locked(&self, state: &mut State, needed: u64) -> Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        // The buffer about to be written at `flushed_end..needed` writes
        // its own blocks: the zeros start after it.
        let from = state.zeroed_end.max(needed);
        let to = (needed + ZERO_FILL_AHEAD_BYTES).min(state.allocated_bytes).max(needed);
        let active = state.segments.back().expect("active segment");
        let mut offset = from;
        while offset < to {
            let len = (to - offset).min(ZEROS.len() as u64) as usize;
            if let Err(e) = active.file.write_all_at(&ZEROS[..len], offset) {
                return Err(self.poison(&io_error(&active.path, e)));
            }
            offset += len as u64;
        }
        state.zeroed_end = to;
        Ok(())
    }

    /// Caller holds `sync_lock`.
    fn sync_locked(&self) -> Result<()> {
        let (file, path, target) = {
            let mut state = self.lock_state();
            self.flush_locked(&mut state)?;
            if let Err(e) = state.release_log.sync() {
                return Err(self.poison(&e));
            }
            state.last_sync = Instant::now();
            #[cfg(debug_assertions)]
            state.check_accounting();
            let active = state.segments.back().expect("active segment");
            (active.file.clone(), active.path.clone(), state.flushed_seq)
        };
        // The fsync runs outside the state lock so appenders keep filling the
        // next group while this one is being made durable.
        let started = Instant::now();
        if let Err(e) = file.sync_data() {
            return Err(self.poison(&io_error(&path, e)));
        }
        self.sync_latency.record(started.elapsed());
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        self.durable_seq.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    pub fn rotate_locked(&self, state: &mut State) -> Result<()> {
        self.flush_locked(state)?;
        let next_seq = state.next_seq;
        {
            let active = state.active();
            if active.record_count() == 0 {
                return Ok(());
            }
            // Seal: cut the preallocated zeros so a sealed segment ends exactly
            // at its last frame, and make that durable before a newer segment
            // exists (see format.rs, crash case R2).
            let (file, path, end) = (active.file.clone(), active.path.clone(), active.end);
            file.set_len(end).map_err(|e| self.poison(&io_error(&path, e)))?;
            file.sync_all().map_err(|e| self.poison(&io_error(&path, e)))?;
            active.sealed = true;
            // The sidecar lets the next open skip scanning this segment. It
            // is durable before the next segment exists (format.rs, R2/R3);
            // its directory entry becomes durable with the new segment's.
            let sidecar = sidecar_path(&self.dir, active.first_seq);
            let bytes = encode_sidecar(active);
            write_durably(self.storage.as_ref(), &sidecar, &bytes).map_err(|e| self.poison(&e))?;
        }
        self.durable_seq.fetch_max(next_seq - 1, Ordering::AcqRel);
        let segment =
            create_segment(self.storage.as_ref(), &self.dir, next_seq, &self.options).map_err(|e| self.poison(&e))?;
        state.push_active(segment, &self.options);
        self.delete_released_segments(state)
    }

    pub fn delete_released_segments(&self, state: &mut State) -> Result<()> {
        let mut released = Vec::new();
        let mut index = 0;
        while index < state.segments.len() {
            let segment = &state.segments[index];
            if segment.sealed && segment.is_fully_released() {
                let segment = state.segments.remove(index).expect("index in bounds");
                tracing::debug!(path = %segment.path.display(), "released segment deleted");
                released.push(Released {
                    sidecar: sidecar_path(&self.dir, segment.first_seq),
                    path: segment.path,
                    file: segment.file,
                    view: segment.view.map(|(view, _)| view),
                });
            } else {
                index += 1;
            }
        }
        if !released.is_empty() {
            // Unlinking a 64 MiB preallocated file costs ~15 ms of extent
            // freeing: the janitor does it off this thread (and off the
            // log's lock). Until then the files are ordinary fully released
            // segments, which recovery deletes if a crash comes first.
            let sent = {
                let mut slot = self.janitor.lock().unwrap_or_else(|p| p.into_inner());
                if matches!(*slot, JanitorSlot::Idle) {
                    if let Some(janitor) = Janitor::start(self.storage.clone()) {
                        *slot = JanitorSlot::Running(janitor);
                    }
                }
                match &*slot {
                    JanitorSlot::Running(janitor) => {
                        janitor.queue.send(JanitorJob::Delete(released)).map_err(|e| match e.0 {
                            JanitorJob::Delete(released) => released,
                            JanitorJob::Barrier(_) => unreachable!("a delete job was sent"),
                        })
                    }
                    JanitorSlot::Idle | JanitorSlot::Closed => Err(released),
                }
            };
            if let Err(released) = sent {
                remove_segment_files(self.storage.as_ref(), released);
            }
        }
        if state.release_log.entry_count > COMPACT_ENTRIES {
            // The compact log drops the ranges of deleted segments, so their
            // unlinks must be done and durable first (the rewrite's directory
            // fsync persists them): else a crash could bring back a segment
            // whose releases are forgotten.
            self.settle_janitor();
            let ranges: Vec<(u64, u64)> = state.segments.iter().flat_map(|s| s.released_ranges()).collect();
            state.release_log.rewrite(self.storage.as_ref(), &self.dir, &ranges)?;
        }
        Ok(())
    }

    /// Waits until every released segment handed to the janitor is deleted.
    pub fn settle_janitor(&self) {
        let (done, finished) = std::sync::mpsc::channel();
        let sent = match &*self.janitor.lock().unwrap_or_else(|p| p.into_inner()) {
            JanitorSlot::Running(janitor) => janitor.queue.send(JanitorJob::Barrier(done)).is_ok(),
            JanitorSlot::Idle | JanitorSlot::Closed => false,
        };
        if sent {
            let _ = finished.recv();
        }
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

    fn close(&self) -> Result<()> {
        let checker = self.checker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(checker) = checker {
            checker.stop();
        }
        // Released segments are gone from disk once the log is closed, so a
        // reopen in this process never meets a half-done deletion.
        let slot = std::mem::replace(&mut *self.janitor.lock().unwrap_or_else(|p| p.into_inner()), JanitorSlot::Closed);
        if let JanitorSlot::Running(janitor) = slot {
            janitor.stop();
        }
        if self.closed.swap(true, Ordering::AcqRel) || self.options.read_only {
            return Ok(());
        }
        if self.poisoned.load(Ordering::Acquire) {
            return self.check_poison();
        }
        let _sync = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sync_locked()
    }
}

impl State {
    #[cfg(debug_assertions)]
    fn check_accounting(&self) {
        let bytes: u64 = self.segments.iter().map(|s| s.live_bytes).sum();
        let records: u64 = self.segments.iter().map(|s| s.record_count() - s.released_count).sum();
        assert_eq!(bytes, self.live_bytes, "shadow byte accounting disagrees with the counter");
        assert_eq!(records, self.live_records, "shadow record accounting disagrees with the counter");
    }
}

/// Writes a whole small file and fsyncs it (not its directory entry).
fn write_durably(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage.open(path, true).map_err(|e| io_error(path, e))?;
    file.set_len(0).map_err(|e| io_error(path, e))?;
    file.write_all_at(bytes, 0).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

/// Whether the log's janitor runs. It is started by the first deletion, so
/// a log that never releases a whole segment (most table maps' meta logs,
/// every idle map) costs no thread.
enum JanitorSlot {
    /// Not started yet. If starting it fails, that deletion runs inline
    /// and the next one tries again.
    Idle,
    Running(Janitor),
    /// The log is closed: deletions run inline.
    Closed,
}

/// A thread that deletes fully released segments (sidecar first, so a
/// crash in between leaves a segment without one, scanned at open, never a
/// stale sidecar). Stopped and joined when the log closes.
pub(crate) struct Janitor {
    queue: std::sync::mpsc::Sender<JanitorJob>,
    thread: std::thread::JoinHandle<()>,
}

impl Janitor {
    fn start(storage: Arc<dyn Storage>) -> Option<Janitor> {
        let (queue, work) = std::sync::mpsc::channel::<JanitorJob>();
        let run = move || {
            for job in work {
                match job {
                    JanitorJob::Delete(released) => remove_segment_files(storage.as_ref(), released),
                    JanitorJob::Barrier(done) => drop(done.send(())),
                }
            }
        };
        match std::thread::Builder::new().name("pauselog-wal-janitor".into()).spawn(run) {
            Ok(thread) => Some(Janitor { queue, thread }),
            Err(error) => {
                tracing::warn!(%error, "no janitor thread: released segments are deleted inline");
                None
            }
        }
    }

    fn stop(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

/// Work for the janitor thread.
pub(crate) enum JanitorJob {
    /// Delete these segments.
    Delete(Vec<Released>),
    /// Answer once everything sent before is done.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// A fully released segment waiting for deletion.
pub(crate) struct Released {
    sidecar: PathBuf,
    path: PathBuf,
    /// The log's handle: a file is removed only while this handle is still
    /// valid (a simulated crash invalidates it; a real one ends the thread).
    file: Arc<dyn StorageFile>,
    /// The segment's cached read view, dropped with the rest: unmapping a
    /// 64 MiB segment that was read through costs about 1 ms, which the
    /// thread releasing records should not pay under the log's lock (a
    /// catch-up drain spent 5% of its time there).
    view: Option<Arc<crate::segment::SegmentView>>,
}

/// Removes released segments' sidecars and files (a missing file is
/// already gone), then unmaps their views.
fn remove_segment_files(storage: &dyn Storage, released: Vec<Released>) {
    for segment in released {
        // A reader may still hold the view; then it unmaps when done.
        let _unmapped_last = segment.view;
        if segment.file.len().is_err() {
            continue;
        }
        for path in [segment.sidecar, segment.path] {
            match storage.remove(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(path = %path.display(), %error, "could not remove a released segment"),
            }
        }
    }
}

/// Creates a segment file with its header, preallocated, durable with its
/// directory entry.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    options: &WalOptions,
) -> Result<Segment> {
    let path = segment_path(dir, first_seq);
    let file: Arc<dyn StorageFile> = storage.open(&path, true).map_err(|e| io_error(&path, e))?;
    file.set_len(0).map_err(|e| io_error(&path, e))?;
    file.write_all_at(&encode_header(first_seq), 0).map_err(|e| io_error(&path, e))?;
    if options.preallocate {
        file.allocate(options.segment_bytes_max).map_err(|e| io_error(&path, e))?;
    }
    file.sync_all().map_err(|e| io_error(&path, e))?;
    storage.sync_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok(Segment::new(first_seq, path, file))
}
