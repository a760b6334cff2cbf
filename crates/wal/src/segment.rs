//! Segment files: naming, the 32-byte header, the sidecar, creating a
//! segment file, and the in-memory index of one segment (frame offsets,
//! released records, live bytes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{io_error, Error, Result};
use crate::frame::{decode_at, FRAME_HEADER_BYTES};
use crate::offsets::Offsets;
use crate::options::WalOptions;
use crate::storage::{Mapped, Storage, StorageFile};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PLOGSEG\0";
/// Format version written in the segment header.
pub const SEGMENT_VERSION: u32 = 1;
/// Bytes of the segment header.
pub const SEGMENT_HEADER_BYTES: u64 = 32;

/// `magic[8] | version u32 | header_bytes u32 | first_seq u64 | reserved u32 | crc u32`.
pub(crate) fn encode_header(first_seq: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32fast::hash(&header[0..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Returns the header's `first_seq`, or why the header is invalid.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<u64, &'static str> {
    let header = bytes.get(0..SEGMENT_HEADER_BYTES as usize).ok_or("file shorter than the segment header")?;
    let crc = u32::from_le_bytes(header[28..32].try_into().expect("4-byte slice"));
    if crc32fast::hash(&header[0..28]) != crc {
        return Err("segment header CRC mismatch");
    }
    if header[0..8] != SEGMENT_MAGIC {
        return Err("not a pauselog segment (bad magic)");
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4-byte slice"));
    if version != SEGMENT_VERSION {
        return Err("unsupported segment format version");
    }
    let first_seq = u64::from_le_bytes(header[16..24].try_into().expect("8-byte slice"));
    if first_seq == 0 {
        return Err("segment header names seq 0");
    }
    Ok(first_seq)
}

/// `00000000000000000001.seg`: the first seq, zero-padded so names sort.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

pub(crate) fn parse_segment_path(path: &Path) -> Option<u64> {
    parse_numbered(path, ".seg")
}

/// `00000000000000000001.idx`: the sidecar index of a sealed segment.
pub(crate) fn sidecar_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.idx"))
}

pub(crate) fn parse_sidecar_path(path: &Path) -> Option<u64> {
    parse_numbered(path, ".idx")
}

fn parse_numbered(path: &Path, suffix: &str) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Creates a segment file with its header, preallocated, durable with its
/// directory entry (crash case W3 in [`crate::format`]).
pub(crate) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_seq: u64,
    options: &WalOptions,
) -> Result<Segment> {
    let path = segment_path(dir, first_seq);
    let file: Arc<dyn StorageFile> = storage.open(&path, true).map_err(|e| io_error(&path, e))?;
    file.set_len(0).map_err(|e| io_error(&path, e))?;
    file.write_all_at(&encode_header(first_seq), 0).map_err(|e| io_error(&path, e))?;
    if options.preallocate {
        file.allocate(options.segment_bytes_max).map_err(|e| io_error(&path, e))?;
    }
    file.sync_all().map_err(|e| io_error(&path, e))?;
    storage.sync_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok(Segment::new(first_seq, path, file))
}

/// Writes a whole small file (a sidecar) and fsyncs it, not its directory
/// entry.
pub(crate) fn write_durably(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage.open(path, true).map_err(|e| io_error(path, e))?;
    file.set_len(0).map_err(|e| io_error(path, e))?;
    file.write_all_at(bytes, 0).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

/// What a sidecar describes, told apart by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SidecarKind {
    /// A sealed segment, written when it was sealed (`PLOGIDX\0`). The
    /// segment ends exactly where the sidecar says.
    Sealed,
    /// The active segment at a clean close (`PLOGCLS\0`): its frames end
    /// where the sidecar says, and the file's preallocated zeros follow.
    Closed,
}

impl SidecarKind {
    fn magic(self) -> [u8; 8] {
        match self {
            SidecarKind::Sealed => *b"PLOGIDX\0",
            SidecarKind::Closed => *b"PLOGCLS\0",
        }
    }
}

const SIDECAR_VERSION: u32 = 1;
/// `magic[8] | version u32 | record_count u32 | frames_end u64 | first_seq u64`.
const SIDECAR_HEADER_BYTES: usize = 32;

/// The sidecar of a segment: header, frame offsets (u32 LE each), and a
/// CRC32 of everything before it. See [`crate::format`].
pub(crate) fn encode_sidecar(segment: &Segment, kind: SidecarKind) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIDECAR_HEADER_BYTES + segment.offsets.len() * 4 + 4);
    out.extend_from_slice(&kind.magic());
    out.extend_from_slice(&SIDECAR_VERSION.to_le_bytes());
    out.extend_from_slice(&(segment.offsets.len() as u32).to_le_bytes());
    out.extend_from_slice(&segment.end.to_le_bytes());
    out.extend_from_slice(&segment.first_seq.to_le_bytes());
    for offset in segment.offsets.iter() {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The offsets of a sealed segment, served from the sidecar just written
/// for it (`bytes`, `count` offsets) instead of the heap: see `offsets.rs`.
pub(crate) fn map_sealed_offsets(storage: &dyn Storage, path: &Path, bytes: &[u8], count: usize) -> Result<Offsets> {
    let view = storage.open_read_only(path).and_then(|file| file.map()).map_err(|e| io_error(path, e))?;
    if view.bytes() != bytes {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "a sidecar reads back other than it was written".into(),
        });
    }
    Ok(Offsets::Mapped { view, start: SIDECAR_HEADER_BYTES, count })
}

