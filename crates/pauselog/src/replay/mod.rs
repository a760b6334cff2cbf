//! The catch-up worker (R3, R15, R18, R22): reads the queue in seq order,
//! splits it into key lanes, keeps one `deliver_batch` call in flight per
//! lane, commits the contiguous prefix of finished records as the new head,
//! and switches the map to Running when the head passes the tail.
//!
//! The window holds every record read and not yet committed, in seq order.
//! A record finishes when its lane's call answers (delivered, or rejected
//! and moved to the errors) or when it is held back behind an earlier
//! failure of its key; the head is the first unfinished one. A crash
//! redelivers at most the window (R18), in seq order per key.
//!
//! Each commit is one meta event, written to the meta log's file but not
//! synced (a process crash keeps it; a power loss only redelivers the
//! batches since the last sync); delivered records are released every
//! [`SETTLE_RECORDS`] records rather than per commit (a release lost to a
//! crash is redone at open from the head).

mod batch;
mod end;
mod lanes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use pauselog_wal::{Entry, Reader, SyncPolicy};

use self::batch::{Former, HeldBack, Item, KeyChecks, Limits};
use self::lanes::{Done, InlineTimer, Job, LanePool};
use crate::codec;
use crate::errors_table::SUPERSEDED_TEXT;
use crate::map::{key_hash, lane_of, Core, List, MapShared};
use crate::meta::StoredState;
use crate::{DeliveryError, Error, ErrorReason, KeyOrdering, QueuedRecord, Result};

/// Passed records after which the delivered ones are released.
const SETTLE_RECORDS: u64 = 8192;
/// Shortest interval between progress notifications to `wait_for` callers.
const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_millis(10);
/// Batches per lane of records read and not finished (waiting in their
/// lane or in flight): what the replay holds in memory.
const UNFINISHED_BATCHES_PER_LANE: usize = 4;
/// The same while the replay delivers on its own thread: the next batch
/// and one more for the Strict look-ahead. More only pushes the payloads
/// read ahead out of the CPU's caches before the destination reads them.
const INLINE_UNFINISHED_BATCHES: usize = 2;
/// Record bytes read and not finished, at most (payloads held in memory).
const UNFINISHED_BYTES_MAX: u64 = 64 << 20;
/// Batches per lane of records read and not committed, finished or not:
/// under Strict ordering the head waits for a key's next record while the
/// lanes run ahead over other keys, so the window spans several rounds of
/// every key. A finished slot holds no payload (about 40 bytes), and a
/// crash redelivers at most the window (R18).
const WINDOW_BATCHES_PER_LANE: usize = 32;
/// How long new submits may wait while the replay delivers the last round
/// of the backlog (see `Replay::close_tail_if_near`).
const CLOSING_TAIL_WAIT_MAX: Duration = Duration::from_millis(250);
const CLOSING_TAIL_WAIT_MIN: Duration = Duration::from_millis(10);
/// While every waiting record's key is busy elsewhere: how long to wait
/// for a change before looking again.
const BUSY_WAIT: Duration = Duration::from_millis(5);

/// One record read and not yet committed.
struct Slot {
    seq: u64,
    frame_bytes: u64,
    outcome: Outcome,
}

enum Outcome {
    Waiting,
    /// Delivered; the key is kept when it may supersede catch-up errors
    /// (errors around, or records of this catch-up rejected or held back:
    /// R16b).
    Delivered(Option<String>),
    /// Finished without delivery: goes to the catch-up errors.
    Moved(Box<Moved>),
}

struct Moved {
    key: String,
    reason: ErrorReason,
    last_error: Option<String>,
}

/// One key lane: its records waiting to be sent, in seq order.
#[derive(Default)]
struct Lane {
    pending: VecDeque<Item>,
    /// Keys rejected in this catch-up (their later records are held back
    /// under Strict ordering; they may supersede errors under BestEffort).
    rejected: HashSet<String>,
    busy: bool,
}

pub(crate) fn run(map: Arc<MapShared>, generation: u64) {
    let _span = tracing::info_span!("replay", map = %map.name, generation).entered();
    let mut replay = Replay::new(&map, generation);
    replay.run();
    std::mem::replace(&mut replay.pool, LanePool::inline()).close();
}

