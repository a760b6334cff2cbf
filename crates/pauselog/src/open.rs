//! Opening a table map: replaying its meta log, reconciling the data log
//! with it, and loading (or rebuilding) the key indexes (R4, R19a, R21).

use std::sync::Arc;

use std::path::Path;

use pauselog_index::{KeyRuns, RunOptions};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

use crate::codec;
use crate::errors_table::ErrorTable;
use crate::map::{validate_config, Core, CoreParts, EngineCtx, MapShared, SeqState};
use crate::meta::{self, Commit, MetaEvent, StoredState, WindowMark};
use crate::{Destination, Error, Limit, MapConfig, PauseRule, Result};

/// Meta log segment size: small, so compaction frees space early.
const META_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// The durable half of a map's state, as the meta log rebuilds it.
#[derive(Debug)]
pub(crate) struct Durable {
    pub state: StoredState,
    pub blocked: Option<Limit>,
    pub head: u64,
    pub errors: ErrorTable,
    /// Every seq the map may have handed out is at or below this (R21).
    pub seq_reserved: u64,
    /// Every window mark recorded, by window.
    pub windows: Vec<WindowMark>,
}

impl Durable {
    fn apply(&mut self, event: MetaEvent) {
        match event {
            MetaEvent::Snapshot(snapshot) => {
                self.state = snapshot.state;
                self.blocked = snapshot.blocked;
                self.head = snapshot.head;
                self.errors.clear();
                for run in snapshot.errors {
                    self.errors.add(run);
                }
                if let Some(seq) = snapshot.seq_reserved {
                    self.seq_reserved = seq;
                }
                self.windows.clear();
                self.apply_windows(snapshot.windows);
            }
            MetaEvent::Commit(commit) => self.apply_commit(commit),
        }
    }

    fn apply_commit(&mut self, commit: Commit) {
        if let Some(state) = commit.state {
            self.state = state;
        }
        if let Some(blocked) = commit.blocked {
            self.blocked = blocked;
        }
        if let Some(head) = commit.head {
            self.head = self.head.max(head);
        }
        for run in commit.add_errors {
            self.errors.add(run);
        }
        for (lo, hi) in commit.remove_errors {
            self.errors.remove(lo, hi);
        }
        for run in commit.update_errors {
            self.errors.add(run);
        }
        if let Some(seq) = commit.seq_reserved {
            self.seq_reserved = seq;
        }
        self.apply_windows(commit.windows);
    }

    fn apply_windows(&mut self, marks: Vec<WindowMark>) {
        for mark in marks {
            let same = |m: &WindowMark| m.start_nanos == mark.start_nanos && m.end_nanos == mark.end_nanos;
            match self.windows.iter_mut().find(|m| same(m)) {
                Some(known) => *known = mark,
                None => self.windows.push(mark),
            }
        }
    }

    /// The marks of the configured windows, in the config's order (a window
    /// never seen before starts unmarked).
    fn marks_for(&self, config: &MapConfig) -> Vec<WindowMark> {
        config
            .rules
            .iter()
            .filter_map(|rule| match rule {
                PauseRule::Window { start, end, .. } => Some(meta::window_mark(*start, *end, false, false)),
                PauseRule::DestinationUnavailable { .. } => None,
            })
            .map(|fresh| {
                let same = |m: &&WindowMark| m.start_nanos == fresh.start_nanos && m.end_nanos == fresh.end_nanos;
                self.windows.iter().find(same).copied().unwrap_or(fresh)
            })
            .collect()
    }
}

pub(crate) fn open_map(
    ctx: &Arc<EngineCtx>,
    name: &str,
    config: MapConfig,
    destination: Arc<dyn Destination>,
) -> Result<Arc<MapShared>> {
    validate_config(name, &config)?;
    let dir = ctx.dir.join("maps").join(name);
    let wal_error = |e| Error::from_wal(name, e);
    let data_options = WalOptions::default().sync(ctx.sync).segment_bytes_max(ctx.segment_bytes_max);
    let data = Wal::open_with_storage(&dir.join("data"), data_options, ctx.storage.clone()).map_err(wal_error)?;
    // Meta appends are synced explicitly by `MapShared::commit`.
    let meta_options = WalOptions::default().sync(SyncPolicy::Never).segment_bytes_max(META_SEGMENT_BYTES);
    let meta = Wal::open_with_storage(&dir.join("meta"), meta_options, ctx.storage.clone()).map_err(wal_error)?;

    let durable = read_durable(name, &meta)?;
    if durable.head > data.next_seq() {
        // The meta log is ahead of the data log (records the replay passed
        // were lost, e.g. to a power loss under SyncPolicy::Never): never
        // hand their seqs to new records.
        tracing::warn!(map = name, head = durable.head, data_next = data.next_seq(), "data log behind the replay head");
        data.skip_to(durable.head).map_err(wal_error)?;
    }
    let tail = data.next_seq() - 1;
    let head = durable.head;
    release_stale(&data, &durable).map_err(wal_error)?;
    let keys = load_keys(name, &dir.join("keys"), &data)?;
    // Counted after the keys: loading them releases stray seq markers.
    let (queue_records, queue_bytes) =
        if head <= tail { (data.range_records(head..=tail), data.range_bytes(head..=tail)) } else { (0, 0) };
    // After `release_stale`, the only live records below head are errors.
    let (error_records, error_bytes) =
        if head > 1 { (data.range_records(1..=head - 1), data.range_bytes(1..=head - 1)) } else { (0, 0) };
    let seqs =
        SeqState { live_next: (durable.seq_reserved + 1).max(data.next_seq()), reserved_through: durable.seq_reserved };
    let core = Core::new(CoreParts {
        state: durable.state,
        blocked: durable.blocked,
        head,
        tail,
        keys,
        queue_records,
        queue_bytes,
        error_table: durable.errors.clone(),
        error_records,
        error_bytes,
        windows: durable.marks_for(&config),
        seqs,
    });
    tracing::info!(map = name, state = ?core.state, queued = queue_records, errors = error_records, "table map opened");
    let map = Arc::new(MapShared::new(name, config, ctx, data, meta, destination, core));
    {
        let mut core = map.lock()?;
        map.compact_meta_if_needed(&core)?;
        if core.state == StoredState::CatchingUp {
            // R4: a map that was catching up continues once its destination is attached.
            map.spawn_replay(&mut core)?;
        }
    }
    Ok(map)
}

