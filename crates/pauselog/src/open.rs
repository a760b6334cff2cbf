//! Opening a table map: replaying its meta log, reconciling the data log
//! with it, and loading (or rebuilding) the key indexes (R4, R19a).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use pauselog_index::KeyIndex;
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

use crate::codec::{self, Commit, MetaEvent, StoredState};
use crate::errors_table::ErrorTable;
use crate::map::{Core, DrainRate, EngineCtx, MapShared};
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
}

impl Durable {
    fn apply(&mut self, event: MetaEvent) {
        match event {
            MetaEvent::Snapshot { state, blocked, head, errors } => {
                self.state = state;
                self.blocked = blocked;
                self.head = head;
                self.errors.clear();
                for run in errors {
                    self.errors.add(run);
                }
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
    }
}

pub(crate) fn open_map(
    ctx: &Arc<EngineCtx>,
    name: &str,
    config: MapConfig,
    destination: Arc<dyn Destination>,
) -> Result<Arc<MapShared>> {
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
    let (queue, errors) = load_indexes(ctx, name, &meta, &data, &durable)?;
    let queue_bytes = if head <= tail { data.range_bytes(head..=tail) } else { 0 };
    // After `release_stale`, the only live records below head are errors.
    let error_bytes = if head > 1 { data.range_bytes(1..=head - 1) } else { 0 };

    let now = ctx.clock.now();
    let window_count = config.rules.len();
    let window_started =
        config.rules.iter().map(|rule| matches!(rule, PauseRule::Window { end, .. } if now >= *end)).collect();
    let core = Core {
        state: durable.state,
        blocked: durable.blocked,
        head,
        tail,
        queue,
        queue_bytes,
        errors,
        error_table: durable.errors,
        error_bytes,
        replayed: 0,
        delivering: false,
        generation: 1,
        consecutive_unavailable: 0,
        last_error: None,
        drain: DrainRate::default(),
        window_started,
        window_ended: vec![false; window_count],
    };
    tracing::info!(map = name, state = ?core.state, queued = core.queue.len(), errors = core.errors.len(), "table map opened");
    let catching_up = core.state == StoredState::CatchingUp;
    let map = Arc::new(MapShared {
        name: name.to_owned(),
        config,
        ctx: ctx.clone(),
        data,
        meta,
        destination: RwLock::new(destination),
        core: Mutex::new(core),
        changed: Condvar::new(),
        workers: Mutex::new(Vec::new()),
        jobs: Mutex::new(Vec::new()),
        closed: AtomicBool::new(false),
        queueing_hint: AtomicBool::new(false),
    });
    {
        let core = map.lock();
        map.compact_meta_if_needed(&core)?;
    }
    if catching_up {
        // R4: a map that was catching up continues once its destination is attached.
        map.spawn_replay(1)?;
    }
    Ok(map)
}

/// Replays the meta log from its last snapshot.
pub(crate) fn read_durable(name: &str, meta: &Wal) -> Result<Durable> {
    let mut durable = Durable { state: StoredState::Running, blocked: None, head: 1, errors: ErrorTable::default() };
    for entry in meta.reader(1) {
        let entry = entry.map_err(|e| Error::from_wal(name, e))?;
        let event = codec::decode_event(entry.body()).ok_or_else(|| Error::Corrupt {
            path: meta.dir().to_path_buf(),
            offset: 0,
            reason: format!("meta event seq {} passed its CRC but does not decode", entry.seq()),
        })?;
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

/// Loads the checkpointed indexes when they match the meta log, replaying
/// only the data appended after them; otherwise rebuilds from the data log.
fn load_indexes(
    ctx: &EngineCtx,
    name: &str,
    meta: &Wal,
    data: &Wal,
    durable: &Durable,
) -> Result<(KeyIndex, KeyIndex)> {
    let meta_last = meta.next_seq() - 1;
    let tail = data.next_seq() - 1;
    let store = &ctx.index_store;
    let queue_saved = store.load(&format!("{name}/queue")).unwrap_or(None);
    let errors_saved = store.load(&format!("{name}/errors")).unwrap_or(None);
    let wal_error = |e| Error::from_wal(name, e);
    let undecodable = |seq: u64| Error::Corrupt {
        path: data.dir().to_path_buf(),
        offset: 0,
        reason: format!("record seq {seq} passed its CRC but its key does not decode"),
    };
    if let (Some((mut queue, queue_checkpoint)), Some((errors, errors_checkpoint))) = (queue_saved, errors_saved) {
        let fresh = queue_checkpoint.tag == meta_last
            && errors_checkpoint.tag == meta_last
            && queue_checkpoint.applied_through <= tail;
        if fresh {
            let from = (queue_checkpoint.applied_through + 1).max(durable.head);
            for entry in data.reader(from) {
                let entry = entry.map_err(wal_error)?;
                let key = codec::decode_key(entry.body()).ok_or_else(|| undecodable(entry.seq()))?;
                queue.insert(key, entry.seq()).map_err(Error::from_index)?;
            }
            tracing::debug!(map = name, "indexes loaded from checkpoint");
            return Ok((queue, errors));
        }
    }
    tracing::info!(map = name, "rebuilding indexes from the data log");
    rebuild_indexes(name, data, durable)
}

/// Scans the data log: records at or after head are queued, earlier ones
/// covered by an error run are catch-up errors.
pub(crate) fn rebuild_indexes(name: &str, data: &Wal, durable: &Durable) -> Result<(KeyIndex, KeyIndex)> {
    let (mut queue, mut errors) = (KeyIndex::new(), KeyIndex::new());
    for entry in data.reader(1) {
        let entry = entry.map_err(|e| Error::from_wal(name, e))?;
        let seq = entry.seq();
        let key = codec::decode_key(entry.body()).ok_or_else(|| Error::Corrupt {
            path: data.dir().to_path_buf(),
            offset: 0,
            reason: format!("record seq {seq} passed its CRC but its key does not decode"),
        })?;
        if seq >= durable.head {
            queue.insert(key, seq).map_err(Error::from_index)?;
        } else if durable.errors.get(seq).is_some() {
            errors.insert(key, seq).map_err(Error::from_index)?;
        }
    }
    Ok((queue, errors))
}
