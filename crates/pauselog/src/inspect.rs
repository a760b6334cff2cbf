//! Read-only inspection of a data directory, also while an engine holds it:
//! no lock is taken, nothing is repaired or written. Used by the CLI's
//! `status`, `queued`, `errors` and `verify`.
//!
//! ```no_run
//! let reports = pauselog::inspect("data".as_ref())?;
//! for report in &reports {
//!     println!("{}: {} queued, {} bytes", report.name, report.queued_records, report.queued_bytes);
//! }
//! # Ok::<(), pauselog::Error>(())
//! ```
//!
//! An engine may append, drain and delete segments while these run; the
//! wal's read-only open copes with that (a segment deleted meanwhile was
//! drained, the active segment's last frame may be half written). Each
//! map's meta log is read before its data log, so the data log as read
//! holds the records the meta log's head has passed.
//!
//! What it costs: opening a map reads the sidecars of its sealed segments
//! and decodes its active segment, like an engine's open. `status` and
//! unfiltered pages then take their counts and bytes from the logs' indexes
//! (per seq range, nothing decoded) and read only the records they show. A
//! page filtered by key reads the key's postings from the engine's key run
//! files (`keys/`) and decodes only the records after the last run (those
//! the engine holds in its memory run); should a run the data log still
//! needs be missing, it reads every live record instead.
//! `verify` reads everything.

mod verify;

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::SystemTime;

use pauselog_index::{Cursor, KeyRuns, RunOptions, SeqPage};
use pauselog_wal::{Wal, WalOptions};

use crate::codec;
use crate::map::{page_limit, validate_key, List, Lists};
use crate::meta::StoredState;
use crate::open::{read_durable, Durable};
use crate::{views, CatchupError, Error, Limit, MapState, Page, Query, QueuedRecord, Result};

pub use verify::{verify, VerifyReport};

/// What one table map holds, as read from its logs. Non-exhaustive: the
/// engine builds it and may report more.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MapReport {
    /// The map's name.
    pub name: String,
    /// Its durable state (`CatchingUp` shows `replayed: 0`).
    pub state: MapState,
    /// The blocking cap, if any.
    pub blocked: Option<Limit>,
    /// The replay cursor: the first seq still queued.
    pub head: u64,
    /// The last seq appended (0 if none).
    pub tail: u64,
    /// Queued records.
    pub queued_records: u64,
    /// Queued bytes (encoded).
    pub queued_bytes: u64,
    /// Catch-up error records.
    pub error_records: u64,
    /// Catch-up error bytes.
    pub error_bytes: u64,
    /// `queued_at` of the oldest queued record.
    pub oldest_queued_at: Option<SystemTime>,
    /// Segment files of the data log.
    pub data_segments: u64,
}

/// A read-only view of one map.
#[derive(Debug)]
pub struct MapInspector {
    name: String,
    keys_dir: std::path::PathBuf,
    data: Wal,
    durable: Durable,
}

fn open_read_only(dir: &Path, map: &str, log: &str) -> Result<Wal> {
    let path = dir.join("maps").join(map).join(log);
    if !path.is_dir() {
        return Err(Error::InvalidInput(format!("no table map {map:?} in {}", dir.display())));
    }
    Wal::open(&path, WalOptions::default().read_only(true)).map_err(|e| Error::from_wal(map, e))
}

/// Reports on every map in `dir`.
pub fn inspect(dir: &Path) -> Result<Vec<MapReport>> {
    crate::list_map_names(dir)?.iter().map(|name| inspect_map(dir, name)?.report()).collect()
}

/// Opens one map of `dir` read-only: its meta log, then its data log.
pub fn inspect_map(dir: &Path, map: &str) -> Result<MapInspector> {
    crate::map::validate_name(map)?;
    let meta = open_read_only(dir, map, "meta")?;
    let durable = read_durable(map, &meta)?;
    let data = open_read_only(dir, map, "data")?;
    let keys_dir = dir.join("maps").join(map).join("keys");
    Ok(MapInspector { name: map.to_owned(), keys_dir, data, durable })
}

impl MapInspector {
    /// The last seq of the data log (0 if none).
    fn tail(&self) -> u64 {
        self.data.next_seq() - 1
    }

    /// The queue's seqs: head to tail (empty when head is past the tail).
    fn queue_range(&self) -> Option<RangeInclusive<u64>> {
        (self.durable.head <= self.tail()).then(|| self.durable.head..=self.tail())
    }

    /// The seq ranges of the catch-up errors: the error runs, below head.
    fn error_ranges(&self) -> Vec<RangeInclusive<u64>> {
        let below_head = self.durable.head.saturating_sub(1);
        self.durable
            .errors
            .runs()
            .filter(|run| run.lo <= below_head)
            .map(|run| run.lo..=run.hi.min(below_head))
            .collect()
    }

    /// Up to `limit` seqs of live records in `ranges` (ascending,
    /// disjoint), from the data log's index. Seq markers are left out: a
    /// live frame of a marker's size holds one, since every record is
    /// larger (`codec`). The engine releases a marker as soon as it appends
    /// it (or at its next open, after a crash), so one is live only for
    /// that moment; the counts (`Wal::range_records`) include it then.
    fn live_records(&self, ranges: &[RangeInclusive<u64>], limit: usize) -> Vec<u64> {
        let marker_bytes = pauselog_wal::frame_bytes(codec::MARKER_BODY.len());
        let mut seqs = Vec::new();
        for range in ranges {
            let mut from = *range.start();
            while seqs.len() < limit && from <= *range.end() {
                let found = self.data.live_seqs(from..=*range.end(), limit - seqs.len());
                let Some(&last) = found.last() else { break };
                seqs.extend(found.into_iter().filter(|&seq| self.data.record_bytes(seq) != Some(marker_bytes)));
                from = last + 1;
            }
        }
        seqs
    }

