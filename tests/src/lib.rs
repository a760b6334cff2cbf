//! Shared helpers for the end-to-end tests: engines on temp dirs, scriptable
//! destinations, records. An API change is fixed here, not in every test.
//! The crash-child helpers (`crash.rs`) and [`TestDest`] (`dest.rs`) have
//! files of their own and are re-exported here.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

mod crash;
mod dest;
pub mod faults;
pub mod model;

pub use crash::{
    acked_records, catch_up_under_writers, child_test_name, crash_child_args, crash_record, crash_rounds, key_payload,
    run_and_kill, say, say_ack, submit_and_say, submit_from_threads, wait_for_the_kill, Event, SlowPrintingDest, Tally,
    CRASH_CHILD_ENV, CRASH_DIR_ENV, CRASH_KEYS_PER_WRITER, CRASH_ROUNDS_ENV,
};
pub use dest::TestDest;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pauselog::{Engine, ManualClock, MapConfig, MapState, Op, QueuedRecord, Record, SyncPolicy, TableMap};

/// A generous real-time bound for waits on background work.
pub const WAIT: Duration = Duration::from_secs(30);

/// The start of every test clock: 2026-01-01T00:00:00Z.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// A manual clock at [`epoch`].
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(epoch()))
}

/// An engine on `dir` with a manual clock, no background ticker, and `sync`.
pub fn engine_with(dir: &Path, clock: &Arc<ManualClock>, sync: SyncPolicy) -> Engine {
    Engine::builder(dir).sync(sync).clock(clock.clone()).tick_interval(None).open().expect("engine opens")
}

/// [`engine_with`] under `SyncPolicy::Always`.
pub fn engine(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    engine_with(dir, clock, SyncPolicy::Always)
}

/// A record with key `key` and a payload naming `n`.
pub fn rec(key: &str, n: u64) -> Record {
    Record::new(key, Op::Update, format!("payload-{n}").into_bytes())
}

/// Asserts that every key's records appear in `records` in strictly
/// increasing seq order (R18: per key; with several lanes the keys
/// interleave freely).
pub fn assert_per_key_order(records: &[QueuedRecord], context: &str) {
    let mut last: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for record in records {
        if let Some(previous) = last.insert(record.key.as_str(), record.seq) {
            assert!(previous < record.seq, "{context}: key {} got seq {} after seq {previous}", record.key, record.seq);
        }
    }
}

/// `seqs`, sorted.
pub fn sorted(mut seqs: Vec<u64>) -> Vec<u64> {
    seqs.sort_unstable();
    seqs
}

/// Opens map `name` with `config` on `engine`, delivering to `dest`.
pub fn open_map(engine: &Engine, name: &str, config: MapConfig, dest: &Arc<TestDest>) -> TableMap {
    engine.table_map(name, config, dest.clone()).expect("table map opens")
}

/// Waits until the map is Running.
pub fn wait_running(map: &TableMap) {
    if let Err(error) = map.wait_for(|s| matches!(s, MapState::Running), WAIT) {
        panic!("map reaches Running: {error}; {:#?}", map.stats());
    }
}

/// True if the state is Paused.
pub fn is_paused(state: &MapState) -> bool {
    matches!(state, MapState::Paused { .. })
}

/// Every queued record of `map` (optionally of one key), following the
/// page cursors from the first page to the last.
pub fn all_queued(map: &TableMap, key: Option<&str>) -> Vec<QueuedRecord> {
    all_pages(key, |query| map.queued(query).expect("queued page"))
}

/// Every catch-up error of `map` (optionally of one key), page by page.
pub fn all_errors(map: &TableMap, key: Option<&str>) -> Vec<pauselog::CatchupError> {
    all_pages(key, |query| map.catchup_errors(query).expect("catch-up errors page"))
}

