//! [`IndexStore`]: sled-backed persistence of [`KeyIndex`]es, so opening a
//! full queue does not rescan its log (R19a: all of it is derived data).
//!
//! One sled tree per index name (`keyindex:<name>`), holding:
//!
//! | key              | value                                                |
//! |------------------|------------------------------------------------------|
//! | `meta`           | header: magic, format version, [`Checkpoint`], watermarks, counts, chunk count; CRC32 |
//! | `ranges`         | the global seq ranges, varint-encoded; CRC32         |
//! | `chunk` + `u32` BE | posting lists of up to [`CHUNK_BYTES_TARGET`] bytes; CRC32 |
//!
//! All integers in fixed-width fields are little-endian. A posting list is
//! `varint key_len, key bytes, varint seq_count, varint first_seq, varint
//! deltas` (deltas are >= 1 since seqs strictly increase). A chunk is
//! `varint key_count` then its lists; every value ends with the CRC32 of
//! what precedes it.
//!
//! Atomicity: `save` replaces the whole tree in one `sled::Batch`, which sled
//! applies atomically, then flushes. A crash leaves the old save or the new
//! one, never a mix; a damaged value is reported as
//! [`Error::CorruptStore`], and the caller rebuilds from the log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::posting::Posting;
use crate::ranges::RangeSet;
use crate::{Error, KeyIndex, Result};

/// Which log position a saved index reflects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last log seq applied to the index.
    pub applied_through: u64,
    /// Opaque to the index; the engine stores its metadata log position.
    pub tag: u64,
}

/// Target size of one stored chunk of posting lists, in bytes.
pub const CHUNK_BYTES_TARGET: usize = 256 * 1024;
/// sled page cache bound, in bytes. The store is read once at open and
/// written on save; it needs no large cache.
const CACHE_BYTES_MAX: u64 = 16 * 1024 * 1024;

const META_MAGIC: [u8; 4] = *b"PLKI";
const FORMAT_VERSION: u32 = 1;
const META_BYTES: usize = 4 + 4 + 8 + 8 + 1 + 8 + 8 + 8 + 8 + 4 + 4;
const KEY_META: &[u8] = b"meta";
const KEY_RANGES: &[u8] = b"ranges";
const KEY_CHUNK_PREFIX: &[u8] = b"chunk";

/// Persistence for the indexes of one engine: one sled database, one tree
/// per index name.
pub struct IndexStore {
    db: sled::Db,
    dir: PathBuf,
}

impl std::fmt::Debug for IndexStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexStore").field("dir", &self.dir).finish()
    }
}

/// The fixed-width header stored under `meta`.
struct Meta {
    checkpoint: Checkpoint,
    released_through: Option<u64>,
    last_accepted: Option<u64>,
    entry_count: u64,
    key_count: u64,
    chunk_count: u32,
}

/// Longest wait for sled's file lock at open (see [`IndexStore::open`]).
pub const LOCK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl IndexStore {
    /// Opens (or creates) the store in `dir`.
    ///
    /// sled releases its file lock from a background thread after the last
    /// handle is dropped, so a reopen right after a close in the same process
    /// can find the lock still held: that case is retried for up to
    /// [`LOCK_WAIT_MAX`].
    pub fn open(dir: &Path) -> Result<Self> {
        let deadline = std::time::Instant::now() + LOCK_WAIT_MAX;
        loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE_BYTES_MAX).open() {
                Ok(db) => return Ok(IndexStore { db, dir: dir.to_path_buf() }),
                Err(sled::Error::Io(error))
                    if error.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(tree_name(name))?)
    }

    /// Atomically replaces the stored index and checkpoint of `name`, then
    /// flushes. Only live entries are written.
    pub fn save(&self, name: &str, index: &KeyIndex, checkpoint: Checkpoint) -> Result<()> {
        let tree = self.tree(name)?;
        let mut batch = sled::Batch::default();
        // Stale keys go first; the writes below override them in the batch.
        for key in tree.iter().keys() {
            batch.remove(key?);
        }
        let chunks = encode_chunks(index);
        for (number, chunk) in chunks.iter().enumerate() {
            batch.insert(chunk_key(number as u32), with_crc(chunk.clone()));
        }
        batch.insert(KEY_RANGES, with_crc(encode_ranges(&index.ranges)));
        let meta = Meta {
            checkpoint,
            released_through: index.released_through,
            last_accepted: index.last_accepted,
            entry_count: index.len(),
            key_count: index.key_count() as u64,
            chunk_count: u32::try_from(chunks.len()).map_err(|_| corrupt(name, "too many chunks"))?,
        };
        batch.insert(KEY_META, encode_meta(&meta));
        tree.apply_batch(batch)?;
        self.db.flush()?;
        tracing::debug!(name, entries = meta.entry_count, keys = meta.key_count, "index saved");
        Ok(())
    }

    /// Loads the index of `name`; `None` if never saved or invalidated.
    pub fn load(&self, name: &str) -> Result<Option<(KeyIndex, Checkpoint)>> {
        let tree = self.tree(name)?;
        let Some(meta_bytes) = tree.get(KEY_META)? else { return Ok(None) };
        let meta = decode_meta(&meta_bytes).map_err(|reason| corrupt(name, &reason))?;
        let ranges_bytes = tree.get(KEY_RANGES)?.ok_or_else(|| corrupt(name, "ranges missing"))?;
        let ranges = decode_ranges(check_crc(&ranges_bytes).map_err(|reason| corrupt(name, &reason))?)
            .map_err(|reason| corrupt(name, &format!("ranges: {reason}")))?;
        let mut index = KeyIndex {
            keys: HashMap::with_capacity(meta.key_count.min(1 << 24) as usize),
            by_last: BTreeMap::new(),
            ranges,
            stored_count: 0,
            released_through: meta.released_through,
            last_accepted: meta.last_accepted,
        };
        for number in 0..meta.chunk_count {
            let bytes =
                tree.get(chunk_key(number))?.ok_or_else(|| corrupt(name, &format!("chunk {number} missing")))?;
            let payload = check_crc(&bytes).map_err(|reason| corrupt(name, &format!("chunk {number}: {reason}")))?;
            decode_chunk(payload, &mut index).map_err(|reason| corrupt(name, &format!("chunk {number}: {reason}")))?;
        }
        validate(&index, &meta).map_err(|reason| corrupt(name, &reason))?;
        Ok(Some((index, meta.checkpoint)))
    }

    /// Forgets the stored index of `name` (flushed), so a crash before the
    /// next save forces a rebuild.
    pub fn invalidate(&self, name: &str) -> Result<()> {
        let tree = self.tree(name)?;
        let mut batch = sled::Batch::default();
        for key in tree.iter().keys() {
            batch.remove(key?);
        }
        tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes `name` from the store entirely (flushed).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.db.drop_tree(tree_name(name))?;
        self.db.flush()?;
        Ok(())
    }
}

