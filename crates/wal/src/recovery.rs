//! Opening a log: scanning segments, truncating a torn tail, applying the
//! release log. See [`crate::format`] for the crash cases this handles.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{io_error, Error, Result};
use crate::frame::{decode_at, FrameDamage, FRAME_HEADER_BYTES};
use crate::offsets::Offsets;
use crate::options::WalOptions;
use crate::release_log::ReleaseLog;
use crate::segment::{
    create_segment, decode_header, decode_sidecar, parse_segment_path, parse_sidecar_path, sidecar_path, CopiedBytes,
    Segment, SidecarKind, SEGMENT_HEADER_BYTES,
};
use crate::state::State;
use crate::storage::{read_whole, Mapped, Storage};
use crate::torn::{describe, is_all_zero, later_valid_frame};

pub(crate) fn recover(dir: &Path, options: &WalOptions, storage: &dyn Storage) -> Result<State> {
    let read_only = options.read_only;
    let paths = match storage.list(dir) {
        Ok(paths) => paths,
        Err(e) if read_only && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut segment_paths: Vec<(u64, std::path::PathBuf)> =
        paths.iter().filter_map(|p| parse_segment_path(p).map(|seq| (seq, p.clone()))).collect();
    segment_paths.sort();
    let sidecars: std::collections::HashSet<std::path::PathBuf> =
        paths.iter().filter(|p| parse_sidecar_path(p).is_some()).cloned().collect();
    if !read_only {
        // A sidecar whose segment is gone: the segment's deletion removes the
        // sidecar first, but a crash may leave either; neither is needed.
        for orphan in sidecars
            .iter()
            .filter(|p| parse_sidecar_path(p).is_some_and(|seq| !segment_paths.iter().any(|(s, _)| *s == seq)))
        {
            storage.remove(orphan).map_err(|e| io_error(orphan, e))?;
        }
    }
    let mut segments = VecDeque::new();
    let mut next_seq: Option<u64> = None;
    // The first seq of the segment loaded from a clean close's sidecar.
    let mut closed_seq = None;
    let last_index = segment_paths.len().saturating_sub(1);
    for (index, (name_seq, path)) in segment_paths.into_iter().enumerate() {
        let is_last = index == last_index;
        let has_sidecar = sidecars.contains(&sidecar_path(dir, name_seq));
        let found = SegmentFile { dir, path: &path, name_seq, is_last, has_sidecar };
        match load_segment(&found, next_seq, storage, read_only)? {
            Loaded::Segment { segment, closed } => {
                closed_seq = closed.then_some(segment.first_seq);
                next_seq = Some(segment.end_seq());
                segments.push_back(segment);
            }
            Loaded::Empty { continues_at } => {
                // Every earlier seq was assigned already (perhaps released
                // and deleted).
                next_seq = Some(next_seq.map_or(continues_at, |seq| seq.max(continues_at)));
            }
            Loaded::Vanished => {}
        }
    }
    let closed_sidecar = segments.back().is_some_and(|last| closed_seq == Some(last.first_seq));
    let continues_at = next_seq.unwrap_or(1);
    match segments.back_mut() {
        Some(last) if last.end_seq() >= continues_at => {
            // When an empty last segment was removed above (W3), the one
            // before it was decoded as sealed but is the active segment
            // again: it must not be taken for a sealed one (e.g. deleted
            // once fully released). Its sidecar, if it was loaded from one,
            // is stale once it grows.
            last.sealed = false;
            let sidecar = sidecar_path(dir, last.first_seq);
            if !read_only
                && !closed_sidecar
                && sidecars.contains(&sidecar)
                && storage.list(dir).map_err(|e| io_error(dir, e))?.contains(&sidecar)
            {
                storage.remove(&sidecar).map_err(|e| io_error(&sidecar, e))?;
            }
        }
        // No segment, or the removed one continued the log past the last
        // (a skip, S1 or W3 of `skip_to`): the skip was durable, so the
        // log goes on there, in a new segment.
        _ if !read_only => segments.push_back(create_segment(storage, dir, continues_at, options)?),
        _ => {}
    }
    let next_seq = segments.back().map_or(next_seq.unwrap_or(1), |s| s.end_seq());
    let (mut release_log, ranges, clean) = ReleaseLog::read(storage, dir, read_only)?;
    let mut reaches_past_tail = false;
    for &(lo, hi) in &ranges {
        reaches_past_tail |= hi >= next_seq;
        for segment in segments.iter_mut() {
            if let Some((from, to)) = segment.local_range(lo, hi) {
                segment.release(from, to);
            }
        }
    }
    if !read_only && (reaches_past_tail || !clean) {
        // An entry may name seqs past the recovered tail: releases are synced
        // before the data under `Never`/`Interval`, and a process crash keeps
        // a written release entry but loses the write buffer. Those seqs will
        // be assigned again to new records, which must not start out
        // released; and a torn tail must not hide entries appended after it.
        // So rewrite the file with exactly the releases of the records
        // present. Found by the model test (tests/model.rs).
        let present: Vec<(u64, u64)> = segments.iter().flat_map(|s| s.released_ranges()).collect();
        tracing::warn!(dir = %dir.display(), clean, "rewriting release.log to the records present");
        release_log.rewrite(storage, dir, &present)?;
    }
    let live_bytes = segments.iter().map(|s| s.live_bytes).sum();
    let live_records = segments.iter().map(|s| s.record_count() - s.released_count).sum();
    let flushed_end = segments.back().map_or(SEGMENT_HEADER_BYTES, |s| s.end);
    let mut allocated_bytes = flushed_end;
    if let (false, true, Some(active)) = (read_only, options.preallocate, segments.back()) {
        let target = options.segment_bytes_max.max(active.end);
        active.file.allocate(target).map_err(|e| io_error(&active.path, e))?;
        allocated_bytes = target;
    }
    Ok(State {
        segments,
        next_seq,
        buffer: Vec::new(),
        flushed_end,
        flushed_seq: next_seq - 1,
        live_bytes,
        live_records,
        release_log,
        allocated_bytes,
        zeroed_end: flushed_end,
        writeback_end: flushed_end,
        last_sync: Instant::now(),
        closed_sidecar,
    })
}

/// A segment file found by the directory listing.
#[derive(Clone, Copy)]
struct SegmentFile<'a> {
    dir: &'a Path,
    path: &'a Path,
    /// The first seq its name gives.
    name_seq: u64,
    /// The last segment of the listing: the active one.
    is_last: bool,
    has_sidecar: bool,
}

