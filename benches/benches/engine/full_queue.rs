//! The full queue every experiment starts from, and the destination it
//! drains into.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog::{
    DeliveryError, Destination, Engine, Error, KeyOrdering, MapConfig, Op, QueuedRecord, Record, SyncPolicy, TableMap,
};
use rand::{rngs::SmallRng, Rng, SeedableRng};

use crate::{bench_dir, key_count, key_name, open_engine, payload, MAP_NAME};

/// Seed of the queue's key sequence.
const KEY_SEED: u64 = 7;

/// A destination that takes everything and only counts.
#[derive(Debug, Default)]
pub struct Sink {
    pub delivered: AtomicU64,
}

impl Destination for Sink {
    fn deliver(&self, _record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        self.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
        vec![Ok(()); batch.len()]
    }
}

/// A paused map whose queue was filled up to its size cap (so it is blocked),
/// built with `SyncPolicy::Never` and one `Engine::sync()`.
pub struct FullQueue {
    // Field order matters for drop: handle, then engine, then the directory.
    map: Option<TableMap>,
    engine: Option<Engine>,
    pub sink: Arc<Sink>,
    pub config: MapConfig,
    pub record_count: u64,
    pub queued_bytes: u64,
    pub dir: tempfile::TempDir,
}

fn map_config(ordering: KeyOrdering, queue_bytes_max: u64) -> MapConfig {
    MapConfig { key_ordering: ordering, max_queue_bytes: queue_bytes_max, ..MapConfig::default() }
}

/// The keys of the queue, in seq order (seq = position + 1).
pub fn key_sequence() -> impl Iterator<Item = String> {
    let mut rng = SmallRng::seed_from_u64(KEY_SEED);
    let key_count = key_count();
    std::iter::repeat_with(move || key_name(rng.gen_range(0..key_count)))
}

pub fn fill_queue(ordering: KeyOrdering, queue_bytes_max: u64) -> FullQueue {
    let dir = bench_dir("pauselog-engine-bench");
    let engine = open_engine(dir.path(), SyncPolicy::Never);
    let sink = Arc::new(Sink::default());
    let config = map_config(ordering, queue_bytes_max);
    let map = engine.table_map(MAP_NAME, config.clone(), sink.clone()).expect("table map");
    map.pause().expect("pause");
    let payload = payload();
    let mut record_count = 0u64;
    for key in key_sequence() {
        match map.submit(Record::new(key, Op::Update, payload.clone())) {
            Ok(_) => record_count += 1,
            Err(Error::Blocked { .. }) => break,
            Err(error) => panic!("submit while paused: {error}"),
        }
    }
    engine.sync().expect("sync");
    let stats = map.stats();
    assert_eq!(stats.queued_records, record_count);
    FullQueue {
        map: Some(map),
        engine: Some(engine),
        sink,
        config,
        record_count,
        queued_bytes: stats.queued_bytes,
        dir,
    }
}

impl FullQueue {
    pub fn map(&self) -> &TableMap {
        self.map.as_ref().expect("map open")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("maps").join(MAP_NAME).join("data")
    }

    /// Clean close: handle first (it keeps the map's files open), then the engine.
    pub fn close(&mut self) {
        drop(self.map.take());
        if let Some(engine) = self.engine.take() {
            engine.close().expect("close");
        }
    }

    /// `Engine::open` + `table_map` after a clean close; returns its time.
    pub fn reopen(&mut self) -> Duration {
        self.close();
        let start = Instant::now();
        let engine = open_engine(self.dir.path(), SyncPolicy::Never);
        let map = engine.table_map(MAP_NAME, self.config.clone(), self.sink.clone()).expect("table map");
        let elapsed = start.elapsed();
        assert_eq!(map.stats().queued_records, self.record_count, "reopen finds the whole queue");
        self.engine = Some(engine);
        self.map = Some(map);
        elapsed
    }
}

impl Drop for FullQueue {
    fn drop(&mut self) {
        self.close();
    }
}
