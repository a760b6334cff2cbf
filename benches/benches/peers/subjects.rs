//! The engines under test: pauselog and each peer behind one small trait, so
//! that every workload runs the same loop on all of them. What each peer's
//! durability call really does is written on its type (BENCHMARKS.md
//! repeats it as the fairness notes).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pauselog::{
    DeliveryError, Destination, Engine, MapConfig, MapState, Op, Query, QueuedRecord, Record, ResumeMode, SyncPolicy,
    TableMap,
};
use pauselog_benches::touch;

use crate::workload::Records;

/// The engines, in the order of the table's columns.
pub const ENGINES: [&str; 6] = ["pauselog", "raw-file", "okaywal", "fjall", "queue-file", "sled"];

/// Whether appends wait for stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Each append returns once it is durable (the engine's fsync path).
    EachAppend,
    /// Appends are buffered; [`Subject::sync`] makes them durable.
    AtEnd,
    /// pauselog only: `SyncPolicy::Interval` with an interval longer than
    /// the run, so no append waits for an fsync, but each is written to
    /// the file (a process crash loses none). Others open as [`Self::AtEnd`].
    Interval,
}

/// One engine, opened on a directory.
pub trait Subject: Send + Sync {
    /// Appends records `first..first + count` from one thread.
    fn append(&self, records: &Records, first: u64, count: u64);
    /// Makes everything appended so far durable.
    fn sync(&self);
    /// Reads every record in the engine's order, touching every byte of its
    /// key and payload; returns the number of records.
    fn replay(&self) -> u64;
    /// Reads the first `limit` records of one key; `None` when the engine
    /// has no way to find them short of a full scan.
    fn page(&self, key: &str, limit: usize) -> Option<usize>;
    /// The number of records the engine holds after a reopen.
    fn count(&self) -> u64;
    /// pauselog only: drains the queue by catching up into a destination
    /// that touches every record; returns the records delivered.
    fn drain(&self) -> Option<u64> {
        None
    }
}

/// Counts `items`, touching the bytes `bytes` sums for each, in a way the
/// optimiser cannot skip.
fn count_touching<T>(items: impl Iterator<Item = T>, bytes: impl Fn(&T) -> u64) -> u64 {
    let (mut count, mut sum) = (0u64, 0u64);
    for item in items {
        sum = sum.wrapping_add(bytes(&item));
        count += 1;
    }
    std::hint::black_box(sum);
    count
}

/// Opens `engine` on `dir` (created when missing).
pub fn open(engine: &str, dir: &Path, durability: Durability) -> Box<dyn Subject> {
    std::fs::create_dir_all(dir).expect("engine directory");
    match engine {
        "pauselog" => Box::new(Pauselog::open(dir, durability)),
        "raw-file" => Box::new(RawFile::open(dir, durability)),
        "okaywal" => Box::new(OkayWal::open(dir, durability)),
        "fjall" => Box::new(Fjall::open(dir, durability)),
        "queue-file" => Box::new(QueueFile::open(dir, durability)),
        "sled" => Box::new(Sled::open(dir, durability)),
        other => panic!("unknown engine {other}; expected one of {ENGINES:?}"),
    }
}

/// pauselog: one paused table map; `submit` appends to its data log.
/// `SyncPolicy::Always` returns once the record's group fsync
/// (`fdatasync` of a preallocated segment) is done; `Never` buffers and
/// writes back 1 MiB chunks early, `Engine::sync` is the barrier.
struct Pauselog {
    engine: Engine,
    map: TableMap,
    delivered: Arc<Touching>,
}

/// A destination that touches every byte it is handed, as a real one
/// would read them.
#[derive(Debug, Default)]
struct Touching {
    records: AtomicU64,
    sum: AtomicU64,
}

impl Destination for Touching {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.records.fetch_add(1, Ordering::Relaxed);
        let sum = touch(record.key.as_bytes()).wrapping_add(touch(&record.payload));
        self.sum.fetch_add(sum, Ordering::Relaxed);
        Ok(())
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        let sum =
            batch.iter().fold(0u64, |sum, r| sum.wrapping_add(touch(r.key.as_bytes())).wrapping_add(touch(&r.payload)));
        self.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.sum.fetch_add(sum, Ordering::Relaxed);
        vec![Ok(()); batch.len()]
    }
}

