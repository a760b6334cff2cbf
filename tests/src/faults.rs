//! [`FaultStorage`]: the storage seam of one engine "process", counting the
//! operations that change or persist something and injecting one fault at
//! the N-th: a simulated power loss (crash-point enumeration) or an I/O
//! error, once or from then on (error sweep). It also counts fsyncs by file,
//! which is how group commit is measured at engine level.
//!
//! Counted operations: file writes, length changes, allocations, syncs,
//! creations, removals, renames and directory syncs. Reads, maps and
//! listings are not crash points (a crash during a read is the same as one
//! before the next write), so threads that only read do not shift the
//! numbering.
//!
//! One `FaultStorage` stands for one process: after its simulated power loss
//! every call fails, as nothing of a dead process runs any more, while a new
//! `FaultStorage` over the same [`SimStorage`] opens what the crash left.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use pauselog::{Mapped, Storage, StorageFile};
use pauselog_wal::{CrashMode, SimStorage};

/// EIO: what a failing disk answers.
pub const EIO: i32 = 5;
/// ENOSPC: what a full disk answers.
pub const ENOSPC: i32 = 28;

/// The kinds of counted operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `write_all_at`.
    Write,
    /// `set_len`.
    SetLen,
    /// `allocate`.
    Allocate,
    /// `sync_data` (fdatasync).
    SyncData,
    /// `sync_all` (fsync).
    SyncAll,
    /// `open` that creates the file.
    Create,
    /// `remove`.
    Remove,
    /// `rename`.
    Rename,
    /// `sync_dir`.
    SyncDir,
}

impl OpKind {
    /// True for the two file syncs.
    pub fn is_sync(self) -> bool {
        matches!(self, OpKind::SyncData | OpKind::SyncAll)
    }
}

/// What happens at the chosen operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: only count.
    None,
    /// A power loss right before counted operation `at` (1-based, counted
    /// from when the fault was armed) runs: the simulated storage keeps what
    /// `mode` keeps, and every later call of this process fails.
    Crash {
        /// The operation.
        at: u64,
        /// What survives of unsynced writes.
        mode: CrashMode,
    },
    /// Counted operation `at` fails with `errno`; with `persistent`, so does
    /// every later counted operation.
    Fail {
        /// The operation.
        at: u64,
        /// The OS error number.
        errno: i32,
        /// Every later counted operation fails too.
        persistent: bool,
    },
}

#[derive(Debug, Default)]
struct State {
    fault: Option<Fault>,
    /// The fault applies to operations on files under this directory only.
    fault_under: Option<PathBuf>,
    ops: u64,
    counts: BTreeMap<OpKind, u64>,
    syncs_by_file: BTreeMap<PathBuf, u64>,
    /// Counted operations on files under `fault_under`.
    ops_under: u64,
    dead: bool,
    injected: u64,
    /// Files whose sync failed by injection.
    failed_sync_files: HashSet<PathBuf>,
    /// Syncs attempted on such a file afterwards (R17: there must be none).
    syncs_after_failure: Vec<PathBuf>,
}

/// See the module docs. Cheap to clone; clones share the counters.
#[derive(Clone)]
pub struct FaultStorage {
    inner: Arc<dyn Storage>,
    sim: Option<SimStorage>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStorage").field("ops", &self.ops()).field("dead", &self.crashed()).finish()
    }
}

impl FaultStorage {
    /// Counts the operations on `inner` (the real file system, say).
    pub fn over(inner: Arc<dyn Storage>) -> FaultStorage {
        FaultStorage { inner, sim: None, state: Arc::default() }
    }

    /// Counts the operations on `sim`; crashes need a simulated storage.
    pub fn over_sim(sim: &SimStorage) -> FaultStorage {
        FaultStorage { sim: Some(sim.clone()), ..FaultStorage::over(Arc::new(sim.clone())) }
    }

