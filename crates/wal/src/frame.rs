//! Frame encoding: `len: u32 LE | crc: u32 LE | seq: u64 LE | body`.
//!
//! The CRC32 (crc32fast, IEEE) covers `len_le ‖ seq_le ‖ body`, so a frame
//! cannot be moved to another sequence number or resized without detection.
//! An all-zero header never validates: `seq` 0 is never assigned, and the CRC
//! of twelve zero bytes is not zero.

/// Bytes of a frame header: length, CRC, sequence number.
pub const FRAME_HEADER_BYTES: u64 = 16;

/// Largest body a frame may carry (256 MiB). A larger length read back from
/// disk is treated as damage, never as an allocation request.
pub const FRAME_BODY_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Encoded size of a frame with a body of `body_bytes`: what the byte
/// accounting counts for one record.
#[inline]
pub fn frame_bytes(body_bytes: usize) -> u64 {
    FRAME_HEADER_BYTES + body_bytes as u64
}

fn checksum(len: u32, seq: u64, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

/// Appends the frame for `(seq, body)` to `out`.
pub fn encode_into(out: &mut Vec<u8>, seq: u64, body: &[u8]) {
    debug_assert!(seq > 0, "seq 0 is reserved so that a zero frame never validates");
    debug_assert!(body.len() as u64 <= FRAME_BODY_BYTES_MAX);
    let len = body.len() as u32;
    let crc = checksum(len, seq, body);
    out.reserve(FRAME_HEADER_BYTES as usize + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(body);
}

/// Why bytes at an offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDamage {
    /// Fewer bytes remain than the header or the declared body needs.
    Truncated,
    /// The declared length is larger than [`FRAME_BODY_BYTES_MAX`].
    BadLength,
    /// The CRC does not match the bytes.
    BadCrc,
    /// The frame is intact but carries another sequence number than expected.
    BadSeq {
        /// The sequence number in the frame.
        found: u64,
    },
}

/// A frame decoded in place: the body's position inside the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The frame's sequence number.
    pub seq: u64,
    /// Offset of the body inside the decoded buffer.
    pub body_offset: usize,
    /// Body length in bytes.
    pub body_len: usize,
}

impl Decoded {
    /// Total encoded bytes of this frame.
    pub fn frame_bytes(&self) -> u64 {
        frame_bytes(self.body_len)
    }
}

/// Decodes the frame at `offset` in `buf`, expecting `expected_seq`.
pub fn decode_at(buf: &[u8], offset: usize, expected_seq: u64) -> Result<Decoded, FrameDamage> {
    let header_end = offset.checked_add(FRAME_HEADER_BYTES as usize).ok_or(FrameDamage::Truncated)?;
    let header = buf.get(offset..header_end).ok_or(FrameDamage::Truncated)?;
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4-byte slice"));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4-byte slice"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8-byte slice"));
    if u64::from(len) > FRAME_BODY_BYTES_MAX {
        return Err(FrameDamage::BadLength);
    }
    let body_end = header_end + len as usize;
    let body = buf.get(header_end..body_end).ok_or(FrameDamage::Truncated)?;
    if checksum(len, seq, body) != crc {
        return Err(FrameDamage::BadCrc);
    }
    if seq != expected_seq {
        return Err(FrameDamage::BadSeq { found: seq });
    }
    Ok(Decoded { seq, body_offset: header_end, body_len: len as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 7, b"hello");
        encode_into(&mut buf, 8, b"");
        let first = decode_at(&buf, 0, 7).expect("first frame");
        assert_eq!(&buf[first.body_offset..first.body_offset + first.body_len], b"hello");
        let second = decode_at(&buf, first.frame_bytes() as usize, 8).expect("second frame");
        assert_eq!(second.body_len, 0);
        assert_eq!(buf.len() as u64, frame_bytes(5) + frame_bytes(0));
    }

    #[test]
    fn zeros_never_decode() {
        let zeros = vec![0u8; 64];
        for expected in [0, 1, 2] {
            assert!(decode_at(&zeros, 0, expected).is_err());
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode_into(&mut buf, 3, b"abc");
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_at(&damaged, 0, 3).is_err(), "bit {bit} flipped undetected");
        }
    }
}
