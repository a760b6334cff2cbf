//! [`KeyRuns`]: the key postings of one log, on disk in immutable run files
//! plus one run in memory, so that what the index holds in memory is
//! bounded by [`RunOptions::run_records_max`], not by the queue (R11, R19a).
//!
//! Records are added in seq order. Every `run_records_max` records the
//! memory run is written as a run file covering a seq range `lo..=hi`: for
//! each key of the range, the seqs of its records there. Run files are never
//! changed; the owner deletes one once no record of its range is live
//! ([`KeyRuns::retain_runs`]). A page for one key reads that key's postings
//! of each run (a binary search in the run's key directory) and of the
//! memory run: never another key's.
//!
//! # Run file format (version 1), little-endian
//!
//! Named `<lo>-<hi>.run` (20-digit zero-padded seqs).
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 8 | magic `PLKRUN\0\0` |
//! | 8 | u32 | format version (1) |
//! | 12 | u32 | header bytes (64) |
//! | 16 | u64 | lo: first seq the run covers |
//! | 24 | u64 | hi: last seq the run covers |
//! | 32 | u32 | key count `k` |
//! | 36 | u32 | entry count `n` |
//! | 40 | u64 | key blob bytes `b` |
//! | 48 | u64 | reserved (0) |
//! | 56 | u32 | CRC32 of every byte after the header |
//! | 60 | u32 | CRC32 of bytes 0..60 |
//!
//! Then the key directory, `k` entries of 24 bytes sorted by (hash, key
//! bytes): `hash u64 | key_offset u32 | key_len u32 | first_entry u32 |
//! entry_count u32`; the key blob (`b` bytes of UTF-8 keys); and `n`
//! postings of `u32` (`seq - lo`), each key's ascending, in directory order.
//! The hash is [`key_hash`]: a search compares hashes, then key bytes, so
//! lookups are exact.
//!
//! A run file is written to `<name>.tmp` and renamed into place, without
//! fsync: it is derived data. One that fails its checks at open (torn by a
//! crash, damaged, or of another version) is deleted and reported; the
//! owner rebuilds the range from its log ([`KeyRuns::gaps`],
//! [`KeyRuns::insert_run`]).

use std::collections::HashMap;
use std::ops::{ControlFlow, RangeInclusive};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Magic bytes at the start of a run file.
pub const RUN_MAGIC: [u8; 8] = *b"PLKRUN\0\0";
/// Format version of run files.
pub const RUN_VERSION: u32 = 1;
const HEADER_BYTES: usize = 64;
const DIRECTORY_ENTRY_BYTES: usize = 24;
/// Directory entries per fence: 170 entries of 24 bytes fill one 4 KiB
/// page, so a lookup reads one page of a run's directory (two at worst)
/// instead of a binary search's ~17 scattered ones; the fences cost 8 bytes
/// per 170 keys of a run in memory.
const FENCE_STRIDE: usize = 170;

/// Options of [`KeyRuns::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RunOptions {
    /// Records the memory run holds before it is written as a run file: the
    /// bound on the index's memory. Default: 131,072.
    pub run_records_max: usize,
    /// Open without writing or deleting anything (inspection of a directory
    /// another process owns): inserts all stay in the memory run. Default:
    /// false.
    pub read_only: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { run_records_max: 131_072, read_only: false }
    }
}

/// Hashes a key for the run directories: FNV-1a 64, then a murmur3 finish
/// so that every bit depends on every byte. Stable: it is part of the file
/// format.
pub fn key_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key.as_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// What [`KeyRuns::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Run files loaded.
    pub runs_loaded: usize,
    /// Run files that failed their checks and were deleted (or, read-only,
    /// skipped), with the reason.
    pub damaged: Vec<(PathBuf, String)>,
}

/// The key index of one log: run files plus a memory run.
pub struct KeyRuns {
    dir: PathBuf,
    options: RunOptions,
    /// Sorted by `lo`, disjoint.
    runs: Vec<Run>,
    mem: MemRun,
}

impl std::fmt::Debug for KeyRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRuns")
            .field("dir", &self.dir)
            .field("runs", &self.runs.len())
            .field("memory_records", &self.mem.record_count)
            .field("covered_through", &self.covered_through())
            .finish()
    }
}

