//! The writer: appending frames to the buffer, writing the buffer into the
//! active segment, syncing, sealing a segment and starting the next,
//! releasing records and handing fully released segments to the janitor.
//!
//! Every function here runs under the log's state lock (it takes the
//! `State` it changes), except [`sync`], which takes the lock for the
//! flush and runs the fsync outside it. Only the writer writes: readers
//! read what is in the files and in the buffer, and never flush or rotate.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::error::{io_error, Result};
use crate::frame::{self, frame_bytes};
use crate::janitor::{self, Released};
use crate::options::SyncPolicy;
use crate::release_log::COMPACT_ENTRIES;
use crate::segment::{
    create_segment, encode_header, encode_sidecar, map_sealed_offsets, segment_path, sidecar_path, write_durably,
    SidecarKind,
};
use crate::state::{Shared, State};

/// How far ahead of the appends the active segment is zero-filled under
/// `SyncPolicy::Always` (see [`zero_fill`]).
const ZERO_FILL_AHEAD_BYTES: u64 = 1024 * 1024;

/// Under `Interval` and `Never`, written data is handed to the device in
/// chunks of this size (see [`flush`]).
pub(crate) const WRITEBACK_CHUNK_BYTES: u64 = 1024 * 1024;

/// Appended frames wait in memory up to this many bytes before one `pwrite`.
const BUFFER_BYTES_MAX: usize = 1024 * 1024;

/// Appends one frame to the buffer, sealing the active segment first if the
/// frame would not fit in it.
pub(crate) fn append(shared: &Shared, state: &mut State, body: &[u8]) -> Result<()> {
    let frame_len = frame_bytes(body.len());
    let active = state.active();
    let would_end = active.end + frame_len;
    if would_end > shared.options.segment_bytes_max && active.record_count() > 0 {
        rotate(shared, state)?;
    }
    let seq = state.next_seq;
    frame::encode_into(&mut state.buffer, seq, body);
    state.active().push(frame_len);
    state.next_seq += 1;
    shared.appended_seq.store(seq, Ordering::Release);
    state.live_bytes += frame_len;
    state.live_records += 1;
    if state.buffer.len() >= BUFFER_BYTES_MAX {
        flush(shared, state)?;
    }
    Ok(())
}

/// Writes the buffered frames into the active file (no fsync).
pub(crate) fn flush(shared: &Shared, state: &mut State) -> Result<()> {
    if state.buffer.is_empty() {
        return Ok(());
    }
    remove_closed_sidecar(shared, state)?;
    let options = &shared.options;
    let needed = state.flushed_end + state.buffer.len() as u64;
    if needed > state.allocated_bytes {
        let target = needed.max(options.segment_bytes_max);
        let active = state.segments.back().expect("active segment");
        let result = if options.preallocate { active.file.allocate(target) } else { Ok(()) };
        result.map_err(|e| shared.poison(&io_error(&active.path, e)))?;
        state.allocated_bytes = target;
    }
    if needed > state.zeroed_end && options.preallocate && options.sync == SyncPolicy::Always {
        zero_fill(shared, state, needed)?;
    }
    let active = state.segments.back().expect("active segment");
    if let Err(e) = active.file.write_all_at(&state.buffer, state.flushed_end) {
        // A failed write may have left part of the buffer in the page
        // cache: treat it like a failed fsync.
        return Err(shared.poison(&io_error(&active.path, e)));
    }
    // Under Interval and Never, hand full chunks to the device as they
    // are written (RocksDB's `bytes_per_sync`): the next fsync, at the
    // latest the one that seals the segment, then finds them written
    // instead of flushing the whole segment at once. 256 MiB of bulk
    // appends took 90-110 ms with this and 155-165 ms without.
    if options.sync != SyncPolicy::Always && needed - state.writeback_end >= WRITEBACK_CHUNK_BYTES {
        // Only a hint: an error here changes nothing that fsync reports.
        let _ = active.file.start_writeback(state.writeback_end, needed - state.writeback_end);
        state.writeback_end = needed;
    }
    state.flushed_end = needed;
    state.flushed_seq = state.next_seq - 1;
    state.buffer.clear();
    Ok(())
}

