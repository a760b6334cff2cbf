//! Group commit: concurrent callers waiting for durability share fsyncs.
//!
//! [`GroupCommit::sync_through`] is the algorithm (see its docs); the
//! fsync itself is the writer's (`writer::sync`), run under
//! [`GroupCommit`]'s sync lock so fsyncs never overlap. Waiters sleep on
//! the log's epoch (`epoch.rs`), which every group fsync, and poisoning,
//! advances.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::state::Shared;
use crate::writer;

/// The group commit of one log.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    /// Serialises fsyncs.
    sync_lock: Mutex<()>,
    /// The state of the current group.
    round: Mutex<Round>,
}

/// Group commit bookkeeping, under `GroupCommit::round`.
#[derive(Debug)]
struct Round {
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

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            sync_lock: Mutex::new(()),
            round: Mutex::new(Round {
                syncing: false,
                gathering: None,
                gathering_rounds: 0,
                expected_records: 1,
                last_sync_duration: Duration::ZERO,
            }),
        }
    }
}

impl GroupCommit {
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
    /// ([`SPIN_SYNCS`]), unless groups are large ([`POLL_GROUP_RECORDS_MAX`]).
    ///
    /// A lone writer never waits: its last group held one record, its own.
    /// Without the gathering, groups alternate between the writers that the
    /// last fsync released and those that arrived during it, so each fsync
    /// carries only half of them. Sleepers are woken all at once and return
    /// without taking the group lock (see `epoch.rs`).
    pub fn sync_through(&self, shared: &Shared, seq: u64) -> Result<()> {
        // The gathering round whose deadline this caller holds, if any, and
        // until when it polls rather than sleeps (fixed when it first waits).
        let mut held_round = None;
        let mut spin_end: Option<Instant> = None;
        loop {
            if shared.durable_seq.load(Ordering::Acquire) >= seq {
                if let Some(round) = held_round {
                    self.hand_off_gathering(shared, round);
                }
                return shared.check_poison();
            }
            let mut group = self.round.lock().unwrap_or_else(|p| p.into_inner());
            shared.check_poison()?;
            if shared.durable_seq.load(Ordering::Acquire) >= seq {
                continue; // returns above
            }
            let mut deadline = None;
            if !group.syncing {
                let pending = shared
                    .appended_seq
                    .load(Ordering::Acquire)
                    .saturating_sub(shared.durable_seq.load(Ordering::Acquire));
                let now = Instant::now();
                if pending >= group.expected_records || group.gathering.is_some_and(|g| now >= g.deadline) {
                    held_round = None;
                    self.sync_group(shared, group, seq)?;
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
            let epoch = shared.sync_epoch.current();
            // `poison` sets the flag, then advances the epoch: checked after
            // the read, one of the two is always seen.
            if shared.is_poisoned() {
                continue;
            }
            let end =
                *spin_end.get_or_insert_with(|| Instant::now() + (group.last_sync_duration * SPIN_SYNCS).min(SPIN_MAX));
            let poll = held_round.is_some() || group.expected_records <= POLL_GROUP_RECORDS_MAX;
            drop(group);
            // Poll through the gathering and the fsync (see SPIN_SYNCS),
            // then sleep; the holder of the deadline wakes up for it.
            let changed =
                poll && shared.sync_epoch.spin_while(epoch, deadline.map_or(end, |deadline| deadline.min(end)));
            if !changed {
                shared.sync_epoch.wait_while(epoch, deadline);
            }
        }
    }

    /// Makes everything appended so far durable, outside any group (an
    /// explicit `Wal::sync`, or close).
    pub fn sync_all(&self, shared: &Shared) -> Result<()> {
        let _sync = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        shared.check_poison()?;
        writer::sync(shared)
    }

    /// The holder of a gathering deadline was made durable by something else
    /// than a group fsync (`Wal::sync`, a rotation) and leaves: if its round
    /// still gathers, end it and wake the sleepers, so that one of those
    /// not yet durable takes the deadline over.
    fn hand_off_gathering(&self, shared: &Shared, round: u64) {
        let mut group = self.round.lock().unwrap_or_else(|p| p.into_inner());
        if group.gathering.is_some_and(|g| g.round == round) {
            group.gathering = None;
            drop(group);
            shared.sync_epoch.advance();
        }
    }

    /// Flushes and fsyncs for a whole group, then wakes every
    /// sleeping caller.
    fn sync_group(&self, shared: &Shared, mut group: MutexGuard<'_, Round>, seq: u64) -> Result<()> {
        group.syncing = true;
        group.gathering = None;
        drop(group);
        let before = shared.durable_seq.load(Ordering::Acquire);
        let started = Instant::now();
        let result = {
            let _sync = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
            if shared.durable_seq.load(Ordering::Acquire) >= seq {
                shared.check_poison()
            } else {
                shared.check_poison().and_then(|()| writer::sync(shared))
            }
        };
        let mut group = self.round.lock().unwrap_or_else(|p| p.into_inner());
        group.syncing = false;
        group.last_sync_duration = started.elapsed();
        group.expected_records = shared.appended_seq.load(Ordering::Acquire).saturating_sub(before).max(1);
        drop(group);
        // After the unlock, so the woken callers not covered do not queue on
        // it; one that read the old epoch after `syncing` was cleared only
        // wakes once more than needed.
        shared.sync_epoch.advance();
        result
    }
}
