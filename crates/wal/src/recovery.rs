//! Opening a log: scanning segments, truncating a torn tail, applying the
//! release log. See [`crate::format`] for the crash cases this handles.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

use crate::frame::{decode_at, FrameDamage};
use crate::log::{create_segment, State};
use crate::release_log::ReleaseLog;
use crate::segment::{decode_header, parse_segment_path, Segment, SEGMENT_HEADER_BYTES};
use crate::storage::Storage;
use crate::{io_error, Error, Result, WalOptions};

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
    let mut segments = VecDeque::new();
    let mut next_seq: Option<u64> = None;
    let last_index = segment_paths.len().saturating_sub(1);
    for (index, (name_seq, path)) in segment_paths.into_iter().enumerate() {
        let is_last = index == last_index;
        let opened = if read_only { storage.open_read_only(&path) } else { storage.open(&path, false) };
        let file = opened.map_err(|e| io_error(&path, e))?;
        let view = file.map().map_err(|e| io_error(&path, e))?;
        let bytes = view.bytes();
        let first_seq = match decode_header(bytes) {
            Ok(seq) if seq == name_seq => seq,
            Ok(seq) => {
                return Err(corrupt(&path, 0, format!("header names seq {seq} but the file name says {name_seq}")));
            }
            Err(reason) => {
                let body_is_zero = bytes.get(SEGMENT_HEADER_BYTES as usize..).is_none_or(|b| b.iter().all(|&x| x == 0));
                if is_last && body_is_zero {
                    // Crash case W3: the segment was being created; it holds nothing.
                    tracing::warn!(path = %path.display(), reason, "removing a segment whose creation was torn");
                    if !read_only {
                        storage.remove(&path).map_err(|e| io_error(&path, e))?;
                        storage.sync_dir(dir).map_err(|e| io_error(dir, e))?;
                    }
                    // Its name is where the log continues: every earlier seq
                    // was assigned already (perhaps released and deleted).
                    next_seq = Some(next_seq.map_or(name_seq, |seq| seq.max(name_seq)));
                    continue;
                }
                return Err(corrupt(&path, 0, reason.to_owned()));
            }
        };
        if let Some(expected) = next_seq {
            if first_seq < expected {
                return Err(corrupt(&path, 0, format!("segment starts at seq {first_seq}, overlapping the previous segment which ends before {expected}")));
            }
        }
        let mut segment = Segment::new(first_seq, path.clone(), file.clone());
        let mut offset = SEGMENT_HEADER_BYTES as usize;
        let mut seq = first_seq;
        while offset < bytes.len() {
            match decode_at(bytes, offset, seq) {
                Ok(decoded) => {
                    segment.push(decoded.frame_bytes());
                    offset += decoded.frame_bytes() as usize;
                    seq += 1;
                }
                Err(damage) if is_last => {
                    truncate_tail(&segment, bytes, offset, damage, read_only)?;
                    break;
                }
                Err(damage) => {
                    return Err(corrupt(
                        &path,
                        offset as u64,
                        format!("{} in a sealed segment (expected seq {seq})", describe(damage)),
                    ));
                }
            }
        }
        segment.sealed = !is_last;
        next_seq = Some(seq);
        segments.push_back(segment);
    }
    if let Some(last) = segments.back_mut() {
        // When a torn last segment was removed above (W3), the one before it
        // was decoded as sealed but is the active segment again: it must not
        // be taken for a sealed one (e.g. deleted once fully released).
        last.sealed = false;
    }
    if segments.is_empty() && !read_only {
        segments.push_back(create_segment(storage, dir, next_seq.unwrap_or(1), options)?);
    }
    let next_seq = segments.back().map_or(next_seq.unwrap_or(1), |s| s.end_seq());
    let (mut release_log, ranges, clean) = ReleaseLog::read(storage, dir, read_only)?;
    let mut reaches_past_tail = false;
    for &(lo, hi) in &ranges {
        reaches_past_tail |= hi >= next_seq;
        for segment in segments.iter_mut() {
            if segment.end_seq() <= lo || segment.first_seq > hi {
                continue;
            }
            let from = (lo.max(segment.first_seq) - segment.first_seq) as usize;
            let to = (hi.min(segment.end_seq() - 1) + 1 - segment.first_seq) as usize;
            segment.release(from, to);
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
        last_sync: Instant::now(),
    })
}

fn truncate_tail(segment: &Segment, bytes: &[u8], offset: usize, damage: FrameDamage, read_only: bool) -> Result<()> {
    let tail_is_zero = bytes[offset..].iter().all(|&b| b == 0);
    if tail_is_zero {
        return Ok(()); // the preallocated, never written part
    }
    // Crash case W1: a torn or partly written frame. It was never acknowledged
    // under SyncPolicy::Always (the fsync comes after the write).
    tracing::warn!(
        path = %segment.path.display(),
        offset,
        discarded_bytes = bytes.len() - offset,
        damage = describe(damage),
        "truncating a torn tail back to the last whole frame"
    );
    if read_only {
        return Ok(());
    }
    // Cut and re-extend: the blocks past `offset` come back as zeros, so no
    // stale frame of the torn write can ever line up with a later append.
    segment.file.set_len(offset as u64).map_err(|e| io_error(&segment.path, e))?;
    segment.file.sync_all().map_err(|e| io_error(&segment.path, e))
}

fn describe(damage: FrameDamage) -> String {
    match damage {
        FrameDamage::Truncated => "frame cut short".into(),
        FrameDamage::BadLength => "frame length out of range".into(),
        FrameDamage::BadCrc => "CRC mismatch".into(),
        FrameDamage::BadSeq { found } => format!("frame carries seq {found}"),
    }
}

fn corrupt(path: &Path, offset: u64, reason: String) -> Error {
    Error::Corrupt { path: path.to_path_buf(), offset, reason }
}
