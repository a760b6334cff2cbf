//! Forming a lane's next batch (R15, R22): records in seq order, at most
//! `replay_batch_records` and about `replay_batch_bytes`; under Strict
//! ordering never two records of one key (the destination may apply a batch
//! in any order), a later record of a key already in the batch waiting for
//! a following batch instead of ending this one, within a bounded
//! look-ahead. A key with a live, pass-through or retry delivery in flight
//! waits too (R16b, R23). Under Strict ordering a record whose key was
//! rejected earlier (in this catch-up, or still in the catch-up errors) is
//! not sent: it is held back behind that failure.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::QueuedRecord;

/// What batch forming asks of the map about a key (under its lock).
pub(crate) trait KeyChecks {
    /// The key has catch-up errors (Strict ordering holds its records back).
    fn has_errors(&mut self, key: &str, hash: u64) -> bool;
    /// A live, pass-through or retry delivery of the key is in flight.
    fn busy(&self, hash: u64) -> bool;
}

/// A record waiting in its lane.
pub(crate) struct Item {
    /// Its window slot.
    pub id: u64,
    pub hash: u64,
    pub record: QueuedRecord,
}

/// A record the batch holds back without sending (Strict ordering).
pub(crate) struct HeldBack {
    pub id: u64,
    pub record: QueuedRecord,
}

/// A set of key hashes (64-bit, already mixed by `key_hash`, so they are
/// used as they are). Exact: an earlier bitmap of 8192 bits made about one
/// key in twelve share a bit with another key of its lane, and such a pair
/// then took turns, one batch each, so their records drained at half speed
/// and made the tail of a Strict drain.
#[derive(Default)]
pub(crate) struct KeySet {
    hashes: HashSet<u64, BuildHasherDefault<Unmixed>>,
}

impl KeySet {
    pub fn clear(&mut self) {
        self.hashes.clear();
    }

    /// Adds the key of `hash`; false if the set holds it already.
    pub fn insert(&mut self, hash: u64) -> bool {
        self.hashes.insert(hash)
    }

    pub fn contains(&self, hash: u64) -> bool {
        self.hashes.contains(&hash)
    }
}

/// A hasher that passes a `u64` through: the keys are hashes already.
#[derive(Default)]
pub(crate) struct Unmixed(u64);

impl Hasher for Unmixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// What a batch may hold.
pub(crate) struct Limits {
    pub records: usize,
    pub bytes: usize,
    /// Items of the lane looked at, at most, to fill one batch.
    pub look_ahead: usize,
    pub strict: bool,
}

/// Scratch space reused across batches.
#[derive(Default)]
pub(crate) struct Former {
    in_batch: KeySet,
    waiting: KeySet,
    kept: VecDeque<Item>,
}