struct Replay<'m> {
    map: &'m Arc<MapShared>,
    generation: u64,
    limits: Limits,
    /// The lanes open: one, delivering on this thread, until the calls are
    /// found to take longer than the replay's own work per batch; then
    /// `MapConfig::lanes` of them, on threads (see `open_lanes_if_bound`).
    lanes: Vec<Lane>,
    pool: LanePool,
    /// How the calls made on this thread spend their time.
    timer: InlineTimer,
    in_flight: usize,
    window: VecDeque<Slot>,
    /// Slot id of `window[0]`.
    first_id: u64,
    window_slots_max: usize,
    /// Records read and not finished, and their bytes.
    unfinished: usize,
    unfinished_bytes: u64,
    unfinished_max: usize,
    /// The last `fill` stopped at its chunk with room left: more records
    /// can be read at once (lanes below a full batch wait for them).
    fill_more: bool,
    reader: Option<Reader>,
    /// An entry read past the bound, not taken yet.
    pending_entry: Option<Entry>,
    /// Every seq at or below this was read into the window or is not live.
    read_through: u64,
    former: Former,
    /// Record buffers and batch vectors for reuse.
    free_records: Vec<QueuedRecord>,
    free_batches: Vec<Vec<QueuedRecord>>,
    /// Delivered seq ranges not released yet, and how many records passed.
    unsettled: Vec<(u64, u64)>,
    unsettled_records: u64,
    backoff: Duration,
    stalled_until: Option<Instant>,
    /// How long the last call took, from its dispatch to its answer.
    last_call: Duration,
    /// When each lane's call in flight was sent.
    sent_at: Vec<Option<Instant>>,
    /// Why the replay is stalled (reported as `last_error`).
    stall: Option<String>,
    /// The map had catch-up errors when last looked at.
    errors_seen: bool,
    /// Which keys were found to have catch-up errors (by key hash), valid
    /// while `Core::errors_removed` equals `error_keys_removed`: errors are
    /// only added meanwhile by this replay, whose lanes know their own.
    error_keys: HashMap<u64, bool>,
    error_keys_removed: u64,
    /// This catch-up has held back a record behind its key's errors.
    held_back_any: bool,
    last_notify: Instant,
}

/// What the map's state says the replay should do next.
enum Control {
    Stop,
    Go { bound: u64 },
}

impl<'m> Replay<'m> {
    fn new(map: &'m Arc<MapShared>, generation: u64) -> Self {
        let config = &map.config;
        let lanes: usize = 1;
        let batch_records = config.replay_batch_records;
        Replay {
            map,
            generation,
            limits: Limits {
                records: batch_records,
                bytes: config.replay_batch_bytes,
                look_ahead: batch_records.saturating_mul(4),
                strict: config.key_ordering == KeyOrdering::Strict,
            },
            lanes: (0..lanes).map(|_| Lane::default()).collect(),
            pool: LanePool::inline(),
            timer: InlineTimer::default(),
            in_flight: 0,
            window: VecDeque::new(),
            first_id: 0,
            window_slots_max: lanes.saturating_mul(batch_records).saturating_mul(WINDOW_BATCHES_PER_LANE),
            unfinished: 0,
            unfinished_bytes: 0,
            unfinished_max: batch_records.saturating_mul(INLINE_UNFINISHED_BATCHES),
            fill_more: false,
            reader: None,
            pending_entry: None,
            read_through: 0,
            former: Former::default(),
            free_records: Vec::new(),
            free_batches: Vec::new(),
            unsettled: Vec::new(),
            unsettled_records: 0,
            backoff: config.backoff_min,
            stalled_until: None,
            last_call: Duration::ZERO,
            sent_at: vec![None; lanes],
            stall: None,
            errors_seen: true,
            error_keys: HashMap::new(),
            error_keys_removed: 0,
            held_back_any: false,
            last_notify: Instant::now(),
        }
    }

