//! Arbitrary strings as page cursors: never a panic; either `BadCursor` or
//! a cursor that encodes back to exactly the same text (R10, R20).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog_index::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for key in [None, Some("even"), Some("odd")] {
        if let Ok(cursor) = Cursor::decode(text, key) {
            assert_eq!(cursor.encode(), text, "a cursor that decodes is the one a page made");
            assert_eq!(Cursor::new(cursor.last_seq(), key), cursor);
        }
    }
});