impl Former {
    /// Takes the lane's next batch out of `pending` into `batch` (and the
    /// slot ids into `ids`); records held back go to `held_back`. `checks`,
    /// when given, answers for keys with catch-up errors or a delivery in
    /// flight (the caller passes it only when the map has either).
    #[allow(clippy::too_many_arguments)]
    pub fn form(
        &mut self,
        pending: &mut VecDeque<Item>,
        rejected: &HashSet<String>,
        mut checks: Option<&mut dyn KeyChecks>,
        limits: &Limits,
        batch: &mut Vec<QueuedRecord>,
        ids: &mut Vec<u64>,
        held_back: &mut Vec<HeldBack>,
    ) {
        self.in_batch.clear();
        self.waiting.clear();
        let (mut looked, mut bytes) = (0usize, 0usize);
        while let Some(item) = pending.pop_front() {
            let full = batch.len() >= limits.records || (bytes >= limits.bytes && !batch.is_empty());
            if full || looked >= limits.look_ahead {
                pending.push_front(item);
                break;
            }
            looked += 1;
            let key = item.record.key.as_str();
            let errors = |checks: &mut Option<&mut dyn KeyChecks>| {
                checks.as_mut().is_some_and(|checks| checks.has_errors(key, item.hash))
            };
            if limits.strict && (rejected.contains(key) || errors(&mut checks)) {
                held_back.push(HeldBack { id: item.id, record: item.record });
                continue;
            }
            let busy = checks.as_ref().is_some_and(|checks| checks.busy(item.hash));
            let repeat = limits.strict && self.in_batch.contains(item.hash);
            if busy || repeat || self.waiting.contains(item.hash) {
                // Every later record of this key waits too: per-key order.
                self.waiting.insert(item.hash);
                self.kept.push_back(item);
                continue;
            }
            if limits.strict {
                self.in_batch.insert(item.hash);
            }
            bytes += item.record.key.len() + item.record.payload.len();
            ids.push(item.id);
            batch.push(item.record);
        }
        while let Some(item) = self.kept.pop_back() {
            pending.push_front(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::empty_record;
    use crate::map::key_hash;

    fn item(id: u64, key: &str) -> Item {
        let mut record = empty_record();
        record.seq = id;
        record.key = key.to_owned();
        Item { id, hash: key_hash(key), record }
    }

    fn limits(records: usize, strict: bool) -> Limits {
        Limits { records, bytes: usize::MAX, look_ahead: 100, strict }
    }

    fn keys(batch: &[QueuedRecord]) -> Vec<&str> {
        batch.iter().map(|r| r.key.as_str()).collect()
    }

    /// R22: a repeated key waits for the next batch instead of ending this
    /// one, and the records it leaves behind keep their order.
    #[test]
    fn strict_batches_skip_repeats_and_keep_order() {
        let mut pending: VecDeque<Item> =
            ["A", "B", "A", "C", "A", "D"].iter().enumerate().map(|(i, k)| item(i as u64, k)).collect();
        let (mut former, mut batch, mut ids, mut held) = (Former::default(), Vec::new(), Vec::new(), Vec::new());
        former.form(&mut pending, &HashSet::new(), None, &limits(10, true), &mut batch, &mut ids, &mut held);
        assert_eq!(keys(&batch), ["A", "B", "C", "D"]);
        assert_eq!(ids, [0, 1, 3, 5]);
        assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), [2, 4]);
        batch.clear();
        ids.clear();
        former.form(&mut pending, &HashSet::new(), None, &limits(10, true), &mut batch, &mut ids, &mut held);
        assert_eq!(ids, [2], "the second A; the third waits behind it");
        assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn best_effort_batches_take_repeats() {
        let mut pending: VecDeque<Item> = ["A", "A", "B"].iter().enumerate().map(|(i, k)| item(i as u64, k)).collect();
        let (mut former, mut batch, mut ids, mut held) = (Former::default(), Vec::new(), Vec::new(), Vec::new());
        former.form(&mut pending, &HashSet::new(), None, &limits(10, false), &mut batch, &mut ids, &mut held);
        assert_eq!(ids, [0, 1, 2]);
    }

    /// Under Strict ordering a rejected key's later records are held back,
    /// not sent; the batch fills with others.
    #[test]
    fn rejected_keys_are_held_back() {
        let mut pending: VecDeque<Item> = ["A", "B", "A"].iter().enumerate().map(|(i, k)| item(i as u64, k)).collect();
        let rejected: HashSet<String> = ["A".to_owned()].into();
        let (mut former, mut batch, mut ids, mut held) = (Former::default(), Vec::new(), Vec::new(), Vec::new());
        former.form(&mut pending, &rejected, None, &limits(10, true), &mut batch, &mut ids, &mut held);
        assert_eq!(ids, [1]);
        assert_eq!(held.iter().map(|h| h.id).collect::<Vec<_>>(), [0, 2]);
        assert!(pending.is_empty());
    }

    /// The record limit and the look-ahead bound a batch.
    #[test]
    fn limits_bound_the_batch() {
        let mut pending: VecDeque<Item> = (0..10).map(|i| item(i, &format!("K{i}"))).collect();
        let (mut former, mut batch, mut ids, mut held) = (Former::default(), Vec::new(), Vec::new(), Vec::new());
        former.form(&mut pending, &HashSet::new(), None, &limits(3, true), &mut batch, &mut ids, &mut held);
        assert_eq!(ids, [0, 1, 2]);
        let mut same: VecDeque<Item> = (0..10).map(|i| item(i, "K")).collect();
        batch.clear();
        ids.clear();
        let look = Limits { records: 10, bytes: usize::MAX, look_ahead: 4, strict: true };
        former.form(&mut same, &HashSet::new(), None, &look, &mut batch, &mut ids, &mut held);
        assert_eq!(ids, [0]);
        assert_eq!(same.len(), 9, "the look-ahead stops the scan; the rest stays in order");
        assert_eq!(same.iter().map(|i| i.id).collect::<Vec<_>>(), (1..10).collect::<Vec<_>>());
    }

    /// Found by the lanes bench: with a bitmap, keys sharing a bit took
    /// turns. 10,000 distinct keys are 10,000 distinct members.
    #[test]
    fn key_sets_are_exact() {
        let mut keys = KeySet::default();
        let hashes: Vec<u64> = (0..10_000).map(|i| key_hash(&format!("USMF|CUST-{i:06}"))).collect();
        assert!(hashes.iter().all(|&hash| keys.insert(hash)), "a distinct key read as a repeat");
        assert!(hashes.iter().all(|&hash| !keys.insert(hash) && keys.contains(hash)));
        keys.clear();
        assert!(keys.insert(hashes[0]), "a cleared set holds no key");
    }
}
