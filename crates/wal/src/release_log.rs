//! `release.log`: which records inside still-present segments were released.
//!
//! Entries are `lo: u64 LE | hi: u64 LE | crc32(lo ‖ hi): u32 LE` (20 bytes),
//! an inclusive seq range each. Entries are idempotent, so a torn or lost
//! tail only makes released records reappear (delivered again, at least
//! once), never loses a live one. The file is synced with the data, and
//! rewritten compactly (tmp file, fsync, rename, directory fsync) when it
//! grows past [`COMPACT_ENTRIES`].

use std::path::{Path, PathBuf};

/// The file's name inside the log directory.
pub(crate) const RELEASE_LOG_NAME: &str = "release.log";
use std::sync::Arc;

use crate::error::{io_error, Result};
use crate::storage::{Storage, StorageFile};

/// Bytes of one entry.
pub(crate) const ENTRY_BYTES: usize = 20;
/// Entries after which the release log is rewritten compactly.
pub(crate) const COMPACT_ENTRIES: u64 = 16 * 1024;

/// What [`ReleaseLog::read`] found: the log, its ranges, and whether every
/// byte of the file was a valid entry.
pub(crate) type ReadReleaseLog = (ReleaseLog, Vec<(u64, u64)>, bool);

#[derive(Debug)]
pub(crate) struct ReleaseLog {
    path: PathBuf,
    file: Option<Arc<dyn StorageFile>>,
    end: u64,
    pub entry_count: u64,
    pub dirty: bool,
}

fn encode(lo: u64, hi: u64) -> [u8; ENTRY_BYTES] {
    let mut entry = [0u8; ENTRY_BYTES];
    entry[0..8].copy_from_slice(&lo.to_le_bytes());
    entry[8..16].copy_from_slice(&hi.to_le_bytes());
    let crc = crc32fast::hash(&entry[0..16]);
    entry[16..20].copy_from_slice(&crc.to_le_bytes());
    entry
}

/// The range of one 20-byte entry, or `None` if it fails its check (CRC,
/// `lo` 0, `lo > hi`).
pub(crate) fn decode_entry(entry: &[u8]) -> Option<(u64, u64)> {
    let crc = u32::from_le_bytes(entry[16..20].try_into().expect("4-byte slice"));
    let lo = u64::from_le_bytes(entry[0..8].try_into().expect("8-byte slice"));
    let hi = u64::from_le_bytes(entry[8..16].try_into().expect("8-byte slice"));
    (crc32fast::hash(&entry[0..16]) == crc && lo != 0 && lo <= hi).then_some((lo, hi))
}

impl ReleaseLog {
    /// Reads the ranges recorded in `dir/release.log`; a missing file is empty.
    ///
    /// Also returns whether every byte of the file was a valid entry (false
    /// after a torn write), so recovery knows to rewrite it.
    pub fn read(storage: &dyn Storage, dir: &Path, read_only: bool) -> Result<ReadReleaseLog> {
        let path = dir.join(RELEASE_LOG_NAME);
        let file = if read_only {
            storage.open_read_only(&path).ok()
        } else {
            let existed = storage.list(dir).map_err(|e| io_error(dir, e))?.contains(&path);
            let file = storage.open(&path, true).map_err(|e| io_error(&path, e))?;
            if !existed {
                // The new file's directory entry must be durable before any
                // entry synced into it counts: otherwise a power loss after
                // `sync()` could drop the whole file and bring released
                // records back. Found by the model test (tests/model.rs).
                storage.sync_dir(dir).map_err(|e| io_error(dir, e))?;
            }
            Some(file)
        };
        let mut clean = true;
        let mut ranges = Vec::new();
        let mut end = 0u64;
        if let Some(file) = &file {
            let len = file.len().map_err(|e| io_error(&path, e))?;
            let mut bytes = vec![0u8; len as usize];
            let read = file.read_at(&mut bytes, 0).map_err(|e| io_error(&path, e))?;
            bytes.truncate(read);
            clean &= bytes.len().is_multiple_of(ENTRY_BYTES);
            for chunk in bytes.chunks_exact(ENTRY_BYTES) {
                let Some((lo, hi)) = decode_entry(chunk) else {
                    clean = false;
                    break; // torn tail: entries are idempotent, the rest is lost harmlessly
                };
                ranges.push((lo, hi));
                end += ENTRY_BYTES as u64;
            }
        }
        let entry_count = ranges.len() as u64;
        Ok((ReleaseLog { path, file, end, entry_count, dirty: false }, ranges, clean))
    }

    pub fn append(&mut self, lo: u64, hi: u64) -> Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        file.write_all_at(&encode(lo, hi), self.end).map_err(|e| io_error(&self.path, e))?;
        self.end += ENTRY_BYTES as u64;
        self.entry_count += 1;
        self.dirty = true;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        if let (true, Some(file)) = (self.dirty, &self.file) {
            file.sync_data().map_err(|e| io_error(&self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Replaces the file with exactly `ranges`, atomically.
    pub fn rewrite(&mut self, storage: &dyn Storage, dir: &Path, ranges: &[(u64, u64)]) -> Result<()> {
        let tmp = dir.join("release.log.tmp");
        let mut bytes = Vec::with_capacity(ranges.len() * ENTRY_BYTES);
        for &(lo, hi) in ranges {
            bytes.extend_from_slice(&encode(lo, hi));
        }
        let file = storage.open(&tmp, true).map_err(|e| io_error(&tmp, e))?;
        file.set_len(0).map_err(|e| io_error(&tmp, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| io_error(&tmp, e))?;
        file.sync_all().map_err(|e| io_error(&tmp, e))?;
        storage.rename(&tmp, &self.path).map_err(|e| io_error(&self.path, e))?;
        storage.sync_dir(dir).map_err(|e| io_error(dir, e))?;
        self.file = Some(file);
        self.end = bytes.len() as u64;
        self.entry_count = ranges.len() as u64;
        self.dirty = false;
        Ok(())
    }
}
