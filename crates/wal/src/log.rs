//! The public API of a log: [`Wal`]. It owns the log's shared state
//! (`state.rs`), its group commit (`group_commit.rs`) and its background
//! check (`check.rs`), and delegates: writes to `writer.rs`, reads to
//! `reader.rs`, recovery at open to `recovery.rs`.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::ahead::Job;
use crate::check::Checker;
use crate::error::{io_error, Damage, Error, Result};
use crate::frame::{frame_bytes, FRAME_BODY_BYTES_MAX};
use crate::group_commit::GroupCommit;
use crate::janitor;
use crate::latency::SyncLatency;
use crate::options::{SyncPolicy, WalOptions};
use crate::reader::{Entry, Reader};
use crate::segment::Segment;
use crate::state::Shared;
use crate::storage::{FsStorage, Storage};
use crate::writer;

/// A segmented write-ahead log. `Send + Sync`; share it with `Arc`.
pub struct Wal {
    shared: Arc<Shared>,
    commit: GroupCommit,
    /// The background check of the frames open did not verify, until it
    /// ends or the log closes.
    checker: Mutex<Option<Checker>>,
    closed: AtomicBool,
    /// The directory lock (none when read-only). Held by the log itself, not
    /// by its shared state, so that a reader or the background check
    /// lingering after the log is dropped does not keep the directory
    /// locked.
    _lock: Option<Box<dyn fmt::Debug + Send + Sync>>,
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
        f.debug_struct("Wal").field("dir", &self.shared.dir).field("stats", &self.stats()).finish()
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
        let read_only = options.read_only;
        let shared = Arc::new(Shared::new(dir.to_path_buf(), options, storage, state));
        let checker = if read_only { None } else { Checker::start(&shared) };
        let wal = Wal {
            shared,
            commit: GroupCommit::default(),
            checker: Mutex::new(checker),
            closed: AtomicBool::new(false),
            _lock: lock,
        };
        tracing::debug!(dir = %dir.display(), stats = ?wal.stats(), "wal opened");
        Ok(wal)
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
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
        let mut state = self.shared.lock_state();
        if let Some(cap_bytes) = self.shared.options.live_bytes_max {
            if state.live_bytes + needed_bytes > cap_bytes {
                return Err(Error::CapExceeded { live_bytes: state.live_bytes, needed_bytes, cap_bytes });
            }
        }
        let first_seq = state.next_seq;
        for body in bodies {
            writer::append(&self.shared, &mut state, body.as_ref())?;
        }
        Ok(first_seq..=state.next_seq - 1)
    }

    /// Applies the sync policy to everything appended up to `seq`: under
    /// `Always` it is durable when this returns; under `Interval` it is
    /// written to the OS (and durable if the interval was due); under
    /// `Never` nothing happens.
    pub fn commit(&self, seq: u64) -> Result<()> {
        match self.shared.options.sync {
            SyncPolicy::Always => self.sync_through(seq),
            SyncPolicy::Interval(interval) => {
                let mut state = self.shared.lock_state();
                if state.last_sync.elapsed() >= interval {
                    drop(state);
                    return self.sync_through(seq);
                }
                // Not due: hand the frames to the OS so that they survive a
                // crash of this process.
                writer::write_through(&self.shared, &mut state, seq)
            }
            SyncPolicy::Never => Ok(()),
        }
    }

    /// Makes every record up to `seq` durable. Concurrent callers share one
    /// fsync (group commit, see `group_commit.rs`): a lone writer never
    /// waits, and a group is synced by the caller that completes it, or by
    /// the first waiter once it has gathered for half an fsync.
    pub fn sync_through(&self, seq: u64) -> Result<()> {
        self.commit.sync_through(&self.shared, seq)
    }

    /// Writes buffered appends to the file (no fsync): they survive a crash
    /// of this process, not a power loss.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let mut state = self.shared.lock_state();
        writer::flush(&self.shared, &mut state)
    }

    /// Makes everything appended so far durable, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        if self.shared.options.read_only {
            return self.shared.check_poison();
        }
        self.commit.sync_all(&self.shared)
    }

    /// Makes the next append get `seq` when that is ahead of the tail; the
    /// seqs in between are never assigned. The engine calls this when its
    /// meta log is ahead of the data log after a crash, so that no seq is
    /// ever given to two different records, and when a table map switches
    /// from live deliveries to queueing. Costs a segment rotation when the
    /// active segment holds records; an empty one is renamed instead (a
    /// header write, a rename and two syncs: no file is created or deleted).
    pub fn skip_to(&self, seq: u64) -> Result<()> {
        self.check_writable()?;
        let mut state = self.shared.lock_state();
        if seq <= state.next_seq {
            return Ok(());
        }
        writer::skip_to(&self.shared, &mut state, seq)
    }

    /// Seals the active segment and starts a new one.
    pub fn rotate(&self) -> Result<()> {
        self.check_writable()?;
        let mut state = self.shared.lock_state();
        writer::rotate(&self.shared, &mut state)
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
        let mut state = self.shared.lock_state();
        // Seq 0 is never assigned, and release.log reads an entry with lo 0
        // as a torn tail (dropping it and every later entry), so clamp.
        let (lo, hi) = ((*seqs.start()).max(1), (*seqs.end()).min(state.next_seq - 1));
        if lo > hi {
            return Ok(());
        }
        writer::release(&self.shared, &mut state, lo, hi)
    }

    /// Reads from `from_seq` (or the first live record after it) to the tail
    /// as it grows; released records are skipped.
    pub fn reader(&self, from_seq: u64) -> Reader {
        Reader::new(self.shared.clone(), from_seq)
    }

    /// CRC-checks every frame not yet checked in this process — the frames
    /// of sealed segments that open loaded from their sidecar index instead
    /// of scanning, released ones included — and returns how many it
    /// checked, or the first damage as [`Error::Corrupt`] with file and
    /// offset. Works on a read-only log (e.g. for a `verify` command); does
    /// not block appends while it reads.
    pub fn verify(&self) -> Result<u64> {
        let unverified: Vec<Job> = {
            let state = self.shared.lock_state();
            let mut unverified = Vec::new();
            for segment in state.segments.iter().filter(|segment| !segment.is_verified()) {
                let view = segment.file.map().map_err(|e| io_error(&segment.path, e))?;
                unverified.extend(Job::of(segment, view));
            }
            unverified
        };
        unverified.iter().try_fold(0, |checked, job| Ok(checked + job.check_all().map_err(|e| self.shared.noted(e))?))
    }

    /// The first damage found in this log since it was opened: by the
    /// background check of the sealed segments open did not read (see
    /// [`crate::format`], "Damage found early"), by a reader, or by
    /// [`Wal::verify`]. Each is also logged with `tracing::error!`. `None`
    /// means none found *yet*: see [`Wal::wait_background_check`].
    pub fn damage(&self) -> Option<Damage> {
        self.shared.damage()
    }

    /// Waits until the background check has checked every frame open did
    /// not verify, then returns [`Wal::damage`]. Returns at once when there
    /// is no check (nothing to check, or a read-only log).
    pub fn wait_background_check(&self) -> Option<Damage> {
        let checker = self.checker.lock().unwrap_or_else(|p| p.into_inner()).take();
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
        crate::reader::read_points(&self.shared, seqs)
    }

    /// Encoded bytes of a live record, or `None`.
    pub fn record_bytes(&self, seq: u64) -> Option<u64> {
        let state = self.shared.lock_state();
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
        let state = self.shared.lock_state();
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
        let state = self.shared.lock_state();
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
        let state = self.shared.lock_state();
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
        self.shared.lock_state().live_bytes
    }

    /// The first live seq, if any.
    pub fn first_live_seq(&self) -> Option<u64> {
        let state = self.shared.lock_state();
        state.segments.iter().find_map(|segment| {
            (0..segment.offsets.len()).find(|&i| !segment.is_released(i)).map(|i| segment.first_seq + i as u64)
        })
    }

    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.shared.lock_state().next_seq
    }

    /// Figures of the log now.
    pub fn stats(&self) -> WalStats {
        let state = self.shared.lock_state();
        WalStats {
            live_records: state.live_records,
            live_bytes: state.live_bytes,
            segment_count: state.segments.len() as u64,
            next_seq: state.next_seq,
            durable_seq: self.shared.durable_seq.load(Ordering::Acquire),
            sync_count: self.shared.sync_count.load(Ordering::Relaxed),
        }
    }

    /// How long the fsyncs counted by [`WalStats::sync_count`] took.
    pub fn sync_latency(&self) -> SyncLatency {
        self.shared.sync_latency.snapshot()
    }

    /// Waits until the segments released so far are deleted from disk (they
    /// are deleted by a background thread; closing the log also waits).
    pub fn settle(&self) {
        janitor::settle(&self.shared.janitor);
    }

    /// Syncs and closes. Dropping the log does the same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.close_now()
    }

    /// Stops the background threads and syncs, once.
    fn close_now(&self) -> Result<()> {
        let checker = self.checker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(checker) = checker {
            checker.stop();
        }
        // Released segments are gone from disk once the log is closed, so a
        // reopen in this process never meets a half-done deletion.
        janitor::close(&self.shared.janitor);
        if self.closed.swap(true, Ordering::AcqRel) || self.shared.options.read_only {
            return Ok(());
        }
        if self.shared.is_poisoned() {
            return self.shared.check_poison();
        }
        self.commit.sync_all(&self.shared)?;
        writer::write_closed_sidecar(&self.shared);
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.shared.options.read_only {
            return Err(Error::ReadOnly { dir: self.shared.dir.clone() });
        }
        self.shared.check_poison()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.close_now() {
            tracing::warn!(dir = %self.shared.dir.display(), %error, "wal close on drop failed");
        }
    }
}
