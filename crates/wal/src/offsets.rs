//! The frame offsets of one segment: where each record's frame starts.
//!
//! The active segment's grow with its appends and live on the heap (at
//! most one segment's worth). A sealed segment's are read from its mapped
//! sidecar, the file the seal wrote them to: page cache the kernel can
//! drop and read again, not memory of the process. 4 bytes per record add
//! up: a full 1 GiB queue of 50-byte records is 12,000,000 of them, 48 MB
//! that would otherwise stay on the heap for as long as the queue.

use std::fmt;
use std::sync::Arc;

use crate::storage::Mapped;

/// See the module docs. Offsets are `u32`: segments stay below 4 GiB (see
/// `WalOptions::segment_bytes_max`).
#[derive(Clone)]
pub(crate) enum Offsets {
    Heap(Vec<u32>),
    /// `count` little-endian `u32`s at byte `start` of a mapped sidecar.
    Mapped {
        view: Arc<dyn Mapped>,
        start: usize,
        count: usize,
    },
}

impl fmt::Debug for Offsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offsets::Heap(offsets) => write!(f, "Heap({} offsets)", offsets.len()),
            Offsets::Mapped { count, .. } => write!(f, "Mapped({count} offsets)"),
        }
    }
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::Heap(Vec::new())
    }
}

impl Offsets {
    pub fn len(&self) -> usize {
        match self {
            Offsets::Heap(offsets) => offsets.len(),
            Offsets::Mapped { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offset of frame `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<u64> {
        match self {
            Offsets::Heap(offsets) => offsets.get(index).map(|&offset| u64::from(offset)),
            Offsets::Mapped { view, start, count } => (index < *count).then(|| {
                let at = start + index * 4;
                u64::from(u32::from_le_bytes(view.bytes()[at..at + 4].try_into().expect("4-byte slice")))
            }),
        }
    }

    /// The offset of frame `index`, which must exist.
    pub fn at(&self, index: usize) -> u64 {
        self.get(index).expect("frame index within the segment")
    }

    /// The index of the first offset that is not below `offset` (offsets
    /// ascend).
    pub fn first_at_or_past(&self, offset: u64) -> usize {
        match self {
            Offsets::Heap(offsets) => offsets.partition_point(|&o| u64::from(o) < offset),
            Offsets::Mapped { count, .. } => {
                let (mut low, mut high) = (0, *count);
                while low < high {
                    let middle = low + (high - low) / 2;
                    if self.at(middle) < offset {
                        low = middle + 1;
                    } else {
                        high = middle;
                    }
                }
                low
            }
        }
    }

    /// Offsets `from..to` on their own (a view, for mapped ones).
    pub fn range(&self, from: usize, to: usize) -> Offsets {
        match self {
            Offsets::Heap(offsets) => Offsets::Heap(offsets[from..to].to_vec()),
            Offsets::Mapped { view, start, count } => {
                assert!(from <= to && to <= *count, "offset range within the segment");
                Offsets::Mapped { view: view.clone(), start: start + from * 4, count: to - from }
            }
        }
    }

    /// Appends an offset, first copying mapped ones to the heap (a sealed
    /// segment that became the active one again after a crash, R2).
    pub fn push(&mut self, offset: u32) {
        if let Offsets::Mapped { .. } = self {
            *self = Offsets::Heap((0..self.len()).map(|index| self.at(index) as u32).collect());
        }
        match self {
            Offsets::Heap(offsets) => offsets.push(offset),
            Offsets::Mapped { .. } => unreachable!("copied to the heap above"),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|index| self.at(index))
    }
}
