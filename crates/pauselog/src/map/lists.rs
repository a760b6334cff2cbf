//! The queue and the catch-up errors as lists (R10, R11, R16): derived from
//! the data log, the head and the error runs, found by key through the key
//! runs (`pauselog_index::KeyRuns`), so that nothing per record or per key
//! stays in memory.
//!
//! - The queue is the live data records in `head..=tail`.
//! - The catch-up errors are the live data records below `head` covered by
//!   an error run (below `head`, a live record outside the error runs is a
//!   delivered one whose release has not reached the log yet).
//!
//! A page for one key reads only that key's postings (a binary search in
//! each run and the memory run) and asks the data log which of them are
//! live. A page without a key walks the data log's live seqs from the
//! cursor. Totals: the counters in `Core` without a key, that key's live
//! postings with one (exact).

use std::ops::{ControlFlow, RangeInclusive};

use pauselog_index::{Cursor, SeqPage};
use pauselog_wal::Wal;

use super::Core;
use crate::errors_table::ErrorTable;
use crate::{Error, Result};

/// Seqs asked of the data log at once when filtering a key's postings.
const LIVE_CHUNK: usize = 1024;

/// The two lists of one map, as the state that defines them gives them.
pub(crate) struct Lists<'a> {
    pub head: u64,
    pub tail: u64,
    pub error_table: &'a ErrorTable,
    pub keys: &'a pauselog_index::KeyRuns,
    pub data: &'a Wal,
    /// The lists' sizes (kept by their owner).
    pub queue_records: u64,
    pub error_records: u64,
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Queue,
    Errors,
}

