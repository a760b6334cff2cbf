//! Arbitrary bytes as a meta log event (R19a: the meta log is a source of
//! truth): every input either decodes or is refused, never a panic; what
//! decodes re-encodes to an event that decodes equal, and a version 2 event
//! has exactly one encoding (so no two byte strings mean the same thing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog::fuzzing::{decode_meta_event, encode_meta_event};

fuzz_target!(|data: &[u8]| {
    let Ok(event) = decode_meta_event(data) else { return };
    let encoded = encode_meta_event(&event);
    let again = decode_meta_event(&encoded).expect("the engine reads what it writes");
    assert_eq!(again, event, "a decoded event re-encodes to itself");
    if data.first() == Some(&2) {
        assert_eq!(encoded, data, "a version 2 event has one encoding");
    }
});