    /// The key postings of the data log: the engine's run files, read-only,
    /// plus the records after the last one decoded from the log. A run the
    /// log still needs that is missing (being rebuilt, or deleted behind the
    /// engine's back) means every live record is decoded instead.
    fn key_postings(&self) -> Result<KeyRuns> {
        let options = RunOptions { read_only: true, ..RunOptions::default() };
        let (runs, _) = KeyRuns::open(&self.keys_dir, options).map_err(Error::from_index)?;
        let covered = runs.run_ranges().last().map_or(0, |range| *range.end());
        let complete = runs.gaps(covered).into_iter().all(|gap| self.data.range_records(gap) == 0);
        let (mut keys, from) = if complete { (runs, covered + 1) } else { (KeyRuns::in_memory(), 1) };
        for entry in self.data.reader(from) {
            let entry = entry.map_err(|e| Error::from_wal(&self.name, e))?;
            if codec::is_marker(entry.body()) {
                continue;
            }
            let key =
                codec::decode_key(entry.body()).ok_or_else(|| Error::undecodable(&entry, "its key does not decode"))?;
            keys.insert(key, entry.seq()).map_err(Error::from_index)?;
        }
        Ok(keys)
    }

    /// The map's figures, from the logs' indexes: nothing is decoded but
    /// the oldest queued record.
    pub fn report(&self) -> Result<MapReport> {
        let queue = self.queue_range();
        let queued_records = queue.clone().map_or(0, |range| self.data.range_records(range));
        let state = match self.durable.state {
            StoredState::Running => MapState::Running,
            StoredState::Paused { since_nanos, reason } => {
                MapState::Paused { since: crate::clock::from_nanos(since_nanos), reason, blocked: self.durable.blocked }
            }
            StoredState::CatchingUp => MapState::CatchingUp { replayed: 0, remaining: queued_records },
        };
        let oldest = queue.clone().and_then(|range| self.live_records(&[range], 1).pop());
        let oldest_queued_at = match oldest {
            Some(seq) => views::read_record(&self.data, seq)?.map(|record| record.queued_at),
            None => None,
        };
        let errors = self.error_ranges();
        Ok(MapReport {
            name: self.name.clone(),
            state,
            blocked: self.durable.blocked,
            head: self.durable.head,
            tail: self.tail(),
            queued_records,
            queued_bytes: queue.map_or(0, |range| self.data.range_bytes(range)),
            error_records: errors.iter().map(|range| self.data.range_records(range.clone())).sum(),
            error_bytes: errors.iter().map(|range| self.data.range_bytes(range.clone())).sum(),
            oldest_queued_at,
            data_segments: self.data.stats().segment_count,
        })
    }

    /// A page of queued records (same query shape as `TableMap::queued`).
    /// Filtered by key, it reads every queued record.
    pub fn queued(&self, query: &Query) -> Result<Page<QueuedRecord>> {
        let ranges: Vec<RangeInclusive<u64>> = self.queue_range().into_iter().collect();
        let page = self.page(query, &ranges, List::Queue)?;
        let items = views::read_records(&self.data, &page.seqs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// A page of catch-up errors. Filtered by key, it reads every error record.
    pub fn catchup_errors(&self, query: &Query) -> Result<Page<CatchupError>> {
        let page = self.page(query, &self.error_ranges(), List::Errors)?;
        let runs = views::runs_of(&self.durable.errors, &page.seqs);
        let items = views::read_errors(&self.data, &page.seqs, runs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// One page of the live records in `ranges` (ascending, disjoint), with
    /// the cursors `TableMap`'s pages use. Filtered by key, the page comes
    /// from the key's postings, as the engine's pages do (`list` says which
    /// list).
    fn page(&self, query: &Query, ranges: &[RangeInclusive<u64>], list: List) -> Result<SeqPage> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
            let keys = self.key_postings()?;
            let lists = Lists {
                head: self.durable.head,
                tail: self.tail(),
                error_table: &self.durable.errors,
                keys: &keys,
                data: &self.data,
                queue_records: 0,
                error_records: 0,
            };
            return lists.page(list, Some(key), query.after.as_deref(), limit);
        }
        let after = match &query.after {
            Some(text) => Cursor::decode(text, None).map_err(Error::from_index)?.last_seq(),
            None => 0,
        };
        let from = after.saturating_add(1);
        let clipped: Vec<RangeInclusive<u64>> = ranges
            .iter()
            .filter(|range| *range.end() >= from)
            .map(|range| (*range.start()).max(from)..=*range.end())
            .collect();
        let mut seqs = self.live_records(&clipped, limit + 1);
        let more = seqs.len() > limit;
        seqs.truncate(limit);
        let next = seqs.last().filter(|_| more).map(|&last| Cursor::new(last, None).encode());
        let total = ranges.iter().map(|range| self.data.range_records(range.clone())).sum();
        Ok(SeqPage { seqs, next, total })
    }
}
