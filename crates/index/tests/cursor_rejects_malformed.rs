//! R10, R20: a page cursor that is empty, garbage, truncated, edited in any
//! single character, of another version, or made for another key filter is
//! refused with `Error::BadCursor`, never a panic or a wrong page.

use pauselog_index::{Cursor, Error};

/// A cursor as a page hands it out: after seq 10, for `key`.
fn cursor_for(key: Option<&str>) -> String {
    Cursor::new(10, key).encode()
}

fn assert_bad(key: Option<&str>, cursor: &str) {
    match Cursor::decode(cursor, key) {
        Err(Error::BadCursor { reason }) => assert!(!reason.is_empty()),
        other => panic!("cursor {cursor:?} for {key:?} gave {other:?}"),
    }
}

#[test]
fn empty_and_garbage_cursors_are_refused() {
    for cursor in ["", "garbage", "0", "zz", "€€€€", &"0".repeat(36), &"g".repeat(36), &"é".repeat(18)] {
        assert_bad(None, cursor);
        assert_bad(Some("USMF|CUST-1"), cursor);
    }
}

#[test]
fn every_single_character_change_is_refused() {
    for key in [None, Some("USMF|CUST-1")] {
        let cursor = cursor_for(key);
        assert_eq!(Cursor::decode(&cursor, key).expect("its own cursor").last_seq(), 10);
        for position in 0..cursor.len() {
            for replacement in "0123456789abcdefABCDEFxz-".chars() {
                let mut edited: Vec<char> = cursor.chars().collect();
                if edited[position] == replacement {
                    continue;
                }
                edited[position] = replacement;
                assert_bad(key, &edited.into_iter().collect::<String>());
            }
        }
    }
}

#[test]
fn truncated_and_extended_cursors_are_refused() {
    let cursor = cursor_for(None);
    for len in 0..cursor.len() {
        assert_bad(None, &cursor[..len]);
    }
    assert_bad(None, &format!("{cursor}0"));
    assert_bad(None, &format!("0{cursor}"));
}

#[test]
fn cursor_for_another_key_filter_is_refused() {
    let for_one = cursor_for(Some("USMF|CUST-1"));
    let for_all = cursor_for(None);
    assert_bad(Some("USMF|CUST-3"), &for_one);
    assert_bad(None, &for_one);
    assert_bad(Some("USMF|CUST-1"), &for_all);
    assert_bad(Some("absent"), &for_one);
}

#[test]
fn other_version_is_refused() {
    // Version 2 with a valid checksum: refused for its version, not its CRC.
    let mut bytes = [0u8; 18];
    bytes[0] = 2;
    bytes[6..14].copy_from_slice(&5u64.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..14]);
    bytes[14..].copy_from_slice(&crc.to_le_bytes());
    let cursor: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match Cursor::decode(&cursor, None) {
        Err(Error::BadCursor { reason }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("gave {other:?}"),
    }
}
