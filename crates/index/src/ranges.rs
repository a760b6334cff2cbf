//! The global ordered view of one index: which seqs it holds, as sorted,
//! disjoint, non-adjacent inclusive ranges.
//!
//! A queue's seqs are nearly contiguous, so a million entries usually fit in
//! one range; an arbitrary `remove` splits a range in two. The head is
//! released often (every replay batch), so released ranges are skipped by a
//! `head` offset and compacted only when they outnumber the live ones: the
//! amortized cost of a release is O(1) per range dropped.

/// Sorted, disjoint, non-adjacent inclusive ranges of seq.
#[derive(Debug, Default, Clone)]
pub(crate) struct RangeSet {
    /// `ranges[head..]` are live; `ranges[..head]` await compaction.
    ranges: Vec<(u64, u64)>,
    head: usize,
    /// Number of seqs in the live ranges, kept exact at every moment.
    seq_count: u64,
}

fn width(range: (u64, u64)) -> u64 {
    // A range is never empty, so `end - start + 1` cannot be zero; it only
    // overflows for the full u64 domain, which no log can hold.
    (range.1 - range.0).saturating_add(1)
}

impl RangeSet {
    fn live(&self) -> &[(u64, u64)] {
        &self.ranges[self.head..]
    }

    /// Builds a set from ranges already validated as sorted, disjoint and
    /// non-adjacent (the store checks this before calling).
    pub(crate) fn from_sorted(ranges: Vec<(u64, u64)>) -> Self {
        let seq_count = ranges.iter().map(|&r| width(r)).sum();
        RangeSet { ranges, head: 0, seq_count }
    }

