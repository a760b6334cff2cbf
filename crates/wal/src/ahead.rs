//! Checking frames, and mapping pages, ahead of a scan on the second core.
//!
//! Frames of sealed segments loaded from their sidecar are CRC-checked on
//! their first read in the process. For a long scan that check costs more
//! than the reading, so the scan hands each such segment to a helper
//! thread as a [`Job`], and the two share the checking: the segment's
//! unchecked frames are cut into runs of about [`RUN_BYTES`], and whoever
//! needs the next unclaimed run claims it (one compare-exchange of
//! `claimed_end`) and checks it. The helper claims run after run; the
//! reader claims one only when it has caught up with the helper, and
//! otherwise finds its frames checked already. Nothing is checked twice and
//! neither thread idles.
//!
//! A checked run is published by advancing the segment's `verified_end`
//! (every frame below it is checked) once the runs before it are done too.
//! The helper only advances `verified_end`; it reports nothing. If it finds
//! damage it stops the job, and the reader checks the damaged frame itself,
//! so damage is reported by the reader as [`crate::Error::Corrupt`] with
//! file and offset, as without a helper.
//!
//! A sealed segment whose frames are all checked already (written or
//! scanned by this process, the case of a catch-up drain) needs no job; the
//! helper only maps its pages ahead of the reader ([`Mapped::populate`]), so
//! the reader takes no page faults. Measured on a 1 GiB drain: page faults
//! were 10% of the replay thread's time, and populating ahead took the
//! median drain from 181 to 151 ms over 8 alternating pairs of runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::offsets::Offsets;
use crate::segment::Segment;
use crate::storage::Mapped;

/// Unchecked bytes a sealed segment must hold for a scan to hand it to the
/// helper; below this the hand-off costs more than it saves.
pub(crate) const AHEAD_BYTES_MIN: u64 = 256 * 1024;

/// Sealed segments a scan hands to the helper ahead of its position: the
/// one it reads and the next, so the helper does not idle at a boundary.
pub(crate) const AHEAD_SEGMENTS: usize = 2;

/// Bytes of frames the helper claims and checks as one run. Large runs keep
/// the two threads apart: measured on 1 GB of 1 KiB frames, runs of 64 KiB
/// (helper) and 16 KiB (reader) replay in 83 ms, 1 MiB and 128 KiB in 67 ms
/// (the threads fault in the same pages and share cache lines less).
const RUN_BYTES: u64 = 1024 * 1024;

/// Bytes of frames a reader claims at once when it would otherwise wait for
/// the helper: smaller than the helper's, so the reader takes just enough of
/// the checking to keep pace (a reader that does much more than read takes
/// none).
pub(crate) const READER_RUN_BYTES: u64 = 128 * 1024;

/// How long a reader waits for the helper when it makes no progress (a run
/// takes about 0.1 ms) before it gives up on the job and checks the frames
/// itself (the helper may be descheduled on a busy machine).
const AHEAD_STALL_MAX: Duration = Duration::from_millis(1);

/// The unchecked frames of one sealed segment, shared by a reader and the
/// helper thread.
pub(crate) struct Job {
    /// First seq of the segment (identifies it).
    pub segment_first_seq: u64,
    path: PathBuf,
    view: Arc<dyn Mapped>,
    /// Seq of the frame at `offsets[0]`.
    first_seq: u64,
    /// Offsets of the frames from the first unchecked one on.
    offsets: Offsets,
    /// End offset of the last frame.
    end: u64,
    verified_end: Arc<AtomicU64>,
    /// Every frame below this offset is claimed by a thread that checks it.
    claimed_end: AtomicU64,
    /// Checked runs (`start -> end`) not yet contiguous with `verified_end`.
    done_runs: Mutex<BTreeMap<u64, u64>>,
    /// The helper stopped (damage, or the reader is gone): do not wait for it.
    stopped: AtomicBool,
}

/// A claimed run: frame indexes `first..last` of a job, bytes `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    first: usize,
    last: usize,
    pub start: u64,
    pub end: u64,
}

impl Job {
    /// The frames of `segment` at or past its `verified_end` that open
    /// loaded from a sidecar (below its `loaded_end`), read through `view`;
    /// `None` if it has none.
    pub fn of(segment: &Segment, view: Arc<dyn Mapped>) -> Option<Job> {
        let end = segment.loaded_end;
        let verified_end = segment.verified_end.load(Ordering::Acquire);
        let first_index = segment.offsets.first_at_or_past(verified_end);
        let last_index = segment.offsets.first_at_or_past(end);
        if first_index >= last_index {
            return None;
        }
        let first_offset = segment.offsets.at(first_index);
        Some(Job {
            segment_first_seq: segment.first_seq,
            path: segment.path.clone(),
            view,
            first_seq: segment.first_seq + first_index as u64,
            offsets: segment.offsets.range(first_index, last_index),
            end,
            verified_end: segment.verified_end.clone(),
            claimed_end: AtomicU64::new(first_offset),
            done_runs: Mutex::new(BTreeMap::new()),
            stopped: AtomicBool::new(false),
        })
    }

    /// Checks every frame of the job on the calling thread; returns how
    /// many, or the first damage.
    pub fn check_all(&self) -> Result<u64> {
        let mut checked = 0;
        while let Some(run) = self.claim(RUN_BYTES) {
            self.check(run)?;
            checked += (run.last - run.first) as u64;
        }
        Ok(checked)
    }

    /// Bytes of the frames to check.
    pub fn bytes(&self) -> u64 {
        self.offsets.get(0).map_or(0, |offset| self.end - offset)
    }

    fn frame_end(&self, index: usize) -> u64 {
        self.offsets.get(index + 1).unwrap_or(self.end)
    }

