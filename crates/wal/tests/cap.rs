//! docs/rules.md R6: the byte cap counts each record's encoded size, framing
//! included; an append that would pass it is refused and writes nothing, and
//! released bytes make room again — exactly.

use pauselog_wal::{frame_bytes, Error, SyncPolicy, Wal, WalOptions};

const BODY_BYTES: usize = 100;
const CAP_RECORDS: u64 = 10;

fn options() -> WalOptions {
    let cap = CAP_RECORDS * frame_bytes(BODY_BYTES);
    WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(4096).live_bytes_max(Some(cap))
}

#[test]
fn append_past_the_cap_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), options()).expect("open");
    let body = [7u8; BODY_BYTES];
    for seq in 1..=CAP_RECORDS {
        assert_eq!(wal.append(&body).expect("append under the cap"), seq);
    }
    let cap = CAP_RECORDS * frame_bytes(BODY_BYTES);
    assert_eq!(wal.live_bytes(), cap, "exactly at the cap");

    let before = wal.stats();
    match wal.append(&[]) {
        Err(Error::CapExceeded { live_bytes, needed_bytes, cap_bytes }) => {
            assert_eq!((live_bytes, needed_bytes, cap_bytes), (cap, frame_bytes(0), cap));
        }
        other => panic!("an empty record still costs its frame: expected CapExceeded, got {other:?}"),
    }
    assert!(matches!(wal.append_batch(&[b"a".as_slice(), b"b"]), Err(Error::CapExceeded { .. })));
    assert_eq!(wal.stats(), before, "a refused append changes nothing");

    // Releasing one record makes room for exactly one of the same size.
    wal.release_through(1).expect("release");
    assert_eq!(wal.live_bytes(), cap - frame_bytes(BODY_BYTES));
    assert!(matches!(wal.append(&[0u8; BODY_BYTES + 1]), Err(Error::CapExceeded { .. })), "one byte too many");
    assert_eq!(wal.append(&body).expect("append after release"), CAP_RECORDS + 1);
    assert_eq!(wal.live_bytes(), cap);

    // A batch is checked as a whole.
    wal.release(2..=3).expect("release two");
    let batch = [[1u8; BODY_BYTES], [2u8; BODY_BYTES], [3u8; BODY_BYTES]];
    assert!(matches!(wal.append_batch(&batch), Err(Error::CapExceeded { .. })));
    assert_eq!(wal.append_batch(&batch[..2]).expect("batch that fits"), CAP_RECORDS + 2..=CAP_RECORDS + 3);
    assert_eq!(wal.live_bytes(), cap);
    wal.close().expect("close");

    // Nothing refused was written; the accounting survives a reopen.
    let wal = Wal::open(dir.path(), options()).expect("reopen");
    assert_eq!(wal.live_bytes(), cap);
    assert_eq!(wal.stats().live_records, CAP_RECORDS);
    assert_eq!(wal.stats().next_seq, CAP_RECORDS + 4);
    assert!(matches!(wal.append(b"x"), Err(Error::CapExceeded { .. })));
}
