//! A [`Storage`] wrapper that counts the log's operations by kind and can
//! inject a fault at the N-th one: a simulated power loss (crash-point
//! enumeration) or an I/O error, once or from then on (error sweep).
//!
//! Counted are the operations that change or persist something: file
//! writes, length changes, allocations, syncs, creations, removals, renames
//! and directory syncs. Reads, maps and listings are not crash points (a
//! crash during a read is the same as one before the next write), so the
//! background threads that only read do not make the numbering depend on
//! scheduling.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use pauselog_wal::storage::{CrashMode, Mapped, SimStorage, Storage, StorageFile};

/// The kinds of counted operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Write,
    SetLen,
    Allocate,
    SyncData,
    SyncAll,
    Create,
    Remove,
    Rename,
    SyncDir,
}

/// What happens at the chosen operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: only count.
    None,
    /// A power loss right before operation `at` (1-based) runs: the
    /// simulated storage keeps what `mode` keeps, and every later operation
    /// of this "process" fails.
    Crash { at: u64, mode: CrashMode },
    /// Operation `at` fails with `errno` (`persistent`: so does every later
    /// counted operation).
    Fail { at: u64, errno: i32, persistent: bool },
}

struct FaultState {
    fault: Fault,
    ops: u64,
    counts: BTreeMap<OpKind, u64>,
    /// Counted operations per file name (the log directory's entries).
    file_counts: BTreeMap<(PathBuf, OpKind), u64>,
    /// The simulated power loss happened: nothing runs any more.
    dead: bool,
    /// Operations that failed by injection.
    injected: u64,
    /// Files mapped, in order.
    mapped: Vec<PathBuf>,
    /// Files removed, in order, with the name of the thread that removed each.
    removed: Vec<(PathBuf, String)>,
    /// Runs once, right after the next listing (to change the directory
    /// between a reader's listing and its opens).
    after_list: Option<DirChange>,
}

/// A change made to a directory (see [`FaultyStorage::after_next_list`]).
type DirChange = Box<dyn FnOnce(&Path) + Send>;

/// See the module docs. Cheap to clone; clones share the counters.
#[derive(Clone)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    sim: Option<SimStorage>,
    state: Arc<Mutex<FaultState>>,
}

impl fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStorage").field("ops", &self.ops()).finish()
    }
}

impl FaultyStorage {
    /// Counts the operations on `inner` and injects nothing yet.
    pub fn over(inner: Arc<dyn Storage>) -> Self {
        FaultyStorage {
            inner,
            sim: None,
            state: Arc::new(Mutex::new(FaultState {
                fault: Fault::None,
                ops: 0,
                counts: BTreeMap::new(),
                file_counts: BTreeMap::new(),
                dead: false,
                injected: 0,
                mapped: Vec::new(),
                removed: Vec::new(),
                after_list: None,
            })),
        }
    }

