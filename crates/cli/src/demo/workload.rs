//! The demo's records and the writers that queue them.

use std::sync::atomic::{AtomicU64, Ordering};

use pauselog::{Op, Record, Submitted, TableMap};

/// Size of each demo payload.
const PAYLOAD_BYTES: usize = 200;

/// Submits share `writer` of `total` records (every `writers`-th index);
/// returns (seq, key index) in acknowledgment order. All must be `Queued`.
pub(super) fn queue_share(
    map: &TableMap,
    writer: u64,
    writers: u64,
    total: u64,
    key_count: u64,
    submitted: &AtomicU64,
) -> Result<Vec<(u64, u64)>, String> {
    let mut acked = Vec::with_capacity((total / writers + 1) as usize);
    let mut index = writer;
    while index < total {
        let key_index = mix(index) % key_count;
        match map.submit(demo_record(key_count, index, 0)) {
            Ok(Submitted::Queued { seq }) => acked.push((seq, key_index)),
            Ok(Submitted::Live) => return Err(format!("record {index} was delivered live while the map was paused")),
            Err(error) => return Err(format!("submit failed: {error}")),
        }
        submitted.fetch_add(1, Ordering::Relaxed);
        index += writers;
    }
    Ok(acked)
}

/// A customer record: key from a hash of `index`, ~200-byte JSON payload.
pub(super) fn demo_record(key_count: u64, index: u64, act: u64) -> Record {
    let key_index = mix(index) % key_count;
    let op = match index % 10 {
        0 => Op::Create,
        9 => Op::Delete,
        _ => Op::Update,
    };
    let mut payload = format!(
        r#"{{"dataAreaId":"USMF","CustomerAccount":"CUST-{key_index:05}","Name":"Customer {key_index}","CreditLimit":{},"Currency":"USD","Revision":{index},"Act":{act},"Notes":""#,
        (key_index * 37 % 100) * 1000,
    );
    let pad = PAYLOAD_BYTES.saturating_sub(payload.len() + 2);
    payload.extend(std::iter::repeat_n('.', pad));
    payload.push_str("\"}");
    Record::new(customer_key(key_index), op, payload.into_bytes())
}

pub(super) fn customer_key(key_index: u64) -> String {
    format!("USMF|CUST-{key_index:05}")
}

pub(super) fn key_index(key: &str) -> Option<u64> {
    key.strip_prefix("USMF|CUST-")?.parse().ok()
}

/// SplitMix64's finaliser: spreads record indices over keys deterministically.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