    fn run(&mut self) {
        let head = match self.map.lock() {
            Ok(core) if core.generation == self.generation => Some(core.head),
            _ => None,
        };
        let Some(head) = head else { return self.leave(None) };
        self.read_through = head - 1;
        loop {
            let bound = match self.control() {
                Control::Stop => return self.stop(),
                Control::Go { bound } => bound,
            };
            if let Err(error) = self.fill(bound) {
                self.stall_for(format!("reading the queue failed: {error}"));
            }
            if self.stalled_until.is_none() {
                if let Err(error) = self.dispatch() {
                    self.stall_for(error.to_string());
                }
            }
            if self.in_flight > 0 {
                let done = match self.fill_more {
                    // Read on while the calls are out, unless one answered.
                    true => match self.pool.try_next_done() {
                        Some(done) => done,
                        None => continue,
                    },
                    false => self.pool.next_done(),
                };
                self.apply(done);
                if !self.pool.is_inline() {
                    // Every call that has answered, then their lanes' next
                    // calls at once: a lane waits for this thread's apply
                    // and dispatch only, not for the commit and read-ahead
                    // after them (its next records are already waiting).
                    while let Some(done) = self.pool.try_next_done() {
                        self.apply(done);
                    }
                    if self.stalled_until.is_none() {
                        if let Err(error) = self.dispatch() {
                            self.stall_for(error.to_string());
                        }
                    }
                }
                self.commit_or_stall();
                continue;
            }
            // Nothing in flight: commit what is finished (held-back records
            // finish without a call), then see why nothing was sent.
            self.commit_or_stall();
            if let Some(until) = self.stalled_until {
                self.wait_until(until);
                self.stalled_until = None;
            } else if self.window.is_empty() {
                if self.caught_up(bound) {
                    return;
                }
            } else if self.fill_more || self.lanes.iter().all(|lane| lane.pending.is_empty() || lane.busy) {
                // More to read at once, or records are finished but not
                // committable yet; loop.
            } else {
                // Every waiting record's key is busy with another delivery.
                self.wait_until(Instant::now() + BUSY_WAIT);
            }
        }
    }

    /// Reads the map's state: stop, or the bound up to which records may be
    /// delivered.
    fn control(&mut self) -> Control {
        let Ok(core) = self.map.lock() else { return Control::Stop };
        if core.generation != self.generation
            || core.state != StoredState::CatchingUp
            || self.map.closed.load(Ordering::Acquire)
        {
            return Control::Stop;
        }
        self.errors_seen = core.error_records() > 0;
        // Under Always the replay never delivers a record before it is
        // durable, so the head can never pass a record a crash may lose.
        let bound = match self.map.ctx.sync {
            SyncPolicy::Always => core.tail.min(self.map.data.stats().durable_seq),
            _ => core.tail,
        };
        Control::Go { bound }
    }

    /// Reads records up to `bound` into the window and their lanes, while
    /// the window has room, one batch's worth at a time: when the lanes
    /// open (and the room grows from two batches to four per lane), each
    /// lane starts as soon as its records are read, not after megabytes of
    /// read-ahead for all of them.
    fn fill(&mut self, bound: u64) -> Result<()> {
        let chunk = self.limits.records.max(1);
        let mut read = 0usize;
        self.fill_more = false;
        while self.has_room() {
            let entry = match self.pending_entry.take() {
                Some(entry) => entry,
                None => {
                    let from = self.read_through + 1;
                    let reader = self.reader.get_or_insert_with(|| self.map.data.reader(from));
                    match reader.next() {
                        Some(entry) => entry.map_err(|e| {
                            self.reader = None;
                            Error::from_wal(&self.map.name, e)
                        })?,
                        None => {
                            self.read_through = self.read_through.max(bound);
                            return Ok(());
                        }
                    }
                }
            };
            let seq = entry.seq();
            if seq > bound {
                self.pending_entry = Some(entry);
                self.read_through = self.read_through.max(bound);
                return Ok(());
            }
            self.read_through = seq;
            if codec::is_marker(entry.body()) {
                continue; // a seq a pass-through took; never a record
            }
            let mut record = self.free_records.pop().unwrap_or_else(codec::empty_record);
            if !codec::decode_record_into(seq, entry.body(), &mut record) {
                self.read_through = seq - 1;
                self.reader = None;
                return Err(Error::undecodable(&entry, "does not decode as a queued record"));
            }
            let hash = key_hash(&record.key);
            let id = self.first_id + self.window.len() as u64;
            let frame_bytes = entry.frame_bytes();
            self.window.push_back(Slot { seq, frame_bytes, outcome: Outcome::Waiting });
            self.unfinished += 1;
            self.unfinished_bytes += frame_bytes;
            let lane = lane_of(hash, self.lanes.len());
            self.lanes[lane].pending.push_back(Item { id, hash, record });
            read += 1;
            if read >= chunk {
                self.fill_more = self.has_room();
                break;
            }
        }
        Ok(())
    }

