//! Page cursors: the opaque `next` strings of [`SeqPage`](crate::SeqPage).
//!
//! A cursor names the last seq a page returned, so following cursors visits
//! every matching entry once even while the index changes between calls.
//!
//! Layout (18 bytes, written as 36 lowercase hex characters):
//!
//! | bytes  | field                                                      |
//! |--------|------------------------------------------------------------|
//! | 0      | version, [`CURSOR_VERSION`]                                |
//! | 1      | filter tag: 0 = all keys, 1 = one key                      |
//! | 2..6   | CRC32 of the filter key's bytes, `u32` little-endian (0 if none) |
//! | 6..14  | last seq returned, `u64` little-endian                     |
//! | 14..18 | CRC32 of bytes 0..14, `u32` little-endian                  |
//!
//! The trailing CRC catches every single-character change (CRC32 detects all
//! bursts up to 32 bits); uppercase hex is refused so a cursor has exactly
//! one spelling.

use crate::{Error, Result};

/// Version byte of the cursors this build writes and accepts.
pub const CURSOR_VERSION: u8 = 1;
const CURSOR_BYTES: usize = 18;
/// Length of an encoded cursor, in characters.
pub const CURSOR_CHARS: usize = 2 * CURSOR_BYTES;

/// A decoded page cursor: where the previous page stopped, and for which
/// key filter it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    last_seq: u64,
    key_crc: Option<u32>,
}

impl Cursor {
    /// A cursor that resumes after `last_seq` for the filter `key`.
    pub fn new(last_seq: u64, key: Option<&str>) -> Self {
        Cursor { last_seq, key_crc: key.map(|k| crc32fast::hash(k.as_bytes())) }
    }

    /// The last seq the previous page returned; the next page starts above it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The cursor as a fixed-length lowercase hex string.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; CURSOR_BYTES];
        bytes[0] = CURSOR_VERSION;
        bytes[1] = u8::from(self.key_crc.is_some());
        bytes[2..6].copy_from_slice(&self.key_crc.unwrap_or(0).to_le_bytes());
        bytes[6..14].copy_from_slice(&self.last_seq.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..14]);
        bytes[14..18].copy_from_slice(&crc.to_le_bytes());
        const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(CURSOR_CHARS);
        for byte in bytes {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0xf)]));
        }
        text
    }

    /// Parses and checks `text` as a cursor made for the filter `key`.
    pub fn decode(text: &str, key: Option<&str>) -> Result<Self> {
        let bad = |reason: String| Error::BadCursor { reason };
        if text.len() != CURSOR_CHARS {
            return Err(bad(format!("a cursor is {CURSOR_CHARS} characters, this one has {}", text.chars().count())));
        }
        let mut bytes = [0u8; CURSOR_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = (hex_digit(pair[0]).ok_or_else(|| bad(not_hex()))? << 4)
                | hex_digit(pair[1]).ok_or_else(|| bad(not_hex()))?;
        }
        let stored_crc = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
        if crc32fast::hash(&bytes[..14]) != stored_crc {
            return Err(bad("checksum mismatch: the cursor was damaged or edited".into()));
        }
        if bytes[0] != CURSOR_VERSION {
            return Err(bad(format!("cursor version {} is not supported (expected {CURSOR_VERSION})", bytes[0])));
        }
        let key_crc = match bytes[1] {
            0 => None,
            1 => Some(u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]])),
            tag => return Err(bad(format!("unknown key filter tag {tag}"))),
        };
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&bytes[6..14]);
        let cursor = Cursor { last_seq: u64::from_le_bytes(seq_bytes), key_crc };
        if cursor.key_crc != Cursor::new(0, key).key_crc {
            return Err(bad("the cursor was made for another key filter".into()));
        }
        Ok(cursor)
    }
}

fn not_hex() -> String {
    "a cursor holds only lowercase hex digits".into()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for key in [None, Some("USMF|CUST-1")] {
            let cursor = Cursor::new(u64::MAX - 3, key);
            let text = cursor.encode();
            assert_eq!(text.len(), CURSOR_CHARS);
            assert_eq!(Cursor::decode(&text, key).ok(), Some(cursor));
        }
    }
}