/// One run file, mapped.
struct Run {
    lo: u64,
    hi: u64,
    path: PathBuf,
    map: memmap2::Mmap,
    key_count: usize,
    entry_count: usize,
    keys_at: usize,
    postings_at: usize,
    /// The hash of every [`FENCE_STRIDE`]th directory entry: a lookup
    /// searches these in memory, then one stride of the mapped directory.
    fences: Vec<u64>,
}

/// The records added since the last run file.
#[derive(Default)]
struct MemRun {
    /// First seq covered (set by the first insert after a flush).
    lo: u64,
    /// Last seq added.
    hi: u64,
    record_count: usize,
    /// Per key, `seq - lo` of its records, ascending.
    keys: HashMap<Box<str>, Vec<u32>>,
    key_bytes: usize,
}

impl KeyRuns {
    /// Opens (or creates) the index in `dir`, loading every valid run file.
    pub fn open(dir: &Path, options: RunOptions) -> Result<(KeyRuns, OpenReport)> {
        if !options.read_only {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        let mut report = OpenReport::default();
        let mut runs: Vec<Run> = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.read_only => Vec::new(),
            Err(e) => return Err(io_error(dir, e)),
        };
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if name.ends_with(".tmp") {
                if !options.read_only {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            let Some((lo, hi)) = parse_run_name(&name) else { continue };
            match Run::load(&path, lo, hi) {
                Ok(run) => runs.push(run),
                // A run file deleted meanwhile (by its owner) is not damage.
                Err(reason) if !path.exists() => tracing::debug!(path = %path.display(), %reason, "run file gone"),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "key index run file damaged: it will be rebuilt from the log");
                    if !options.read_only {
                        std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                    }
                    report.damaged.push((path, reason));
                }
            }
        }
        runs.sort_by_key(|run| run.lo);
        let mut disjoint: Vec<Run> = Vec::with_capacity(runs.len());
        for run in runs {
            if disjoint.last().is_some_and(|last| run.lo <= last.hi) {
                let reason = "overlaps an earlier run".to_owned();
                if !options.read_only {
                    std::fs::remove_file(&run.path).map_err(|e| io_error(&run.path, e))?;
                }
                report.damaged.push((run.path, reason));
                continue;
            }
            disjoint.push(run);
        }
        report.runs_loaded = disjoint.len();
        let index = KeyRuns { dir: dir.to_path_buf(), options, runs: disjoint, mem: MemRun::default() };
        Ok((index, report))
    }

    /// An index of no files that keeps every insert in memory: for a reader
    /// that must index a log itself.
    pub fn in_memory() -> KeyRuns {
        let options = RunOptions { run_records_max: usize::MAX, read_only: true };
        KeyRuns { dir: PathBuf::new(), options, runs: Vec::new(), mem: MemRun::default() }
    }

    /// The highest seq the index covers (0 if none).
    pub fn covered_through(&self) -> u64 {
        if self.mem.record_count > 0 {
            return self.mem.hi;
        }
        self.runs.last().map_or(0, |run| run.hi)
    }

    /// The seq ranges of the run files, ascending.
    pub fn run_ranges(&self) -> Vec<RangeInclusive<u64>> {
        self.runs.iter().map(|run| run.lo..=run.hi).collect()
    }

    /// The ranges below `through` that no run covers (where a run was
    /// deleted because nothing in it was live, or was lost and must be
    /// rebuilt: the owner checks its log).
    pub fn gaps(&self, through: u64) -> Vec<RangeInclusive<u64>> {
        let mut gaps = Vec::new();
        let mut next = 1u64;
        for run in &self.runs {
            if run.lo > next {
                gaps.push(next..=(run.lo - 1).min(through));
            }
            next = run.hi + 1;
        }
        if next <= through {
            gaps.push(next..=through);
        }
        gaps.retain(|gap| gap.start() <= gap.end());
        gaps
    }

    /// Adds `key` at `seq`, above every seq the index covers; writes a run
    /// file when the memory run is full.
    pub fn insert(&mut self, key: &str, seq: u64) -> Result<()> {
        let last = self.covered_through();
        if seq <= last {
            return Err(Error::OutOfOrder { seq, last });
        }
        let offset_too_far = self.mem.record_count > 0 && seq - self.mem.lo > u64::from(u32::MAX);
        if self.options.read_only {
            // Nothing is written: the memory run takes every record.
            if offset_too_far {
                return Err(Error::InvalidRun { reason: "a read-only index spans over 2^32 seqs in memory".into() });
            }
        } else if self.mem.record_count >= self.options.run_records_max.max(1) || offset_too_far {
            self.flush()?;
        }
        if self.mem.record_count == 0 {
            self.mem.lo = seq;
        }
        let offset = u32::try_from(seq - self.mem.lo).expect("checked against u32::MAX above");
        match self.mem.keys.get_mut(key) {
            Some(seqs) => seqs.push(offset),
            None => {
                self.mem.key_bytes += key.len();
                self.mem.keys.insert(key.into(), vec![offset]);
            }
        }
        self.mem.hi = seq;
        self.mem.record_count += 1;
        Ok(())
    }

    /// Writes a run file for `lo..=hi` from `entries` (key, seq) in seq
    /// order: a range rebuilt from the log. It must not overlap a run or the
    /// memory run.
    pub fn insert_run(&mut self, lo: u64, hi: u64, entries: &[(String, u64)]) -> Result<()> {
        let overlaps = self.runs.iter().any(|run| run.lo <= hi && lo <= run.hi)
            || (self.mem.record_count > 0 && self.mem.lo <= hi);
        if overlaps || lo > hi || entries.iter().any(|(_, seq)| !(lo..=hi).contains(seq)) {
            return Err(Error::InvalidRun {
                reason: format!("rebuilt run {lo}..={hi} overlaps the index or its range"),
            });
        }
        let mut mem = MemRun { lo, hi, ..MemRun::default() };
        for (key, seq) in entries {
            let offset = u32::try_from(seq - lo)
                .map_err(|_| Error::InvalidRun { reason: format!("rebuilt run {lo}..={hi} spans over 2^32 seqs") })?;
            mem.keys.entry(key.as_str().into()).or_default().push(offset);
            mem.record_count += 1;
        }
        let run = self.write_run(&mem)?;
        let at = self.runs.partition_point(|existing| existing.lo < lo);
        self.runs.insert(at, run);
        Ok(())
    }

    /// Writes the memory run as a run file (nothing if it is empty).
    pub fn flush(&mut self) -> Result<()> {
        if self.mem.record_count == 0 || self.options.read_only {
            return Ok(());
        }
        let mem = std::mem::take(&mut self.mem);
        let run = self.write_run(&mem)?;
        self.runs.push(run);
        Ok(())
    }

    fn write_run(&self, mem: &MemRun) -> Result<Run> {
        let name = run_name(mem.lo, mem.hi);
        let path = self.dir.join(&name);
        let temp = self.dir.join(format!("{name}.tmp"));
        let bytes = encode_run(mem);
        std::fs::write(&temp, &bytes).map_err(|e| io_error(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| io_error(&path, e))?;
        Run::load(&path, mem.lo, mem.hi).map_err(|reason| Error::InvalidRun { reason })
    }

    /// Calls `visit` with the seqs of `key` in `range`, ascending, until it
    /// breaks. Reads only that key's postings.
    pub fn for_each_seq(&self, key: &str, range: RangeInclusive<u64>, mut visit: impl FnMut(u64) -> ControlFlow<()>) {
        let hash = key_hash(key);
        for run in self.runs.iter().filter(|run| run.hi >= *range.start() && run.lo <= *range.end()) {
            if run.for_each(hash, key, &range, &mut visit).is_break() {
                return;
            }
        }
        if self.mem.record_count > 0 && self.mem.hi >= *range.start() && self.mem.lo <= *range.end() {
            if let Some(offsets) = self.mem.keys.get(key) {
                for &offset in offsets {
                    let seq = self.mem.lo + u64::from(offset);
                    if range.contains(&seq) && visit(seq).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// The seqs of `key` in `range`, ascending, at most `limit`.
    pub fn seqs(&self, key: &str, range: RangeInclusive<u64>, limit: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        self.for_each_seq(key, range, |seq| {
            seqs.push(seq);
            if seqs.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        seqs
    }

    /// Deletes the run files `keep(lo, hi)` refuses (the owner keeps a run
    /// while a record of its range is live). Returns how many were deleted.
    pub fn retain_runs(&mut self, mut keep: impl FnMut(u64, u64) -> bool) -> Result<usize> {
        if self.options.read_only {
            return Ok(0);
        }
        let mut deleted = 0;
        let mut index = 0;
        while index < self.runs.len() {
            let (lo, hi) = (self.runs[index].lo, self.runs[index].hi);
            if keep(lo, hi) {
                index += 1;
                continue;
            }
            let run = self.runs.remove(index);
            match std::fs::remove_file(&run.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&run.path, e)),
            }
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Heap bytes held: the memory run and the runs' bookkeeping (the run
    /// files themselves are mapped: page cache, not heap).
    pub fn memory_bytes(&self) -> usize {
        let key_slot = std::mem::size_of::<(Box<str>, Vec<u32>)>() + 1;
        let postings: usize = self.mem.keys.values().map(|seqs| seqs.capacity() * 4).sum();
        self.mem.keys.capacity() * key_slot
            + self.mem.key_bytes
            + postings
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.runs.iter().map(|run| run.fences.capacity() * 8).sum::<usize>()
    }

    /// Records in the memory run (not yet in a run file).
    pub fn memory_records(&self) -> usize {
        self.mem.record_count
    }
}

impl Run {
    /// Maps and checks a run file; `Err` says why it cannot be used.
    fn load(path: &Path, lo: u64, hi: u64) -> std::result::Result<Run, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: run files are written once under a temporary name and
        // renamed into place; nothing ever writes to or truncates a run file
        // after that (the owner only deletes it, which keeps this mapping
        // valid until it is dropped). So the mapped bytes never change.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
        let bytes: &[u8] = &map;
        if bytes.len() < HEADER_BYTES {
            return Err("shorter than a run header".into());
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        if crc32fast::hash(&bytes[..60]) != u32_at(60) {
            return Err("header CRC mismatch".into());
        }
        if bytes[..8] != RUN_MAGIC || u32_at(8) != RUN_VERSION || u32_at(12) as usize != HEADER_BYTES {
            return Err("not a key index run of this version".into());
        }
        if (u64_at(16), u64_at(24)) != (lo, hi) {
            return Err("header and file name disagree on the range".into());
        }
        let (key_count, entry_count, keys_bytes) = (u32_at(32) as usize, u32_at(36) as usize, u64_at(40) as usize);
        let keys_at = HEADER_BYTES + key_count * DIRECTORY_ENTRY_BYTES;
        let postings_at = keys_at + keys_bytes;
        if bytes.len() != postings_at + entry_count * 4 {
            return Err("file length does not match its header".into());
        }
        // One pass: the body's CRC, taking the fences as the directory
        // streams by. A body whose CRC holds is the bytes `encode_run`
        // wrote, so its layout needs no second check; and every read of the
        // directory is bounds-checked (`Run::entry`), so even a damaged file
        // that matched its CRC by chance could give wrong postings, never
        // read outside the file.
        let mut crc = crc32fast::Hasher::new();
        let mut fences = Vec::with_capacity(key_count.div_ceil(FENCE_STRIDE));
        for stride in bytes[HEADER_BYTES..keys_at].chunks(FENCE_STRIDE * DIRECTORY_ENTRY_BYTES) {
            crc.update(stride);
            fences.push(u64::from_le_bytes(stride[..8].try_into().expect("an entry starts with its hash")));
        }
        crc.update(&bytes[keys_at..]);
        if crc.finalize() != u32_at(56) {
            return Err("body CRC mismatch".into());
        }
        Ok(Run { lo, hi, path: path.to_path_buf(), map, key_count, entry_count, keys_at, postings_at, fences })
    }

    /// Directory entry `index`: hash, key bytes, first posting, posting count.
    fn entry(&self, index: usize) -> Option<(u64, &[u8], usize, usize)> {
        let at = HEADER_BYTES + index * DIRECTORY_ENTRY_BYTES;
        let entry = self.map.get(at..at + DIRECTORY_ENTRY_BYTES)?;
        let hash = u64::from_le_bytes(entry[0..8].try_into().ok()?);
        let word = |from: usize| u32::from_le_bytes(entry[from..from + 4].try_into().expect("4 bytes")) as usize;
        let (key_offset, key_len, first, count) = (word(8), word(12), word(16), word(20));
        let key = self.map.get(self.keys_at + key_offset..(self.keys_at + key_offset).checked_add(key_len)?)?;
        if self.keys_at + key_offset + key_len > self.postings_at || first + count > self.entry_count {
            return None;
        }
        Some((hash, key, first, count))
    }

    /// The hash of directory entry `index`.
    fn hash_at(&self, index: usize) -> Option<u64> {
        let at = HEADER_BYTES + index * DIRECTORY_ENTRY_BYTES;
        Some(u64::from_le_bytes(self.map.get(at..at + 8)?.try_into().ok()?))
    }

    /// The first directory index whose hash is not below `hash`. Every
    /// entry before stride `f - 1` hashes below `hash` (its fence does) and
    /// entry `f * FENCE_STRIDE` does not, so the answer lies in one stride;
    /// hashes are uniform, so interpolating between the two fences lands
    /// a few entries from it, and the walk from there reads one or two
    /// cache lines instead of a binary search's eight.
    fn lower_bound(&self, hash: u64) -> usize {
        let f = self.fences.partition_point(|&fence| fence < hash);
        let low = f.saturating_sub(1) * FENCE_STRIDE;
        let high = (f * FENCE_STRIDE).min(self.key_count);
        if f == 0 || low >= high {
            return low.min(high);
        }
        let below = self.fences[f - 1];
        let above = self.fences.get(f).copied().unwrap_or(u64::MAX);
        let offset = u128::from(hash - below) * (high - low) as u128 / u128::from(above - below);
        let mut index = low + usize::try_from(offset).unwrap_or(high - low).min(high - low);
        while index > low && self.hash_at(index - 1).is_some_and(|h| h >= hash) {
            index -= 1;
        }
        while index < high && self.hash_at(index).is_some_and(|h| h < hash) {
            index += 1;
        }
        index
    }

    fn for_each(
        &self,
        hash: u64,
        key: &str,
        range: &RangeInclusive<u64>,
        visit: &mut impl FnMut(u64) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut index = self.lower_bound(hash);
        while let Some((h, stored, first, count)) = self.entry(index) {
            if h != hash {
                break;
            }
            if stored == key.as_bytes() {
                let postings = &self.map[self.postings_at + first * 4..self.postings_at + (first + count) * 4];
                for word in postings.chunks_exact(4) {
                    let seq = self.lo + u64::from(u32::from_le_bytes(word.try_into().expect("4 bytes")));
                    if seq > *range.end() {
                        return ControlFlow::Continue(());
                    }
                    if seq >= *range.start() {
                        visit(seq)?;
                    }
                }
                return ControlFlow::Continue(());
            }
            index += 1;
        }
        ControlFlow::Continue(())
    }
}

/// The bytes of a run file for `mem`.
fn encode_run(mem: &MemRun) -> Vec<u8> {
    let mut keys: Vec<(u64, &str, &Vec<u32>)> =
        mem.keys.iter().map(|(key, seqs)| (key_hash(key), key.as_ref(), seqs)).collect();
    keys.sort_unstable_by(|a, b| (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
    let keys_bytes: usize = keys.iter().map(|(_, key, _)| key.len()).sum();
    let entry_count: usize = keys.iter().map(|(_, _, seqs)| seqs.len()).sum();
    let mut out = Vec::with_capacity(HEADER_BYTES + keys.len() * DIRECTORY_ENTRY_BYTES + keys_bytes + entry_count * 4);
    out.resize(HEADER_BYTES, 0);
    let (mut key_offset, mut first) = (0u32, 0u32);
    for (hash, key, seqs) in &keys {
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&key_offset.to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&(seqs.len() as u32).to_le_bytes());
        key_offset += key.len() as u32;
        first += seqs.len() as u32;
    }
    for (_, key, _) in &keys {
        out.extend_from_slice(key.as_bytes());
    }
    for (_, _, seqs) in &keys {
        for offset in seqs.iter() {
            out.extend_from_slice(&offset.to_le_bytes());
        }
    }
    let body_crc = crc32fast::hash(&out[HEADER_BYTES..]);
    out[0..8].copy_from_slice(&RUN_MAGIC);
    out[8..12].copy_from_slice(&RUN_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    out[16..24].copy_from_slice(&mem.lo.to_le_bytes());
    out[24..32].copy_from_slice(&mem.hi.to_le_bytes());
    out[32..36].copy_from_slice(&(keys.len() as u32).to_le_bytes());
    out[36..40].copy_from_slice(&(entry_count as u32).to_le_bytes());
    out[40..48].copy_from_slice(&(keys_bytes as u64).to_le_bytes());
    out[56..60].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[..60]);
    out[60..64].copy_from_slice(&header_crc.to_le_bytes());
    out
}

fn run_name(lo: u64, hi: u64) -> String {
    format!("{lo:020}-{hi:020}.run")
}

fn parse_run_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".run")?;
    let (lo, hi) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(lo) || !digits(hi) {
        return None;
    }
    let (lo, hi) = (lo.parse().ok()?, hi.parse().ok()?);
    (lo <= hi && lo > 0).then_some((lo, hi))
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}