    /// Opens the configured lanes (R22) once the destination's waiting
    /// bounds the drain: when a call waits (on a round trip, a server, a
    /// lock) longer than the replay's own work between two calls (reading,
    /// forming, committing). Lanes overlap waiting; against a destination
    /// that answers at once or is busy computing, more lanes only add
    /// threads, hand-overs and cache misses (BENCHMARKS.md), so until then
    /// one lane delivers on this thread. The lanes open only while nothing
    /// is in flight; the waiting records move to their key's new lane in
    /// seq order, so per-key order holds.
    fn open_lanes_if_bound(&mut self) {
        let lanes_max = self.map.config.lanes;
        if self.lanes.len() >= lanes_max || self.in_flight > 0 || !self.timer.waiting_bound() {
            return;
        }
        let pool = match LanePool::threads(self.map, lanes_max) {
            Ok(pool) => pool,
            Err(error) => {
                tracing::warn!(map = %self.map.name, %error, "replay lane threads could not start; delivering in one lane");
                self.timer = InlineTimer::default();
                return;
            }
        };
        tracing::debug!(map = %self.map.name, lanes = lanes_max, timer = ?self.timer, "replay opens its lanes");
        self.pool = pool;
        let old = std::mem::replace(&mut self.lanes, (0..lanes_max).map(|_| Lane::default()).collect());
        for lane in old {
            for item in lane.pending {
                let to = lane_of(item.hash, lanes_max);
                self.lanes[to].pending.push_back(item);
            }
            for key in lane.rejected {
                let to = lane_of(key_hash(&key), lanes_max);
                self.lanes[to].rejected.insert(key);
            }
        }
        self.sent_at = vec![None; lanes_max];
        let batch_records = self.limits.records;
        self.window_slots_max = lanes_max.saturating_mul(batch_records).saturating_mul(WINDOW_BATCHES_PER_LANE);
        self.unfinished_max = lanes_max.saturating_mul(batch_records).saturating_mul(UNFINISHED_BATCHES_PER_LANE);
    }

    /// The window may take another record.
    fn has_room(&self) -> bool {
        self.window.len() < self.window_slots_max
            && self.unfinished < self.unfinished_max
            && self.unfinished_bytes < UNFINISHED_BYTES_MAX
    }

    /// Records a lane holds before its batch is formed, when more can be
    /// read at once: a batch, and under Strict one more for the look-ahead
    /// past keys already in it.
    fn lane_wants(&self) -> usize {
        match self.limits.strict {
            true => self.limits.records.saturating_mul(INLINE_UNFINISHED_BATCHES),
            false => self.limits.records,
        }
    }

    /// Records the outcome of a waiting slot.
    fn finish(&mut self, id: u64, outcome: Outcome) {
        let index = usize::try_from(id - self.first_id).expect("a window slot index fits in usize");
        let slot = &mut self.window[index];
        debug_assert!(matches!(slot.outcome, Outcome::Waiting), "seq {} finished twice", slot.seq);
        slot.outcome = outcome;
        self.unfinished -= 1;
        self.unfinished_bytes -= slot.frame_bytes;
    }

