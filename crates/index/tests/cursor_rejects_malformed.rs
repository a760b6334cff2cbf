//! R10, R20: a page cursor that is empty, garbage, truncated, edited in any
//! single character, of another version, or made for another key filter is
//! refused with `Error::BadCursor`, never a panic or a wrong page.

use pauselog_index::{Error, KeyIndex};

fn index() -> KeyIndex {
    let mut index = KeyIndex::new();
    for seq in 1..=100 {
        index.insert(if seq % 3 == 0 { "USMF|CUST-3" } else { "USMF|CUST-1" }, seq).expect("insert");
    }
    index
}

fn assert_bad(index: &KeyIndex, key: Option<&str>, cursor: &str) {
    match index.page(key, Some(cursor), 10) {
        Err(Error::BadCursor { reason }) => assert!(!reason.is_empty()),
        other => panic!("cursor {cursor:?} for {key:?} gave {other:?}"),
    }
}

#[test]
fn empty_and_garbage_cursors_are_refused() {
    let index = index();
    for cursor in ["", "garbage", "0", "zz", "€€€€", &"0".repeat(36), &"g".repeat(36), &"é".repeat(18)] {
        assert_bad(&index, None, cursor);
        assert_bad(&index, Some("USMF|CUST-1"), cursor);
    }
}

#[test]
fn every_single_character_change_is_refused() {
    let index = index();
    for key in [None, Some("USMF|CUST-1")] {
        let cursor = index.page(key, None, 10).expect("first page").next.expect("more pages");
        assert!(index.page(key, Some(&cursor), 10).is_ok());
        for position in 0..cursor.len() {
            for replacement in "0123456789abcdefABCDEFxz-".chars() {
                let mut edited: Vec<char> = cursor.chars().collect();
                if edited[position] == replacement {
                    continue;
                }
                edited[position] = replacement;
                assert_bad(&index, key, &edited.into_iter().collect::<String>());
            }
        }
    }
}

#[test]
fn truncated_and_extended_cursors_are_refused() {
    let index = index();
    let cursor = index.page(None, None, 10).expect("first page").next.expect("more pages");
    for len in 0..cursor.len() {
        assert_bad(&index, None, &cursor[..len]);
    }
    assert_bad(&index, None, &format!("{cursor}0"));
    assert_bad(&index, None, &format!("0{cursor}"));
}

#[test]
fn cursor_for_another_key_filter_is_refused() {
    let index = index();
    let for_one = index.page(Some("USMF|CUST-1"), None, 10).expect("page").next.expect("more");
    let for_all = index.page(None, None, 10).expect("page").next.expect("more");
    assert_bad(&index, Some("USMF|CUST-3"), &for_one);
    assert_bad(&index, None, &for_one);
    assert_bad(&index, Some("USMF|CUST-1"), &for_all);
    // A key with no entries still checks its cursor.
    assert_bad(&index, Some("absent"), &for_one);
    let empty = index.page(Some("absent"), None, 10).expect("page");
    assert_eq!((empty.seqs.len(), empty.next, empty.total), (0, None, 0));
}

#[test]
fn other_version_is_refused() {
    let index = index();
    // Version 2 with a valid checksum: refused for its version, not its CRC.
    let mut bytes = [0u8; 18];
    bytes[0] = 2;
    bytes[6..14].copy_from_slice(&5u64.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..14]);
    bytes[14..].copy_from_slice(&crc.to_le_bytes());
    let cursor: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match index.page(None, Some(&cursor), 10) {
        Err(Error::BadCursor { reason }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("gave {other:?}"),
    }
}