/// What became of one segment file at open.
enum Loaded {
    /// `closed`: the active segment, loaded from its clean close's sidecar.
    Segment { segment: Segment, closed: bool },
    /// A last segment that holds nothing and is removed: its creation was
    /// torn (crash case W3), or `skip_to` had rewritten its header but not
    /// yet renamed it (S1). The log continues at `continues_at` or later.
    Empty { continues_at: u64 },
    /// Gone since the listing: another process (the engine whose directory a
    /// read-only open inspects) deleted it, which it does only once every
    /// record in it was released.
    Vanished,
}

/// Attempts at reading the active segment of a log another process may be
/// writing, before damage in it is reported (see [`load_segment`]).
const LIVE_READ_ATTEMPTS: u32 = 3;

/// Opens, decodes and indexes one segment file.
///
/// A read-only open may inspect a directory that an engine is changing. It
/// never maps the active segment: sealing shortens that file (to cut its
/// preallocated zeros), and reading a mapping past a file's new end is a
/// SIGBUS. It reads that segment with `read_at` instead, which only sees a
/// shorter file. A frame of it that is being written is a torn tail, as
/// after a crash; damage followed by valid frames further than a torn write
/// reaches can also be a write that landed while the file was being read,
/// so a read-only open reads it again and reports damage only if it stays.
fn load_segment(
    found: &SegmentFile<'_>,
    next_seq: Option<u64>,
    storage: &dyn Storage,
    read_only: bool,
) -> Result<Loaded> {
    let path = found.path;
    let opened = if read_only { storage.open_read_only(path) } else { storage.open(path, false) };
    let file = match opened {
        Ok(file) => file,
        Err(e) if read_only && e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Vanished),
        Err(e) => return Err(io_error(path, e)),
    };
    if !(read_only && found.is_last) {
        let view = file.map().map_err(|e| io_error(path, e))?;
        return load_segment_bytes(found, next_seq, file.clone(), view.bytes(), storage, read_only);
    }
    let mut attempt = 1;
    loop {
        let bytes = read_whole(file.as_ref()).map_err(|e| io_error(path, e))?;
        match load_segment_bytes(found, next_seq, file.clone(), &bytes, storage, read_only) {
            Err(Error::Corrupt { .. }) if attempt < LIVE_READ_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            loaded => return loaded,
        }
    }
}

