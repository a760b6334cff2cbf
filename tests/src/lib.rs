//! Shared helpers for the end-to-end tests: engines on temp dirs, scriptable
//! destinations, records. An API change is fixed here, not in every test.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod faults;
pub mod model;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pauselog::{
    DeliveryError, Destination, Engine, ManualClock, MapConfig, MapState, Op, QueuedRecord, Record, Submitted,
    SyncPolicy, TableMap,
};

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

/// An open flag and its condvar: deliveries wait while it is false.
type Gate = (Mutex<bool>, std::sync::Condvar);

/// Which records a partial gate holds.
type RecordFilter = Arc<dyn Fn(&QueuedRecord) -> bool + Send + Sync>;

/// A destination that records what it is given and can be told to reject
/// keys, be unavailable, or block until released.
#[derive(Default)]
pub struct TestDest {
    delivered: Mutex<Vec<QueuedRecord>>,
    reject_keys: Mutex<HashSet<String>>,
    unavailable: AtomicBool,
    /// Accepted deliveries after which the destination answers Unavailable.
    unavailable_after: AtomicU64,
    calls: AtomicU64,
    gate: Mutex<Option<Arc<Gate>>>,
    /// Only records this accepts wait at the gate (all, when unset).
    gate_filter: Mutex<Option<RecordFilter>>,
    /// The keys of each `deliver_batch` call, in call order.
    batch_keys: Mutex<Vec<Vec<String>>>,
    /// How long each `deliver_batch` call waits first (a round trip).
    round_trip_micros: AtomicU64,
}

impl TestDest {
    /// A destination that accepts everything.
    pub fn new() -> Arc<TestDest> {
        Arc::new(TestDest::default())
    }

    /// Rejects every record of `key` from now on.
    pub fn reject(&self, key: &str) {
        self.reject_keys.lock().unwrap().insert(key.to_owned());
    }

    /// Accepts `key` again.
    pub fn accept(&self, key: &str) {
        self.reject_keys.lock().unwrap().remove(key);
    }

    /// Answers `Unavailable` to everything while `down`.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    /// Accepts `n` more records, then answers `Unavailable` until
    /// `set_unavailable(false)`.
    pub fn unavailable_after(&self, n: u64) {
        self.unavailable_after.store(self.delivered.lock().unwrap().len() as u64 + n + 1, Ordering::SeqCst);
    }

    /// Makes every `deliver_batch` call wait `round_trip` first, as a call
    /// over a network does: the catch-up then opens its lanes (R22).
    pub fn round_trip(&self, round_trip: std::time::Duration) {
        self.round_trip_micros.store(u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Makes deliveries wait until [`TestDest::open_gate`].
    pub fn close_gate(&self) {
        *self.gate.lock().unwrap() = Some(Arc::new((Mutex::new(false), std::sync::Condvar::new())));
    }

    /// Makes deliveries of the records `filter` accepts wait until
    /// [`TestDest::open_gate`]; the others go through.
    pub fn close_gate_for(&self, filter: impl Fn(&QueuedRecord) -> bool + Send + Sync + 'static) {
        *self.gate_filter.lock().unwrap() = Some(Arc::new(filter));
        self.close_gate();
    }

    /// Lets waiting deliveries through.
    pub fn open_gate(&self) {
        self.gate_filter.lock().unwrap().take();
        if let Some(gate) = self.gate.lock().unwrap().take() {
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
        }
    }

    /// Everything accepted so far, in delivery order.
    pub fn delivered(&self) -> Vec<QueuedRecord> {
        self.delivered.lock().unwrap().clone()
    }

    /// Seqs accepted so far, in delivery order (live records carry theirs too, R21).
    pub fn delivered_seqs(&self) -> Vec<u64> {
        self.delivered().iter().map(|r| r.seq).collect()
    }

    /// Payloads accepted so far, in delivery order.
    pub fn delivered_payloads(&self) -> Vec<String> {
        self.delivered().iter().map(|r| String::from_utf8_lossy(&r.payload).into_owned()).collect()
    }

    /// Calls to `deliver` (accepted or not).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The keys of each `deliver_batch` call so far, in call order.
    pub fn batch_keys(&self) -> Vec<Vec<String>> {
        self.batch_keys.lock().unwrap().clone()
    }

    /// Asserts that no `deliver_batch` call so far held two records of one
    /// key (what Strict ordering promises, R15).
    pub fn assert_no_call_repeats_a_key(&self) {
        for keys in self.batch_keys() {
            let distinct: HashSet<&String> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len(), "a deliver_batch call repeated a key: {keys:?}");
        }
    }
}

impl std::fmt::Debug for TestDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDest").field("delivered", &self.delivered.lock().unwrap().len()).finish()
    }
}