/// Follows page cursors of one listing from the first page to the last.
fn all_pages<T>(key: Option<&str>, mut page_of: impl FnMut(&pauselog::Query) -> pauselog::Page<T>) -> Vec<T> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = pauselog::Query::default().limit(pauselog::PAGE_LIMIT_MAX);
        if let Some(key) = key {
            query = query.key(key);
        }
        if let Some(cursor) = after.take() {
            query = query.after(cursor);
        }
        let page = page_of(&query);
        items.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return items,
        }
    }
}

/// The real file system with a switch that makes every later `fsync` of
/// the map logs fail, as a dying disk would (R17).
#[derive(Debug, Default)]
pub struct FaultyStorage {
    fail_syncs: Arc<AtomicBool>,
}

impl FaultyStorage {
    /// A storage whose syncs succeed until [`FaultyStorage::fail_syncs`].
    pub fn new() -> Arc<FaultyStorage> {
        Arc::new(FaultyStorage::default())
    }

    /// From now on every `sync_data`/`sync_all` fails with EIO.
    pub fn fail_syncs(&self) {
        self.fail_syncs.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn pauselog::StorageFile>,
    fail_syncs: Arc<AtomicBool>,
}

impl FaultyFile {
    fn check(&self) -> std::io::Result<()> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(5)); // EIO
        }
        Ok(())
    }
}

impl pauselog::StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> std::io::Result<()> {
        self.inner.allocate(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_all()
    }
    fn map(&self) -> std::io::Result<Arc<dyn pauselog::Mapped>> {
        self.inner.map()
    }
    fn map_is_coherent(&self) -> bool {
        self.inner.map_is_coherent()
    }
}

impl pauselog::Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        pauselog::FsStorage.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        pauselog::FsStorage.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn pauselog::StorageFile>> {
        let inner = pauselog::FsStorage.open(path, create)?;
        Ok(Arc::new(FaultyFile { inner, fail_syncs: self.fail_syncs.clone() }))
    }
    fn open_read_only(&self, path: &Path) -> std::io::Result<Arc<dyn pauselog::StorageFile>> {
        pauselog::FsStorage.open_read_only(path)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        pauselog::FsStorage.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        pauselog::FsStorage.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        pauselog::FsStorage.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path, holder: &str) -> std::io::Result<Box<dyn std::fmt::Debug + Send + Sync>> {
        pauselog::FsStorage.lock_dir(dir, holder)
    }
}

/// An engine on a temp dir with one open map `m`: what most tests start from.
/// Fields drop in order: the map handle, then the engine, then the directory.
#[derive(Debug)]
pub struct Fixture {
    /// The map (`m` unless named).
    pub map: TableMap,
    /// The engine (manual clock, no ticker, `SyncPolicy::Always`).
    pub engine: Engine,
    /// The map's destination.
    pub dest: Arc<TestDest>,
    /// The engine's clock, at [`epoch`].
    pub clock: Arc<ManualClock>,
    /// The data directory.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A fixture whose map `m` has `config`.
    pub fn new(config: MapConfig) -> Fixture {
        Fixture::named("m", config)
    }

    /// A fixture whose map is called `name` and has `config`.
    pub fn named(name: &str, config: MapConfig) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = clock();
        let engine = engine(dir.path(), &clock);
        let dest = TestDest::new();
        let map = open_map(&engine, name, config, &dest);
        Fixture { map, engine, dest, clock, dir }
    }

    /// Pauses the map and queues `count` records, the n-th (from 1) keyed by `key(n)`.
    pub fn queue(&self, count: u64, key: impl Fn(u64) -> String) {
        self.map.pause().expect("pause");
        for n in 1..=count {
            self.map.submit(rec(&key(n), n)).expect("queued");
        }
    }

    /// Resumes with catch-up and returns once the replay has delivered
    /// `delivered` records and stalled on the destination, now unavailable:
    /// the catch-up is in the middle of the queue.
    pub fn stall_catch_up_after(&self, delivered: u64) {
        self.dest.unavailable_after(delivered);
        self.map.resume(pauselog::ResumeMode::CatchUp).expect("resume");
        while self.map.stats().last_error.is_none() {
            std::thread::yield_now();
        }
    }
}