    /// Sends the next batch of every idle lane that has records waiting.
    fn dispatch(&mut self) -> Result<()> {
        self.open_lanes_if_bound();
        let idle = self.lanes.iter().any(|lane| !lane.busy && !lane.pending.is_empty());
        if !idle {
            return Ok(());
        }
        // The map's lock is needed only to look at keys with errors or with
        // a delivery in flight elsewhere; without either, batches form
        // without it. (A key that gets either meanwhile is not in these
        // lanes: a pass-through needs a key with nothing queued, and a
        // retry leaves alone a key that still has records queued unless
        // the errors it retries already hold back this key's records.)
        let lane_wants = self.lane_wants();
        let core = self.map.lock()?;
        let look = core.error_records() > 0 || !core.busy_keys.is_empty();
        self.errors_seen = core.error_records() > 0;
        if core.errors_removed != self.error_keys_removed {
            self.error_keys.clear();
            self.error_keys_removed = core.errors_removed;
        }
        let core: Option<MutexGuard<'_, Core>> = if look {
            Some(core)
        } else {
            drop(core);
            None
        };
        let mut checks =
            core.as_deref().map(|core| CoreChecks { core, data: &self.map.data, cache: &mut self.error_keys });
        let mut held_back = Vec::new();
        let mut jobs = Vec::new();
        for lane_index in 0..self.lanes.len() {
            let lane = &mut self.lanes[lane_index];
            let more_coming = self.fill_more && lane.pending.len() < lane_wants;
            if lane.busy || lane.pending.is_empty() || more_coming {
                continue;
            }
            let mut records = self.free_batches.pop().unwrap_or_default();
            let mut ids = Vec::with_capacity(self.limits.records.min(lane.pending.len()));
            self.former.form(
                &mut lane.pending,
                &lane.rejected,
                checks.as_mut().map(|checks| checks as &mut dyn KeyChecks),
                &self.limits,
                &mut records,
                &mut ids,
                &mut held_back,
            );
            if records.is_empty() {
                self.free_batches.push(records);
                continue;
            }
            lane.busy = true;
            jobs.push(Job { lane: lane_index, records, ids });
        }
        drop(core);
        for HeldBack { id, mut record } in held_back {
            self.held_back_any = true;
            let key = std::mem::take(&mut record.key);
            let moved = Moved { key, reason: ErrorReason::BlockedByEarlierFailure, last_error: None };
            self.finish(id, Outcome::Moved(Box::new(moved)));
            self.free_records.push(record);
        }
        // Sent without the map's lock: a call on this thread (one lane)
        // runs here, and submitters must not wait for the destination.
        for job in jobs {
            let sent = Instant::now();
            self.sent_at[job.lane] = Some(sent);
            self.in_flight += 1;
            // Timed only while more lanes may still open (never with
            // `lanes: 1`): the timing costs four system calls per call.
            if self.pool.is_inline() && self.lanes.len() < self.map.config.lanes {
                let usage_before = lanes::thread_usage();
                self.pool.send(self.map, job);
                self.timer.measure(sent, usage_before);
            } else {
                self.pool.send(self.map, job);
            }
        }
        Ok(())
    }

    /// Records a call's answers in the window; every answer counts, since a
    /// destination may go on after an `Unavailable` one. A record that
    /// answered `Unavailable` goes back to the front of its lane and the map
    /// backs off (R15, R22), unless a newer record of its key in the same
    /// call was accepted: then it must never follow that one (R16b, R18)
    /// and becomes a `Superseded` catch-up error.
    fn apply(&mut self, done: Done) {
        let Done { job, results } = done;
        let Job { lane: lane_index, mut records, ids } = job;
        self.in_flight -= 1;
        self.lanes[lane_index].busy = false;
        if let Some(sent) = self.sent_at[lane_index].take() {
            self.last_call = sent.elapsed();
        }
        let mut unavailable: Vec<usize> = Vec::new();
        let mut accepted = vec![false; records.len()];
        for (index, result) in results.into_iter().enumerate() {
            let record = &records[index];
            let outcome = match result {
                Ok(()) => {
                    accepted[index] = true;
                    let lane = &self.lanes[lane_index];
                    // Under Strict ordering a key with errors is held back, so
                    // a delivered record has no older errors, unless the ones
                    // that held back an older record were discarded since.
                    let may_supersede = self.errors_seen || !lane.rejected.is_empty() || self.held_back_any;
                    Outcome::Delivered(may_supersede.then(|| record.key.clone()))
                }
                Err(DeliveryError::Rejected(reason)) => {
                    self.lanes[lane_index].rejected.insert(record.key.clone());
                    Outcome::Moved(Box::new(Moved {
                        key: record.key.clone(),
                        reason: ErrorReason::Rejected,
                        last_error: Some(reason),
                    }))
                }
                Err(DeliveryError::Unavailable(reason)) => {
                    if unavailable.is_empty() {
                        self.stall_for(format!("destination unavailable: {reason}"));
                    }
                    unavailable.push(index);
                    continue;
                }
            };
            self.finish(ids[index], outcome);
        }
        if unavailable.is_empty() {
            // The destination answered: the stall (if any) is over.
            self.stall = None;
            if accepted.contains(&true) {
                self.backoff = self.map.config.backoff_min;
            }
        }
        // Only records before the last accepted one can have a newer one
        // accepted: a call that answered `Unavailable` throughout (the
        // destination down) is one pass, not one per record.
        let last_accepted = accepted.iter().rposition(|&yes| yes);
        let mut requeue = Vec::with_capacity(unavailable.len());
        for index in unavailable {
            let key = &records[index].key;
            let newer_accepted = last_accepted
                .is_some_and(|last| (index + 1..=last).any(|later| accepted[later] && records[later].key == *key));
            if newer_accepted {
                let moved = Moved {
                    key: key.clone(),
                    reason: ErrorReason::Superseded,
                    last_error: Some(SUPERSEDED_TEXT.into()),
                };
                self.finish(ids[index], Outcome::Moved(Box::new(moved)));
            } else {
                requeue.push(index);
            }
        }
        let lane = &mut self.lanes[lane_index];
        let mut requeue = requeue.iter().rev().peekable();
        for (index, record) in records.drain(..).enumerate().rev() {
            if requeue.next_if_eq(&&index).is_some() {
                lane.pending.push_front(Item { id: ids[index], hash: key_hash(&record.key), record });
            } else {
                self.free_records.push(record);
            }
        }
        self.free_batches.push(records);
    }

    /// Stalls the map for its backoff (capped exponential, R15).
    fn stall_for(&mut self, reason: String) {
        // A stalled replay does not make submitters wait.
        if let Ok(mut core) = self.map.lock() {
            if core.closing_tail.take().is_some() {
                self.map.changed.notify_all();
            }
        }
        tracing::warn!(map = %self.map.name, %reason, backoff_ms = self.backoff.as_millis() as u64, "replay stalled");
        self.stalled_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.map.config.backoff_max);
        self.stall = Some(reason);
    }

    /// Waits until `until`, or less if the map is paused, skipped or closed.
    fn wait_until(&mut self, until: Instant) {
        // Waiting (a backoff, busy keys) is not the replay's work between
        // two calls.
        self.timer.last_call_end = None;
        let Ok(core) = self.map.lock() else { return };
        let wait = until.saturating_duration_since(Instant::now());
        let generation = self.generation;
        let _ = self
            .map
            .changed
            .wait_timeout_while(core, wait, |core| {
                core.generation == generation && !self.map.closed.load(Ordering::Acquire)
            })
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Batch forming's view of the map, under its lock.
struct CoreChecks<'a> {
    core: &'a Core,
    data: &'a pauselog_wal::Wal,
    cache: &'a mut HashMap<u64, bool>,
}

impl KeyChecks for CoreChecks<'_> {
    fn has_errors(&mut self, key: &str, hash: u64) -> bool {
        if self.core.error_records() == 0 {
            return false;
        }
        let (core, data) = (self.core, self.data);
        *self.cache.entry(hash).or_insert_with(|| core.key_in(data, List::Errors, key))
    }

    fn busy(&self, hash: u64) -> bool {
        self.core.key_busy(hash)
    }
}