/// Removes the active segment's sidecar from the last clean close, and
/// makes that durable, before the first write to the segment: once frames
/// follow the ones it lists, it would hide them from the next open (crash
/// case C2 in [`crate::format`]).
pub(crate) fn remove_closed_sidecar(shared: &Shared, state: &mut State) -> Result<()> {
    if !state.closed_sidecar {
        return Ok(());
    }
    let active = state.segments.back().expect("active segment");
    let sidecar = sidecar_path(&shared.dir, active.first_seq);
    match shared.storage.remove(&sidecar) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(shared.poison(&io_error(&sidecar, e))),
    }
    shared.storage.sync_dir(&shared.dir).map_err(|e| shared.poison(&io_error(&shared.dir, e)))?;
    state.closed_sidecar = false;
    Ok(())
}

/// At a clean close, after the final sync: writes the active segment's
/// sidecar so that the next open need not scan it (crash case C1 in
/// [`crate::format`]). Nothing is written if the one the last open found
/// is still there (nothing was written since). A failure only costs the
/// next open its scan: it is logged, and the partial file is removed.
pub(crate) fn write_closed_sidecar(shared: &Shared) {
    let mut state = shared.lock_state();
    if state.closed_sidecar || shared.is_poisoned() || !state.buffer.is_empty() {
        return;
    }
    let Some(active) = state.segments.back() else { return };
    let sidecar = sidecar_path(&shared.dir, active.first_seq);
    let bytes = encode_sidecar(active, SidecarKind::Closed);
    match write_durably(shared.storage.as_ref(), &sidecar, &bytes) {
        Ok(()) => state.closed_sidecar = true,
        Err(error) => {
            tracing::warn!(%error, "could not write the active segment's sidecar at close; the next open scans it");
            let _ = shared.storage.remove(&sidecar);
        }
    }
}

/// Writes the buffer out if it holds `seq` (`SyncPolicy::Interval` when
/// no sync is due): the first caller writes every buffered frame, and
/// callers behind it find theirs written.
pub(crate) fn write_through(shared: &Shared, state: &mut State, seq: u64) -> Result<()> {
    if state.flushed_seq < seq {
        flush(shared, state)?;
    }
    Ok(())
}

/// Under `SyncPolicy::Always`, writes zeros over the preallocated
/// blocks up to [`ZERO_FILL_AHEAD_BYTES`] ahead of the appends. fallocate
/// leaves its blocks *unwritten*, so the first fdatasync of data in one
/// must also journal the extent's conversion: on this project's VM a
/// group's 8 KiB fdatasync cost 1.3-1.6x a 1 KiB one there, and about
/// the same as a 1 KiB one over written blocks. The zeros reach the disk
/// with the next fdatasync, once per [`ZERO_FILL_AHEAD_BYTES`] of appends.
fn zero_fill(shared: &Shared, state: &mut State, needed: u64) -> Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    // The buffer about to be written at `flushed_end..needed` writes
    // its own blocks: the zeros start after it.
    let from = state.zeroed_end.max(needed);
    let to = (needed + ZERO_FILL_AHEAD_BYTES).min(state.allocated_bytes).max(needed);
    let active = state.segments.back().expect("active segment");
    let mut offset = from;
    while offset < to {
        let len = (to - offset).min(ZEROS.len() as u64) as usize;
        if let Err(e) = active.file.write_all_at(&ZEROS[..len], offset) {
            return Err(shared.poison(&io_error(&active.path, e)));
        }
        offset += len as u64;
    }
    state.zeroed_end = to;
    Ok(())
}

