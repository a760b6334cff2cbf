//! `Core`: the state of one table map under its mutex, and the methods that
//! change it while keeping its indexes and byte counters consistent.
//!
//! Every byte counter changes through a method here, with checked
//! arithmetic: an underflow means the accounting is wrong, which is a bug,
//! and the method panics (under the map's lock, which poisons the map:
//! every later call answers `Error::Poisoned` until the engine is reopened
//! and recomputes the accounting from the logs).

use std::collections::HashSet;
use std::time::Instant;

use pauselog_index::KeyRuns;

use crate::errors_table::{ErrorRun, ErrorTable};
use crate::meta::{StoredState, WindowMark};
use crate::{Error, ErrorReason, Limit, Result};

/// Seqs reserved durably at a time (R21): one meta fsync per this many
/// seqs handed out, and at most this many seqs skipped after a crash.
pub(crate) const SEQ_RESERVE_BLOCK: u64 = 1 << 16;

pub(crate) struct Core {
    pub state: StoredState,
    pub blocked: Option<Limit>,
    /// Every seq below `head` has left the queue; the queue is the live data
    /// records in `head..=tail`.
    pub head: u64,
    /// Last seq appended to the data log (0 before the first).
    pub tail: u64,
    /// Where each key's records are (queue and errors alike; which list a
    /// record is on follows from the head and the error runs, `lists.rs`).
    pub keys: KeyRuns,
    queue_records: u64,
    queue_bytes: u64,
    pub error_table: ErrorTable,
    error_records: u64,
    error_bytes: u64,
    /// Bumped whenever catch-up errors leave the list (a retry, a discard):
    /// a replay that remembered which keys have errors forgets it.
    pub errors_removed: u64,
    /// Records replayed in this catch-up.
    pub replayed: u64,
    /// The generation of the replay worker that owns the catch-up, while
    /// one does; pause, skip and close wait for it to leave
    /// (`MapShared::stop_replay`). A worker of an older generation that
    /// leaves late does not clear a newer one's.
    pub replay_owner: Option<u64>,
    /// Bumped to tell the replay worker to stop.
    pub generation: u64,
    pub consecutive_unavailable: u32,
    pub last_error: Option<String>,
    pub drain: DrainRate,
    /// One mark per configured maintenance window, in the config's order.
    pub windows: Vec<WindowMark>,
    pub seqs: SeqState,
    /// Hashes of the keys with a live, pass-through or retry delivery in
    /// flight. A key is delivered by one of those at a time, and the replay
    /// holds back a key that is in here (R16b, R23). A collision only makes
    /// a delivery wait for another key's.
    pub busy_keys: HashSet<u64>,
    /// While the replay delivers the last round of the backlog, new submits
    /// to the tail wait until this instant (or the switch to Running), so
    /// that writers cannot keep the tail ahead of the replay for ever.
    pub closing_tail: Option<std::time::Instant>,
    /// Lanes with a call in flight, as the replay last reported.
    pub lanes_busy: u32,
    /// Records passed through live during catch-up since open (R23).
    pub passed_through: u64,
    /// Outcomes the last stopped replay had for records above its committed
    /// head (rejections, hold-backs): a skip to live turns them into catch-up
    /// errors; anything else leaves those records queued.
    pub stopped_outcomes: Vec<StoppedOutcome>,
    /// Seq ranges the last stopped replay delivered above its committed
    /// head (released, no longer queued): a preserve leaves them out of its
    /// run of errors.
    pub stopped_delivered: Vec<(u64, u64)>,
    /// Debug builds: calls of `check_accounting` so far (it samples big
    /// queues).
    #[cfg(debug_assertions)]
    pub accounting_checks: std::cell::Cell<u64>,
}

/// A record the replay had finished without delivering when it stopped,
/// above the head it could commit.
#[derive(Debug, Clone)]
pub(crate) struct StoppedOutcome {
    pub seq: u64,
    pub reason: ErrorReason,
    pub last_error: Option<String>,
    pub frame_bytes: u64,
}

/// Where the map's one sequence stands (R21).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqState {
    /// The seq a live delivery takes next, unless the data log's next seq is
    /// higher. Queued appends first move the data log up to it.
    pub live_next: u64,
    /// Every seq up to here may have been handed out; the meta log says so.
    pub reserved_through: u64,
}

/// Seconds without progress before the drain rate starts to fall.
const DRAIN_IDLE_GRACE_SECS: f64 = 1.0;

/// Exponentially smoothed records per second of the replay.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DrainRate {
    per_sec: f64,
    last: Option<Instant>,
}

impl DrainRate {
    pub fn record(&mut self, records: u64) {
        let now = Instant::now();
        if let Some(last) = self.last {
            let elapsed = now.duration_since(last).as_secs_f64().max(1e-6);
            let sample = records as f64 / elapsed;
            self.per_sec = if self.per_sec == 0.0 { sample } else { 0.8 * self.per_sec + 0.2 * sample };
        }
        self.last = Some(now);
    }

    pub fn reset(&mut self) {
        *self = DrainRate::default();
    }

