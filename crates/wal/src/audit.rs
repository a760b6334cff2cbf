//! An audit: a log directory read again from its bytes alone.
//!
//! [`audit`] reads every segment file and `release.log` with `read_at`
//! (never through a mapping, so it is safe on a directory another process
//! is changing), decodes and CRC-checks every frame, parses release.log
//! strictly, and counts the live records from these bytes alone. It uses no
//! sidecar and no counter of an open log, so comparing it with what an
//! open [`crate::Wal`] reports checks that log's accounting: a `verify`
//! command does that.
//!
//! It reads a directory an engine is changing as a read-only open does:
//! a segment deleted since the listing was drained; the active segment's
//! partial last frame is being written; damage followed by valid frames
//! further than a torn write reaches is reported only if it is still there
//! when the segment is read again.
//!
//! ```
//! use pauselog_wal::{audit, Wal, WalOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), WalOptions::default())?;
//! wal.append(b"a")?;
//! wal.append(b"b")?;
//! wal.release_through(1)?;
//! let found = audit(dir.path())?;
//! assert!(found.damage().is_empty());
//! assert_eq!((found.frame_count(), found.live_records()), (2, 1));
//! assert_eq!(found.live_bytes(), wal.live_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use crate::error::{io_error, Damage, Result};
use crate::frame::decode_at;
use crate::release_log::{decode_entry, ENTRY_BYTES, RELEASE_LOG_NAME};
use crate::segment::{decode_header, parse_segment_path, SEGMENT_HEADER_BYTES};
use crate::storage::{read_whole, FsStorage, Storage};
use crate::torn::{describe, is_all_zero, later_valid_frame};

/// Reads of the active segment before damage in it is reported (it may be
/// a write landing while the file was read).
const LIVE_READ_ATTEMPTS: u32 = 3;

/// What [`audit`] found. Seqs are those of the frames found in the files.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    segments: Vec<AuditedSegment>,
    /// Released ranges from release.log, sorted and merged.
    released: Vec<(u64, u64)>,
    damage: Vec<Damage>,
}

/// One segment file as the audit decoded it.
#[derive(Debug, Clone)]
struct AuditedSegment {
    first_seq: u64,
    /// Encoded bytes of each frame decoded, in seq order from `first_seq`
    /// (up to the first damage, if any).
    frame_bytes: Vec<u32>,
}

impl AuditedSegment {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.frame_bytes.len() as u64
    }
}

/// Audits the log in `dir` on the real file system; see the module docs.
pub fn audit(dir: &Path) -> Result<Audit> {
    audit_with_storage(dir, &FsStorage)
}

/// [`audit`] on any [`Storage`].
pub fn audit_with_storage(dir: &Path, storage: &dyn Storage) -> Result<Audit> {
    let mut segment_paths: Vec<(u64, PathBuf)> = storage
        .list(dir)
        .map_err(|e| io_error(dir, e))?
        .into_iter()
        .filter_map(|path| parse_segment_path(&path).map(|seq| (seq, path)))
        .collect();
    segment_paths.sort();
    let mut audit = Audit::default();
    let last_index = segment_paths.len().saturating_sub(1);
    for (index, (name_seq, path)) in segment_paths.iter().enumerate() {
        let is_last = index == last_index;
        let mut attempt = 1;
        loop {
            let bytes = match storage.open_read_only(path).and_then(|file| read_whole(file.as_ref())) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break, // drained and deleted
                Err(e) => return Err(io_error(path, e)),
            };
            let (segment, damage) = decode_segment(path, *name_seq, &bytes, is_last);
            if damage.is_some() && is_last && attempt < LIVE_READ_ATTEMPTS {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
                continue;
            }
            if let Some(previous) = audit.segments.last() {
                if segment.as_ref().is_some_and(|s| s.first_seq < previous.end_seq()) {
                    audit.damage.push(Damage {
                        path: path.clone(),
                        offset: 0,
                        reason: format!(
                            "segment overlaps the previous one, which ends before seq {}",
                            previous.end_seq()
                        ),
                    });
                    break;
                }
            }
            audit.segments.extend(segment);
            audit.damage.extend(damage);
            break;
        }
    }
    audit.read_release_log(dir, storage)?;
    Ok(audit)
}