/// The frame offsets and the end of the last frame that a sidecar of
/// `kind` records for the segment of `first_seq`, or why the sidecar cannot
/// be used. Checks the CRC, the magic and version, that it describes this
/// segment, and that the offsets are the layout of frames back to back
/// (each at least a header); the caller compares the end with the file.
/// The offsets are read from `sidecar` itself, which stays mapped.
pub(crate) fn decode_sidecar(
    sidecar: Arc<dyn Mapped>,
    kind: SidecarKind,
    first_seq: u64,
) -> Result<(Offsets, u64), &'static str> {
    let bytes = sidecar.bytes();
    let body_len = bytes.len().checked_sub(4).ok_or("sidecar too short")?;
    if body_len < SIDECAR_HEADER_BYTES {
        return Err("sidecar too short");
    }
    let crc = u32::from_le_bytes(bytes[body_len..].try_into().expect("4-byte slice"));
    if crc32fast::hash(&bytes[..body_len]) != crc {
        return Err("sidecar CRC mismatch");
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte slice"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8-byte slice"));
    if bytes[0..8] != kind.magic() || u32_at(8) != SIDECAR_VERSION {
        return Err("not a pauselog sidecar of this kind and version");
    }
    let record_count = u32_at(12) as usize;
    let frames_end = u64_at(16);
    if u64_at(24) != first_seq {
        return Err("sidecar describes another segment");
    }
    if body_len != SIDECAR_HEADER_BYTES + record_count * 4 {
        return Err("sidecar length does not match its record count");
    }
    // Frames are back to back: the first right after the segment header,
    // each later one at least a frame header past the one before, the last
    // header inside the segment. One pass without early exits, so it runs
    // at memory speed (4 bytes a record, for every sealed segment at open).
    let offsets = &bytes[SIDECAR_HEADER_BYTES..body_len];
    let offset_at = |chunk: &[u8]| u64::from(u32::from_le_bytes(chunk.try_into().expect("4-byte chunk")));
    let mut in_order = offsets.get(..4).map(offset_at).is_none_or(|first| first == SEGMENT_HEADER_BYTES);
    let mut previous = SEGMENT_HEADER_BYTES - FRAME_HEADER_BYTES;
    for offset in offsets.chunks_exact(4).map(offset_at) {
        in_order &= offset >= previous + FRAME_HEADER_BYTES;
        previous = offset;
    }
    if !in_order {
        return Err("sidecar offsets out of order");
    }
    // With no offset, `previous` is still below the header: the end is its end.
    let last_end = previous + FRAME_HEADER_BYTES;
    if last_end > frames_end || (record_count == 0 && frames_end != SEGMENT_HEADER_BYTES) {
        return Err("sidecar offsets past the segment end");
    }
    Ok((Offsets::Mapped { view: sidecar.clone(), start: SIDECAR_HEADER_BYTES, count: record_count }, frames_end))
}