    /// The rate now: the smoothed rate while the replay commits progress,
    /// falling toward zero once it stops (stalled on an unavailable
    /// destination): the rate over the time since the last progress, when
    /// that is lower.
    pub fn now_per_sec(&self) -> f64 {
        let Some(last) = self.last else { return 0.0 };
        let idle = last.elapsed().as_secs_f64();
        if idle <= DRAIN_IDLE_GRACE_SECS {
            return self.per_sec;
        }
        self.per_sec.min(self.per_sec * DRAIN_IDLE_GRACE_SECS / idle)
    }
}

/// What `Core::new` starts from (as `open` recovered it).
pub(crate) struct CoreParts {
    pub state: StoredState,
    pub blocked: Option<Limit>,
    pub head: u64,
    pub tail: u64,
    pub keys: KeyRuns,
    pub queue_records: u64,
    pub queue_bytes: u64,
    pub error_table: ErrorTable,
    pub error_records: u64,
    pub error_bytes: u64,
    pub windows: Vec<WindowMark>,
    pub seqs: SeqState,
}

impl Core {
    pub fn new(parts: CoreParts) -> Core {
        Core {
            state: parts.state,
            blocked: parts.blocked,
            head: parts.head,
            tail: parts.tail,
            keys: parts.keys,
            queue_records: parts.queue_records,
            queue_bytes: parts.queue_bytes,
            error_table: parts.error_table,
            error_records: parts.error_records,
            error_bytes: parts.error_bytes,
            errors_removed: 0,
            replayed: 0,
            replay_owner: None,
            generation: 1,
            consecutive_unavailable: 0,
            last_error: None,
            drain: DrainRate::default(),
            windows: parts.windows,
            seqs: parts.seqs,
            busy_keys: HashSet::new(),
            closing_tail: None,
            lanes_busy: 0,
            passed_through: 0,
            stopped_outcomes: Vec::new(),
            stopped_delivered: Vec::new(),
            #[cfg(debug_assertions)]
            accounting_checks: std::cell::Cell::new(0),
        }
    }

    pub fn queue_bytes(&self) -> u64 {
        self.queue_bytes
    }

    pub fn queue_records(&self) -> u64 {
        self.queue_records
    }

    pub fn error_bytes(&self) -> u64 {
        self.error_bytes
    }

    pub fn error_records(&self) -> u64 {
        self.error_records
    }

    /// A record appended to the tail of the queue.
    pub fn enqueued(&mut self, key: &str, seq: u64, frame_bytes: u64) -> Result<()> {
        self.keys.insert(key, seq).map_err(Error::from_index)?;
        self.queue_bytes = self.queue_bytes.checked_add(frame_bytes).expect("queued bytes fit in u64");
        self.queue_records += 1;
        self.tail = seq;
        Ok(())
    }

    /// The replay passed every seq below `new_head`: `passed_bytes` of them
    /// left the queue (delivered, or already moved to the errors by
    /// [`Core::queue_to_error`]).
    pub fn head_advanced(&mut self, new_head: u64, passed_bytes: u64, passed_records: u64) {
        debug_assert!(new_head >= self.head, "the head only moves forward");
        self.take_queue_bytes(passed_bytes);
        self.queue_records = self.queue_records.checked_sub(passed_records).unwrap_or_else(|| {
            panic!("queued records {} would go below zero by {passed_records}: accounting bug", self.queue_records)
        });
        self.head = new_head;
        self.replayed += passed_records;
        self.drain.record(passed_records);
    }

    /// A queued record becomes a catch-up error (the head passes it in the
    /// same change); its bytes and count move along.
    pub fn queue_to_error(&mut self, frame_bytes: u64, run: ErrorRun) {
        self.error_table.add(run);
        self.error_bytes = self.error_bytes.checked_add(frame_bytes).expect("error bytes fit in u64");
        self.error_records += 1;
        // It leaves the queue's counters when the head passes it.
    }

    /// A queued record above the head was delivered (a stopping replay):
    /// it leaves the queue now (its release takes it off the list).
    pub fn queued_delivered(&mut self, frame_bytes: u64) {
        self.take_queue_bytes(frame_bytes);
        self.queue_records = self.queue_records.checked_sub(1).expect("a delivered record was queued");
    }

    /// The whole queue became catch-up errors (skip to live, preserve).
    pub fn queue_to_errors(&mut self) {
        self.error_bytes = self.error_bytes.checked_add(self.queue_bytes).expect("error bytes fit in u64");
        self.error_records += self.queue_records;
        self.queue_bytes = 0;
        self.queue_records = 0;
    }

    /// The rest of the queue was discarded.
    pub fn queue_discarded(&mut self) {
        self.queue_bytes = 0;
        self.queue_records = 0;
    }

    /// Catch-up errors left the list (delivered by a retry, or discarded).
    pub fn errors_released(&mut self, records: u64, frame_bytes: u64) {
        self.error_bytes = self.error_bytes.checked_sub(frame_bytes).unwrap_or_else(|| {
            panic!("catch-up error bytes {} would go below zero by {frame_bytes}: accounting bug", self.error_bytes)
        });
        self.error_records = self.error_records.checked_sub(records).unwrap_or_else(|| {
            panic!("catch-up errors {} would go below zero by {records}: accounting bug", self.error_records)
        });
        self.errors_removed += 1;
    }

