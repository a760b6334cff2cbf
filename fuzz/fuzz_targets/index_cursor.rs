//! Arbitrary strings as page cursors: never a panic, never a wrong page —
//! either `BadCursor` or a page that starts after the cursor's seq (R10, R20).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog_index::KeyIndex;

fuzz_target!(|data: &[u8]| {
    let Ok(cursor) = std::str::from_utf8(data) else { return };
    let mut index = KeyIndex::new();
    for seq in 1..=100u64 {
        index.insert(if seq % 2 == 0 { "even" } else { "odd" }, seq).expect("ascending inserts");
    }
    for key in [None, Some("even"), Some("odd")] {
        if let Ok(page) = index.page(key, Some(cursor), 10) {
            assert!(page.seqs.windows(2).all(|w| w[0] < w[1]));
            assert!(page.seqs.len() <= 10);
        }
    }
});