/// A read view of one segment file, or of frames of it still in the
/// writer's buffer, with the file's path, so that what is read through it
/// can say where it came from.
#[derive(Debug)]
pub(crate) struct SegmentView {
    pub path: Arc<Path>,
    /// The file offset of the view's first byte (0 for a view of the file).
    pub base: u64,
    pub mapped: Arc<dyn Mapped>,
}

/// Bytes copied out of the writer's buffer, read as a view.
#[derive(Debug)]
pub(crate) struct CopiedBytes(pub Vec<u8>);

impl Mapped for CopiedBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Mapped for SegmentView {
    fn bytes(&self) -> &[u8] {
        self.mapped.bytes()
    }

    fn populate(&self) {
        self.mapped.populate();
    }
}

/// CRC-checks the frame of `seq` at `offset`, `frame_bytes` long as the index
/// says; damage is [`Error::Corrupt`] naming the file and offset.
pub(crate) fn check_frame(bytes: &[u8], offset: usize, frame_bytes: u64, seq: u64, path: &Path) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt { path: path.to_path_buf(), offset: offset as u64, reason };
    let decoded = decode_at(bytes, offset, seq)
        .map_err(|damage| corrupt(format!("frame failed its check on read (expected seq {seq}): {damage:?}")))?;
    if decoded.frame_bytes() != frame_bytes {
        return Err(corrupt(format!(
            "frame of seq {seq} is {} bytes but the segment index says {frame_bytes}",
            decoded.frame_bytes()
        )));
    }
    Ok(())
}

/// One segment as the log keeps it in memory.
#[derive(Debug)]
pub(crate) struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
    pub file: Arc<dyn StorageFile>,
    /// `offsets.at(i)` is the file offset of the frame of `first_seq + i`:
    /// on the heap for the active segment, in the mapped sidecar for a
    /// sealed one that has one (`offsets.rs`).
    pub offsets: Offsets,
    /// Offset just past the last frame (buffered frames included).
    pub end: u64,
    /// One bit per record: released.
    pub released: Vec<u64>,
    pub released_count: u64,
    pub live_bytes: u64,
    pub sealed: bool,
    /// Cached read view and the segment end it is known to cover.
    pub view: Option<(Arc<SegmentView>, u64)>,
    /// Every frame starting below this offset has been checked in this
    /// process: CRC-checked by recovery's scan or a read, or encoded from
    /// memory by this process's appends. Frames at or past it (a segment
    /// loaded from its sidecar) are CRC-checked when first read. Shared with
    /// readers, which advance it without the log's lock.
    pub verified_end: Arc<AtomicU64>,
    /// The end of the frames open loaded from a sidecar (the segment's
    /// header when it loaded none). Frames past it were scanned or appended
    /// by this process, so only frames between `verified_end` and this
    /// offset ever need a CRC check.
    pub loaded_end: u64,
}

impl Segment {
    pub fn new(first_seq: u64, path: PathBuf, file: Arc<dyn StorageFile>) -> Self {
        Segment {
            first_seq,
            path,
            file,
            offsets: Offsets::default(),
            end: SEGMENT_HEADER_BYTES,
            released: Vec::new(),
            released_count: 0,
            live_bytes: 0,
            sealed: false,
            view: None,
            verified_end: Arc::new(AtomicU64::new(SEGMENT_HEADER_BYTES)),
            loaded_end: SEGMENT_HEADER_BYTES,
        }
    }

    /// Whether every frame of the segment has been checked in this process.
    pub fn is_verified(&self) -> bool {
        self.verified_end.load(Ordering::Acquire) >= self.loaded_end
    }

    /// Whether the frame at `offset` must be CRC-checked when read.
    pub fn needs_check(&self, offset: u64) -> bool {
        offset < self.loaded_end && offset >= self.verified_end.load(Ordering::Acquire)
    }

    pub fn record_count(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// One past the last seq held.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.record_count()
    }

    pub fn contains(&self, seq: u64) -> bool {
        seq >= self.first_seq && seq < self.end_seq()
    }