    fn take_queue_bytes(&mut self, bytes: u64) {
        self.queue_bytes = self.queue_bytes.checked_sub(bytes).unwrap_or_else(|| {
            panic!("queued bytes {} would go below zero by {bytes}: accounting bug", self.queue_bytes)
        });
    }

    /// Debug builds: the byte counters against a sum recomputed from the
    /// data log (the queue is the live records in `head..=tail`; the errors
    /// are the records the errors index lists).
    /// Recounting takes time in the records around the head, so past
    /// 8,192 queued records only every 64th call recounts: a catch-up of
    /// hot keys under Strict ordering commits every few records.
    #[cfg(debug_assertions)]
    pub fn check_accounting(&self, data: &pauselog_wal::Wal) {
        let calls = self.accounting_checks.get();
        self.accounting_checks.set(calls + 1);
        if self.queue_records > 8_192 && !calls.is_multiple_of(64) {
            return;
        }
        let (queued, queued_bytes) = if self.head <= self.tail {
            (data.range_records(self.head..=self.tail), data.range_bytes(self.head..=self.tail))
        } else {
            (0, 0)
        };
        assert_eq!(self.queue_bytes, queued_bytes, "queued bytes disagree with the data log");
        assert_eq!(self.queue_records, queued, "queued records disagree with the data log");
        if self.error_records <= 10_000 {
            let seqs = self.all_error_seqs(data);
            let bytes: u64 = seqs.iter().filter_map(|&seq| data.record_bytes(seq)).sum();
            assert_eq!((self.error_records, self.error_bytes), (seqs.len() as u64, bytes), "catch-up errors disagree");
        }
    }

    /// Release builds check nothing here.
    #[cfg(not(debug_assertions))]
    pub fn check_accounting(&self, _data: &pauselog_wal::Wal) {}

    /// True if a live, pass-through or retry delivery of this key hash is
    /// in flight.
    pub fn key_busy(&self, key_hash: u64) -> bool {
        !self.busy_keys.is_empty() && self.busy_keys.contains(&key_hash)
    }
}

/// Hashes a key, 8 bytes at a time (the FxHash step, then murmur3's finish
/// so that every bit depends on every byte). Used for lanes, the busy-key
/// set and the replay's distinct-key bitmap; a collision only delays a
/// record, never reorders one.
pub(crate) fn key_hash(key: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = key.as_bytes().chunks_exact(8);
    let mut hash = key.len() as u64;
    for chunk in &mut chunks {
        hash = step(hash, u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = step(hash, u64::from_le_bytes(word));
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// The lane of a key hash among `lanes` (R22). Uses the high bits, so that
/// it is independent of the low bits the replay's key bitmap indexes by.
pub(crate) fn lane_of(hash: u64, lanes: usize) -> usize {
    ((u128::from(hash >> 32) * lanes as u128) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Keys that differ only in their last bytes (the usual shape of an
    /// integration key) get distinct hashes whose low bits spread.
    #[test]
    fn key_hash_spreads_keys_that_differ_in_their_tail() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("USMF|CUST-{i:06}")).collect();
        let hashes: HashSet<u64> = keys.iter().map(|key| key_hash(key)).collect();
        assert_eq!(hashes.len(), keys.len());
        let low_buckets: HashSet<u64> = hashes.iter().map(|hash| hash & 1023).collect();
        assert!(low_buckets.len() > 950, "only {} of 1024 low-bit buckets used", low_buckets.len());
    }

    /// Every length, the partial last word included, and a key that is a
    /// prefix of another hash apart.
    #[test]
    fn key_hash_covers_every_byte_and_the_length() {
        let base = "abcdefghijklmnopqrstuvwxyz";
        let prefixes: HashSet<u64> = (0..=base.len()).map(|len| key_hash(&base[..len])).collect();
        assert_eq!(prefixes.len(), base.len() + 1);
        assert_ne!(key_hash("ab"), key_hash("ab\0"));
        for position in 0..base.len() {
            let mut changed = base.as_bytes().to_vec();
            changed[position] ^= 1;
            assert_ne!(key_hash(base), key_hash(std::str::from_utf8(&changed).expect("ascii")), "byte {position}");
        }
    }

    /// 10,000 keys spread over 8 lanes within 10% of even.
    #[test]
    fn lanes_are_even() {
        let mut counts = [0u32; 8];
        for i in 0..10_000 {
            counts[lane_of(key_hash(&format!("USMF|CUST-{i:06}")), 8)] += 1;
        }
        assert!(counts.iter().all(|&count| (1125..=1375).contains(&count)), "{counts:?}");
        assert_eq!(lane_of(u64::MAX, 8), 7);
        assert_eq!(lane_of(0, 8), 0);
        assert!((0..1000u64).all(|i| lane_of(key_hash(&i.to_string()), 1) == 0));
    }
}