/// Decodes one segment's frames; `None` for a last segment whose creation
/// was torn (crash case W3: it holds nothing).
fn decode_segment(path: &Path, name_seq: u64, bytes: &[u8], is_last: bool) -> (Option<AuditedSegment>, Option<Damage>) {
    let damage = |offset: u64, reason: String| Some(Damage { path: path.to_path_buf(), offset, reason });
    let first_seq = match decode_header(bytes) {
        Ok(seq) if seq == name_seq => seq,
        Ok(seq) => return (None, damage(0, format!("header names seq {seq} but the file name says {name_seq}"))),
        Err(_) if is_last && bytes.get(SEGMENT_HEADER_BYTES as usize..).is_none_or(is_all_zero) => return (None, None),
        Err(reason) => return (None, damage(0, reason.to_owned())),
    };
    let mut segment = AuditedSegment { first_seq, frame_bytes: Vec::new() };
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    while offset < bytes.len() {
        let seq = segment.end_seq();
        match decode_at(bytes, offset, seq) {
            Ok(decoded) => {
                let frame_bytes = decoded.frame_bytes();
                segment.frame_bytes.push(u32::try_from(frame_bytes).expect("a frame is below 4 GiB"));
                offset += frame_bytes as usize;
            }
            Err(frame_damage) if !is_last => {
                let reason = format!("{} in a sealed segment (expected seq {seq})", describe(frame_damage));
                return (Some(segment), damage(offset as u64, reason));
            }
            Err(frame_damage) => {
                // The active segment: zeros or a torn (or still written)
                // last frame end it; valid frames far beyond the damage
                // prove the damaged frame had been written long before.
                if is_all_zero(&bytes[offset..]) {
                    break;
                }
                if let Some((valid_offset, valid_seq)) = later_valid_frame(bytes, offset, seq) {
                    let reason = format!(
                        "{} in the active segment (expected seq {seq}), yet a valid frame of seq {valid_seq} follows at offset {valid_offset}",
                        describe(frame_damage)
                    );
                    return (Some(segment), damage(offset as u64, reason));
                }
                break;
            }
        }
    }
    (Some(segment), None)
}

impl Audit {
    /// Reads release.log strictly: a bad entry is a torn tail only if no
    /// valid entry follows it (entries are appended one at a time).
    fn read_release_log(&mut self, dir: &Path, storage: &dyn Storage) -> Result<()> {
        let path = dir.join(RELEASE_LOG_NAME);
        let bytes = match storage.open_read_only(&path).and_then(|file| read_whole(file.as_ref())) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&path, e)),
        };
        let mut first_bad: Option<usize> = None;
        let mut ranges = Vec::new();
        for (index, entry) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
            match decode_entry(entry) {
                Some(range) => {
                    if let Some(bad) = first_bad.take() {
                        self.damage.push(Damage {
                            path: path.clone(),
                            offset: (bad * ENTRY_BYTES) as u64,
                            reason: "release.log entry fails its check, yet valid entries follow it (a torn write \
                                     only cuts the last one); the log ignores every entry from here on, so the \
                                     records they released would be delivered again"
                                .into(),
                        });
                    }
                    ranges.push(range);
                }
                None => {
                    first_bad.get_or_insert(index);
                }
            }
        }
        ranges.sort_unstable();
        for (lo, hi) in ranges {
            match self.released.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => self.released.push((lo, hi)),
            }
        }
        Ok(())
    }

    /// Damage found: in frames, segment headers and release.log.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// Frames decoded, released ones included.
    pub fn frame_count(&self) -> u64 {
        self.segments.iter().map(|s| s.frame_bytes.len() as u64).sum()
    }

    /// One past the last frame found (1 if none).
    pub fn next_seq(&self) -> u64 {
        self.segments.last().map_or(1, AuditedSegment::end_seq)
    }

    /// Encoded bytes of the frame of `seq`, released or not, if a segment
    /// file holds it.
    pub fn frame_bytes(&self, seq: u64) -> Option<u64> {
        let index = self.segments.partition_point(|s| s.end_seq() <= seq);
        let segment = self.segments.get(index).filter(|s| s.first_seq <= seq)?;
        segment.frame_bytes.get((seq - segment.first_seq) as usize).map(|&bytes| u64::from(bytes))
    }

    /// Whether release.log releases `seq`.
    pub fn is_released(&self, seq: u64) -> bool {
        let index = self.released.partition_point(|&(_, hi)| hi < seq);
        self.released.get(index).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// The live frames, `(seq, encoded bytes)` in seq order.
    pub fn live(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.segments.iter().flat_map(move |segment| {
            segment
                .frame_bytes
                .iter()
                .enumerate()
                .map(move |(index, &bytes)| (segment.first_seq + index as u64, u64::from(bytes)))
                .filter(move |&(seq, _)| !self.is_released(seq))
        })
    }

    /// Live records counted from the files.
    pub fn live_records(&self) -> u64 {
        self.live().count() as u64
    }

    /// Encoded bytes of the live records counted from the files.
    pub fn live_bytes(&self) -> u64 {
        self.live().map(|(_, bytes)| bytes).sum()
    }
}
