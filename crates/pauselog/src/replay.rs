//! The catch-up worker: feeds the queue to the destination in seq order
//! while new submits go to the tail, then switches the map to Running (R3,
//! R15, R18).
//!
//! Hot-path choices: one wal reader is kept across batches; the records
//! handed to the destination are decoded into reused buffers (no allocation
//! per record in steady state); each batch's commit is written to the meta
//! log's file (no fsync: a process crash redelivers at most the batch in
//! flight, a power loss the batches since the last sync, R18), and delivered
//! records are released every [`SETTLE_RECORDS`] records rather than per
//! batch (a release lost to a crash is redone at open from the head).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog_wal::{Entry, Reader, SyncPolicy};

use crate::clock::to_nanos;
use crate::codec::{self, Commit, StoredState};
use crate::errors_table::ErrorRun;
use crate::map::{Core, MapShared};
use crate::{DeliveryError, Error, ErrorReason, KeyOrdering, QueuedRecord, Result};

/// Passed records after which the delivered ones are released.
const SETTLE_RECORDS: u64 = 8192;
/// Shortest interval between progress notifications to `wait_for` callers.
const PROGRESS_NOTIFY_INTERVAL: Duration = Duration::from_millis(10);

/// The bookkeeping of one record of a batch (the record itself is at the
/// same index in the cursor's buffer).
struct Planned {
    seq: u64,
    frame_bytes: u64,
    /// Strict ordering: its key already has a catch-up error.
    blocked: bool,
}

/// The replay's reader and buffers, kept across batches while the head
/// follows it.
struct ReplayCursor {
    reader: Reader,
    /// An entry read but not taken: past the bound.
    pending: Option<Entry>,
    /// The head this cursor continues from.
    head: u64,
    /// Decoded records of the current batch; their buffers are reused.
    records: Vec<QueuedRecord>,
    /// The current round's keys (Strict ordering), reused across batches.
    round_keys: RoundKeys,
    /// The current batch's plan; its buffers are reused across batches.
    batch: Batch,
}