/// [`load_segment`] on the segment's bytes.
fn load_segment_bytes(
    found: &SegmentFile<'_>,
    next_seq: Option<u64>,
    file: std::sync::Arc<dyn crate::storage::StorageFile>,
    bytes: &[u8],
    storage: &dyn Storage,
    read_only: bool,
) -> Result<Loaded> {
    let (path, name_seq) = (found.path, found.name_seq);
    let body_is_zero = || bytes.get(SEGMENT_HEADER_BYTES as usize..).is_none_or(is_all_zero);
    let first_seq = match decode_header(bytes) {
        Ok(seq) if seq == name_seq => seq,
        Ok(seq) if found.is_last && body_is_zero() => {
            // Crash case S1: `skip_to` rewrote the header of the empty
            // active segment; the crash came before the rename.
            remove_empty_last(found, storage, read_only, "removing an empty segment whose restart was cut short")?;
            return Ok(Loaded::Empty { continues_at: seq.max(name_seq) });
        }
        Ok(seq) => {
            return Err(corrupt(path, 0, format!("header names seq {seq} but the file name says {name_seq}")));
        }
        Err(reason) => {
            if found.is_last && body_is_zero() {
                // Crash case W3: the segment was being created; it holds nothing.
                tracing::debug!(path = %path.display(), reason, "the last segment's header is torn");
                remove_empty_last(found, storage, read_only, "removing a segment whose creation was torn")?;
                return Ok(Loaded::Empty { continues_at: name_seq });
            }
            return Err(corrupt(path, 0, reason.to_owned()));
        }
    };
    if let Some(expected) = next_seq {
        if first_seq < expected {
            return Err(corrupt(
                path,
                0,
                format!(
                    "segment starts at seq {first_seq}, overlapping the previous segment which ends before {expected}"
                ),
            ));
        }
    }
    let mut segment = Segment::new(first_seq, path.to_path_buf(), file);
    let sidecar = sidecar_path(found.dir, first_seq);
    let mut closed = false;
    if found.is_last {
        // A clean close left the active segment's sidecar (crash case C1
        // in format.rs): its frames need no scan, and the zeros after them
        // no read. A read-only open scans, as its segment may be growing.
        closed = found.has_sidecar && !read_only && load_sidecar(storage, &sidecar, &mut segment, Tail::Closed(bytes));
        if found.has_sidecar && !read_only && !closed {
            // Crash case R2 (or a W3 removal below): the segment was
            // sealed, but appends continue in it, so its sidecar is stale.
            storage.remove(&sidecar).map_err(|e| io_error(&sidecar, e))?;
        }
        if !closed {
            scan_segment(&mut segment, bytes, true, read_only)?;
        }
    } else if !(found.has_sidecar && load_sidecar(storage, &sidecar, &mut segment, Tail::Sealed(bytes.len() as u64))) {
        scan_segment(&mut segment, bytes, false, read_only)?;
    }
    segment.sealed = !found.is_last;
    Ok(Loaded::Segment { segment, closed })
}

/// Removes a last segment that holds nothing (crash cases W3, S1); a
/// read-only open leaves it.
fn remove_empty_last(found: &SegmentFile<'_>, storage: &dyn Storage, read_only: bool, why: &str) -> Result<()> {
    if read_only {
        return Ok(());
    }
    tracing::warn!(path = %found.path.display(), "{why}");
    storage.remove(found.path).map_err(|e| io_error(found.path, e))?;
    storage.sync_dir(found.dir).map_err(|e| io_error(found.dir, e))
}

/// Decodes (and CRC-checks) every frame of a segment. A sealed segment must
/// decode to its end; the active one ends at its first undecodable frame
/// when what follows is a torn tail (see [`later_valid_frame`]).
fn scan_segment(segment: &mut Segment, bytes: &[u8], is_last: bool, read_only: bool) -> Result<()> {
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    let mut seq = segment.first_seq;
    while offset < bytes.len() {
        match decode_at(bytes, offset, seq) {
            Ok(decoded) => {
                segment.push(decoded.frame_bytes());
                offset += decoded.frame_bytes() as usize;
                seq += 1;
            }
            Err(damage) if is_last => {
                if is_all_zero(&bytes[offset..]) {
                    return Ok(()); // the preallocated, never written part
                }
                if let Some((valid_offset, valid_seq)) = later_valid_frame(bytes, offset, seq) {
                    // Found by the CLI tests: a flipped byte in the first
                    // frame of the active segment made this whole segment of
                    // acknowledged records look like a torn tail.
                    return Err(corrupt(
                        &segment.path,
                        offset as u64,
                        format!(
                            "{} in the active segment (expected seq {seq}), yet a valid frame of seq {valid_seq} \
                             follows at offset {valid_offset}, beyond any torn write",
                            describe(damage)
                        ),
                    ));
                }
                return truncate_tail(segment, bytes, offset, damage, read_only);
            }
            Err(damage) => {
                return Err(corrupt(
                    &segment.path,
                    offset as u64,
                    format!("{} in a sealed segment (expected seq {seq})", describe(damage)),
                ));
            }
        }
    }
    Ok(())
}