/// Writes the buffer out, syncs release.log and then the active segment,
/// and advances `durable_seq`. The caller holds the group commit's sync
/// lock (`group_commit.rs`), so fsyncs never overlap; the fsync itself runs
/// outside the state lock, so appenders keep filling the next group while
/// this one is made durable.
pub(crate) fn sync(shared: &Shared) -> Result<()> {
    let (file, path, target) = {
        let mut state = shared.lock_state();
        flush(shared, &mut state)?;
        if let Err(e) = state.release_log.sync() {
            return Err(shared.poison(&e));
        }
        state.last_sync = Instant::now();
        #[cfg(debug_assertions)]
        state.check_accounting();
        let active = state.segments.back().expect("active segment");
        (active.file.clone(), active.path.clone(), state.flushed_seq)
    };
    let started = Instant::now();
    if let Err(e) = file.sync_data() {
        return Err(shared.poison(&io_error(&path, e)));
    }
    shared.sync_latency.record(started.elapsed());
    shared.sync_count.fetch_add(1, Ordering::Relaxed);
    shared.durable_seq.fetch_max(target, Ordering::AcqRel);
    Ok(())
}

/// Seals the active segment (crash cases R1-R3 in [`crate::format`]) and
/// starts the next; nothing happens to an empty active segment.
pub(crate) fn rotate(shared: &Shared, state: &mut State) -> Result<()> {
    if state.active().record_count() == 0 {
        return Ok(());
    }
    let next_seq = state.next_seq;
    rotate_to(shared, state, next_seq)
}

/// Seals the active segment, which holds records, and starts the next one
/// at `first_seq` (the next seq, or one ahead of it for `skip_to`).
fn rotate_to(shared: &Shared, state: &mut State, first_seq: u64) -> Result<()> {
    flush(shared, state)?;
    let next_seq = state.next_seq;
    {
        let active = state.active();
        // Seal: cut the preallocated zeros so a sealed segment ends exactly
        // at its last frame, and make that durable before a newer segment
        // exists (see format.rs, crash case R2).
        let (file, path, end) = (active.file.clone(), active.path.clone(), active.end);
        file.set_len(end).map_err(|e| shared.poison(&io_error(&path, e)))?;
        file.sync_all().map_err(|e| shared.poison(&io_error(&path, e)))?;
        active.sealed = true;
        // The sidecar lets the next open skip scanning this segment. It
        // is durable before the next segment exists (format.rs, R2/R3);
        // its directory entry becomes durable with the new segment's.
        let sidecar = sidecar_path(&shared.dir, active.first_seq);
        let bytes = encode_sidecar(active, SidecarKind::Sealed);
        write_durably(shared.storage.as_ref(), &sidecar, &bytes).map_err(|e| shared.poison(&e))?;
        // From now on the offsets are read from the sidecar, not the heap.
        // Comparing what reads back costs one read of page cache (4 bytes a
        // record), once per segment.
        match map_sealed_offsets(shared.storage.as_ref(), &sidecar, &bytes, active.offsets.len()) {
            Ok(offsets) => active.offsets = offsets,
            Err(error) => tracing::warn!(%error, "a sealed segment keeps its offsets on the heap"),
        }
    }
    shared.durable_seq.fetch_max(next_seq - 1, Ordering::AcqRel);
    let segment = create_segment(shared.storage.as_ref(), &shared.dir, first_seq, &shared.options)
        .map_err(|e| shared.poison(&e))?;
    state.push_active(segment, &shared.options);
    delete_released_segments(shared, state)
}

/// Makes the next append get `seq` (ahead of the tail). An active segment
/// that holds records is sealed and the next one starts at `seq`; an
/// empty one is renamed to start at `seq` (crash case S1 in
/// [`crate::format`]), so that the common case, a skip right after a
/// rotation or an open, creates and deletes no file. See `Wal::skip_to`.
pub(crate) fn skip_to(shared: &Shared, state: &mut State, seq: u64) -> Result<()> {
    if state.active().record_count() > 0 {
        rotate_to(shared, state, seq)?;
    } else {
        restart_active_at(shared, state, seq)?;
    }
    state.next_seq = seq;
    state.flushed_seq = seq - 1;
    shared.durable_seq.fetch_max(seq - 1, Ordering::AcqRel);
    tracing::debug!(dir = %shared.dir.display(), seq, "sequence numbers skipped ahead so none is reused");
    Ok(())
}