impl Destination for TestDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let filter = self.gate_filter.lock().unwrap().clone();
        let gated = filter.is_none_or(|filter| filter(record));
        let gate = self.gate.lock().unwrap().clone().filter(|_| gated);
        if let Some(gate) = gate {
            let mut open = gate.0.lock().unwrap();
            while !*open {
                open = gate.1.wait(open).unwrap();
            }
        }
        // Counted and taken under one lock: with several lanes calling at
        // once, `unavailable_after(n)` still accepts exactly n records.
        let mut delivered = self.delivered.lock().unwrap();
        let limit = self.unavailable_after.load(Ordering::SeqCst);
        if limit > 0 && delivered.len() as u64 + 1 >= limit {
            self.unavailable.store(true, Ordering::SeqCst);
            self.unavailable_after.store(0, Ordering::SeqCst);
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(DeliveryError::Unavailable("destination is down".into()));
        }
        if self.reject_keys.lock().unwrap().contains(&record.key) {
            return Err(DeliveryError::Rejected(format!("validation failed for {}", record.key)));
        }
        delivered.push(record.clone());
        Ok(())
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        let round_trip = self.round_trip_micros.load(Ordering::SeqCst);
        if round_trip > 0 {
            std::thread::sleep(std::time::Duration::from_micros(round_trip));
        }
        self.batch_keys.lock().unwrap().push(batch.iter().map(|r| r.key.clone()).collect());
        batch.iter().map(|record| self.deliver(record)).collect()
    }
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

/// Crash tests: the parent re-executes this test binary, running one child
/// `#[test]` fn that does the scenario named by this variable.
pub const CRASH_CHILD_ENV: &str = "PAUSELOG_CRASH_CHILD";
/// Crash tests: the data directory of the child.
pub const CRASH_DIR_ENV: &str = "PAUSELOG_CRASH_DIR";
/// Crash tests: how many kills per scenario (default 3; raise it for a long run).
pub const CRASH_ROUNDS_ENV: &str = "PAUSELOG_CRASH_ROUNDS";

/// Inside a crash child: its scenario and data directory. `None` in a normal
/// test run, where a child entry fn returns at once.
pub fn crash_child_args() -> Option<(String, std::path::PathBuf)> {
    let scenario = std::env::var(CRASH_CHILD_ENV).ok()?;
    let dir = std::env::var_os(CRASH_DIR_ENV).expect("a crash child gets its directory");
    Some((scenario, dir.into()))
}

/// Kills per crash scenario: `PAUSELOG_CRASH_ROUNDS`, default 3.
pub fn crash_rounds() -> usize {
    std::env::var(CRASH_ROUNDS_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// In a crash child: prints one event line (`@@TAG field ...`) and flushes it,
/// so the parent knows about it before any kill.
pub fn say(tag: &str, fields: &[&dyn std::fmt::Display]) {
    use std::io::Write;
    let mut line = format!("@@{tag}");
    for field in fields {
        line.push(' ');
        line.push_str(&field.to_string());
    }
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).expect("stdout");
    out.flush().expect("stdout flush");
}

/// One `@@TAG field ...` line a crash child printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The tag, e.g. `ACK`.
    pub tag: String,
    /// The fields after it.
    pub fields: Vec<String>,
}

impl Event {
    /// Field `index` parsed as a number.
    pub fn num(&self, index: usize) -> u64 {
        self.fields[index].parse().expect("numeric field")
    }
}

/// Runs the child test fn `child_test` (its path in this test binary, e.g.
/// `crash_loses_no_acknowledged_record::crash_child`) with `scenario` on
/// `dir`, kills it with SIGKILL as soon as `enough(events so far)` holds, and
/// returns every event it printed before it died. Panics (with the child's
/// stderr) if the child exits on its own or prints nothing for [`WAIT`].
pub fn run_and_kill(child_test: &str, scenario: &str, dir: &Path, enough: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let stderr_path = dir.with_extension("child-stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("child stderr file");
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, scenario)
        .env(CRASH_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let parse = |line: &str| {
        let (_, tagged) = line.split_once("@@")?;
        let mut parts = tagged.split_whitespace().map(str::to_owned);
        Some(Event { tag: parts.next()?, fields: parts.collect() })
    };
    let mut events = Vec::new();
    let mut killed = false;
    while !killed {
        match receive.recv_timeout(WAIT) {
            Ok(line) => {
                events.extend(parse(&line));
                if enough(&events) {
                    child.kill().expect("SIGKILL the child");
                    killed = true;
                }
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "crash child {scenario} stopped before the kill ({error:?}); {} events; stderr:\n{stderr}",
                    events.len()
                );
            }
        }
    }
    // What the child printed before it died still counts: it was acknowledged.
    events.extend(receive.iter().filter_map(|line| parse(&line)));
    reader.join().expect("reader thread");
    let status = child.wait().expect("child reaped");
    assert!(!status.success(), "the child was killed, not finished: {status:?}");
    events
}

