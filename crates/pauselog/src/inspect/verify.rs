//! `verify`: every frame's CRC, and the accounting recomputed from the
//! bytes on disk.
//!
//! For each log of each map, the log is opened read-only (its counts come
//! from the sidecars, the active segment and release.log, as an engine's
//! open computes them) and every frame it has not CRC-checked is checked;
//! then [`pauselog_wal::audit`] reads the same directory again from the
//! bytes alone (every frame decoded, release.log parsed strictly, no
//! sidecar, no counter) and the two must agree on every live record and
//! its size. Then, per map, the queue must be whole: every seq from the
//! meta log's head to the data log's tail is a live record, except a
//! prefix whose release reached the disk before the head's advance did.
//!
//! An engine may be changing the directory meanwhile, so every comparison
//! only asks what holds whatever it did in between: records are appended
//! after the tail and released, never the reverse; the meta log is read
//! before the data log for the check that the data log holds every seq
//! the head passed, and again after it for the check that the queue is
//! whole (the head passes records before the data log releases them).

use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use pauselog_wal::{Audit, Wal};

use super::open_read_only;
use crate::open::{read_durable, Durable};
use crate::{Error, Result};

/// How many times, and how far apart, `verify` reopens a data log that
/// looks behind its meta log before it reports it: an engine may have
/// appended the records the head passed a moment ago, and hand them to the
/// OS just after the data log was read.
const BEHIND_RETRIES: u32 = 20;
const BEHIND_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// What `verify` checked and found. Non-exhaustive: the engine builds it
/// and may check more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Per map: name, frames checked (released ones included), live bytes.
    pub maps: Vec<(String, u64, u64)>,
    /// Every problem found, with file and offset where known.
    pub problems: Vec<String>,
}

/// Checks every frame's CRC in every map's logs, recomputes each log's
/// accounting from its files and compares it with what the log reports,
/// and checks that the meta log and the data log agree on the queue (R19).
/// See the module docs for why this holds while an engine runs.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for name in crate::list_map_names(dir)? {
        let (mut frames, mut bytes) = (0, 0);
        let durable_before = open_read_only(dir, &name, "meta").and_then(|meta| {
            let checked = check_log(&name, "meta", &meta)?;
            frames += checked.frames;
            bytes += checked.live_bytes;
            report.problems.extend(checked.problems);
            read_durable(&name, &meta)
        });
        let data = open_read_only(dir, &name, "data").and_then(|data| {
            let checked = check_log(&name, "data", &data)?;
            frames += checked.frames;
            bytes += checked.live_bytes;
            report.problems.extend(checked.problems);
            Ok((data, checked.audit))
        });
        let durable_after = open_read_only(dir, &name, "meta").and_then(|meta| read_durable(&name, &meta));
        match (durable_before, data, durable_after) {
            (Ok(before), Ok((data, audit)), Ok(after)) => {
                report.problems.extend(check_head(dir, &name, &before, &data)?);
                report.problems.extend(check_queue(&name, &after, &audit));
            }
            (before, data, after) => {
                let errors = [before.err(), data.err(), after.err()];
                report.problems.extend(errors.into_iter().flatten().map(|error| format!("{name}: {error}")));
            }
        }
        report.maps.push((name, frames, bytes));
    }
    Ok(report)
}

/// What [`check_log`] found in one log.
struct CheckedLog {
    /// Frames in the files, released ones included.
    frames: u64,
    /// Encoded bytes of the live records.
    live_bytes: u64,
    problems: Vec<String>,
    audit: Audit,
}

/// CRC-checks every frame of one log and compares its accounting with an
/// audit of its files.
fn check_log(name: &str, log: &str, wal: &Wal) -> Result<CheckedLog> {
    let mut problems = Vec::new();
    let audit = pauselog_wal::audit(wal.dir()).map_err(|e| Error::from_wal(name, e))?;
    problems.extend(audit.damage().iter().map(|damage| format!("{name}/{log}: {damage}")));
    let mut live = Vec::new();
    let read = wal.verify().and_then(|_| {
        for entry in wal.reader(1) {
            let entry = entry?;
            live.push((entry.seq(), entry.frame_bytes()));
        }
        Ok(())
    });
    if let Err(error) = read {
        problems.push(format!("{name}/{log}: {error}"));
        return Ok(CheckedLog { frames: audit.frame_count(), live_bytes: 0, problems, audit });
    }
    let live_bytes: u64 = live.iter().map(|(_, bytes)| bytes).sum();
    let stats = wal.stats();
    if stats.live_bytes != live_bytes || stats.live_records != live.len() as u64 {
        problems.push(format!(
            "{name}/{log}: the log counts {} records / {} bytes, its live records add up to {} / {live_bytes}",
            stats.live_records,
            stats.live_bytes,
            live.len()
        ));
    }
    problems
        .extend(compare_with_audit(&live, wal.next_seq(), &audit).map(|problem| format!("{name}/{log}: {problem}")));
    Ok(CheckedLog { frames: audit.frame_count(), live_bytes, problems, audit })
}