impl Lists<'_> {
    /// The seq range a list's records lie in.
    fn span(&self, list: List) -> Option<RangeInclusive<u64>> {
        let range = match list {
            List::Queue => self.head..=self.tail,
            List::Errors => 1..=self.head.checked_sub(1)?,
        };
        (range.start() <= range.end()).then_some(range)
    }

    /// Whether `seq` (live) belongs to `list`, given it lies in its span.
    fn covers(&self, list: List, seq: u64) -> bool {
        list == List::Queue || self.error_table.get(seq).is_some()
    }

    /// Calls `visit` with the seqs of `key` in `list` from `from` on,
    /// ascending, until it breaks.
    fn for_each_of_key(&self, list: List, key: &str, from: u64, mut visit: impl FnMut(u64) -> ControlFlow<()>) {
        let data = self.data;
        let Some(span) = self.span(list) else { return };
        let range = from.max(*span.start())..=*span.end();
        let mut chunk: Vec<u64> = Vec::with_capacity(LIVE_CHUNK);
        let mut flush = |chunk: &mut Vec<u64>| -> ControlFlow<()> {
            let live = data.live_mask(chunk);
            for (&seq, live) in chunk.iter().zip(live) {
                if live {
                    visit(seq)?;
                }
            }
            chunk.clear();
            ControlFlow::Continue(())
        };
        let mut stopped = false;
        self.keys.for_each_seq(key, range, |seq| {
            if self.covers(list, seq) {
                chunk.push(seq);
                if chunk.len() == LIVE_CHUNK && flush(&mut chunk).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if !stopped {
            let _ = flush(&mut chunk);
        }
    }

    /// True if `key` has a record in `list`.
    pub fn key_in(&self, list: List, key: &str) -> bool {
        let mut found = false;
        self.for_each_of_key(list, key, 0, |_| {
            found = true;
            ControlFlow::Break(())
        });
        found
    }

    /// The seqs of `key` in `list` below `below`, ascending.
    pub fn key_seqs(&self, list: List, key: &str, below: u64) -> Vec<u64> {
        let mut seqs = Vec::new();
        self.for_each_of_key(list, key, 0, |seq| {
            if seq >= below {
                return ControlFlow::Break(());
            }
            seqs.push(seq);
            ControlFlow::Continue(())
        });
        seqs
    }

    /// True if `seq` is a catch-up error.
    pub fn is_error(&self, seq: u64) -> bool {
        seq < self.head && self.error_table.get(seq).is_some() && self.data.record_bytes(seq).is_some()
    }

    /// Up to `limit` seqs of `list` from `from` on, ascending (no key).
    fn seqs_from(&self, list: List, from: u64, limit: usize) -> Vec<u64> {
        let data = self.data;
        let Some(span) = self.span(list) else { return Vec::new() };
        let from = from.max(*span.start());
        match list {
            List::Queue if from <= *span.end() => data.live_seqs(from..=*span.end(), limit),
            List::Queue => Vec::new(),
            List::Errors => {
                let mut seqs = Vec::new();
                for run in self.error_table.runs().filter(|run| run.hi >= from && run.lo <= *span.end()) {
                    let range = run.lo.max(from)..=run.hi.min(*span.end());
                    seqs.extend(data.live_seqs(range, limit - seqs.len()));
                    if seqs.len() >= limit {
                        break;
                    }
                }
                seqs
            }
        }
    }

    /// Every catch-up error's seq, ascending.
    pub fn all_error_seqs(&self) -> Vec<u64> {
        self.seqs_from(List::Errors, 1, usize::MAX)
    }

    /// The first queued seq, if any.
    pub fn first_queued(&self) -> Option<u64> {
        self.seqs_from(List::Queue, 0, 1).first().copied()
    }

    /// One page of `list` (R10): at most `limit` seqs after the cursor, the
    /// cursor for the next page, and the total (of the key, with a key).
    pub fn page(&self, list: List, key: Option<&str>, after: Option<&str>, limit: usize) -> Result<SeqPage> {
        let limit = limit.max(1);
        let from = match after {
            Some(text) => Cursor::decode(text, key).map_err(Error::from_index)?.last_seq().saturating_add(1),
            None => 0,
        };
        let (mut seqs, total) = match key {
            Some(key) => {
                let (mut seqs, mut total) = (Vec::new(), 0u64);
                self.for_each_of_key(list, key, 0, |seq| {
                    total += 1;
                    if seq >= from && seqs.len() <= limit {
                        seqs.push(seq);
                    }
                    ControlFlow::Continue(())
                });
                (seqs, total)
            }
            None => {
                let total = match list {
                    List::Queue => self.queue_records,
                    List::Errors => self.error_records,
                };
                (self.seqs_from(list, from, limit + 1), total)
            }
        };
        let more = seqs.len() > limit;
        seqs.truncate(limit);
        let next = match seqs.last() {
            Some(&last) if more => Some(Cursor::new(last, key).encode()),
            _ => None,
        };
        Ok(SeqPage { seqs, next, total })
    }
}

impl Core {
    /// The map's lists, read through `data`.
    pub fn lists<'a>(&'a self, data: &'a Wal) -> Lists<'a> {
        Lists {
            head: self.head,
            tail: self.tail,
            error_table: &self.error_table,
            keys: &self.keys,
            data,
            queue_records: self.queue_records(),
            error_records: self.error_records(),
        }
    }

    /// True if `key` has a record in `list`.
    pub fn key_in(&self, data: &Wal, list: List, key: &str) -> bool {
        self.lists(data).key_in(list, key)
    }

    /// The seqs of `key` in `list` below `below`, ascending.
    pub fn key_seqs(&self, data: &Wal, list: List, key: &str, below: u64) -> Vec<u64> {
        self.lists(data).key_seqs(list, key, below)
    }

    /// True if `seq` is a catch-up error.
    pub fn is_error(&self, data: &Wal, seq: u64) -> bool {
        self.lists(data).is_error(seq)
    }

    /// Every catch-up error's seq, ascending.
    pub fn all_error_seqs(&self, data: &Wal) -> Vec<u64> {
        self.lists(data).all_error_seqs()
    }

    /// The first queued seq, if any.
    pub fn first_queued(&self, data: &Wal) -> Option<u64> {
        self.lists(data).first_queued()
    }

    /// One page of `list` (R10).
    pub fn page(
        &self,
        data: &Wal,
        list: List,
        key: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SeqPage> {
        self.lists(data).page(list, key, after, limit)
    }
}
