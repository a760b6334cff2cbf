//! [`SimStorage`]: a crash-simulating storage that keeps what was written
//! apart from what was synced, for tests that simulate a power loss.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Mapped, Storage, StorageFile};

/// A crash-simulating in-memory storage.
///
/// Every file keeps its written bytes and the bytes last made durable by a
/// sync; directory entries become durable only through [`Storage::sync_dir`].
/// [`SimStorage::crash`] throws away everything not durable, as a power loss
/// would (optionally keeping a torn prefix of the unsynced writes).
#[derive(Debug, Clone, Default)]
pub struct SimStorage {
    inner: Arc<Mutex<SimState>>,
    /// What happened to read views, and on which thread, oldest first (its
    /// own lock: a view may be dropped anywhere, the state's lock held or not).
    view_events: Arc<Mutex<Vec<(ViewEvent, String)>>>,
}

/// Something that happened to a read view of a [`SimStorage`] file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewEvent {
    /// [`Mapped::populate`] was called.
    Populated,
    /// The view was dropped (a real view would be unmapped).
    Unmapped,
}

#[derive(Debug, Default)]
struct SimState {
    /// Visible directory entries.
    entries: HashMap<PathBuf, Arc<SimFile>>,
    /// Entries a crash would leave: path -> file.
    durable_entries: HashMap<PathBuf, Arc<SimFile>>,
    dirs: HashSet<PathBuf>,
    locks: HashSet<PathBuf>,
    generation: u64,
}

#[derive(Debug, Default)]
struct SimFile {
    data: Mutex<SimData>,
}

#[derive(Debug, Default, Clone)]
struct SimData {
    written: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug)]
struct SimHandle {
    file: Arc<SimFile>,
    storage: SimStorage,
    generation: u64,
    writable: bool,
}

#[derive(Debug)]
struct SimMap {
    bytes: Vec<u8>,
    view_events: Arc<Mutex<Vec<(ViewEvent, String)>>>,
}

impl SimMap {
    fn record(&self, event: ViewEvent) {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        self.view_events.lock().unwrap_or_else(|p| p.into_inner()).push((event, thread));
    }
}

impl Mapped for SimMap {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn populate(&self) {
        self.record(ViewEvent::Populated);
    }
}

impl Drop for SimMap {
    fn drop(&mut self) {
        self.record(ViewEvent::Unmapped);
    }
}

#[derive(Debug)]
struct SimLock {
    storage: SimStorage,
    dir: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.storage.state().locks.remove(&self.dir);
    }
}

/// What a simulated crash keeps of the writes that were not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Keep nothing that was not synced.
    DropUnsynced,
    /// Keep the first `n` bytes of each file's unsynced suffix (a torn write).
    KeepUnsyncedPrefix(usize),
}