fn tree_name(name: &str) -> String {
    format!("keyindex:{name}")
}

fn chunk_key(number: u32) -> Vec<u8> {
    let mut key = KEY_CHUNK_PREFIX.to_vec();
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn corrupt(name: &str, reason: &str) -> Error {
    Error::CorruptStore { name: name.to_owned(), reason: reason.to_owned() }
}

fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Returns the payload if its trailing CRC32 matches.
fn check_crc(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    let split = bytes.len().checked_sub(4).ok_or("value shorter than its checksum")?;
    let (payload, crc) = bytes.split_at(split);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(payload) != stored {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over a byte slice that decodes varints; every read is checked.
struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f).checked_shl(shift).ok_or("varint overflow")?;
            if byte & 0x80 == 0 {
                if shift == 63 && byte > 1 {
                    return Err("varint overflow".into());
                }
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self, len: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len()).ok_or("truncated bytes")?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn finished(&self) -> bool {
        self.at == self.bytes.len()
    }
}

fn encode_chunks(index: &KeyIndex) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut body = Vec::new();
    let mut keys_in_body = 0u64;
    let flush = |chunks: &mut Vec<Vec<u8>>, body: &mut Vec<u8>, keys: &mut u64| {
        let mut chunk = Vec::with_capacity(body.len() + 10);
        put_varint(&mut chunk, *keys);
        chunk.append(body);
        chunks.push(chunk);
        *keys = 0;
    };
    for (key, posting) in &index.keys {
        let live = posting.live(index.released_through);
        put_varint(&mut body, key.len() as u64);
        body.extend_from_slice(key.as_bytes());
        put_varint(&mut body, live.len() as u64);
        let mut previous = 0;
        for (position, &seq) in live.iter().enumerate() {
            put_varint(&mut body, if position == 0 { seq } else { seq - previous });
            previous = seq;
        }
        keys_in_body += 1;
        if body.len() >= CHUNK_BYTES_TARGET {
            flush(&mut chunks, &mut body, &mut keys_in_body);
        }
    }
    if keys_in_body > 0 {
        flush(&mut chunks, &mut body, &mut keys_in_body);
    }
    chunks
}

fn decode_chunk(payload: &[u8], index: &mut KeyIndex) -> std::result::Result<(), String> {
    let mut decoder = Decoder { bytes: payload, at: 0 };
    let key_count = decoder.varint()?;
    for _ in 0..key_count {
        let key_len = usize::try_from(decoder.varint()?).map_err(|_| "key length overflow")?;
        let key = std::str::from_utf8(decoder.bytes(key_len)?).map_err(|_| "key is not UTF-8")?;
        if key.is_empty() {
            return Err("empty key".into());
        }
        let seq_count = decoder.varint()?;
        if seq_count == 0 || seq_count > payload.len() as u64 {
            return Err(format!("implausible entry count {seq_count} for key {key:?}"));
        }
        let mut seqs = Vec::with_capacity(seq_count as usize);
        let mut seq = decoder.varint()?;
        seqs.push(seq);
        for _ in 1..seq_count {
            let delta = decoder.varint()?;
            seq = seq.checked_add(delta).filter(|_| delta > 0).ok_or("seqs not strictly increasing")?;
            seqs.push(seq);
        }
        if index.released_through.is_some_and(|through| seqs[0] <= through)
            || index.last_accepted.is_none_or(|accepted| seq > accepted)
        {
            return Err(format!("seqs of key {key:?} outside the saved bounds"));
        }
        let shared: Arc<str> = Arc::from(key);
        if index.by_last.insert(seq, shared.clone()).is_some() {
            return Err(format!("seq {seq} held by two keys"));
        }
        index.stored_count += seqs.len() as u64;
        if index.keys.insert(shared, Posting::from_sorted(seqs)).is_some() {
            return Err(format!("key {key:?} stored twice"));
        }
    }
    if !decoder.finished() {
        return Err("trailing bytes".into());
    }
    Ok(())
}

