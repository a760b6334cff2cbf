//! docs/rules.md R20: a data directory already in use is refused with a clear, typed
//! error naming the holder; a read-only open still works.

use pauselog_wal::{Error, Wal, WalOptions};

#[test]
fn second_open_is_locked_and_names_the_holder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append(b"first").expect("append");

    match Wal::open(dir.path(), WalOptions::default()) {
        Err(Error::Locked { dir: locked, holder }) => {
            assert_eq!(locked, dir.path());
            assert!(holder.contains(&format!("pid {}", std::process::id())), "holder names the pid: {holder}");
            let message = Error::Locked { dir: locked, holder }.to_string();
            assert!(message.contains("locked by"), "{message}");
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }

    // Read-only: no lock, sees the records, refuses writes.
    let reader = Wal::open(dir.path(), WalOptions::default().read_only(true)).expect("read-only open");
    let bodies: Vec<Vec<u8>> = reader.reader(1).map(|e| e.expect("read").body().to_vec()).collect();
    assert_eq!(bodies, [b"first".to_vec()]);
    assert!(matches!(reader.append(b"x"), Err(Error::ReadOnly { .. })));
    assert!(matches!(reader.release_through(1), Err(Error::ReadOnly { .. })));
    drop(reader);

    // Closing frees the directory.
    wal.close().expect("close");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open after close");
    assert_eq!(wal.stats().live_records, 1);
}