impl Pauselog {
    fn open(dir: &Path, durability: Durability) -> Self {
        let sync = match durability {
            Durability::EachAppend => SyncPolicy::Always,
            Durability::AtEnd => SyncPolicy::Never,
            Durability::Interval => SyncPolicy::Interval(Duration::from_secs(3600)),
        };
        // No admin socket: the bench measures the engine, not an idle server thread.
        let engine =
            Engine::builder(dir).sync(sync).tick_interval(None).admin_socket(false).open().expect("open pauselog");
        // The workload is a little under the default 1 GiB cap; a larger cap
        // keeps the fill from ever meeting it.
        let config = MapConfig { max_queue_bytes: 4 << 30, ..MapConfig::default() };
        let delivered = Arc::new(Touching::default());
        let map = engine.table_map("bench", config, delivered.clone()).expect("open table map");
        if map.state() == MapState::Running {
            map.pause().expect("pause");
        }
        Self { engine, map, delivered }
    }
}

impl Subject for Pauselog {
    fn append(&self, records: &Records, first: u64, count: u64) {
        for i in first..first + count {
            let record = Record::new(records.key(i), Op::Update, records.payload(i).to_vec());
            self.map.submit(record).expect("submit");
        }
    }

    fn sync(&self) {
        self.engine.sync().expect("sync");
    }

    fn replay(&self) -> u64 {
        let mut query = Query::default().limit(1000);
        let (mut count, mut sum) = (0u64, 0u64);
        loop {
            let page = self.map.queued(&query).expect("queued page");
            for record in &page.items {
                sum = sum.wrapping_add(touch(record.key.as_bytes())).wrapping_add(touch(&record.payload));
            }
            count += page.items.len() as u64;
            match page.next {
                Some(next) => query = Query::default().limit(1000).after(next),
                None => break,
            }
        }
        std::hint::black_box(sum);
        count
    }

    fn page(&self, key: &str, limit: usize) -> Option<usize> {
        let page = self.map.queued(&Query::default().key(key).limit(limit)).expect("key page");
        Some(page.items.len())
    }

    fn count(&self) -> u64 {
        self.map.stats().queued_records
    }

    fn drain(&self) -> Option<u64> {
        let before = self.delivered.records.load(Ordering::Relaxed);
        self.map.resume(ResumeMode::CatchUp).expect("resume");
        self.map.wait_for(|s| matches!(s, MapState::Running), Duration::from_secs(600)).expect("drain");
        Some(self.delivered.records.load(Ordering::Relaxed) - before)
    }
}

/// The physical limit: one file of `len u32 | key | payload` frames, no
/// checksum, no index. Bulk appends go through a 1 MiB `BufWriter` and one
/// `fdatasync` at the end; a durable append is `write` + `fdatasync` under
/// a mutex (no group commit, no preallocation).
struct RawFile {
    path: std::path::PathBuf,
    writer: Mutex<BufWriter<File>>,
    durability: Durability,
}

const RAW_LEN_BYTES: usize = 4;

impl RawFile {
    fn open(dir: &Path, durability: Durability) -> Self {
        let path = dir.join("records.raw");
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).expect("open raw file");
        // Reopen: walk the frames to find the end of the last whole one.
        let end = walk_raw(&path, |_, _| {});
        file.set_len(end.1).expect("truncate a torn frame");
        file.seek(SeekFrom::End(0)).expect("seek to the end");
        let capacity = match durability {
            Durability::EachAppend => 0,
            Durability::AtEnd | Durability::Interval => 1 << 20,
        };
        Self { path, writer: Mutex::new(BufWriter::with_capacity(capacity, file)), durability }
    }
}

/// Visits every whole frame of a raw file; returns (frames, end offset).
fn walk_raw(path: &Path, mut visit: impl FnMut(&[u8], &[u8])) -> (u64, u64) {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).expect("open raw file"));
    let (mut frames, mut end) = (0u64, 0u64);
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; RAW_LEN_BYTES];
        if reader.read_exact(&mut len).is_err() {
            break;
        }
        let len = u32::from_le_bytes(len) as usize;
        body.resize(len, 0);
        if len < crate::workload::KEY_BYTES || reader.read_exact(&mut body).is_err() {
            break;
        }
        let (key, payload) = body.split_at(crate::workload::KEY_BYTES);
        visit(key, payload);
        frames += 1;
        end += (RAW_LEN_BYTES + len) as u64;
    }
    (frames, end)
}