    /// Over a simulated storage, which [`Fault::Crash`] needs.
    pub fn over_sim(sim: &SimStorage) -> Self {
        FaultyStorage { sim: Some(sim.clone()), ..Self::over(Arc::new(sim.clone())) }
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms `fault`, numbered from the operations counted so far (so `at: 1`
    /// is the next one).
    pub fn arm(&self, fault: Fault) {
        let mut state = self.state();
        state.fault = match fault {
            Fault::None => Fault::None,
            Fault::Crash { at, mode } => Fault::Crash { at: state.ops + at, mode },
            Fault::Fail { at, errno, persistent } => Fault::Fail { at: state.ops + at, errno, persistent },
        };
    }

    /// Disarms any fault (a dead process stays dead).
    pub fn disarm(&self) {
        self.state().fault = Fault::None;
    }

    /// Counted operations so far.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Counted operations of one kind so far.
    pub fn count(&self, kind: OpKind) -> u64 {
        self.state().counts.get(&kind).copied().unwrap_or(0)
    }

    /// Counted operations of one kind on files whose name ends with `suffix`.
    pub fn count_on(&self, suffix: &str, kind: OpKind) -> u64 {
        let state = self.state();
        state
            .file_counts
            .iter()
            .filter(|((path, op), _)| *op == kind && path.to_string_lossy().ends_with(suffix))
            .map(|(_, count)| count)
            .sum()
    }

    /// Every file removed so far, in order, with the name of the thread
    /// that removed it.
    pub fn removed(&self) -> Vec<(PathBuf, String)> {
        self.state().removed.clone()
    }

    /// Every file mapped so far, in order.
    pub fn mapped(&self) -> Vec<PathBuf> {
        self.state().mapped.clone()
    }

    /// Runs `change` on the listed directory right after the next listing.
    pub fn after_next_list(&self, change: impl FnOnce(&Path) + Send + 'static) {
        self.state().after_list = Some(Box::new(change));
    }

    /// Whether the simulated power loss has happened.
    pub fn crashed(&self) -> bool {
        self.state().dead
    }

    /// Operations that failed by injection so far.
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    fn dead_error() -> io::Error {
        io::Error::other("simulated power loss: this process is gone")
    }

    /// Fails if the process is dead (for operations that are not counted).
    fn alive(&self) -> io::Result<()> {
        if self.state().dead {
            Err(Self::dead_error())
        } else {
            Ok(())
        }
    }

    /// Counts one operation of `kind` on `path` and applies the fault.
    fn step(&self, kind: OpKind, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        if state.dead {
            return Err(Self::dead_error());
        }
        state.ops += 1;
        let op = state.ops;
        *state.counts.entry(kind).or_insert(0) += 1;
        *state.file_counts.entry((path.to_path_buf(), kind)).or_insert(0) += 1;
        match state.fault {
            Fault::None => Ok(()),
            Fault::Crash { at, mode } if op == at => {
                state.dead = true;
                drop(state);
                self.sim.as_ref().expect("Fault::Crash needs a simulated storage").crash(mode);
                Err(Self::dead_error())
            }
            Fault::Crash { .. } => Ok(()),
            Fault::Fail { at, errno, persistent } if op == at || (persistent && op > at) => {
                state.injected += 1;
                Err(io::Error::from_raw_os_error(errno))
            }
            Fault::Fail { .. } => Ok(()),
        }
    }

    fn wrap(&self, path: &Path, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(FaultyFile { file, path: path.to_path_buf(), storage: self.clone() })
    }
}

#[derive(Debug)]
struct FaultyFile {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    storage: FaultyStorage,
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.alive()?;
        self.file.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.storage.step(OpKind::Write, &self.path)?;
        self.file.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.storage.alive()?;
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.storage.step(OpKind::SetLen, &self.path)?;
        self.file.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.storage.step(OpKind::Allocate, &self.path)?;
        self.file.allocate(len)
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.storage.alive()?;
        self.file.start_writeback(offset, len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.storage.step(OpKind::SyncData, &self.path)?;
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.storage.step(OpKind::SyncAll, &self.path)?;
        self.file.sync_all()
    }
    fn map(&self) -> io::Result<Arc<dyn Mapped>> {
        self.storage.alive()?;
        self.storage.state().mapped.push(self.path.clone());
        self.file.map()
    }
    fn map_is_coherent(&self) -> bool {
        self.file.map_is_coherent()
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.alive()?;
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.alive()?;
        let paths = self.inner.list(dir)?;
        let after_list = self.state().after_list.take();
        if let Some(change) = after_list {
            change(dir);
        }
        Ok(paths)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if create && !self.inner.list(path.parent().unwrap_or(Path::new("/")))?.iter().any(|p| p == path) {
            self.step(OpKind::Create, path)?;
        } else {
            self.alive()?;
        }
        Ok(self.wrap(path, self.inner.open(path, create)?))
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.alive()?;
        Ok(self.wrap(path, self.inner.open_read_only(path)?))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.step(OpKind::Remove, path)?;
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        self.state().removed.push((path.to_path_buf(), thread));
        self.inner.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(OpKind::Rename, to)?;
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.step(OpKind::SyncDir, dir)?;
        self.inner.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path, holder: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        self.alive()?;
        self.inner.lock_dir(dir, holder)
    }
}