/// The first disagreements between the live records an open log reports
/// (`live`: seq and encoded bytes, ascending, every seq below `next_seq`)
/// and an audit of its files taken after it. Between the two an engine may
/// append records (past `next_seq`), release some, and delete segments
/// whose records are all released; so a record live for the log must be in
/// the files with the same size, released there, or in a deleted segment,
/// and a record live in the files and below `next_seq` must be live for
/// the log.
fn compare_with_audit(live: &[(u64, u64)], next_seq: u64, audit: &Audit) -> impl Iterator<Item = String> {
    const SHOWN_MAX: usize = 5;
    let mut problems = Vec::new();
    for &(seq, bytes) in live {
        match audit.frame_bytes(seq) {
            Some(found) if found != bytes => problems
                .push(format!("the log counts {bytes} bytes for seq {seq}, its frame in the files has {found} bytes")),
            Some(_) => {}
            None if seq >= audit.next_seq() => {
                problems.push(format!("the log counts seq {seq} as live, the files end before it"))
            }
            None => {} // its segment was deleted: every record in it was released
        }
    }
    let live_seqs: std::collections::HashSet<u64> = live.iter().map(|&(seq, _)| seq).collect();
    for (seq, _) in audit.live().take_while(|&(seq, _)| seq < next_seq) {
        if !live_seqs.contains(&seq) {
            problems.push(format!(
                "seq {seq} is live in the files (no release.log entry covers it), but the log counts it released"
            ));
        }
    }
    let extra = problems.len().saturating_sub(SHOWN_MAX);
    problems.truncate(SHOWN_MAX);
    if extra > 0 {
        problems.push(format!("and {extra} more disagreements about the accounting"));
    }
    problems.into_iter()
}

/// The data log must hold every seq the meta log's head has passed. Read
/// again while it looks behind: see [`BEHIND_RETRIES`].
fn check_head(dir: &Path, name: &str, durable: &Durable, data: &Wal) -> Result<Option<String>> {
    let mut data_next = data.next_seq();
    for _ in 0..BEHIND_RETRIES {
        if durable.head <= data_next {
            return Ok(None);
        }
        std::thread::sleep(BEHIND_RETRY_PAUSE);
        data_next = open_read_only(dir, name, "data")?.next_seq();
    }
    Ok((durable.head > data_next).then(|| {
        format!(
            "{name}: the meta log says records up to seq {} left the queue, but the data log ends at seq {}: acknowledged records are missing",
            durable.head - 1,
            data_next - 1
        )
    }))
}

/// The queue is every record from head to the data log's tail: each must
/// be live, except for a prefix that the replay delivered and released and
/// whose head advance a crash lost (the meta log's head is synced less
/// often than the data log's releases). A released record after a live one
/// means queued records are gone. Seq markers (released at once, and told
/// by their size: every record is larger) and seqs with no frame (never
/// assigned, or in a segment deleted once all of it was released) are no
/// records.
fn check_queue(name: &str, durable: &Durable, audit: &Audit) -> Option<String> {
    let queue: RangeInclusive<u64> = durable.head..=audit.next_seq().saturating_sub(1);
    let marker_bytes = pauselog_wal::frame_bytes(crate::codec::MARKER_BODY.len());
    let mut seen_live = false;
    // The first and last seq gone, and how many.
    let mut gone: Option<(u64, u64, u64)> = None;
    for seq in queue {
        if audit.frame_bytes(seq).is_none_or(|bytes| bytes == marker_bytes) {
            continue;
        }
        if !audit.is_released(seq) {
            seen_live = true;
        } else if seen_live {
            gone = Some(gone.map_or((seq, seq, 1), |(first, _, count)| (first, seq, count + 1)));
        }
    }
    gone.map(|(first, last, count)| {
        format!(
            "{name}: {count} queued seqs between {first} and {last} (the queue starts at seq {}) are released or missing in the data log: acknowledged records are gone",
            durable.head
        )
    })
}