impl Subject for RawFile {
    fn append(&self, records: &Records, first: u64, count: u64) {
        let mut writer = self.writer.lock().expect("raw writer lock");
        for i in first..first + count {
            let (key, payload) = (records.key(i), records.payload(i));
            let len = (key.len() + payload.len()) as u32;
            writer.write_all(&len.to_le_bytes()).expect("write");
            writer.write_all(key.as_bytes()).expect("write");
            writer.write_all(payload).expect("write");
            if self.durability == Durability::EachAppend {
                writer.flush().expect("flush");
                writer.get_ref().sync_data().expect("fdatasync");
            }
        }
    }

    fn sync(&self) {
        let mut writer = self.writer.lock().expect("raw writer lock");
        writer.flush().expect("flush");
        writer.get_ref().sync_data().expect("fdatasync");
    }

    fn replay(&self) -> u64 {
        let mut sum = 0u64;
        let (frames, _) =
            walk_raw(&self.path, |key, payload| sum = sum.wrapping_add(touch(key)).wrapping_add(touch(payload)));
        std::hint::black_box(sum);
        frames
    }

    fn page(&self, _key: &str, _limit: usize) -> Option<usize> {
        None
    }

    fn count(&self) -> u64 {
        walk_raw(&self.path, |_, _| {}).0
    }
}

/// okaywal: every `EntryWriter::commit` is durable (it waits for the
/// log's group fsync, `fdatasync`); there is no unsynced commit. Bulk
/// appends write 1,000 records as the chunks of one entry, so they pay one
/// fsync per 1,000 records. The log never checkpoints (a queue keeps its
/// records), so it is one growing file; okaywal reads entries back only
/// while recovering, so a replay is a recovery that reads every chunk.
struct OkayWal {
    dir: std::path::PathBuf,
    wal: Mutex<Option<okaywal::WriteAheadLog>>,
    durability: Durability,
}

/// Records per okaywal entry in bulk appends.
const OKAYWAL_ENTRY_RECORDS: u64 = 1000;

#[derive(Debug)]
struct OkayManager {
    touch_bodies: bool,
    records: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
    buffer: Vec<u8>,
}