    /// Claims the next unclaimed run of about `run_bytes` (at least one
    /// frame), or `None` when every frame is claimed.
    pub fn claim(&self, run_bytes: u64) -> Option<Run> {
        let mut start = self.claimed_end.load(Ordering::Acquire);
        loop {
            if start >= self.end {
                return None;
            }
            let first = self.offsets.first_at_or_past(start);
            let mut last = first + 1;
            while last < self.offsets.len() && self.frame_end(last - 1) - start < run_bytes {
                last += 1;
            }
            let end = self.frame_end(last - 1);
            match self.claimed_end.compare_exchange(start, end, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Run { first, last, start, end }),
                Err(now) => start = now,
            }
        }
    }

    /// Whether every frame up to `frame_end` is checked and published.
    pub fn is_checked(&self, frame_end: u64) -> bool {
        self.verified_end.load(Ordering::Acquire) >= frame_end
    }

    /// CRC-checks a claimed run and publishes it; the first damage is
    /// returned, the run stays unpublished and the job stops.
    pub fn check(&self, run: Run) -> Result<()> {
        match self.check_prefix(run) {
            (_, Some(error)) => Err(error),
            (_, None) => Ok(()),
        }
    }

    /// Like [`Job::check`], but returns the end of the frames checked whole
    /// before the damage, so a reader can still hand those out.
    pub fn check_prefix(&self, run: Run) -> (u64, Option<Error>) {
        let bytes = self.view.bytes();
        for index in run.first..run.last {
            let (offset, end) = (self.offsets.at(index), self.frame_end(index));
            let seq = self.first_seq + index as u64;
            if let Err(error) = crate::segment::check_frame(bytes, offset as usize, end - offset, seq, &self.path) {
                self.stopped.store(true, Ordering::Release);
                return (offset, Some(error));
            }
        }
        self.publish(run);
        (run.end, None)
    }

    /// Records a checked run and advances `verified_end` over every run
    /// that is now contiguous with it.
    fn publish(&self, run: Run) {
        let mut done_runs = self.done_runs.lock().unwrap_or_else(|p| p.into_inner());
        done_runs.insert(run.start, run.end);
        let mut target = self.verified_end.load(Ordering::Acquire);
        while let Some((&start, &end)) = done_runs.first_key_value() {
            if start > target {
                break;
            }
            done_runs.pop_first();
            target = target.max(end);
        }
        // Every frame below `target` is checked, so raising it is sound
        // whatever other readers published meanwhile.
        self.verified_end.fetch_max(target, Ordering::AcqRel);
    }

    /// Waits while the helper makes progress towards checking the frame
    /// ending at `frame_end`; true once it is checked, false if the helper
    /// stopped or stalled (a stall stops the job: nobody waits for it again).
    pub fn wait_checked(&self, frame_end: u64) -> bool {
        let mut seen = self.verified_end.load(Ordering::Acquire);
        let mut stalled_since: Option<Instant> = None;
        while seen < frame_end && !self.stopped.load(Ordering::Acquire) {
            std::hint::spin_loop();
            let now = self.verified_end.load(Ordering::Acquire);
            if now != seen {
                seen = now;
                stalled_since = None;
            } else if stalled_since.get_or_insert_with(Instant::now).elapsed() >= AHEAD_STALL_MAX {
                self.stopped.store(true, Ordering::Release);
                break;
            }
        }
        seen >= frame_end || self.verified_end.load(Ordering::Acquire) >= frame_end
    }

    /// Checks runs until every frame is claimed, the job is stopped, or a
    /// run is damaged (then the job stops: the reader will find the damage).
    fn run_to_end(&self, stop: &AtomicBool) {
        while !self.stopped.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            let Some(run) = self.claim(RUN_BYTES) else { break };
            if let Err(error) = self.check(run) {
                tracing::debug!(path = %self.path.display(), %error, "checking ahead stopped at damage");
                break;
            }
        }
        self.stopped.store(true, Ordering::Release);
    }
}

/// Work for the helper, in the order the reader will get to it.
enum Work {
    /// Check the frames of a segment.
    Check(Arc<Job>),
    /// Map the pages of a checked segment.
    Populate(Arc<dyn Mapped>),
}

/// The helper thread of one reader. Dropping it stops the thread within one
/// run (or one segment's populate) and joins it.
pub(crate) struct AheadHelper {
    jobs: Option<mpsc::Sender<Work>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AheadHelper {
    /// Starts the helper, or `None` on a single core (the helper would only
    /// take turns with the reader) or if the thread cannot be spawned.
    pub fn start() -> Option<AheadHelper> {
        if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
            return None;
        }
        let (jobs, receiver) = mpsc::channel::<Work>();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pauselog-wal-check".into())
            .spawn(move || {
                for work in receiver {
                    match work {
                        Work::Check(job) => job.run_to_end(&thread_stop),
                        Work::Populate(view) if !thread_stop.load(Ordering::Relaxed) => view.populate(),
                        Work::Populate(_) => {}
                    }
                }
            })
            .ok()?;
        Some(AheadHelper { jobs: Some(jobs), stop, thread: Some(thread) })
    }

    /// Queues a job; false if the helper is gone.
    pub fn submit(&self, job: Arc<Job>) -> bool {
        self.send(Work::Check(job))
    }

    /// Queues mapping the pages of `view`; false if the helper is gone.
    pub fn populate(&self, view: Arc<dyn Mapped>) -> bool {
        self.send(Work::Populate(view))
    }

    fn send(&self, work: Work) -> bool {
        self.jobs.as_ref().is_some_and(|jobs| jobs.send(work).is_ok())
    }
}

impl Drop for AheadHelper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
