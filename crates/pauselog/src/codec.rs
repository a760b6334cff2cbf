//! What the data log stores.
//!
//! Data log body (one queued record), little-endian:
//! `op: u8 | queued_at_nanos: u64 | key_len: u32 | key | payload`, with
//! `op` 1 create, 2 update, 3 delete.
//!
//! A body of the single byte 0 is a **seq marker**: it holds no record. A
//! record delivered live while its map catches up (R23) takes its seq
//! from the data log this way, so that every seq the map hands out, live or
//! queued, comes from one sequence (R21); the marker is released as soon as
//! it is appended and is never queued, listed or delivered. One that
//! survives a crash unreleased is released when the map is opened.
//!
//! The meta log's format is in [`crate::meta`].

use std::time::SystemTime;

use crate::clock::{from_nanos, to_nanos};
use crate::{Op, QueuedRecord, Record};

const RECORD_HEADER_BYTES: usize = 1 + 8 + 4;

/// The body of a seq marker (see the module docs).
pub(crate) const MARKER_BODY: [u8; 1] = [0];

/// True if `body` is a seq marker, not a record.
pub(crate) fn is_marker(body: &[u8]) -> bool {
    body == MARKER_BODY
}

/// Encodes a record for the data log.
pub(crate) fn encode_record(record: &Record, queued_at: SystemTime) -> Vec<u8> {
    let mut body = Vec::with_capacity(RECORD_HEADER_BYTES + record.key.len() + record.payload.len());
    body.push(record.op.to_byte());
    body.extend_from_slice(&to_nanos(queued_at).to_le_bytes());
    body.extend_from_slice(&(record.key.len() as u32).to_le_bytes());
    body.extend_from_slice(record.key.as_bytes());
    body.extend_from_slice(&record.payload);
    body
}

/// The integration key of an encoded record, without copying the payload.
pub(crate) fn decode_key(body: &[u8]) -> Option<&str> {
    let key_len = u32::from_le_bytes(body.get(9..13)?.try_into().ok()?) as usize;
    let key = body.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + key_len)?;
    if key.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8. Integration keys are mostly
        // ASCII, and this check reads 8 bytes at a time where
        // `str::from_utf8` took 3% of a catch-up drain.
        return Some(unsafe { std::str::from_utf8_unchecked(key) });
    }
    std::str::from_utf8(key).ok()
}

/// Decodes a data log body into a queued record.
pub(crate) fn decode_record(seq: u64, body: &[u8]) -> Option<QueuedRecord> {
    let mut record = empty_record();
    decode_record_into(seq, body, &mut record).then_some(record)
}

/// A record with empty buffers, for [`decode_record_into`] to fill.
pub(crate) fn empty_record() -> QueuedRecord {
    QueuedRecord { seq: 0, key: String::new(), op: Op::Update, payload: Vec::new(), queued_at: SystemTime::UNIX_EPOCH }
}

/// Decodes a data log body into `record`, reusing its buffers; false if the
/// body does not decode.
pub(crate) fn decode_record_into(seq: u64, body: &[u8], record: &mut QueuedRecord) -> bool {
    let (Some(&op), Some(nanos), Some(key)) = (body.first(), body.get(1..9), decode_key(body)) else { return false };
    let Some(op) = Op::from_byte(op) else { return false };
    let Some(payload) = body.get(RECORD_HEADER_BYTES + key.len()..) else { return false };
    record.seq = seq;
    record.op = op;
    record.queued_at = from_nanos(u64::from_le_bytes(nanos.try_into().expect("8-byte slice")));
    record.key.clear();
    record.key.push_str(key);
    record.payload.clear();
    append_in_order(&mut record.payload, payload);
    true
}

/// Appends `src` to `dst` 64 bytes at a time, from first byte to last.
///
/// Why not `extend_from_slice`: the payloads a drain or a page decodes come
/// straight from a mapping the CPU has not read yet, and for payloads of
/// about 1 KiB glibc's memmove (AVX-512, `__memmove_avx512_unaligned_erms`)
/// measured 99–191 ms per GiB of them where this loop took 71–109 ms,
/// about what reading every byte takes (66–87 ms). For these sizes that
/// memmove loads the source's first 64 and last 256 bytes before it loops
/// over the rest, which probably costs the hardware prefetcher its
/// sequential stream.
fn append_in_order(dst: &mut Vec<u8>, src: &[u8]) {
    const CHUNK_BYTES: usize = 64;
    dst.reserve(src.len());
    let mut chunks = src.chunks_exact(CHUNK_BYTES);
    for chunk in &mut chunks {
        let chunk: &[u8; CHUNK_BYTES] = chunk.try_into().expect("a chunk of CHUNK_BYTES");
        dst.extend_from_slice(chunk);
    }
    dst.extend_from_slice(chunks.remainder());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let record = Record::new("USMF|CUST-1", Op::Update, b"payload".to_vec());
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_234_567);
        let body = encode_record(&record, at);
        assert_eq!(decode_key(&body), Some("USMF|CUST-1"));
        let queued = decode_record(9, &body).expect("decodes");
        assert_eq!(
            (queued.seq, queued.key.as_str(), queued.op, queued.payload.as_slice()),
            (9, "USMF|CUST-1", Op::Update, &b"payload"[..])
        );
        assert_eq!(queued.queued_at, at);
    }

    /// Every length around the chunk size, onto an empty and a non-empty
    /// buffer, gives the bytes `extend_from_slice` would.
    #[test]
    fn append_in_order_copies_every_byte() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in 0..src.len() {
            for prefix in [&b""[..], &b"key"[..]] {
                let mut dst = prefix.to_vec();
                append_in_order(&mut dst, &src[..len]);
                let mut expected = prefix.to_vec();
                expected.extend_from_slice(&src[..len]);
                assert_eq!(dst, expected, "length {len}, prefix {prefix:?}");
            }
        }
    }

    /// The ASCII fast path and the general UTF-8 check give the same keys,
    /// and a key that is not UTF-8 does not decode.
    #[test]
    fn keys_decode_ascii_or_not() {
        for key in ["USMF|CUST-1", "", "Müller|Straße-7", "客户-42"] {
            let body = encode_record(&Record::new(key, Op::Update, b"p".to_vec()), std::time::UNIX_EPOCH);
            assert_eq!(decode_key(&body), Some(key));
        }
        let mut body = encode_record(&Record::new("ab", Op::Update, Vec::new()), std::time::UNIX_EPOCH);
        body[RECORD_HEADER_BYTES] = 0xff;
        assert_eq!(decode_key(&body), None);
        assert!(decode_record(1, &body).is_none());
    }

    #[test]
    fn a_marker_is_not_a_record() {
        assert!(is_marker(&MARKER_BODY));
        assert!(decode_record(1, &MARKER_BODY).is_none());
        assert_eq!(decode_key(&MARKER_BODY), None);
        let body = encode_record(&Record::new("k", Op::Create, Vec::new()), std::time::UNIX_EPOCH);
        assert!(!is_marker(&body));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode_record(1, &[]).is_none());
        assert!(decode_record(1, &[9, 0, 0]).is_none());
        assert!(decode_record(1, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0]).is_none());
    }
}