    /// The live ranges, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.live().iter().copied()
    }

    pub(crate) fn range_count(&self) -> usize {
        self.ranges.len() - self.head
    }

    pub(crate) fn seq_count(&self) -> u64 {
        self.seq_count
    }

    pub(crate) fn first(&self) -> Option<u64> {
        self.live().first().map(|r| r.0)
    }

    pub(crate) fn last(&self) -> Option<u64> {
        self.live().last().map(|r| r.1)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ranges.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// Appends `seq`, which must be above every seq held.
    pub(crate) fn push(&mut self, seq: u64) {
        debug_assert!(self.last().is_none_or(|last| seq > last), "push of {seq} is not at the tail");
        let live_exists = self.head < self.ranges.len();
        match self.ranges.last_mut() {
            Some(range) if live_exists && range.1.checked_add(1) == Some(seq) => range.1 = seq,
            _ => self.ranges.push((seq, seq)),
        }
        self.seq_count += 1;
    }

    /// Index in `live()` of the first range whose end is `>= seq`.
    fn first_ending_at_or_after(&self, seq: u64) -> usize {
        self.live().partition_point(|r| r.1 < seq)
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        let live = self.live();
        let i = self.first_ending_at_or_after(seq);
        i < live.len() && live[i].0 <= seq
    }

    /// Removes one seq; true if it was present. A removal inside a range
    /// splits it, which costs a memmove of the ranges after it.
    pub(crate) fn remove(&mut self, seq: u64) -> bool {
        if !self.contains(seq) {
            return false;
        }
        let index = self.head + self.first_ending_at_or_after(seq);
        let (start, end) = self.ranges[index];
        if start == end {
            self.ranges.remove(index);
        } else if seq == start {
            self.ranges[index].0 = start + 1;
        } else if seq == end {
            self.ranges[index].1 = end - 1;
        } else {
            self.ranges[index].1 = seq - 1;
            self.ranges.insert(index + 1, (seq + 1, end));
        }
        self.seq_count -= 1;
        self.compact();
        true
    }

    /// Drops every seq `<= through`; returns how many were dropped.
    pub(crate) fn release_through(&mut self, through: u64) -> u64 {
        let mut dropped = 0;
        while self.head < self.ranges.len() {
            let (start, end) = self.ranges[self.head];
            if end <= through {
                dropped += width((start, end));
                self.head += 1;
            } else {
                if start <= through {
                    dropped += through - start + 1;
                    self.ranges[self.head].0 = through + 1;
                }
                break;
            }
        }
        self.seq_count -= dropped;
        self.compact();
        dropped
    }

    fn compact(&mut self) {
        if self.head == self.ranges.len() {
            self.ranges.clear();
            self.head = 0;
        } else if self.head >= 64 && self.head * 2 >= self.ranges.len() {
            self.ranges.drain(..self.head);
            self.head = 0;
        }
    }

    /// Removes the seqs in `lo..=hi` and returns them as a set of their own.
    pub(crate) fn take_range(&mut self, lo: u64, hi: u64) -> RangeSet {
        let mut taken = RangeSet::default();
        if lo > hi {
            return taken;
        }
        let live = self.live();
        let first = live.partition_point(|r| r.1 < lo);
        let past = live.partition_point(|r| r.0 <= hi);
        if first >= past {
            return taken;
        }
        let mut remainders = Vec::with_capacity(2);
        if live[first].0 < lo {
            remainders.push((live[first].0, lo - 1));
        }
        if live[past - 1].1 > hi {
            remainders.push((hi + 1, live[past - 1].1));
        }
        taken.ranges = live[first..past].iter().map(|&(start, end)| (start.max(lo), end.min(hi))).collect();
        taken.seq_count = taken.ranges.iter().map(|&r| width(r)).sum();
        let head = self.head;
        self.ranges.splice(head + first..head + past, remainders);
        self.seq_count -= taken.seq_count;
        self.compact();
        taken
    }

    /// Adds every seq of `other` (a union: a seq held by both is kept once).
    pub(crate) fn merge(&mut self, mut other: RangeSet) {
        other.compact_fully();
        if other.ranges.is_empty() {
            return;
        }
        self.compact_fully();
        let Some(last) = self.last() else {
            *self = other;
            return;
        };
        if other.ranges[0].0 > last {
            // Fast path, the common case: the moved block lands at the tail.
            let mut incoming = other.ranges.into_iter();
            if let Some(first) = incoming.next() {
                self.push_coalescing(first);
            }
            self.ranges.extend(incoming);
            self.seq_count += other.seq_count;
            return;
        }
        let mine = std::mem::take(&mut self.ranges);
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(mine.len() + other.ranges.len());
        let (mut a, mut b) = (mine.into_iter().peekable(), other.ranges.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(range) = next {
                match merged.last_mut() {
                    Some(prev) if range.0 <= prev.1.saturating_add(1) => prev.1 = prev.1.max(range.1),
                    _ => merged.push(range),
                }
            }
        }
        *self = RangeSet::from_sorted(merged);
    }

    fn push_coalescing(&mut self, range: (u64, u64)) {
        match self.ranges.last_mut() {
            Some(prev) if prev.1.checked_add(1) == Some(range.0) => prev.1 = range.1,
            _ => self.ranges.push(range),
        }
    }

    fn compact_fully(&mut self) {
        if self.head > 0 {
            self.ranges.drain(..self.head);
            self.head = 0;
        }
    }

    /// Up to `limit` seqs in `from..=to`, ascending.
    pub(crate) fn seqs_between(&self, from: u64, to: u64, limit: usize) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(limit.min(1024));
        if from > to {
            return seqs;
        }
        let live = self.live();
        for &(start, end) in &live[self.first_ending_at_or_after(from)..] {
            if start > to {
                break;
            }
            for seq in start.max(from)..=end.min(to) {
                if seqs.len() == limit {
                    return seqs;
                }
                seqs.push(seq);
            }
        }
        seqs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(seqs: &[u64]) -> RangeSet {
        let mut set = RangeSet::default();
        for &seq in seqs {
            set.push(seq);
        }
        set
    }

    fn all(set: &RangeSet) -> Vec<u64> {
        set.seqs_between(0, u64::MAX, usize::MAX)
    }

    #[test]
    fn contiguous_pushes_make_one_range() {
        let set = set(&[1, 2, 3, 4, 7, 8]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(1, 4), (7, 8)]);
        assert_eq!(set.seq_count(), 6);
    }

    #[test]
    fn remove_splits_and_release_trims() {
        let mut set = set(&[1, 2, 3, 4, 5]);
        assert!(set.remove(3));
        assert!(!set.remove(3));
        assert_eq!(all(&set), vec![1, 2, 4, 5]);
        assert_eq!(set.release_through(4), 3);
        assert_eq!(all(&set), vec![5]);
        assert_eq!(set.seq_count(), 1);
    }

    #[test]
    fn take_and_merge_interleaved() {
        let mut source = set(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let taken = source.take_range(3, 5);
        assert_eq!(all(&source), vec![1, 2, 6, 7, 8, 9]);
        let mut dest = set(&[1, 2, 10]);
        dest.merge(taken);
        assert_eq!(all(&dest), vec![1, 2, 3, 4, 5, 10]);
        assert_eq!(dest.iter().collect::<Vec<_>>(), vec![(1, 5), (10, 10)]);
        assert_eq!(dest.seq_count(), 6);
    }
}