/// Makes the empty active segment start at `seq`: its header is rewritten
/// and synced, then the file is renamed to match and the directory synced.
fn restart_active_at(shared: &Shared, state: &mut State, seq: u64) -> Result<()> {
    remove_closed_sidecar(shared, state)?;
    let active = state.active();
    let (file, path) = (active.file.clone(), active.path.clone());
    file.write_all_at(&encode_header(seq), 0).map_err(|e| shared.poison(&io_error(&path, e)))?;
    file.sync_data().map_err(|e| shared.poison(&io_error(&path, e)))?;
    let renamed = segment_path(&shared.dir, seq);
    shared.storage.rename(&path, &renamed).map_err(|e| shared.poison(&io_error(&path, e)))?;
    shared.storage.sync_dir(&shared.dir).map_err(|e| shared.poison(&io_error(&shared.dir, e)))?;
    active.first_seq = seq;
    active.path = renamed;
    active.view = None;
    Ok(())
}

/// Releases the live records among `lo..=hi` (assigned seqs only): the
/// release.log entry is written first, so a failure releases nothing.
pub(crate) fn release(shared: &Shared, state: &mut State, lo: u64, hi: u64) -> Result<()> {
    let covers_live = state
        .segments
        .iter()
        .any(|segment| segment.local_range(lo, hi).is_some_and(|(from, to)| segment.has_live_in(from, to)));
    if !covers_live {
        return Ok(());
    }
    state.release_log.append(lo, hi)?;
    let (mut records, mut bytes) = (0, 0);
    for segment in state.segments.iter_mut() {
        let Some((from, to)) = segment.local_range(lo, hi) else { continue };
        let (segment_records, segment_bytes) = segment.release(from, to);
        records += segment_records;
        bytes += segment_bytes;
    }
    state.live_records -= records;
    state.live_bytes -= bytes;
    delete_released_segments(shared, state)
}

/// Takes every sealed segment without a live record out of the index and
/// hands its files to the janitor; compacts release.log once it is long.
pub(crate) fn delete_released_segments(shared: &Shared, state: &mut State) -> Result<()> {
    let mut released = Vec::new();
    let mut index = 0;
    while index < state.segments.len() {
        let segment = &state.segments[index];
        if segment.sealed && segment.is_fully_released() {
            let segment = state.segments.remove(index).expect("index in bounds");
            tracing::debug!(path = %segment.path.display(), "released segment deleted");
            released.push(Released {
                sidecar: sidecar_path(&shared.dir, segment.first_seq),
                path: segment.path,
                file: segment.file,
                view: segment.view.map(|(view, _)| view),
                offsets: segment.offsets,
            });
        } else {
            index += 1;
        }
    }
    if !released.is_empty() {
        // Until the janitor gets to them, the files are ordinary fully
        // released segments, which recovery deletes if a crash comes first.
        janitor::delete(&shared.janitor, &shared.storage, released);
    }
    if state.release_log.entry_count > COMPACT_ENTRIES {
        // The compact log drops the ranges of deleted segments, so their
        // unlinks must be done and durable first (the rewrite's directory
        // fsync persists them): else a crash could bring back a segment
        // whose releases are forgotten.
        janitor::settle(&shared.janitor);
        let ranges: Vec<(u64, u64)> = state.segments.iter().flat_map(|s| s.released_ranges()).collect();
        state.release_log.rewrite(shared.storage.as_ref(), &shared.dir, &ranges)?;
    }
    Ok(())
}