    /// This storage as the engine builder takes it.
    pub fn seam(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    /// An engine on `dir` whose map logs go through this storage, under
    /// `sync`, with a manual clock at [`crate::epoch`] and no ticker.
    pub fn engine(&self, dir: &Path, sync: pauselog::SyncPolicy) -> pauselog::Engine {
        pauselog::Engine::builder(dir)
            .sync(sync)
            .clock(crate::clock())
            .tick_interval(None)
            .storage(self.seam())
            .open()
            .expect("engine opens")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Arms `fault`, numbered from the operations counted so far (`at: 1`
    /// is the next one). Replaces any fault armed before.
    pub fn arm(&self, fault: Fault) {
        let ops = {
            let mut state = self.state();
            state.fault_under = None;
            state.ops
        };
        self.arm_at(fault, ops);
    }

    /// Like [`FaultStorage::arm`], but the fault counts and hits only
    /// operations on files under `dir` (the data log of one map, say).
    pub fn arm_under(&self, dir: &Path, fault: Fault) {
        let ops_under = {
            let mut state = self.state();
            state.fault_under = Some(dir.to_path_buf());
            state.ops_under
        };
        self.arm_at(fault, ops_under);
    }

    fn arm_at(&self, fault: Fault, ops: u64) {
        self.state().fault = Some(match fault {
            Fault::None => Fault::None,
            Fault::Crash { at, mode } => Fault::Crash { at: ops + at, mode },
            Fault::Fail { at, errno, persistent } => Fault::Fail { at: ops + at, errno, persistent },
        });
    }

    /// Disarms the fault (a dead process stays dead).
    pub fn disarm(&self) {
        let mut state = self.state();
        state.fault = None;
        state.fault_under = None;
    }

    /// A power loss now: what is not synced is lost (or torn, by `mode`)
    /// and this process is gone.
    pub fn crash_now(&self, mode: CrashMode) {
        self.state().dead = true;
        self.sim.as_ref().expect("a crash needs a simulated storage").crash(mode);
    }

    /// Counted operations so far.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Counted operations of one kind so far.
    pub fn count(&self, kind: OpKind) -> u64 {
        self.state().counts.get(&kind).copied().unwrap_or(0)
    }

    /// File syncs (`sync_data` and `sync_all`) so far, by file.
    pub fn syncs_by_file(&self) -> BTreeMap<PathBuf, u64> {
        self.state().syncs_by_file.clone()
    }

    /// File syncs so far on files under `dir`.
    pub fn syncs_under(&self, dir: &Path) -> u64 {
        self.state().syncs_by_file.iter().filter(|(path, _)| path.starts_with(dir)).map(|(_, n)| n).sum()
    }

    /// Whether this process has had its simulated power loss.
    pub fn crashed(&self) -> bool {
        self.state().dead
    }

    /// Operations failed by injection so far.
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    /// Files whose sync failed by injection so far.
    pub fn failed_sync_files(&self) -> Vec<PathBuf> {
        self.state().failed_sync_files.iter().cloned().collect()
    }

    /// Syncs attempted on a file after a sync of that file had failed
    /// (R17 allows none: a failed fsync is never retried on the same file).
    pub fn syncs_after_a_failed_sync(&self) -> Vec<PathBuf> {
        self.state().syncs_after_failure.clone()
    }

    fn dead_error() -> io::Error {
        io::Error::other("simulated power loss: this process is gone")
    }

    /// Fails if the process is dead (for calls that are not counted).
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
        *state.counts.entry(kind).or_insert(0) += 1;
        if kind.is_sync() {
            *state.syncs_by_file.entry(path.to_path_buf()).or_insert(0) += 1;
            if state.failed_sync_files.contains(path) {
                state.syncs_after_failure.push(path.to_path_buf());
            }
        }
        let op = match &state.fault_under {
            None => state.ops,
            Some(dir) if path.starts_with(dir) => {
                state.ops_under += 1;
                state.ops_under
            }
            Some(_) => return Ok(()),
        };
        match state.fault {
            Some(Fault::Crash { at, mode }) if op == at => {
                state.dead = true;
                drop(state);
                self.sim.as_ref().expect("Fault::Crash needs a simulated storage").crash(mode);
                Err(Self::dead_error())
            }
            Some(Fault::Fail { at, errno, persistent }) if op == at || (persistent && op > at) => {
                state.injected += 1;
                if kind.is_sync() {
                    state.failed_sync_files.insert(path.to_path_buf());
                }
                Err(io::Error::from_raw_os_error(errno))
            }
            _ => Ok(()),
        }
    }

    fn wrap(&self, path: &Path, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(FaultFile { file, path: path.to_path_buf(), storage: self.clone() })
    }
}

#[derive(Debug)]
struct FaultFile {
    file: Arc<dyn StorageFile>,
    path: PathBuf,
    storage: FaultStorage,
}

impl StorageFile for FaultFile {
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
        self.file.map()
    }
    fn map_is_coherent(&self) -> bool {
        self.file.map_is_coherent()
    }
}

impl Storage for FaultStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.alive()?;
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.alive()?;
        self.inner.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        self.alive()?;
        match self.inner.open(path, false) {
            Ok(file) => Ok(self.wrap(path, file)),
            Err(error) if create && error.kind() == io::ErrorKind::NotFound => {
                self.step(OpKind::Create, path)?;
                Ok(self.wrap(path, self.inner.open(path, true)?))
            }
            Err(error) => Err(error),
        }
    }
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.alive()?;
        Ok(self.wrap(path, self.inner.open_read_only(path)?))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.step(OpKind::Remove, path)?;
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
