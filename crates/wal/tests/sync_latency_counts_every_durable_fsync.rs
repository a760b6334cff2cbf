//! The fsync latency histogram (for the admin API's `/metrics`) counts
//! exactly the fsyncs that made appends durable (R17), and only those.

use pauselog_wal::{SyncPolicy, Wal, WalOptions};

#[test]
fn every_durable_fsync_is_timed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Always)).expect("open");
    assert_eq!(wal.sync_latency().count(), 0, "a fresh log has synced nothing");
    for n in 0..5u32 {
        wal.append(&n.to_le_bytes()).expect("append");
    }
    let stats = wal.stats();
    let latency = wal.sync_latency();
    assert!(stats.sync_count >= 5, "one fsync per lone durable append: {stats:?}");
    assert_eq!(latency.count(), stats.sync_count, "{latency:?}");
    assert!(!latency.sum.is_zero(), "an fsync takes some time: {latency:?}");
}

#[test]
fn appends_that_are_not_synced_are_not_timed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    for n in 0..100u32 {
        wal.append(&n.to_le_bytes()).expect("append");
    }
    assert_eq!(wal.sync_latency().count(), 0);
    wal.sync().expect("sync");
    assert_eq!(wal.sync_latency().count(), wal.stats().sync_count);
    assert_eq!(wal.sync_latency().count(), 1);
}