/// Hashes a key for the per-round distinct-key check, 8 bytes at a time
/// (the FxHash step, then murmur3's finish so that the low bits a hash
/// [`RoundKeys`] indexes by depend on every byte). Byte-at-a-time FNV-1a
/// took 40% of the replay loop's own time in a profile of a 1 GiB drain. A
/// collision only ends a round early.
fn key_hash(key: &str) -> u64 {
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

/// Bits of [`RoundKeys`]: 1 KiB.
const ROUND_KEY_BITS: usize = 8192;

/// The keys of the current round, as one bit per key hash (its low bits).
/// Two keys on one bit read as a repeat, which only ends the round early:
/// a record that finds 125 keys in the round (an average round over 10,000
/// random keys) collides with one of them with probability 1.5%. Why not a
/// hash set: between two records the payloads streaming through the cache
/// evicted its buckets; these 16 cache lines stay.
struct RoundKeys {
    bits: Box<[u64; ROUND_KEY_BITS / 64]>,
}

impl Default for RoundKeys {
    fn default() -> Self {
        RoundKeys { bits: Box::new([0; ROUND_KEY_BITS / 64]) }
    }
}

impl RoundKeys {
    fn clear(&mut self) {
        self.bits.fill(0);
    }

    /// Adds the key of `hash`; false if the round may hold it already.
    fn insert(&mut self, hash: u64) -> bool {
        let bit = hash as usize % ROUND_KEY_BITS;
        let (word, mask) = (&mut self.bits[bit / 64], 1u64 << (bit % 64));
        let absent = *word & mask == 0;
        *word |= mask;
        absent
    }
}

/// Work done but not yet settled: delivered seq ranges to release.
#[derive(Default)]
struct Unsettled {
    delivered: Vec<(u64, u64)>,
    records: u64,
}

/// What happened to a batch, in seq order.
#[derive(Default)]
struct Outcome {
    /// Seqs below this are done (delivered or moved to the errors).
    new_head: u64,
    delivered: Vec<(u64, u64)>,
    /// Index into the batch, reason, error text.
    moved: Vec<(usize, ErrorReason, Option<String>)>,
    passed_bytes: u64,
    passed_records: u64,
    /// The destination is unavailable (or the errors list is full): stall.
    stall: Option<String>,
}

pub(crate) fn run(map: Arc<MapShared>, generation: u64) {
    let _span = tracing::info_span!("replay", map = %map.name, generation).entered();
    let mut backoff = map.config.backoff_min;
    let mut cursor: Option<ReplayCursor> = None;
    let mut unsettled = Unsettled::default();
    let mut last_notify = Instant::now();
    loop {
        let (head, bound) = {
            let mut core = map.lock();
            let stopped = core.generation != generation
                || core.state != StoredState::CatchingUp
                || map.closed.load(Ordering::Acquire);
            if stopped || core.head > core.tail {
                if let Err(error) = settle(&map, &mut core, &mut unsettled) {
                    tracing::warn!(map = %map.name, %error, "replay could not settle its last batches; they will be delivered again");
                }
                if !stopped {
                    finish(&map, &mut core);
                }
                return;
            }
            // Under Always the replay never delivers a record before it is
            // durable, so the head can never pass a record a crash may lose.
            let bound = match map.ctx.sync {
                SyncPolicy::Always => core.tail.min(map.data.stats().durable_seq),
                _ => core.tail,
            };
            if bound < core.head {
                // The tail's group fsync is still running: join it (outside
                // the map lock, so submitters keep appending meanwhile).
                let tail = core.tail;
                drop(core);
                if let Err(error) = map.data.sync_through(tail) {
                    // The data log is poisoned (R17): stall, visibly, until
                    // the map is paused, skipped or closed.
                    tracing::error!(map = %map.name, %error, "replay stalled: the tail cannot be made durable");
                    let mut core = map.lock();
                    core.last_error = Some(error.to_string());
                    map.changed.notify_all();
                    let _ = map
                        .changed
                        .wait_timeout_while(core, map.config.backoff_max, |core| {
                            core.generation == generation && !map.closed.load(Ordering::Acquire)
                        })
                        .unwrap_or_else(|p| p.into_inner());
                }
                continue;
            }
            core.delivering = true;
            (core.head, bound)
        };
        if cursor.as_ref().is_none_or(|c| c.head != head) {
            let (records, round_keys, batch) =
                cursor.take().map(|c| (c.records, c.round_keys, c.batch)).unwrap_or_default();
            cursor =
                Some(ReplayCursor { reader: map.data.reader(head), pending: None, head, records, round_keys, batch });
        }
        let cursor_ref = cursor.as_mut().expect("set above");
        let result =
            plan(&map, cursor_ref, bound).map(|()| deliver(&map, head, bound, &cursor_ref.batch, &cursor_ref.records));
        let stall = {
            let mut core = map.lock();
            core.delivering = false;
            let outcome_head = result.as_ref().ok().map(|outcome| outcome.new_head);
            let committed = result.and_then(|outcome| {
                commit(&map, &mut core, outcome, &cursor_ref.batch.planned, &cursor_ref.records, &mut unsettled)
            });
            let mut stall = committed.unwrap_or_else(|error| Some(error.to_string()));
            if stall.is_some() || unsettled.records >= SETTLE_RECORDS {
                if let Err(error) = settle(&map, &mut core, &mut unsettled) {
                    stall.get_or_insert(error.to_string());
                }
            }
            if let Some(reason) = &stall {
                tracing::warn!(map = %map.name, %reason, backoff_ms = backoff.as_millis() as u64, "replay stalled");
            }
            // A pause or skip waiting in `stop_replay` for this batch to end
            // (it bumped the generation) is woken at once; progress watchers
            // at most every PROGRESS_NOTIFY_INTERVAL.
            let stop_requested = core.generation != generation;
            if core.last_error != stall || stop_requested {
                core.last_error = stall.clone();
                map.changed.notify_all();
            } else if last_notify.elapsed() >= PROGRESS_NOTIFY_INTERVAL {
                last_notify = Instant::now();
                map.changed.notify_all();
            }
            // The cursor is kept only if the head landed where it stopped
            // reading; after a stall or an error it is rebuilt from the head.
            match (&mut cursor, outcome_head) {
                (Some(c), Some(new_head)) if stall.is_none() && core.head == new_head => c.head = new_head,
                _ => cursor = None,
            }
            stall
        };
        match stall {
            None => backoff = map.config.backoff_min,
            Some(_) => {
                // Capped exponential backoff, cut short by a pause, skip or close.
                let core = map.lock();
                let _ = map
                    .changed
                    .wait_timeout_while(core, backoff, |core| {
                        core.generation == generation && !map.closed.load(Ordering::Acquire)
                    })
                    .unwrap_or_else(|p| p.into_inner());
                backoff = (backoff * 2).min(map.config.backoff_max);
            }
        }
    }
}

/// The cursor reached the tail: switch to Running under the map lock, so no
/// submit can slip between the last replayed record and the first live one.
fn finish(map: &MapShared, core: &mut Core) {
    let commit = Commit { state: Some(StoredState::Running), blocked: Some(None), ..Commit::default() };
    if let Err(error) = map.commit(commit, true) {
        core.last_error = Some(error.to_string());
        tracing::error!(map = %map.name, %error, "could not record the switch to Running; replay stopped");
        return;
    }
    debug_assert_eq!(core.queue_bytes, 0, "a drained queue holds no bytes");
    let head = core.head;
    map.go_live(core, head);
    tracing::info!(map = %map.name, replayed = core.replayed, "catch-up complete: live");
}

/// A batch read by [`plan`]: at most `replay_batch_records` records in seq
/// order, cut into rounds that each hold no two records of one key under
/// Strict ordering (one round under BestEffort). Each round is one
/// `deliver_batch` call; the whole batch is one commit.
#[derive(Default)]
struct Batch {
    planned: Vec<Planned>,
    /// End index (exclusive) of each round, ascending; the last is `planned.len()`.
    round_ends: Vec<usize>,
}

/// Reads the next batch up to `bound` into the cursor's buffers: at most
/// `replay_batch_records`, cut into rounds of distinct keys under Strict
/// ordering (a rejection must be able to hold back the later records of its
/// key before they are sent; a hash collision only ends a round early).
///
/// Why rounds and not one batch per distinct-key run: with many keys such a
/// run is short (about 125 records over 10,000 random keys), and the commit
/// per batch then costs more than the reading. One commit per
/// `replay_batch_records` keeps the redelivery bound of R18 at one batch.
fn plan(map: &MapShared, cursor: &mut ReplayCursor, bound: u64) -> Result<()> {
    let strict = map.config.key_ordering == KeyOrdering::Strict;
    let batch_max = map.config.replay_batch_records.max(1);
    cursor.round_keys.clear();
    let batch = &mut cursor.batch;
    batch.planned.clear();
    batch.round_ends.clear();
    while batch.planned.len() < batch_max {
        let entry = match cursor.pending.take() {
            Some(entry) => entry,
            None => match cursor.reader.next() {
                Some(entry) => entry.map_err(|e| Error::from_wal(&map.name, e))?,
                None => break,
            },
        };
        if entry.seq() > bound {
            cursor.pending = Some(entry);
            break;
        }
        let index = batch.planned.len();
        if index == cursor.records.len() {
            cursor.records.push(codec::empty_record());
        }
        if !codec::decode_record_into(entry.seq(), entry.body(), &mut cursor.records[index]) {
            return Err(Error::Corrupt {
                path: map.data.dir().to_path_buf(),
                offset: 0,
                reason: format!("record seq {} does not decode", entry.seq()),
            });
        }
        if strict {
            let hash = key_hash(&cursor.records[index].key);
            if !cursor.round_keys.insert(hash) {
                // A repeated key starts the next round.
                batch.round_ends.push(index);
                cursor.round_keys.clear();
                cursor.round_keys.insert(hash);
            }
        }
        batch.planned.push(Planned { seq: entry.seq(), frame_bytes: entry.frame_bytes(), blocked: false });
    }
    if !batch.planned.is_empty() {
        batch.round_ends.push(batch.planned.len());
    }
    if strict && !batch.planned.is_empty() {
        let core = map.lock();
        if !core.errors.is_empty() {
            for (planned, record) in batch.planned.iter_mut().zip(&cursor.records) {
                planned.blocked = core.errors.count(Some(&record.key)) > 0;
            }
        }
    }
    Ok(())
}

/// Delivers a batch round by round. Under Strict ordering a key rejected in
/// one round holds back its records in the later rounds of the batch, as
/// the errors list does for the batches after it.
fn deliver(map: &MapShared, head: u64, bound: u64, batch: &Batch, records: &[QueuedRecord]) -> Outcome {
    if batch.planned.is_empty() {
        // Nothing live left in head..=bound (records lost to a crash under
        // SyncPolicy::Never): the cursor jumps past them.
        return Outcome { new_head: bound + 1, ..Outcome::default() };
    }
    let strict = map.config.key_ordering == KeyOrdering::Strict;
    let mut rejected_keys: HashSet<&str> = HashSet::new();
    let mut outcome = Outcome { new_head: head, ..Outcome::default() };
    let mut start = 0;
    for &end in &batch.round_ends {
        let round = &batch.planned[start..end];
        let round_records = &records[start..end];
        // Held back: the key had an error before this batch, or was
        // rejected in an earlier round of it. Usually nothing is, and the
        // round needs no flags.
        let holds_back = !rejected_keys.is_empty() || round.iter().any(|planned| planned.blocked);
        let blocked: Vec<bool> = if holds_back {
            round
                .iter()
                .zip(round_records)
                .map(|(planned, record)| planned.blocked || rejected_keys.contains(record.key.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        let results = if blocked.contains(&true) {
            let to_send: Vec<QueuedRecord> =
                round_records.iter().zip(&blocked).filter(|(_, &held)| !held).map(|(r, _)| r.clone()).collect();
            if to_send.is_empty() {
                Vec::new()
            } else {
                checked(map.destination().deliver_batch(&to_send), to_send.len())
            }
        } else {
            checked(map.destination().deliver_batch(round_records), round_records.len())
        };
        let mut results = results.into_iter();
        for (offset, planned) in round.iter().enumerate() {
            let index = start + offset;
            let answer = if blocked.get(offset) == Some(&true) { None } else { results.next() };
            match answer {
                None => outcome.moved.push((index, ErrorReason::BlockedByEarlierFailure, None)),
                Some(Ok(())) => match outcome.delivered.last_mut() {
                    Some(last) if last.1 + 1 == planned.seq => last.1 = planned.seq,
                    _ => outcome.delivered.push((planned.seq, planned.seq)),
                },
                Some(Err(DeliveryError::Rejected(reason))) => {
                    if strict {
                        rejected_keys.insert(records[index].key.as_str());
                    }
                    outcome.moved.push((index, ErrorReason::Rejected, Some(reason)))
                }
                Some(Err(DeliveryError::Unavailable(reason))) => {
                    outcome.stall = Some(format!("destination unavailable: {reason}"));
                    return outcome;
                }
            }
            outcome.new_head = planned.seq + 1;
            outcome.passed_bytes += planned.frame_bytes;
            outcome.passed_records += 1;
        }
        start = end;
    }
    outcome
}

/// One result per record, or `Unavailable` for all if the destination broke
/// that contract.
fn checked(
    results: Vec<std::result::Result<(), DeliveryError>>,
    expected: usize,
) -> Vec<std::result::Result<(), DeliveryError>> {
    if results.len() == expected {
        return results;
    }
    let reason = format!("destination returned {} results for {expected} records", results.len());
    vec![Err(DeliveryError::Unavailable(reason)); expected]
}

/// Records a batch's result: one meta commit (the new head and the records
/// moved to the errors), then the in-memory indexes. The delivered records
/// are released by [`settle`]. Returns the stall reason, if any.
fn commit(
    map: &MapShared,
    core: &mut Core,
    mut outcome: Outcome,
    batch: &[Planned],
    records: &[QueuedRecord],
    unsettled: &mut Unsettled,
) -> Result<Option<String>> {
    // The errors list has a byte cap: stop before a move that would pass it.
    let mut error_bytes = core.error_bytes;
    if let Some(position) = outcome.moved.iter().position(|&(index, _, _)| {
        error_bytes += batch[index].frame_bytes;
        error_bytes > map.config.max_error_bytes
    }) {
        let stop_index = outcome.moved[position].0;
        let stop_seq = batch[stop_index].seq;
        outcome.moved.truncate(position);
        outcome.delivered.retain_mut(|range| {
            range.1 = range.1.min(stop_seq - 1);
            range.0 <= range.1
        });
        outcome.new_head = stop_seq;
        outcome.passed_records = stop_index as u64;
        outcome.passed_bytes = batch[..stop_index].iter().map(|p| p.frame_bytes).sum();
        outcome.stall = Some(format!(
            "catch-up errors are full ({} of {} bytes): retry or discard errors to continue",
            core.error_bytes, map.config.max_error_bytes
        ));
    }
    if outcome.new_head <= core.head {
        return Ok(outcome.stall);
    }
    let at = to_nanos(map.ctx.clock.now());
    let add_errors: Vec<ErrorRun> = outcome
        .moved
        .iter()
        .map(|(index, reason, error)| {
            let attempts = u32::from(*reason == ErrorReason::Rejected);
            ErrorRun::single(batch[*index].seq, *reason, error.clone(), attempts, at)
        })
        .collect();
    // Written to the file but not synced: a process crash keeps it; a power
    // loss only redelivers the batches since the last sync (R18).
    map.commit(Commit { head: Some(outcome.new_head), add_errors: add_errors.clone(), ..Commit::default() }, false)?;
    map.meta.flush().map_err(|e| Error::from_wal(&map.name, e))?;
    for ((index, _, _), run) in outcome.moved.iter().zip(add_errors) {
        let (seq, key) = (batch[*index].seq, &records[*index].key);
        core.queue.remove(key, seq);
        core.errors.insert(key, seq).map_err(Error::from_index)?;
        core.error_table.add(run);
        core.error_bytes += batch[*index].frame_bytes;
    }
    core.queue.release_through(outcome.new_head - 1);
    core.queue_bytes = core.queue_bytes.saturating_sub(outcome.passed_bytes);
    core.head = outcome.new_head;
    core.replayed += outcome.passed_records;
    core.drain.record(outcome.passed_records);
    unsettled.records += outcome.passed_records;
    unsettled.delivered.extend(outcome.delivered);
    Ok(outcome.stall)
}

/// Releases the delivered records (whole segments are then deleted) and
/// compacts the meta log if it has grown.
fn settle(map: &MapShared, core: &mut Core, unsettled: &mut Unsettled) -> Result<()> {
    if unsettled.records == 0 {
        return Ok(());
    }
    for (lo, hi) in unsettled.delivered.drain(..) {
        map.data.release(lo..=hi).map_err(|e| Error::from_wal(&map.name, e))?;
    }
    unsettled.records = 0;
    map.compact_meta_if_needed(core)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{key_hash, RoundKeys, ROUND_KEY_BITS};

    /// Keys that differ only in their last bytes (the usual shape of an
    /// integration key) get distinct hashes whose low bits, which the round
    /// key bitmap indexes by, spread over the bits.
    #[test]
    fn key_hash_spreads_keys_that_differ_in_their_tail() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("USMF|CUST-{i:06}")).collect();
        let hashes: HashSet<u64> = keys.iter().map(|key| key_hash(key)).collect();
        assert_eq!(hashes.len(), keys.len());
        let low_buckets: HashSet<u64> = hashes.iter().map(|hash| hash & 1023).collect();
        assert!(low_buckets.len() > 950, "only {} of 1024 low-bit buckets used", low_buckets.len());
        // 10,000 random picks of 8192 bits hit about 5,780 of them.
        let bits: HashSet<usize> = hashes.iter().map(|&hash| hash as usize % ROUND_KEY_BITS).collect();
        assert!(bits.len() > 5_500, "only {} of {ROUND_KEY_BITS} round key bits used", bits.len());
    }

    /// A round's bitmap answers "new" once per key and "maybe present" for
    /// every repeat; a cleared one forgets every key.
    #[test]
    fn round_keys_report_every_repeat() {
        let mut round_keys = RoundKeys::default();
        let hashes: Vec<u64> = (0..100).map(|i| key_hash(&format!("USMF|CUST-{i:06}"))).collect();
        let new_count = hashes.iter().filter(|&&hash| round_keys.insert(hash)).count();
        assert!(new_count > 95, "{new_count} of 100 distinct keys read as new");
        assert!(hashes.iter().all(|&hash| !round_keys.insert(hash)), "a repeat read as new");
        round_keys.clear();
        assert!(round_keys.insert(hashes[0]), "a cleared round holds no key");
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
}
