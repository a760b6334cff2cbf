//! docs/rules.md R17: an fsync failure is never retried on the same file. The log
//! refuses every further write with `Error::Poisoned` until reopened, and a
//! reopen recovers every acknowledged record ("Can Applications Recover from
//! fsync Failures?", ATC'20).
//!
//! The fault is injected by a `Storage` wrapper around the real file system
//! whose files fail `sync_data` while a switch is on.

mod common;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{body, read_all};
use pauselog_wal::storage::{Mapped, Storage, StorageFile};
use pauselog_wal::{Error, FsStorage, SyncPolicy, Wal, WalOptions};

#[derive(Debug, Clone, Default)]
struct FailingSync {
    fail: Arc<AtomicBool>,
    /// Writes fail too while this is on.
    fail_writes: Arc<AtomicBool>,
}

#[derive(Debug)]
struct FailingFile {
    file: Arc<dyn StorageFile>,
    fail: Arc<AtomicBool>,
    fail_writes: Arc<AtomicBool>,
}

impl FailingFile {
    fn fault(&self) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            Err(io::Error::other("injected fsync failure (EIO)"))
        } else {
            Ok(())
        }
    }
}

impl StorageFile for FailingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure (EIO)"));
        }
        self.file.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.file.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fault()?;
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.fault()?;
        self.file.sync_all()
    }
    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        self.file.map()
    }
    fn map_is_coherent(&self) -> bool {
        self.file.map_is_coherent()
    }
}

impl Storage for FailingSync {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        FsStorage.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        FsStorage.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FailingFile {
            file: FsStorage.open(path, create)?,
            fail: self.fail.clone(),
            fail_writes: self.fail_writes.clone(),
        }))
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FailingFile {
            file: FsStorage.open_read_only(path)?,
            fail: self.fail.clone(),
            fail_writes: self.fail_writes.clone(),
        }))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        FsStorage.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FsStorage.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FsStorage.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path, holder: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        FsStorage.lock_dir(dir, holder)
    }
}

fn assert_poisoned<T: fmt::Debug>(result: Result<T, Error>, what: &str) {
    match result {
        Err(Error::Poisoned { reason, .. }) => assert!(reason.contains("injected"), "{what}: {reason}"),
        other => panic!("{what}: expected Error::Poisoned, got {other:?}"),
    }
}

#[test]
fn fsync_failure_poisons_every_write_and_reopen_recovers_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = FailingSync::default();
    let options = WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(4096);
    let wal = Wal::open_with_storage(dir.path(), options.clone(), Arc::new(storage.clone())).expect("open");
    let mut acknowledged = Vec::new();
    for seq in 1..=50 {
        assert_eq!(wal.append(&body(seq, 120)).expect("append"), seq);
        acknowledged.push((seq, body(seq, 120)));
    }
    wal.release_through(3).expect("release");
    acknowledged.drain(..3);

    storage.fail.store(true, Ordering::SeqCst);
    assert_poisoned(wal.append(&body(51, 120)), "the append whose fsync failed is not acknowledged");
    // The fault is gone, but nothing is retried on this handle: every write refuses.
    storage.fail.store(false, Ordering::SeqCst);
    assert_poisoned(wal.append(b"after"), "append");
    assert_poisoned(wal.append_batch(&[b"a", b"b"]), "append_batch");
    assert_poisoned(wal.append_unsynced(b"x"), "append_unsynced");
    assert_poisoned(wal.sync(), "sync");
    assert_poisoned(wal.sync_through(1), "sync_through of an already durable seq");
    assert_poisoned(wal.rotate(), "rotate");
    assert_poisoned(wal.release_through(10), "release");
    assert_poisoned(wal.close(), "close");

    // Reopen (the lock was freed by close): every acknowledged record is back.
    let wal = Wal::open(dir.path(), options).expect("reopen");
    let recovered = read_all(&wal);
    // The unacknowledged record 51 may or may not have reached the disk.
    let recovered_acknowledged: Vec<_> = recovered.iter().filter(|(s, _)| *s <= 50).cloned().collect();
    common::assert_records(&recovered_acknowledged, &acknowledged, "acknowledged records after reopen");
    let next = wal.append(b"works again").expect("append after reopen");
    assert!(next >= 51);
}

#[test]
fn fsync_failure_during_rotation_poisons() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = FailingSync::default();
    let options = WalOptions::default().sync(SyncPolicy::Never).segment_bytes_max(4096);
    let wal = Wal::open_with_storage(dir.path(), options.clone(), Arc::new(storage.clone())).expect("open");
    wal.append(&body(1, 100)).expect("append");
    wal.sync().expect("sync");
    storage.fail.store(true, Ordering::SeqCst);
    assert_poisoned(wal.rotate(), "rotate (seal fsync fails)");
    storage.fail.store(false, Ordering::SeqCst);
    assert_poisoned(wal.append(b"x"), "append after a failed rotation");
    drop(wal);
    let wal = Wal::open(dir.path(), options).expect("reopen");
    common::assert_records(&read_all(&wal), &[(1, body(1, 100))], "the synced record survives");
}

/// Found by review of the group commit: a failed write (here an explicit
/// flush) poisons the log while a group gathers. Callers sleeping on that
/// group must wake and get the error, not wait for an fsync that will never
/// come.
#[test]
fn a_write_failure_wakes_callers_sleeping_on_a_gathering_group() {
    const WAITER_COUNT: usize = 3;
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = FailingSync::default();
        let options = WalOptions::default().sync(SyncPolicy::Always);
        let wal = Arc::new(Wal::open_with_storage(dir.path(), options, Arc::new(storage.clone())).expect("open"));
        // Groups of 8: the next group waits for 8 records, and only 3 come.
        common::burst(&wal, 8);
        let (done, finished) = std::sync::mpsc::channel();
        for _ in 0..WAITER_COUNT {
            let (wal, done) = (wal.clone(), done.clone());
            std::thread::spawn(move || {
                let result = wal.append_unsynced(b"waiter").and_then(|seq| wal.sync_through(seq));
                done.send(result).expect("report");
            });
        }
        storage.fail_writes.store(true, Ordering::SeqCst);
        let _ = wal.flush();
        for _ in 0..WAITER_COUNT {
            let result = finished
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("round {round}: a caller slept through the poisoning"));
            // Made durable by a group fsync before the fault, or poisoned.
            assert!(matches!(result, Ok(()) | Err(Error::Poisoned { .. })), "round {round}: {result:?}");
        }
    }
}