fn encode_ranges(ranges: &RangeSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 4 * ranges.range_count());
    put_varint(&mut out, ranges.range_count() as u64);
    let mut previous_end = None;
    for (start, end) in ranges.iter() {
        put_varint(&mut out, previous_end.map_or(start, |previous: u64| start - previous));
        put_varint(&mut out, end - start);
        previous_end = Some(end);
    }
    out
}

fn decode_ranges(payload: &[u8]) -> std::result::Result<RangeSet, String> {
    let mut decoder = Decoder { bytes: payload, at: 0 };
    let range_count = decoder.varint()?;
    if range_count > payload.len() as u64 {
        return Err(format!("implausible range count {range_count}"));
    }
    let mut ranges = Vec::with_capacity(range_count as usize);
    let mut previous_end: Option<u64> = None;
    for _ in 0..range_count {
        let gap = decoder.varint()?;
        let start = match previous_end {
            None => gap,
            // Ranges are disjoint and never adjacent: the gap is at least 2.
            Some(end) => end.checked_add(gap).filter(|_| gap >= 2).ok_or("ranges overlap or touch")?,
        };
        let end = start.checked_add(decoder.varint()?).ok_or("range overflow")?;
        ranges.push((start, end));
        previous_end = Some(end);
    }
    if !decoder.finished() {
        return Err("trailing bytes".into());
    }
    Ok(RangeSet::from_sorted(ranges))
}

fn encode_meta(meta: &Meta) -> Vec<u8> {
    let mut out = Vec::with_capacity(META_BYTES);
    out.extend_from_slice(&META_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&meta.checkpoint.applied_through.to_le_bytes());
    out.extend_from_slice(&meta.checkpoint.tag.to_le_bytes());
    let flags = u8::from(meta.released_through.is_some()) | (u8::from(meta.last_accepted.is_some()) << 1);
    out.push(flags);
    out.extend_from_slice(&meta.released_through.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.last_accepted.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.entry_count.to_le_bytes());
    out.extend_from_slice(&meta.key_count.to_le_bytes());
    out.extend_from_slice(&meta.chunk_count.to_le_bytes());
    with_crc(out)
}

fn decode_meta(bytes: &[u8]) -> std::result::Result<Meta, String> {
    if bytes.len() != META_BYTES {
        return Err(format!("header is {} bytes, expected {META_BYTES}", bytes.len()));
    }
    let payload = check_crc(bytes)?;
    if payload[..4] != META_MAGIC {
        return Err("bad magic".into());
    }
    let u64_at = |at: usize| {
        let mut field = [0u8; 8];
        field.copy_from_slice(&payload[at..at + 8]);
        u64::from_le_bytes(field)
    };
    let u32_at = |at: usize| u32::from_le_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
    let version = u32_at(4);
    if version != FORMAT_VERSION {
        return Err(format!("format version {version} is not supported (expected {FORMAT_VERSION})"));
    }
    let flags = payload[24];
    Ok(Meta {
        checkpoint: Checkpoint { applied_through: u64_at(8), tag: u64_at(16) },
        released_through: (flags & 1 != 0).then(|| u64_at(25)),
        last_accepted: (flags & 2 != 0).then(|| u64_at(33)),
        entry_count: u64_at(41),
        key_count: u64_at(49),
        chunk_count: u32_at(57),
    })
}

/// Cross-checks the decoded parts against each other and the header.
fn validate(index: &KeyIndex, meta: &Meta) -> std::result::Result<(), String> {
    if index.stored_count != meta.entry_count || index.ranges.seq_count() != meta.entry_count {
        return Err(format!(
            "entry counts disagree: header {}, posting lists {}, ranges {}",
            meta.entry_count,
            index.stored_count,
            index.ranges.seq_count()
        ));
    }
    if index.keys.len() as u64 != meta.key_count {
        return Err(format!("key counts disagree: header {}, stored {}", meta.key_count, index.keys.len()));
    }
    if let Some(&seq) = index.by_last.keys().find(|&&seq| !index.ranges.contains(seq)) {
        return Err(format!("seq {seq} in a posting list but not in the ranges"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        let mut out = Vec::new();
        let values = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        for value in values {
            put_varint(&mut out, value);
        }
        let mut decoder = Decoder { bytes: &out, at: 0 };
        for value in values {
            assert_eq!(decoder.varint(), Ok(value));
        }
        assert!(decoder.finished());
        assert!(Decoder { bytes: &[0xff; 11], at: 0 }.varint().is_err());
    }
}
