//! The background check of the frames an open did not verify.
//!
//! An open takes a sealed segment's frame offsets from its sidecar instead
//! of reading the segment, which keeps a reopen of 1 GiB to milliseconds,
//! and so does the active segment's after a clean close, so those frames
//! are unverified until something reads them. Damage in
//! one would otherwise surface only when a reader reached it, perhaps hours
//! later in the middle of a catch-up. So right after open a thread
//! CRC-checks them: newest segment first (a catch-up reads from the oldest,
//! so the two meet in the middle instead of checking the same frames), at
//! the lowest CPU priority (it only takes a core nothing else wants), and
//! every frame it checks counts as verified for readers too. Damage it
//! finds is logged with `tracing::error!` naming the file and offset, and
//! kept for [`crate::Wal::damage`]; readers and `Wal::verify` report what
//! they find there as well.
//!
//! Closing the log does not wait for the thread: it tells it to stop, and
//! the thread ends after its current run of frames (about 1 MiB) whenever
//! it next gets a core, which at its priority may take a while on a busy
//! machine. It holds no strong reference to the log while it checks (only
//! the segment's own view), so a closed log's files and directory lock are
//! not kept by it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crate::ahead::Job;
use crate::error::{Damage, Error};
use crate::state::Shared;

/// Bytes of frames checked between two looks at the stop flag.
const RUN_BYTES: u64 = 1024 * 1024;

/// The running check; see the module docs.
pub(crate) struct Checker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checker {
    /// Starts the check if some segment holds unverified frames;
    /// `None` if there is nothing to check or no thread can be started.
    pub fn start(shared: &Arc<Shared>) -> Option<Checker> {
        let has_work = shared.lock_state().segments.iter().any(|s| !s.is_verified());
        if !has_work {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, thread_stop) = (Arc::downgrade(shared), stop.clone());
        let spawned = std::thread::Builder::new().name("pauselog-wal-verify".into()).spawn(move || {
            lower_priority();
            run(&weak, &thread_stop);
        });
        match spawned {
            Ok(thread) => Some(Checker { stop, thread }),
            Err(error) => {
                tracing::warn!(%error, "no thread for the background check: unverified frames are checked when read");
                None
            }
        }
    }

    /// Waits until every frame is checked (or the check stopped at damage).
    pub fn finish(self) {
        let _ = self.thread.join();
    }

    /// Tells the check to stop, without waiting for it (see the module docs).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Checks the unverified segments, newest first, until all are
/// checked, the log is gone or `stop` is set.
fn run(shared: &Weak<Shared>, stop: &AtomicBool) {
    let mut below_seq = u64::MAX;
    while !stop.load(Ordering::Relaxed) {
        let Some(job) = shared.upgrade().and_then(|shared| next_job(&shared, &mut below_seq)) else { return };
        while !stop.load(Ordering::Relaxed) {
            let Some(run) = job.claim(RUN_BYTES) else { break };
            if let Err(Error::Corrupt { path, offset, reason }) = job.check(run) {
                let damage = Damage { path, offset, reason };
                match shared.upgrade() {
                    Some(shared) => shared.note_damage(damage),
                    None => tracing::error!(%damage, "damage found in a log file, after the log was closed"),
                }
                break;
            }
        }
    }
}

/// The unverified frames of the newest segment that starts below
/// `below_seq` and still holds live records; moves `below_seq` past it.
fn next_job(shared: &Shared, below_seq: &mut u64) -> Option<Job> {
    let state = shared.lock_state();
    let below = *below_seq;
    for segment in state.segments.iter().rev().filter(|s| s.first_seq < below) {
        *below_seq = segment.first_seq;
        if segment.is_verified() || segment.is_fully_released() {
            continue;
        }
        match segment.file.map() {
            Ok(view) => {
                if let Some(job) = Job::of(segment, view) {
                    return Some(job);
                }
            }
            Err(error) => {
                tracing::debug!(path = %segment.path.display(), %error, "background check cannot map a segment")
            }
        }
    }
    None
}

/// Runs the calling thread at the lowest CPU priority (Linux keeps a nice
/// value per thread). A hint: on failure, or elsewhere, nothing changes.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call about the calling thread, no memory passed.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}