    /// The local indexes `[from, to)` of the seqs `lo..=hi` held by this
    /// segment, or `None` if it holds none of them.
    pub fn local_range(&self, lo: u64, hi: u64) -> Option<(usize, usize)> {
        if self.end_seq() <= lo || self.first_seq > hi {
            return None;
        }
        let from = (lo.max(self.first_seq) - self.first_seq) as usize;
        let to = (hi.min(self.end_seq() - 1) + 1 - self.first_seq) as usize;
        Some((from, to))
    }

    /// Adds a frame that was checked (decoded by recovery, or encoded by
    /// this process): it counts as verified if every frame before it is.
    pub fn push(&mut self, frame_bytes: u64) {
        let start = self.end;
        self.push_offset(frame_bytes);
        // A plain load and store (no locked compare-exchange on the append
        // path): readers only advance `verified_end` over frames below
        // `start`, so none races with this store.
        if self.verified_end.load(Ordering::Acquire) == start {
            self.verified_end.store(self.end, Ordering::Release);
        }
    }

    /// Takes the frames of an empty segment from a sidecar: `offsets`,
    /// back to back up to `frames_end`, unverified (each is checked when
    /// first read).
    pub fn load(&mut self, offsets: Offsets, frames_end: u64) {
        debug_assert!(self.offsets.is_empty(), "loaded into an empty segment");
        self.released = vec![0; offsets.len().div_ceil(64)];
        self.offsets = offsets;
        self.live_bytes = frames_end - SEGMENT_HEADER_BYTES;
        self.end = frames_end;
        self.loaded_end = frames_end;
    }

    fn push_offset(&mut self, frame_bytes: u64) {
        self.offsets.push(u32::try_from(self.end).expect("segments stay below 4 GiB"));
        self.end += frame_bytes;
        self.live_bytes += frame_bytes;
        if self.offsets.len() > self.released.len() * 64 {
            self.released.push(0);
        }
    }

    /// Encoded bytes of the frame at local index `index`.
    pub fn frame_bytes(&self, index: usize) -> u64 {
        let start = self.offsets.at(index);
        let end = self.offsets.get(index + 1).unwrap_or(self.end);
        end - start
    }

    pub fn is_released(&self, index: usize) -> bool {
        self.released[index / 64] & (1 << (index % 64)) != 0
    }

    /// Whether a record at local index `from..to` is live.
    pub fn has_live_in(&self, from: usize, to: usize) -> bool {
        if from == 0 && to == self.offsets.len() {
            return self.released_count < self.record_count();
        }
        (from..to).any(|index| !self.is_released(index))
    }

    pub fn is_fully_released(&self) -> bool {
        self.released_count == self.record_count()
    }

    /// Marks local indexes `[from, to)` released; returns `(records, bytes)` newly released.
    pub fn release(&mut self, from: usize, to: usize) -> (u64, u64) {
        if from == 0 && to == self.offsets.len() && self.released_count == 0 {
            // Whole segment at once: time proportional to segments, not records.
            let (records, bytes) = (self.record_count(), self.live_bytes);
            for (word_index, word) in self.released.iter_mut().enumerate() {
                let bits_in_word = (to - word_index * 64).min(64);
                *word = if bits_in_word == 64 { u64::MAX } else { (1u64 << bits_in_word) - 1 };
            }
            self.released_count = records;
            self.live_bytes = 0;
            return (records, bytes);
        }
        let (mut records, mut bytes) = (0, 0);
        for index in from..to {
            if !self.is_released(index) {
                self.released[index / 64] |= 1 << (index % 64);
                records += 1;
                bytes += self.frame_bytes(index);
            }
        }
        self.released_count += records;
        self.live_bytes -= bytes;
        (records, bytes)
    }

    /// Released records as inclusive seq ranges (for compacting the release log).
    pub fn released_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        if self.released_count == 0 {
            return ranges;
        }
        for index in 0..self.offsets.len() {
            if self.is_released(index) {
                let seq = self.first_seq + index as u64;
                match ranges.last_mut() {
                    Some(last) if last.1 + 1 == seq => last.1 = seq,
                    _ => ranges.push((seq, seq)),
                }
            }
        }
        ranges
    }
}
