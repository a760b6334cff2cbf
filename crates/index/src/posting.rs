//! One key's posting list: the seqs of its entries, ascending.
//!
//! Inserts append at the end (seqs only grow). Releases at the head are lazy:
//! the owner keeps a watermark and every query skips the seqs at or below it
//! by binary search, so `release_through` never has to visit each key. The
//! dead prefix is cut when the list is next touched or by the owner's sweep.

/// Seqs of one key, ascending; `seqs[..head]` are already cut.
#[derive(Debug, Clone, Default)]
pub(crate) struct Posting {
    seqs: Vec<u64>,
    head: usize,
}

/// Below this many cut entries a head is not worth a memmove.
const HEAD_COMPACT_MIN: usize = 16;

impl Posting {
    pub(crate) fn from_sorted(seqs: Vec<u64>) -> Self {
        debug_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "posting list not ascending");
        Posting { seqs, head: 0 }
    }

    /// Seqs stored, dead (at or below the watermark) included.
    pub(crate) fn stored_count(&self) -> usize {
        self.seqs.len() - self.head
    }

    /// The live seqs: those above `watermark`.
    pub(crate) fn live(&self, watermark: Option<u64>) -> &[u64] {
        let stored = &self.seqs[self.head..];
        match watermark {
            None => stored,
            Some(through) => &stored[stored.partition_point(|&seq| seq <= through)..],
        }
    }

    /// The highest stored seq (always live when the key is in the index).
    pub(crate) fn last(&self) -> Option<u64> {
        self.seqs[self.head..].last().copied()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.seqs.capacity() * std::mem::size_of::<u64>()
    }

    pub(crate) fn push(&mut self, seq: u64) {
        debug_assert!(self.last().is_none_or(|last| seq > last), "posting push out of order");
        self.seqs.push(seq);
    }

    /// Cuts the dead prefix; returns how many seqs were cut.
    pub(crate) fn trim(&mut self, watermark: Option<u64>) -> usize {
        let Some(through) = watermark else { return 0 };
        let dead = self.seqs[self.head..].partition_point(|&seq| seq <= through);
        self.head += dead;
        self.compact();
        dead
    }

    fn compact(&mut self) {
        if self.head == self.seqs.len() {
            self.seqs.clear();
            self.head = 0;
        } else if self.head >= HEAD_COMPACT_MIN && self.head * 2 >= self.seqs.len() {
            self.seqs.drain(..self.head);
            self.head = 0;
        }
        // Give memory back once a drained list is far below its peak.
        if self.seqs.capacity() > 64 && self.seqs.capacity() > 4 * self.seqs.len() {
            self.seqs.shrink_to(2 * self.seqs.len());
        }
    }

    /// Removes one live seq; true if it was present.
    pub(crate) fn remove(&mut self, seq: u64, watermark: Option<u64>) -> bool {
        if watermark.is_some_and(|through| seq <= through) {
            return false;
        }
        match self.seqs[self.head..].binary_search(&seq) {
            Ok(offset) => {
                self.seqs.remove(self.head + offset);
                self.compact();
                true
            }
            Err(_) => false,
        }
    }

    /// Removes and returns the live seqs in `lo..=hi` (`lo` is above the
    /// watermark, the caller ensures it).
    pub(crate) fn take_range(&mut self, lo: u64, hi: u64) -> Vec<u64> {
        let stored = &self.seqs[self.head..];
        let start = self.head + stored.partition_point(|&seq| seq < lo);
        let end = self.head + stored.partition_point(|&seq| seq <= hi);
        if start >= end {
            return Vec::new();
        }
        let taken =
            if end == self.seqs.len() { self.seqs.split_off(start) } else { self.seqs.drain(start..end).collect() };
        self.compact();
        taken
    }

    /// Adds `incoming` (ascending, all above the watermark) to the list.
    /// Returns how many seqs were new (a seq already held is kept once).
    pub(crate) fn merge(&mut self, mut incoming: Vec<u64>) -> usize {
        let Some(&first_incoming) = incoming.first() else { return 0 };
        if self.stored_count() == 0 {
            let added = incoming.len();
            self.seqs = incoming;
            self.head = 0;
            return added;
        }
        if self.last().is_some_and(|last| first_incoming > last) {
            let added = incoming.len();
            self.seqs.append(&mut incoming);
            return added;
        }
        // Interleaved: one linear merge, a memcpy-like pass over both lists.
        let before = self.stored_count();
        let mine = &self.seqs[self.head..];
        let mut merged = Vec::with_capacity(mine.len() + incoming.len());
        let (mut i, mut j) = (0, 0);
        while i < mine.len() && j < incoming.len() {
            let (a, b) = (mine[i], incoming[j]);
            if a <= b {
                merged.push(a);
                i += 1;
                j += usize::from(a == b);
            } else {
                merged.push(b);
                j += 1;
            }
        }
        merged.extend_from_slice(&mine[i..]);
        merged.extend_from_slice(&incoming[j..]);
        self.seqs = merged;
        self.head = 0;
        self.seqs.len() - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_watermark_hides_then_trim_cuts() {
        let mut posting = Posting::from_sorted(vec![1, 3, 5, 7]);
        assert_eq!(posting.live(Some(4)), &[5, 7]);
        assert_eq!(posting.stored_count(), 4);
        assert_eq!(posting.trim(Some(4)), 2);
        assert_eq!(posting.stored_count(), 2);
        assert!(!posting.remove(3, Some(4)));
        assert!(posting.remove(7, Some(4)));
        assert_eq!(posting.live(None), &[5]);
    }

    #[test]
    fn take_and_merge() {
        let mut posting = Posting::from_sorted(vec![1, 3, 5, 7, 9]);
        assert_eq!(posting.take_range(3, 7), vec![3, 5, 7]);
        assert_eq!(posting.live(None), &[1, 9]);
        assert_eq!(posting.merge(vec![2, 9, 10]), 2);
        assert_eq!(posting.live(None), &[1, 2, 9, 10]);
    }
}