impl SimStorage {
    /// A new, empty simulated storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many times `event` happened so far to read views (`mmap`s on
    /// real files), by the name of the thread it happened on ("unnamed" for
    /// a thread without one).
    pub fn view_events_by_thread(&self, event: ViewEvent) -> HashMap<String, usize> {
        let events = self.view_events.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = HashMap::new();
        for (_, thread) in events.iter().filter(|(happened, _)| *happened == event) {
            *counts.entry(thread.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Simulates a power loss: every file reverts to its synced bytes (plus a
    /// torn prefix of unsynced writes under [`CrashMode::KeepUnsyncedPrefix`]),
    /// directory entries revert to their last synced state, locks are freed,
    /// and handles opened before the crash fail with an error.
    pub fn crash(&self, mode: CrashMode) {
        let mut state = self.state();
        state.generation += 1;
        state.locks.clear();
        let mut entries = HashMap::new();
        for (path, file) in &state.durable_entries {
            let data = file.data.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut kept = data.synced.clone();
            if let CrashMode::KeepUnsyncedPrefix(extra) = mode {
                if data.written.len() >= kept.len() {
                    let end = kept.len().saturating_add(extra).min(data.written.len());
                    let start = kept.len().min(end);
                    kept.extend_from_slice(&data.written[start..end]);
                }
            }
            let fresh = Arc::new(SimFile { data: Mutex::new(SimData { written: kept.clone(), synced: kept }) });
            entries.insert(path.clone(), fresh);
        }
        state.durable_entries = entries.clone();
        state.entries = entries;
    }

    /// Reads a file's current (written) bytes, for tests that damage files.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        let file = state.entries.get(path)?;
        let data = file.data.lock().unwrap_or_else(|p| p.into_inner());
        Some(data.written.clone())
    }

    /// Replaces a file's written and synced bytes, for tests that damage files.
    pub fn write_file(&self, path: &Path, bytes: Vec<u8>) {
        let state = self.state();
        if let Some(file) = state.entries.get(path) {
            let mut data = file.data.lock().unwrap_or_else(|p| p.into_inner());
            data.written = bytes.clone();
            data.synced = bytes;
        }
    }

    fn check(&self, generation: u64) -> io::Result<()> {
        if self.state().generation == generation {
            Ok(())
        } else {
            Err(io::Error::other("simulated crash: handle is stale"))
        }
    }
}

impl SimHandle {
    fn data(&self) -> MutexGuard<'_, SimData> {
        self.file.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_write(&self) -> io::Result<()> {
        self.storage.check(self.generation)?;
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only handle"))
        }
    }
}

impl StorageFile for SimHandle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.check(self.generation)?;
        let data = self.data();
        let start = (offset as usize).min(data.written.len());
        let end = (start + buf.len()).min(data.written.len());
        buf[..end - start].copy_from_slice(&data.written[start..end]);
        Ok(end - start)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_write()?;
        let mut data = self.data();
        let end = offset as usize + buf.len();
        if data.written.len() < end {
            data.written.resize(end, 0);
        }
        data.written[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        self.storage.check(self.generation)?;
        Ok(self.data().written.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_write()?;
        self.data().written.resize(len as usize, 0);
        Ok(())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.check_write()?;
        let mut data = self.data();
        if (data.written.len() as u64) < len {
            data.written.resize(len as usize, 0);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check_write()?;
        let mut data = self.data();
        data.synced = data.written.clone();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        self.storage.check(self.generation)?;
        let bytes = self.data().written.clone();
        Ok(Arc::new(SimMap { bytes, view_events: self.storage.view_events.clone() }))
    }

    fn map_is_coherent(&self) -> bool {
        false
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state().dirs.insert(dir.to_path_buf());
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.state();
        let mut paths: Vec<PathBuf> = state.entries.keys().filter(|p| p.parent() == Some(dir)).cloned().collect();
        paths.sort();
        Ok(paths)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.state();
        let file = match state.entries.get(path) {
            Some(file) => file.clone(),
            None if create => {
                let file = Arc::new(SimFile::default());
                state.entries.insert(path.to_path_buf(), file.clone());
                file
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display()))),
        };
        let generation = state.generation;
        Ok(Arc::new(SimHandle { file, storage: self.clone(), generation, writable: true }))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let state = self.state();
        let file = state
            .entries
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display())))?;
        let generation = state.generation;
        Ok(Arc::new(SimHandle { file, storage: self.clone(), generation, writable: false }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.state()
            .entries
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display())))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        let file = state
            .entries
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", from.display())))?;
        state.entries.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        let in_dir: Vec<(PathBuf, Arc<SimFile>)> = state
            .entries
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        state.durable_entries.retain(|p, _| p.parent() != Some(dir));
        state.durable_entries.extend(in_dir);
        Ok(())
    }

    fn lock_dir(&self, dir: &Path, holder: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let mut state = self.state();
        if !state.locks.insert(dir.to_path_buf()) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, format!("simulated holder ({holder})")));
        }
        Ok(Box::new(SimLock { storage: self.clone(), dir: dir.to_path_buf() }))
    }
}
