//! Read-only inspection of a data directory, also while an engine holds it:
//! no lock is taken, nothing is repaired or written. Used by the CLI's
//! `status`, `queued`, `errors` and `verify`.

use std::path::Path;
use std::time::SystemTime;

use pauselog_index::KeyIndex;
use pauselog_wal::{Wal, WalOptions};

use crate::map::{page_limit, validate_key};
use crate::meta::StoredState;
use crate::open::{read_durable, rebuild_indexes, Durable};
use crate::{views, CatchupError, Error, Limit, MapState, Page, Query, QueuedRecord, Result};

/// What one table map holds, as read from its logs.
#[derive(Debug, Clone, PartialEq)]
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
    data: Wal,
    durable: Durable,
    queue: KeyIndex,
    errors: KeyIndex,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Per map: name, frames checked, bytes checked.
    pub maps: Vec<(String, u64, u64)>,
    /// Every problem found, with file and offset where known.
    pub problems: Vec<String>,
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
    crate::list_map_names(dir)?.iter().map(|name| Ok(inspect_map(dir, name)?.report())).collect()
}

/// Opens one map of `dir` read-only (scans its data log).
pub fn inspect_map(dir: &Path, map: &str) -> Result<MapInspector> {
    crate::map::validate_name(map)?;
    let data = open_read_only(dir, map, "data")?;
    let meta = open_read_only(dir, map, "meta")?;
    let durable = read_durable(map, &meta)?;
    let (queue, errors) = rebuild_indexes(map, &data, &durable)?;
    Ok(MapInspector { name: map.to_owned(), data, durable, queue, errors })
}

impl MapInspector {
    /// The map's figures.
    pub fn report(&self) -> MapReport {
        let tail = self.data.next_seq() - 1;
        let head = self.durable.head;
        let state = match self.durable.state {
            StoredState::Running => MapState::Running,
            StoredState::Paused { since_nanos, reason } => {
                MapState::Paused { since: crate::clock::from_nanos(since_nanos), reason, blocked: self.durable.blocked }
            }
            StoredState::CatchingUp => MapState::CatchingUp { replayed: 0, remaining: self.queue.len() },
        };
        let oldest_queued_at = self
            .queue
            .first_seq()
            .and_then(|seq| views::read_record(&self.data, seq).ok().flatten())
            .map(|record| record.queued_at);
        MapReport {
            name: self.name.clone(),
            state,
            blocked: self.durable.blocked,
            head,
            tail,
            queued_records: self.queue.len(),
            queued_bytes: if head <= tail { self.data.range_bytes(head..=tail) } else { 0 },
            error_records: self.errors.len(),
            error_bytes: self
                .errors
                .seqs_in(0..=u64::MAX, usize::MAX)
                .iter()
                .filter_map(|&s| self.data.record_bytes(s))
                .sum(),
            oldest_queued_at,
            data_segments: self.data.stats().segment_count,
        }
    }

    /// A page of queued records (same query shape as `TableMap::queued`).
    pub fn queued(&self, query: &Query) -> Result<Page<QueuedRecord>> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
        }
        let page = self.queue.page(query.key.as_deref(), query.after.as_deref(), limit).map_err(Error::from_index)?;
        let items = views::read_records(&self.data, &page.seqs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// A page of catch-up errors.
    pub fn catchup_errors(&self, query: &Query) -> Result<Page<CatchupError>> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
        }
        let page = self.errors.page(query.key.as_deref(), query.after.as_deref(), limit).map_err(Error::from_index)?;
        let runs = views::runs_of(&self.durable.errors, &page.seqs);
        let items = views::read_errors(&self.data, &page.seqs, runs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }
}

/// Checks every frame's CRC in every map's logs (released frames included),
/// that each log's byte accounting equals the sum of its live frames, and
/// that the meta log does not point past the data log (R19).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for name in crate::list_map_names(dir)? {
        let (mut frames, mut bytes) = (0u64, 0u64);
        let mut logs = Vec::new();
        for log in ["data", "meta"] {
            match open_read_only(dir, &name, log).and_then(|wal| check_log(&name, log, &wal).map(|c| (wal, c))) {
                Ok((wal, (log_frames, log_bytes, problems))) => {
                    frames += log_frames;
                    bytes += log_bytes;
                    report.problems.extend(problems);
                    logs.push(wal);
                }
                Err(error) => report.problems.push(format!("{name}/{log}: {error}")),
            }
        }
        if let [data, meta] = &logs[..] {
            match read_durable(&name, meta) {
                Ok(durable) if durable.head > data.next_seq() => report.problems.push(format!(
                    "{name}: the meta log says records up to seq {} left the queue, but the data log ends at seq {}: acknowledged records are missing",
                    durable.head - 1,
                    data.next_seq() - 1
                )),
                Ok(_) => {}
                Err(error) => report.problems.push(format!("{name}/meta: {error}")),
            }
        }
        report.maps.push((name, frames, bytes));
    }
    Ok(report)
}

/// CRC-checks every frame of one log and compares its accounting with the
/// live frames; returns frames checked, live bytes read, and the problems.
fn check_log(name: &str, log: &str, wal: &Wal) -> Result<(u64, u64, Vec<String>)> {
    let mut problems = Vec::new();
    let frames = match wal.verify() {
        Ok(frames) => frames,
        Err(error) => {
            problems.push(format!("{name}/{log}: {error}"));
            return Ok((0, 0, problems));
        }
    };
    let (mut live_records, mut live_bytes) = (0u64, 0u64);
    for entry in wal.reader(1) {
        match entry {
            Ok(entry) => {
                live_records += 1;
                live_bytes += entry.frame_bytes();
            }
            Err(error) => {
                problems.push(format!("{name}/{log}: {error}"));
                return Ok((frames, live_bytes, problems));
            }
        }
    }
    let stats = wal.stats();
    if stats.live_bytes != live_bytes || stats.live_records != live_records {
        problems.push(format!(
            "{name}/{log}: accounting says {} records / {} bytes, the live frames add up to {live_records} / {live_bytes}",
            stats.live_records, stats.live_bytes
        ));
    }
    Ok((frames, live_bytes, problems))
}
