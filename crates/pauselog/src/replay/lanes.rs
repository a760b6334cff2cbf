//! Where a lane's batch is delivered (R22): on the replay thread itself for
//! one lane, or on one thread per lane, each with at most one call in
//! flight. Both hand back the batch with its results in the order the
//! calls finish.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::map::MapShared;
use crate::{DeliveryError, QueuedRecord};

/// One `deliver_batch` call of one lane.
pub(crate) struct Job {
    pub lane: usize,
    pub records: Vec<QueuedRecord>,
    /// The window slot of each record.
    pub ids: Vec<u64>,
}

/// A job with the destination's answers, one per record.
pub(crate) struct Done {
    pub job: Job,
    pub results: Vec<Result<(), DeliveryError>>,
}

pub(crate) enum LanePool {
    Inline { done: VecDeque<Done> },
    Threads { jobs: Vec<Sender<Job>>, done: Receiver<Done>, threads: Vec<JoinHandle<()>> },
}

impl LanePool {
    /// Delivery on the replay thread: one lane.
    pub fn inline() -> LanePool {
        LanePool::Inline { done: VecDeque::new() }
    }

    /// One thread per lane.
    pub fn threads(map: &Arc<MapShared>, lanes: usize) -> std::io::Result<LanePool> {
        let (done_sender, done) = channel();
        let (mut jobs, mut threads) = (Vec::with_capacity(lanes), Vec::with_capacity(lanes));
        for lane in 0..lanes {
            let (job_sender, job_receiver) = channel::<Job>();
            let (map, done_sender) = (map.clone(), done_sender.clone());
            let thread =
                std::thread::Builder::new().name(format!("pauselog-lane-{}-{lane}", map.name)).spawn(move || {
                    for job in job_receiver {
                        let results = call(&map, &job.records);
                        if done_sender.send(Done { job, results }).is_err() {
                            return;
                        }
                    }
                })?;
            jobs.push(job_sender);
            threads.push(thread);
        }
        Ok(LanePool::Threads { jobs, done, threads })
    }

    /// Starts a job; its lane must have no call in flight.
    pub fn send(&mut self, map: &MapShared, job: Job) {
        match self {
            LanePool::Inline { done } => {
                let results = call(map, &job.records);
                done.push_back(Done { job, results });
            }
            LanePool::Threads { jobs, .. } => {
                let lane = job.lane;
                // A lane thread only stops when its sender is dropped.
                jobs[lane].send(job).expect("lane threads outlive the pool");
            }
        }
    }

    /// The next finished job (blocks while calls are in flight). The caller
    /// only asks while one is.
    pub fn next_done(&mut self) -> Done {
        match self {
            LanePool::Inline { done } => done.pop_front().expect("an inline job finishes when it is sent"),
            LanePool::Threads { done, .. } => {
                done.recv().expect("a lane thread answers every job it takes (panics included)")
            }
        }
    }

    /// A finished job if one is waiting (never blocks).
    pub fn try_next_done(&mut self) -> Option<Done> {
        match self {
            LanePool::Inline { done } => done.pop_front(),
            LanePool::Threads { done, .. } => done.try_recv().ok(),
        }
    }

    pub fn is_inline(&self) -> bool {
        matches!(self, LanePool::Inline { .. })
    }

    /// Stops the lane threads (their calls have all answered).
    pub fn close(self) {
        if let LanePool::Threads { jobs, threads, .. } = self {
            drop(jobs);
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// Times the calls the replay makes on its own thread (one lane): how long
/// each waits (its wall time less the CPU time it took on this thread, for
/// a call that blocked at least once: a thread that was only preempted did
/// not wait for the destination) and the replay's own work between two
/// calls, smoothed.
#[derive(Debug, Default)]
pub(crate) struct InlineTimer {
    wait: Duration,
    work: Duration,
    calls: u32,
    pub last_call_end: Option<Instant>,
}

impl InlineTimer {
    /// Calls measured before the timer answers.
    const CALLS_MEASURED: u32 = 3;

    /// Times a call sent at `sent` that just answered; the replay's work
    /// before it counts only if it did not wait since the previous call.
    pub fn measure(&mut self, sent: Instant, usage_before: Option<(Duration, i64)>) {
        let answered = Instant::now();
        let smooth = |ewma: Duration, sample: Duration| (ewma * 3 + sample) / 4;
        if let Some(((cpu_before, blocks_before), (cpu_after, blocks_after))) = usage_before.zip(thread_usage()) {
            let wait = if blocks_after > blocks_before {
                answered.saturating_duration_since(sent).saturating_sub(cpu_after.saturating_sub(cpu_before))
            } else {
                Duration::ZERO
            };
            self.wait = if self.calls == 0 { wait } else { smooth(self.wait, wait) };
            self.calls = self.calls.saturating_add(1);
        }
        if let Some(last_end) = self.last_call_end {
            let work = sent.saturating_duration_since(last_end);
            self.work = if self.work.is_zero() { work } else { smooth(self.work, work) };
        }
        self.last_call_end = Some(answered);
    }

    /// The calls wait longer than the replay works between them.
    pub fn waiting_bound(&self) -> bool {
        self.calls >= Self::CALLS_MEASURED && self.wait > self.work
    }
}

/// What the calling thread has done so far: its CPU time (Linux
/// `CLOCK_THREAD_CPUTIME_ID`) and how often it blocked (voluntary context
/// switches, `RUSAGE_THREAD`); `None` where either is missing.
pub(crate) fn thread_usage() -> Option<(std::time::Duration, i64)> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` only writes the `timespec` it is given, which
    // lives on this stack frame for the whole call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return None;
    }
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` only writes the `rusage` it is given, which lives
    // on this stack frame for the whole call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return None;
    }
    let cpu = std::time::Duration::new(u64::try_from(now.tv_sec).ok()?, u32::try_from(now.tv_nsec).ok()?);
    Some((cpu, usage.ru_nvcsw))
}

/// One `deliver_batch` call, with one result per record whatever the
/// destination does: a wrong count or a panic reads as `Unavailable` for
/// the whole batch (retried after a backoff), never as a delivery.
fn call(map: &MapShared, records: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
    let destination = map.destination();
    let results = catch_unwind(AssertUnwindSafe(|| destination.deliver_batch(records)));
    let reason = match results {
        Ok(results) if results.len() == records.len() => return results,
        Ok(results) => format!("destination returned {} results for {} records", results.len(), records.len()),
        Err(_) => "destination panicked in deliver_batch".to_owned(),
    };
    tracing::error!(map = %map.name, %reason, "destination broke its contract; the batch will be retried");
    vec![Err(DeliveryError::Unavailable(reason)); records.len()]
}
