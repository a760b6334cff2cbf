//! Telling a torn tail from damage, in the active segment: what a crash
//! can leave past the last whole frame (crash case W1 in [`crate::format`]).

use crate::frame::{decode_at, FrameDamage, FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};

/// How far past a damaged frame of the active segment a torn write can
/// reach (crash case W1 in [`crate::format`]). The writer puts frames into
/// the file only through one `pwrite` of its buffer (which is flushed once it
/// holds 1 MiB, so a write is at most 1 MiB plus one frame), and under
/// `SyncPolicy::Always` acknowledges only after the `fdatasync` that follows.
/// A crash therefore leaves garbage only in the writes issued since the last
/// completed fdatasync: in practice one buffer, and this window allows four
/// (appenders may flush a full buffer while a group commit's fdatasync runs).
/// A valid frame further than this past the damage (or past the damaged
/// frame's own declared length, if larger and plausible) proves the damaged
/// frame was durable before: that is corruption, not a torn tail.
pub const TORN_WRITE_WINDOW_BYTES: u64 = 4 * 1024 * 1024;

/// Whether every byte is zero (a word at a time: this runs over the
/// preallocated tail of the active segment at every open).
pub(crate) fn is_all_zero(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(64);
    let words_zero = chunks.by_ref().all(|chunk| {
        chunk.chunks_exact(8).fold(0u64, |acc, w| acc | u64::from_le_bytes(w.try_into().expect("8-byte slice"))) == 0
    });
    words_zero && chunks.remainder().iter().all(|&b| b == 0)
}

/// A valid frame further past the damaged frame at `damage_offset` than a
/// torn write can reach (see [`TORN_WRITE_WINDOW_BYTES`]): its offset and seq.
///
/// Scans every byte offset (the damage path only). A candidate must carry a
/// seq above `expected_seq` yet no higher than the frames that fit between
/// (each takes at least a header), a length that fits the file, and a
/// matching CRC; the seq test is cheap and rejects almost every offset
/// (zeros carry seq 0) before any CRC is computed.
pub(crate) fn later_valid_frame(bytes: &[u8], damage_offset: usize, expected_seq: u64) -> Option<(usize, u64)> {
    let header = FRAME_HEADER_BYTES as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4-byte slice"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8-byte slice"));
    let declared = (damage_offset + header <= bytes.len()).then(|| u64::from(u32_at(damage_offset)));
    let declared_frame = declared
        .filter(|&len| {
            len <= FRAME_BODY_BYTES_MAX && damage_offset as u64 + FRAME_HEADER_BYTES + len <= bytes.len() as u64
        })
        .map_or(0, |len| FRAME_HEADER_BYTES + len);
    let window = TORN_WRITE_WINDOW_BYTES.max(declared_frame) as usize;
    let first = damage_offset.checked_add(window)?.checked_add(1)?;
    let last = bytes.len().checked_sub(header)?;
    for offset in first..=last {
        let seq = u64_at(offset + 8);
        if seq <= expected_seq || seq - expected_seq > ((offset - damage_offset) / header) as u64 {
            continue;
        }
        let len = u32_at(offset);
        if u64::from(len) > FRAME_BODY_BYTES_MAX || offset + header + len as usize > bytes.len() {
            continue;
        }
        if decode_at(bytes, offset, seq).is_ok() {
            return Some((offset, seq));
        }
    }
    None
}

/// What is wrong with a frame, in words.
pub(crate) fn describe(damage: FrameDamage) -> String {
    match damage {
        FrameDamage::Truncated => "frame cut short".into(),
        FrameDamage::BadLength => "frame length out of range".into(),
        FrameDamage::BadCrc => "CRC mismatch".into(),
        FrameDamage::BadSeq { found } => format!("frame carries seq {found}"),
    }
}