/// What a sidecar must agree with at the end of its segment.
enum Tail<'a> {
    /// A sealed segment ends exactly at its last frame: the file's length.
    Sealed(u64),
    /// The active segment after a clean close: its bytes. The frames end
    /// inside them and the next frame's header is still zeros.
    Closed(&'a [u8]),
}

/// Loads a segment's frame offsets from its sidecar instead of scanning it.
/// Returns false (the caller scans) when the sidecar is unreadable,
/// damaged, of the other kind, or disagrees with the segment's end. The
/// frames are then unverified: each is CRC-checked when first read, or by
/// the background check.
///
/// A sealed segment's offsets stay in the mapped sidecar (`offsets.rs`);
/// the active segment's are copied to the heap, where its appends add more.
fn load_sidecar(storage: &dyn Storage, path: &Path, segment: &mut Segment, tail: Tail<'_>) -> bool {
    let Ok(file) = storage.open_read_only(path) else { return false };
    let (kind, sidecar): (_, Arc<dyn Mapped>) = match tail {
        Tail::Sealed(_) => match file.map() {
            Ok(view) => (SidecarKind::Sealed, view),
            Err(_) => return false,
        },
        Tail::Closed(_) => match read_whole(file.as_ref()) {
            Ok(bytes) => (SidecarKind::Closed, Arc::new(CopiedBytes(bytes))),
            Err(_) => return false,
        },
    };
    let agrees = |frames_end: u64| match tail {
        Tail::Sealed(segment_bytes) => frames_end == segment_bytes,
        Tail::Closed(segment) => segment.get(frames_end as usize..).is_some_and(|after| {
            // A frame written after the close starts at `frames_end`: its
            // header (seq >= 1) is never zeros. The sidecar is removed
            // before any such write (format.rs, C2), so this only guards.
            is_all_zero(&after[..after.len().min(FRAME_HEADER_BYTES as usize)])
        }),
    };
    let reason = match decode_sidecar(sidecar, kind, segment.first_seq) {
        Ok((offsets, frames_end)) if agrees(frames_end) => {
            let offsets = match kind {
                SidecarKind::Sealed => offsets,
                SidecarKind::Closed => Offsets::Heap(offsets.iter().map(|offset| offset as u32).collect()),
            };
            segment.load(offsets, frames_end);
            return true;
        }
        Ok(_) => "sidecar describes another segment length",
        Err(reason) => reason,
    };
    tracing::warn!(path = %path.display(), reason, "ignoring a sidecar index; scanning its segment");
    false
}

fn truncate_tail(segment: &Segment, bytes: &[u8], offset: usize, damage: FrameDamage, read_only: bool) -> Result<()> {
    // Crash case W1: a torn or partly written frame. It was never acknowledged
    // under SyncPolicy::Always (the fsync comes after the write).
    if read_only {
        // Nothing is cut; in a directory an engine is writing, this is
        // the frame being written, not a sign of a crash.
        tracing::debug!(path = %segment.path.display(), offset, damage = describe(damage), "the active segment ends in a partial frame");
        return Ok(());
    }
    tracing::warn!(
        path = %segment.path.display(),
        offset,
        discarded_bytes = bytes.len() - offset,
        damage = describe(damage),
        "truncating a torn tail back to the last whole frame"
    );
    // Cut and re-extend: the blocks past `offset` come back as zeros, so no
    // stale frame of the torn write can ever line up with a later append.
    segment.file.set_len(offset as u64).map_err(|e| io_error(&segment.path, e))?;
    segment.file.sync_all().map_err(|e| io_error(&segment.path, e))
}

fn corrupt(path: &Path, offset: u64, reason: String) -> Error {
    Error::Corrupt { path: path.to_path_buf(), offset, reason }
}