/// Crash tests: distinct integration keys per writer of [`crash_record`]
/// (keys repeat, so per-key order matters).
pub const CRASH_KEYS_PER_WRITER: u64 = 7;

/// Crash tests: the `n`-th record of writer `writer`, whose key and payload
/// the parent recomputes from the ACK line.
pub fn crash_record(writer: u64, n: u64) -> Record {
    Record::new(format!("W{writer}|K{}", n % CRASH_KEYS_PER_WRITER), Op::Update, format!("w{writer}-n{n}"))
}

/// In a crash child: prints `@@ACK seq key payload` for an acknowledged record.
pub fn say_ack(seq: u64, record: &Record) {
    say("ACK", &[&seq, &record.key, &String::from_utf8_lossy(&record.payload)]);
}

/// In a crash child: submits `record` and prints `@@ACK seq key payload` if
/// it was queued, `@@LIVE key` if it went live.
pub fn submit_and_say(map: &TableMap, record: Record) -> Submitted {
    let submitted = map.submit(record.clone()).expect("submit");
    match submitted {
        Submitted::Queued { seq } => say_ack(seq, &record),
        Submitted::Live => say("LIVE", &[&record.key]),
    }
    submitted
}

/// In a crash child: one thread per writer in `writers` submits
/// `crash_record(writer, n)` for `n` in `0..records_per_writer` with
/// [`submit_and_say`]; returns when all are done (a crash child is killed
/// long before).
pub fn submit_from_threads(map: &TableMap, writers: std::ops::Range<u64>, records_per_writer: u64) {
    std::thread::scope(|scope| {
        for writer in writers {
            let map = map.clone();
            scope.spawn(move || {
                for n in 0..records_per_writer {
                    submit_and_say(&map, crash_record(writer, n));
                }
            });
        }
    });
}

/// In a crash child: pauses `map`, queues `backlog` records of writer 0,
/// resumes with catch-up (printing `@@RESUMED`), and keeps the writers in
/// `writers` submitting while the replay runs.
pub fn catch_up_under_writers(map: &TableMap, backlog: u64, writers: std::ops::Range<u64>, records_per_writer: u64) {
    map.pause().expect("pause");
    for n in 0..backlog {
        submit_and_say(map, crash_record(0, n));
    }
    map.resume(pauselog::ResumeMode::CatchUp).expect("resume");
    say("RESUMED", &[]);
    submit_from_threads(map, writers, records_per_writer);
}

/// The records a crash child acknowledged (`ACK` events), by seq, as (key,
/// payload); panics if a seq was acknowledged twice.
pub fn acked_records(events: &[Event]) -> std::collections::BTreeMap<u64, (String, String)> {
    let mut acked = std::collections::BTreeMap::new();
    for event in events.iter().filter(|e| e.tag == "ACK") {
        let previous = acked.insert(event.num(0), (event.fields[1].clone(), event.fields[2].clone()));
        assert!(previous.is_none(), "seq {} acknowledged twice", event.num(0));
    }
    acked
}

/// A record's key and payload (as lossy UTF-8), to compare with an ACK line.
pub fn key_payload(record: &QueuedRecord) -> (String, String) {
    (record.key.clone(), String::from_utf8_lossy(&record.payload).into_owned())
}

/// Counts the events of one tag as they arrive. [`run_and_kill`] calls its
/// predicate after every line, so a child that prints many lines needs a
/// count that does not start over each time.
#[derive(Debug)]
pub struct Tally {
    tag: &'static str,
    /// Events looked at so far, and how many of them had the tag.
    seen: std::cell::Cell<(usize, usize)>,
}

impl Tally {
    /// Counts events tagged `tag`.
    pub fn of(tag: &'static str) -> Tally {
        Tally { tag, seen: std::cell::Cell::new((0, 0)) }
    }

    /// How many of `events` (the same list, grown since the last call) have the tag.
    pub fn count(&self, events: &[Event]) -> usize {
        let (looked_at, count) = self.seen.get();
        let count = count + events[looked_at..].iter().filter(|e| e.tag == self.tag).count();
        self.seen.set((events.len(), count));
        count
    }
}

/// Crash tests: a destination that accepts every record after a delay and
/// prints `@@DELIVERED seq` (slow, so a replay is still running at the kill).
#[derive(Debug)]
pub struct SlowPrintingDest(pub Duration);

impl Destination for SlowPrintingDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        std::thread::sleep(self.0);
        say("DELIVERED", &[&record.seq]);
        Ok(())
    }
}

/// The name of a child entry fn as the test harness knows it: `path` is
/// `module_path!()` of its module (crate name dropped) plus `::name`.
pub fn child_test_name(module_path: &str, name: &str) -> String {
    let module = module_path.split_once("::").map_or("", |(_, rest)| rest);
    if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
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