impl okaywal::LogManager for OkayManager {
    fn recover(&mut self, entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        let (mut chunks, mut sum) = (0u64, 0u64);
        loop {
            match entry.read_chunk()? {
                okaywal::ReadChunkResult::Chunk(mut chunk) => {
                    // Every chunk is read and CRC-checked, also when only
                    // counting: okaywal 0.3.1's `skip_remaining_bytes`
                    // skips the chunk's CRC twice (once more when the
                    // chunk drops), which misaligns the reader, so a
                    // recovery that skips chunks finds nothing after the
                    // first one.
                    self.buffer.clear();
                    chunk.read_to_end(&mut self.buffer)?;
                    if !chunk.check_crc()? {
                        return Err(std::io::Error::other("okaywal chunk crc"));
                    }
                    if self.touch_bodies {
                        sum = sum.wrapping_add(touch(&self.buffer));
                    }
                    chunks += 1;
                }
                okaywal::ReadChunkResult::EndOfEntry => break,
                // A torn entry is not recovered: its chunks do not count.
                okaywal::ReadChunkResult::AbortedEntry => return Ok(()),
            }
        }
        self.records.fetch_add(chunks, Ordering::Relaxed);
        self.sum.fetch_add(sum, Ordering::Relaxed);
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: okaywal::EntryId,
        _checkpointed_entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

impl OkayWal {
    fn open(dir: &Path, durability: Durability) -> Self {
        let (wal, _) = Self::recover(dir, false);
        Self { dir: dir.to_owned(), wal: Mutex::new(Some(wal)), durability }
    }

    fn recover(dir: &Path, touch_bodies: bool) -> (okaywal::WriteAheadLog, u64) {
        let records = Arc::new(AtomicU64::new(0));
        let manager = OkayManager { touch_bodies, records: records.clone(), sum: Arc::default(), buffer: Vec::new() };
        let wal = okaywal::Configuration::default_for(dir)
            .checkpoint_after_bytes(u64::MAX)
            .open(manager)
            .expect("recover okaywal");
        let count = records.load(Ordering::Relaxed);
        (wal, count)
    }

    fn wal(&self) -> okaywal::WriteAheadLog {
        self.wal.lock().expect("okaywal lock").clone().expect("okaywal open")
    }
}

impl Subject for OkayWal {
    fn append(&self, records: &Records, first: u64, count: u64) {
        let wal = self.wal();
        let per_entry = match self.durability {
            Durability::EachAppend => 1,
            Durability::AtEnd | Durability::Interval => OKAYWAL_ENTRY_RECORDS,
        };
        let mut frame = Vec::with_capacity(crate::workload::RECORD_BYTES as usize);
        let mut i = first;
        while i < first + count {
            let mut entry = wal.begin_entry().expect("begin entry");
            for j in i..(i + per_entry).min(first + count) {
                frame.clear();
                frame.extend_from_slice(records.key(j).as_bytes());
                frame.extend_from_slice(records.payload(j));
                entry.write_chunk(&frame).expect("write chunk");
            }
            entry.commit().expect("commit");
            i += per_entry;
        }
    }

    fn sync(&self) {
        // Every commit is already durable.
    }

    fn replay(&self) -> u64 {
        let mut slot = self.wal.lock().expect("okaywal lock");
        if let Some(wal) = slot.take() {
            wal.shutdown().expect("shutdown okaywal");
        }
        let (wal, count) = Self::recover(&self.dir, true);
        *slot = Some(wal);
        count
    }

    fn page(&self, _key: &str, _limit: usize) -> Option<usize> {
        None
    }

    fn count(&self) -> u64 {
        let mut slot = self.wal.lock().expect("okaywal lock");
        if let Some(wal) = slot.take() {
            wal.shutdown().expect("shutdown okaywal");
        }
        let (wal, count) = Self::recover(&self.dir, false);
        *slot = Some(wal);
        count
    }
}

/// fjall 2 (LSM tree): one keyspace, one partition keyed by
/// `integration key | seq (u64 big-endian)`, so a key's records are one
/// prefix. `persist(PersistMode::SyncData)` is `fdatasync` of the journal;
/// writers that persist at once each issue their own. Without a persist,
/// a write sits in the journal's buffer in the process. Its replay runs in
/// key order, not append order: the price of the key prefix.
struct Fjall {
    keyspace: fjall::Keyspace,
    partition: fjall::PartitionHandle,
    seq: AtomicU64,
    durability: Durability,
}

impl Fjall {
    fn open(dir: &Path, durability: Durability) -> Self {
        let keyspace = fjall::Config::new(dir).open().expect("open fjall");
        let partition =
            keyspace.open_partition("queue", fjall::PartitionCreateOptions::default()).expect("open fjall partition");
        Self { keyspace, partition, seq: AtomicU64::new(0), durability }
    }
}

impl Subject for Fjall {
    fn append(&self, records: &Records, first: u64, count: u64) {
        for i in first..first + count {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let mut key = Vec::with_capacity(crate::workload::KEY_BYTES + 8);
            key.extend_from_slice(records.key(i).as_bytes());
            key.extend_from_slice(&seq.to_be_bytes());
            self.partition.insert(key, records.payload(i)).expect("fjall insert");
            if self.durability == Durability::EachAppend {
                self.keyspace.persist(fjall::PersistMode::SyncData).expect("fjall persist");
            }
        }
    }

    fn sync(&self) {
        self.keyspace.persist(fjall::PersistMode::SyncData).expect("fjall persist");
    }

    fn replay(&self) -> u64 {
        let items = self.partition.iter().map(|item| item.expect("fjall read"));
        count_touching(items, |(key, value)| touch(key).wrapping_add(touch(value)))
    }

    fn page(&self, key: &str, limit: usize) -> Option<usize> {
        let items = self.partition.prefix(key.as_bytes()).take(limit).map(|item| item.expect("fjall read"));
        Some(count_touching(items, |(_, value)| touch(value)) as usize)
    }

    fn count(&self) -> u64 {
        self.partition.len().expect("fjall len") as u64
    }
}

/// queue-file 2 (a ring-buffer FIFO in one file, CRC per element). Bulk
/// appends use its documented fast path (`set_sync_writes(false)` and
/// `set_skip_write_header_on_add(true)`, then `sync_all`): until that sync
/// rewrites the header, the records are not part of the queue. A durable
/// append is `add` with sync writes on (an `fsync` per element); the
/// queue takes `&mut`, so writers share it through a mutex.
struct QueueFile {
    queue: Mutex<queue_file::QueueFile>,
}

impl QueueFile {
    fn open(dir: &Path, durability: Durability) -> Self {
        let mut queue = queue_file::QueueFile::open(dir.join("queue")).expect("open queue-file");
        queue.set_sync_writes(durability == Durability::EachAppend);
        queue.set_skip_write_header_on_add(durability != Durability::EachAppend);
        Self { queue: Mutex::new(queue) }
    }
}

impl Subject for QueueFile {
    fn append(&self, records: &Records, first: u64, count: u64) {
        let mut frame = Vec::with_capacity(crate::workload::RECORD_BYTES as usize);
        let mut queue = self.queue.lock().expect("queue-file lock");
        for i in first..first + count {
            frame.clear();
            frame.extend_from_slice(records.key(i).as_bytes());
            frame.extend_from_slice(records.payload(i));
            queue.add(&frame).expect("queue-file add");
        }
    }

    fn sync(&self) {
        self.queue.lock().expect("queue-file lock").sync_all().expect("queue-file sync");
    }

    fn replay(&self) -> u64 {
        let queue = self.queue.lock().expect("queue-file lock");
        count_touching(queue.iter(), |element| touch(element))
    }

    fn page(&self, _key: &str, _limit: usize) -> Option<usize> {
        None
    }

    fn count(&self) -> u64 {
        self.queue.lock().expect("queue-file lock").size() as u64
    }
}

/// sled 0.34 as a queue with a key tree: tree `queue` maps a big-endian
/// seq to `key | payload`, tree `by_key` maps `key | seq` to nothing. Its
/// `flush()` writes the dirty buffers and calls `sync_file_range`, which
/// does not flush the drive's cache nor the file's metadata: not a full
/// durability barrier, so its durable rows are flattered. Without a flush
/// sled writes back every 500 ms (its default `flush_every_ms`).
struct Sled {
    db: sled::Db,
    queue: sled::Tree,
    by_key: sled::Tree,
    seq: AtomicU64,
    durability: Durability,
}

impl Sled {
    fn open(dir: &Path, durability: Durability) -> Self {
        let db = sled::open(dir).expect("open sled");
        let queue = db.open_tree("queue").expect("sled tree");
        let by_key = db.open_tree("by_key").expect("sled tree");
        Self { db, queue, by_key, seq: AtomicU64::new(0), durability }
    }
}

impl Subject for Sled {
    fn append(&self, records: &Records, first: u64, count: u64) {
        let mut value = Vec::with_capacity(crate::workload::RECORD_BYTES as usize);
        for i in first..first + count {
            let seq = self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            let key = records.key(i).as_bytes();
            value.clear();
            value.extend_from_slice(key);
            value.extend_from_slice(records.payload(i));
            self.queue.insert(seq, value.as_slice()).expect("sled insert");
            self.by_key.insert([key, &seq].concat(), &[]).expect("sled insert");
            if self.durability == Durability::EachAppend {
                self.db.flush().expect("sled flush");
            }
        }
    }

    fn sync(&self) {
        self.db.flush().expect("sled flush");
    }

    fn replay(&self) -> u64 {
        let items = self.queue.iter().map(|item| item.expect("sled read"));
        count_touching(items, |(_, value)| touch(value))
    }

    fn page(&self, key: &str, limit: usize) -> Option<usize> {
        let values = self.by_key.scan_prefix(key.as_bytes()).take(limit).map(|item| {
            let (index_key, _) = item.expect("sled read");
            let seq = &index_key[index_key.len() - 8..];
            self.queue.get(seq).expect("sled read").expect("indexed record")
        });
        Some(count_touching(values, |value| touch(value)) as usize)
    }

    fn count(&self) -> u64 {
        self.queue.len() as u64
    }
}
