//! The one seam for file I/O: [`Storage`] and [`StorageFile`].
//!
//! [`FsStorage`] is the real file system (positioned I/O, `fdatasync`,
//! `fallocate`, memmap2 views). [`SimStorage`] keeps what was *written* apart
//! from what was *synced*, so a test can [`SimStorage::crash`] at any point and
//! reopen from what a power loss would have left.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A read-only view of a file's bytes (an mmap for the real file system).
pub trait Mapped: Send + Sync + fmt::Debug {
    /// The bytes of the view.
    fn bytes(&self) -> &[u8];

    /// Maps every page of the view now, so that reading it later takes no
    /// page faults (Linux `MADV_POPULATE_READ`; pages not in the page cache
    /// are read in). A hint: where it is not supported, or fails, nothing
    /// happens. Default: nothing.
    fn populate(&self) {}
}

/// A file opened through a [`Storage`].
// A file's length is a size, not a collection: `is_empty` would mean nothing here.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space so the file is at least `len` bytes long and reads back
    /// zeros past its data (fallocate where available).
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Starts writing `len` bytes at `offset` back to the device without
    /// waiting (a hint; durability still needs [`StorageFile::sync_data`]).
    /// Default: does nothing.
    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes data and metadata (such as the length) durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// A read-only view of the file's first `len()` bytes.
    ///
    /// When [`StorageFile::map_is_coherent`] is true the view also shows bytes
    /// written after it was taken (a shared mmap); otherwise it is a snapshot.
    fn map(&self) -> io::Result<Arc<dyn Mapped>>;
    /// Whether views from [`StorageFile::map`] see later writes.
    fn map_is_coherent(&self) -> bool;
}

/// Directory-level operations, and the factory for [`StorageFile`]s.
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The regular files directly inside `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    /// Opens `path` for reading and writing, creating it if `create`.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens `path` read-only.
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, removes, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `dir`, writing `holder` into its lock file.
    /// On contention returns `Err` of kind `WouldBlock` whose message is the
    /// current holder's description.
    fn lock_dir(&self, dir: &Path, holder: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

#[derive(Debug)]
struct FsFile {
    file: File,
}

#[derive(Debug)]
struct FsMap(memmap2::Mmap);

impl Mapped for FsMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn populate(&self) {
        // Errors mean an older kernel (EINVAL) or pages past the file's end
        // (EFAULT, where a read would fault): the read then faults as usual.
        #[cfg(target_os = "linux")]
        let _ = self.0.advise(memmap2::Advice::PopulateRead);
    }
}

#[derive(Debug)]
struct EmptyMap;

impl Mapped for EmptyMap {
    fn bytes(&self) -> &[u8] {
        &[]
    }
}

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut read_bytes = 0;
        while read_bytes < buf.len() {
            match self.file.read_at(&mut buf[read_bytes..], offset + read_bytes as u64) {
                Ok(0) => break,
                Ok(n) => read_bytes += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(read_bytes)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on an open descriptor owned by `self`.
        let result = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if self.len()? >= len {
            return Ok(());
        }
        allocate_file(&self.file, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        if self.len()? == 0 {
            return Ok(Arc::new(EmptyMap));
        }
        // SAFETY: reading a mapping past its file's current end is a SIGBUS,
        // and another process may change the file: an engine writes the
        // directory that read-only opens inspect. The log reads a view only
        // below the end of the frames it found in the file (decoded, loaded
        // from a sidecar, or appended by itself), and no process shortens a
        // segment below a frame in it: sealing cuts only the preallocated
        // zeros past the last frame; recovery cuts a torn tail at its first
        // undecodable frame, which every reader's own decoding stops at
        // too, and does so before its own process has a view; a sealed
        // segment is never shortened, only deleted, and a deleted file stays
        // mapped until its views are dropped. The one region that does
        // shrink, the active segment's zero tail, a read-only open reads
        // with `read_at`, never through a view (`recovery::load_segment`).
        // And the bytes read through a view are frames, which are written
        // once and never rewritten, so nothing changes them while a view
        // reads them.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Arc::new(FsMap(map)))
    }

    fn map_is_coherent(&self) -> bool {
        true
    }
}

#[cfg(target_os = "linux")]
fn allocate_file(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // fallocate reserves blocks so later writes inside the file need no size
    // or block-allocation metadata in the journal: cheaper fdatasync.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(len),
        _ => Err(error),
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate_file(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                paths.push(entry.path());
            }
        }
        paths.sort();
        Ok(paths)
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)?;
        Ok(Arc::new(FsFile { file }))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(FsFile { file: File::open(path)? }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock_dir(&self, dir: &Path, holder: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let held_by = fs::read_to_string(&path).unwrap_or_default();
                let held_by =
                    if held_by.trim().is_empty() { "another process".to_owned() } else { held_by.trim().to_owned() };
                return Err(io::Error::new(io::ErrorKind::WouldBlock, held_by));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.write_all_at(holder.as_bytes(), 0)?;
        Ok(Box::new(file))
    }
}

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
