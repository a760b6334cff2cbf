//! The one seam for file I/O: [`Storage`] and [`StorageFile`].
//!
//! [`FsStorage`] is the real file system (positioned I/O, `fdatasync`,
//! `fallocate`, memmap2 views). [`SimStorage`] keeps what was *written* apart
//! from what was *synced*, so a test can [`SimStorage::crash`] at any point and
//! reopen from what a power loss would have left.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod sim;

pub use sim::{CrashMode, SimStorage, ViewEvent};

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

/// Every byte of a file, read with `read_at` (a file shortened meanwhile
/// gives fewer bytes, never a fault).
pub(crate) fn read_whole(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; file.len()? as usize];
    let read = file.read_at(&mut bytes, 0)?;
    bytes.truncate(read);
    Ok(bytes)
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
        // reads them. A sealed segment's sidecar is mapped too (its frame
        // offsets, `offsets.rs`): it is written and fsynced whole before it
        // is mapped and never written again in place. Its path is written
        // again only if its segment becomes the active one after a crash,
        // and that open first unlinks it, so the next seal creates a new
        // file; the active segment's own sidecar (a clean close's) is read,
        // never mapped.
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
    // SAFETY: a plain system call on an open descriptor `file` owns; it
    // reads no memory of this process.
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