/// Replays the meta log from its last snapshot.
pub(crate) fn read_durable(name: &str, meta: &Wal) -> Result<Durable> {
    let mut durable = Durable {
        state: StoredState::Running,
        blocked: None,
        head: 1,
        errors: ErrorTable::default(),
        seq_reserved: 0,
        windows: Vec::new(),
    };
    for entry in meta.reader(1) {
        let entry = entry.map_err(|e| Error::from_wal(name, e))?;
        let event = meta::decode_event(entry.body())
            .map_err(|reason| Error::undecodable(&entry, &format!("does not decode as a meta event: {reason}")))?;
        durable.apply(event);
    }
    Ok(durable)
}

/// Releases data records below head that are not catch-up errors: their
/// release may not have reached the data log's release log before a crash.
fn release_stale(data: &Wal, durable: &Durable) -> pauselog_wal::Result<()> {
    if durable.head <= 1 {
        return Ok(());
    }
    let below_head = durable.head - 1;
    let mut next = 1u64;
    for run in durable.errors.runs() {
        if run.lo > next {
            data.release(next..=(run.lo - 1).min(below_head))?;
        }
        next = next.max(run.hi + 1);
    }
    if next <= below_head {
        data.release(next..=below_head)?;
    }
    Ok(())
}

/// Opens the map's key runs (R19a: derived data): ranges of the data log
/// whose run file is missing or damaged are rebuilt from the log, and the
/// records after the last run go into the memory run. Seq markers found
/// live (their release lost to a crash) are released.
fn load_keys(name: &str, dir: &Path, data: &Wal) -> Result<KeyRuns> {
    let options = RunOptions::default();
    let (mut keys, report) = KeyRuns::open(dir, options).map_err(Error::from_index)?;
    let covered = keys.run_ranges().last().map_or(0, |range| *range.end());
    let mut markers = Vec::new();
    for gap in keys.gaps(covered) {
        if data.range_records(gap.clone()) == 0 {
            continue; // its run was deleted: nothing in it is live
        }
        tracing::warn!(
            map = name,
            from = gap.start(),
            through = gap.end(),
            "key index run missing: rebuilding it from the data log"
        );
        rebuild_gap(name, data, gap, &mut keys, options.run_records_max, &mut markers)?;
    }
    let mut tail_records = 0u64;
    for entry in data.reader(covered + 1) {
        let entry = entry.map_err(|e| Error::from_wal(name, e))?;
        if codec::is_marker(entry.body()) {
            markers.push(entry.seq());
            continue;
        }
        keys.insert(record_key(&entry)?, entry.seq()).map_err(Error::from_index)?;
        tail_records += 1;
    }
    for seq in markers {
        data.release(seq..=seq).map_err(|e| Error::from_wal(name, e))?;
    }
    tracing::debug!(
        map = name,
        runs = report.runs_loaded,
        damaged = report.damaged.len(),
        tail_records,
        "key runs loaded"
    );
    Ok(keys)
}

/// Writes run files for the live records of `gap`, `run_records_max` at a
/// time.
fn rebuild_gap(
    name: &str,
    data: &Wal,
    gap: std::ops::RangeInclusive<u64>,
    keys: &mut KeyRuns,
    run_records_max: usize,
    markers: &mut Vec<u64>,
) -> Result<()> {
    let (mut lo, mut chunk) = (*gap.start(), Vec::new());
    for entry in data.reader(*gap.start()) {
        let entry = entry.map_err(|e| Error::from_wal(name, e))?;
        if entry.seq() > *gap.end() {
            break;
        }
        if codec::is_marker(entry.body()) {
            markers.push(entry.seq());
            continue;
        }
        chunk.push((record_key(&entry)?.to_owned(), entry.seq()));
        if chunk.len() >= run_records_max {
            let hi = entry.seq();
            keys.insert_run(lo, hi, &chunk).map_err(Error::from_index)?;
            (lo, chunk) = (hi + 1, Vec::new());
        }
    }
    if !chunk.is_empty() {
        keys.insert_run(lo, *gap.end(), &chunk).map_err(Error::from_index)?;
    }
    Ok(())
}

fn record_key(entry: &pauselog_wal::Entry) -> Result<&str> {
    codec::decode_key(entry.body()).ok_or_else(|| Error::undecodable(entry, "its key does not decode"))
}
