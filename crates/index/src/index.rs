//! [`KeyIndex`]: the in-memory index of one list of queued records.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::Arc;

use crate::cursor::Cursor;
use crate::posting::Posting;
use crate::ranges::RangeSet;
use crate::{Error, Result};

/// One page of seqs, as answered by [`KeyIndex::page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqPage {
    /// The seqs of this page, ascending.
    pub seqs: Vec<u64>,
    /// Cursor for the next page; `Some` iff more matching entries existed
    /// beyond this page at the time of the call.
    pub next: Option<String>,
    /// Total matching entries (the list's size, or the key's).
    pub total: u64,
}

/// Secondary index on integration key for one list of queued records:
/// maps each `seq` to its key and answers pages, counts and filters.
///
/// Structure: per key a sorted posting list of seqs, plus one global set of
/// seq ranges for unfiltered listing. Keys are stored once (`Arc<str>`) and
/// shared with the index they are moved into.
///
/// Invariants (checked by `check_invariants` in tests):
/// - every key in `keys` has at least one live entry, and `by_last` maps the
///   last seq of each key's list to that key;
/// - the live seqs of all posting lists are exactly the seqs of `ranges`;
/// - seqs at or below `released_through` may still sit at the head of a
///   posting list (lazy trimming) but are never returned or counted;
/// - `released_through <= last_accepted`.
#[derive(Default, Clone)]
pub struct KeyIndex {
    pub(crate) keys: HashMap<Arc<str>, Posting>,
    pub(crate) by_last: BTreeMap<u64, Arc<str>>,
    pub(crate) ranges: RangeSet,
    /// Entries stored in posting lists, dead ones included.
    pub(crate) stored_count: u64,
    /// Lazy release watermark: every entry with seq <= it is gone.
    pub(crate) released_through: Option<u64>,
    /// The highest seq ever inserted or moved in; `insert` must go above it.
    pub(crate) last_accepted: Option<u64>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A summary: the full content can be a million entries.
        f.debug_struct("KeyIndex")
            .field("entry_count", &self.len())
            .field("key_count", &self.key_count())
            .field("first_seq", &self.first_seq())
            .field("last_seq", &self.last_seq())
            .field("released_through", &self.released_through)
            .field("last_accepted", &self.last_accepted)
            .finish()
    }
}

/// Entries taken out of an index by a range, grouped by key.
struct Taken {
    per_key: Vec<(Arc<str>, Vec<u64>)>,
    ranges: RangeSet,
}

