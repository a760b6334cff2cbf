//! Memory target: 1,000,000 entries over 10,000 keys fit in 64 MiB, both as
//! estimated by `memory_bytes` and as measured resident memory (Linux).

use pauselog_index::KeyIndex;

const ENTRY_COUNT: u64 = 1_000_000;
const KEY_COUNT: u64 = 10_000;
const BUDGET_BYTES: usize = 64 * 1024 * 1024;

fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn million_entries_over_ten_thousand_keys_fit_in_64_mib() {
    let before = resident_bytes();
    let mut index = KeyIndex::new();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for seq in 1..=ENTRY_COUNT {
        // xorshift: keys in random order, as a real queue sees them.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        index.insert(&format!("USMF|CUST-{:05}", state % KEY_COUNT), seq).expect("insert");
    }
    let after = resident_bytes();
    assert_eq!(index.len(), ENTRY_COUNT);
    assert_eq!(index.key_count(), KEY_COUNT as usize);
    let estimated = index.memory_bytes();
    let measured = after.zip(before).map(|(after, before)| after.saturating_sub(before));
    println!("memory_bytes {estimated} ({:.1} MiB), RSS delta {measured:?}", estimated as f64 / 1048576.0);
    assert!(estimated <= BUDGET_BYTES, "estimated {estimated} bytes");
    if let Some(measured) = measured {
        assert!(measured <= BUDGET_BYTES, "resident grew by {measured} bytes");
    }
    // Draining the head gives the memory back, lazily but surely.
    index.release_through(ENTRY_COUNT - 1_000);
    assert_eq!(index.len(), 1_000);
    assert!(index.memory_bytes() < estimated / 4, "after release: {}", index.memory_bytes());
}