impl KeyIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn is_released(&self, seq: u64) -> bool {
        self.released_through.is_some_and(|through| seq <= through)
    }

    /// Adds the entry `seq` for `key`. Seqs must strictly increase over the
    /// index's life, moves included: a `seq` at or below the highest seq ever
    /// inserted or moved in gives [`Error::OutOfOrder`] and changes nothing.
    pub fn insert(&mut self, key: &str, seq: u64) -> Result<()> {
        if let Some(last) = self.last_accepted {
            if seq <= last {
                return Err(Error::OutOfOrder { seq, last });
            }
        }
        self.last_accepted = Some(seq);
        let watermark = self.released_through;
        match self.keys.get_mut(key) {
            Some(posting) => {
                let old_last = posting.last().expect("a key in the index has an entry");
                posting.push(seq);
                self.stored_count -= posting.trim(watermark) as u64;
                let shared = self.by_last.remove(&old_last).expect("by_last lists every key's last seq");
                self.by_last.insert(seq, shared);
            }
            None => {
                let shared: Arc<str> = Arc::from(key);
                self.keys.insert(shared.clone(), Posting::from_sorted(vec![seq]));
                self.by_last.insert(seq, shared);
            }
        }
        self.stored_count += 1;
        self.ranges.push(seq);
        Ok(())
    }

    /// Removes the entry `seq` of `key`; true if it was present.
    pub fn remove(&mut self, key: &str, seq: u64) -> bool {
        let watermark = self.released_through;
        let Some(posting) = self.keys.get_mut(key) else { return false };
        let old_last = posting.last();
        if !posting.remove(seq, watermark) {
            return false;
        }
        self.stored_count -= 1;
        let removed_from_ranges = self.ranges.remove(seq);
        debug_assert!(removed_from_ranges, "seq {seq} in a posting list but not in the ranges");
        let new_last = posting.live(watermark).last().copied();
        if new_last != old_last {
            self.relink_last(key, old_last, new_last);
        }
        true
    }

    /// Moves the `by_last` link of `key` from `old_last` to `new_last`; a key
    /// left with no live entry leaves the index.
    fn relink_last(&mut self, key: &str, old_last: Option<u64>, new_last: Option<u64>) {
        let shared = old_last.and_then(|last| self.by_last.remove(&last));
        match (new_last, shared) {
            (Some(last), Some(shared)) => {
                self.by_last.insert(last, shared);
            }
            (Some(last), None) => {
                if let Some((shared, _)) = self.keys.get_key_value(key) {
                    self.by_last.insert(last, shared.clone());
                }
            }
            (None, _) => {
                if let Some(posting) = self.keys.remove(key) {
                    self.stored_count -= posting.stored_count() as u64;
                }
            }
        }
    }

    /// Drops every entry with seq `<= through`. Amortized O(1): posting lists
    /// are trimmed lazily; only keys left empty are visited.
    pub fn release_through(&mut self, through: u64) {
        let Some(last_accepted) = self.last_accepted else { return };
        // Entries above `last_accepted` cannot exist yet; clamping keeps
        // future inserts above the watermark.
        let through = through.min(last_accepted);
        if self.is_released(through) {
            return;
        }
        self.released_through = Some(self.released_through.map_or(through, |w| w.max(through)));
        self.ranges.release_through(through);
        while let Some(entry) = self.by_last.first_entry() {
            if *entry.key() > through {
                break;
            }
            let key = entry.remove();
            if let Some(posting) = self.keys.remove(&key) {
                self.stored_count -= posting.stored_count() as u64;
            }
        }
        // Sweep when dead entries outweigh live ones (and the keys, so the
        // O(keys) sweep is paid for by at least as many released entries).
        let dead_count = self.stored_count - self.len();
        if dead_count > self.len().max(self.keys.len() as u64) {
            self.sweep();
        }
    }

    /// Cuts the dead head of every posting list.
    fn sweep(&mut self) {
        let watermark = self.released_through;
        for posting in self.keys.values_mut() {
            self.stored_count -= posting.trim(watermark) as u64;
        }
        debug_assert_eq!(self.stored_count, self.len());
    }

    fn live_bounds(&self, range: &RangeInclusive<u64>) -> Option<(u64, u64)> {
        let lo = match self.released_through {
            Some(through) => (*range.start()).max(through.checked_add(1)?),
            None => *range.start(),
        };
        let hi = *range.end();
        (lo <= hi && !self.is_empty()).then_some((lo, hi))
    }

    fn covers_all(&self, range: &RangeInclusive<u64>) -> bool {
        match (self.first_seq(), self.last_seq()) {
            (Some(first), Some(last)) => *range.start() <= first && *range.end() >= last,
            _ => false,
        }
    }

    /// Takes out every live entry in `range`. O(keys · log n) plus memmove.
    fn take_range(&mut self, range: &RangeInclusive<u64>) -> Taken {
        let mut taken = Taken { per_key: Vec::new(), ranges: RangeSet::default() };
        let Some((lo, hi)) = self.live_bounds(range) else { return taken };
        taken.ranges = self.ranges.take_range(lo, hi);
        if taken.ranges.seq_count() == 0 {
            return taken;
        }
        let watermark = self.released_through;
        let mut relinks = Vec::new();
        for (key, posting) in self.keys.iter_mut() {
            let live = posting.live(watermark);
            let (Some(&first), Some(&last)) = (live.first(), live.last()) else { continue };
            if last < lo || first > hi {
                continue;
            }
            let seqs = posting.take_range(lo, hi);
            self.stored_count -= seqs.len() as u64;
            let new_last = posting.live(watermark).last().copied();
            if new_last != Some(last) {
                relinks.push((key.clone(), last, new_last));
            }
            taken.per_key.push((key.clone(), seqs));
        }
        for (key, old_last, new_last) in relinks {
            self.relink_last(&key, Some(old_last), new_last);
        }
        taken
    }

    /// Adds entries taken from another index; their seqs may interleave with
    /// ours (a seq held by both is kept once).
    fn absorb(&mut self, taken: Taken) {
        let (Some(first), Some(last)) = (taken.ranges.first(), taken.ranges.last()) else { return };
        if self.is_released(first) {
            // The watermark would hide the newcomers: cut every dead entry,
            // after which a lower watermark hides nothing live.
            self.sweep();
            self.released_through = first.checked_sub(1);
        }
        self.last_accepted = Some(self.last_accepted.map_or(last, |accepted| accepted.max(last)));
        self.ranges.merge(taken.ranges);
        let watermark = self.released_through;
        for (key, seqs) in taken.per_key {
            match self.keys.get_mut(&key) {
                Some(posting) => {
                    let old_last = posting.last();
                    self.stored_count += posting.merge(seqs) as u64;
                    let new_last = posting.live(watermark).last().copied();
                    if new_last != old_last {
                        self.relink_last(&key, old_last, new_last);
                    }
                }
                None => {
                    let Some(&key_last) = seqs.last() else { continue };
                    self.stored_count += seqs.len() as u64;
                    self.keys.insert(key.clone(), Posting::from_sorted(seqs));
                    self.by_last.insert(key_last, key);
                }
            }
        }
    }

    /// Moves every entry with seq in `range` to `dest`, in O(keys + log n)
    /// plus memcpy: never one tree insert per entry. When `dest` is empty and
    /// `range` covers everything, the contents are swapped.
    pub fn move_range_into(&mut self, range: RangeInclusive<u64>, dest: &mut KeyIndex) {
        if dest.is_empty() && self.covers_all(&range) {
            let last = self.last_seq();
            std::mem::swap(&mut self.keys, &mut dest.keys);
            std::mem::swap(&mut self.by_last, &mut dest.by_last);
            std::mem::swap(&mut self.ranges, &mut dest.ranges);
            std::mem::swap(&mut self.stored_count, &mut dest.stored_count);
            // The lists may keep a dead head, hidden by the same watermark;
            // `dest` held nothing, so its own watermark has nothing to hide.
            dest.released_through = self.released_through;
            dest.last_accepted = dest.last_accepted.max(last);
            return;
        }
        let taken = self.take_range(&range);
        dest.absorb(taken);
    }

    /// Drops every entry with seq in `range`; same cost as a move.
    pub fn drop_range(&mut self, range: RangeInclusive<u64>) {
        if self.covers_all(&range) {
            self.keys.clear();
            self.by_last.clear();
            self.ranges = RangeSet::default();
            self.stored_count = 0;
            return;
        }
        drop(self.take_range(&range));
    }

    /// True if an entry with this seq is held.
    pub fn contains(&self, seq: u64) -> bool {
        self.ranges.contains(seq)
    }

    /// Total entries held.
    pub fn len(&self) -> u64 {
        self.ranges.seq_count()
    }

    /// True if no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries of `key`, or all entries for `None`. Exact, O(log n).
    pub fn count(&self, key: Option<&str>) -> u64 {
        match key {
            None => self.len(),
            Some(key) => self.live_seqs(key).len() as u64,
        }
    }

    fn live_seqs(&self, key: &str) -> &[u64] {
        self.keys.get(key).map_or(&[], |posting| posting.live(self.released_through))
    }

    /// Every seq of `key`, ascending.
    pub fn key_seqs(&self, key: &str) -> Vec<u64> {
        self.live_seqs(key).to_vec()
    }

    /// Number of distinct keys with at least one entry.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The lowest seq held.
    pub fn first_seq(&self) -> Option<u64> {
        self.ranges.first()
    }

    /// The highest seq held.
    pub fn last_seq(&self) -> Option<u64> {
        self.ranges.last()
    }

    /// Up to `limit` seqs in `range`, ascending, all keys.
    pub fn seqs_in(&self, range: RangeInclusive<u64>, limit: usize) -> Vec<u64> {
        self.ranges.seqs_between(*range.start(), *range.end(), limit)
    }

    /// One page of entries in ascending seq order, of `key` only or of all
    /// keys, starting after the cursor `after` (a previous page's `next`).
    /// A key filter reads only that key's posting list: O(log n + limit).
    /// `limit` is clamped by the caller; 0 is read as 1.
    ///
    /// A malformed, damaged, other-version or other-filter cursor gives
    /// [`Error::BadCursor`].
    pub fn page(&self, key: Option<&str>, after: Option<&str>, limit: usize) -> Result<SeqPage> {
        let limit = limit.max(1);
        let after_seq = match after {
            Some(text) => Some(Cursor::decode(text, key)?.last_seq()),
            None => None,
        };
        let (seqs, more) = match key {
            Some(key) => {
                let live = self.live_seqs(key);
                let start = after_seq.map_or(0, |after| live.partition_point(|&seq| seq <= after));
                let rest = &live[start..];
                let taken = rest.len().min(limit);
                (rest[..taken].to_vec(), rest.len() > taken)
            }
            None => {
                let Some(from) = after_seq.map_or(Some(0), |after| after.checked_add(1)) else {
                    return Ok(SeqPage { seqs: Vec::new(), next: None, total: self.len() });
                };
                let mut seqs = self.ranges.seqs_between(from, u64::MAX, limit.saturating_add(1));
                let more = seqs.len() > limit;
                seqs.truncate(limit);
                (seqs, more)
            }
        };
        let next = match seqs.last() {
            Some(&last) if more => Some(Cursor::new(last, key).encode()),
            _ => None,
        };
        Ok(SeqPage { seqs, next, total: self.count(key) })
    }

    /// Estimate of the heap bytes held (posting lists, keys, maps, ranges).
    pub fn memory_bytes(&self) -> usize {
        let key_slot = std::mem::size_of::<(Arc<str>, Posting)>() + 1;
        // A B-tree node holds up to 11 entries and is about two-thirds full.
        let by_last_entry = std::mem::size_of::<(u64, Arc<str>)>() * 3 / 2 + 8;
        let arc_header = 2 * std::mem::size_of::<usize>();
        let per_key: usize = self.keys.iter().map(|(key, posting)| key.len() + arc_header + posting.heap_bytes()).sum();
        self.keys.capacity() * key_slot + per_key + self.by_last.len() * by_last_entry + self.ranges.heap_bytes()
    }

    /// Checks every structural invariant; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let watermark = self.released_through;
        let mut all: Vec<u64> = Vec::new();
        let mut stored = 0u64;
        for (key, posting) in &self.keys {
            let live = posting.live(watermark);
            assert!(!live.is_empty(), "key {key:?} has no live entry");
            assert!(live.windows(2).all(|w| w[0] < w[1]), "key {key:?} not ascending");
            let last = *live.last().expect("checked non-empty");
            assert_eq!(self.by_last.get(&last).map(|k| &**k), Some(&**key), "by_last for {key:?}");
            stored += posting.stored_count() as u64;
            all.extend_from_slice(live);
        }
        assert_eq!(self.by_last.len(), self.keys.len(), "by_last has stale keys");
        assert_eq!(stored, self.stored_count, "stored_count drifted");
        all.sort_unstable();
        assert_eq!(all, self.ranges.seqs_between(0, u64::MAX, usize::MAX), "ranges differ from postings");
        assert_eq!(all.len() as u64, self.len());
        if let (Some(through), Some(accepted)) = (self.released_through, self.last_accepted) {
            assert!(through <= accepted, "watermark above last accepted seq");
        }
    }
}
