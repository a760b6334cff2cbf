//! The records and the sizes every engine is measured on (PERFORMANCE.md's
//! workload): a 16-byte integration key and a 1,000-byte payload per record,
//! over 10,000 keys.

use std::time::Duration;

use pauselog_benches::quick;
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// `USMF|CUST-000042`: 16 bytes.
pub const KEY_BYTES: usize = 16;
/// Payload bytes per record.
pub const PAYLOAD_BYTES: usize = 1000;
/// Key and payload: the bytes a record carries, what "raw bytes" counts.
pub const RECORD_BYTES: u64 = (KEY_BYTES + PAYLOAD_BYTES) as u64;
/// Payloads are windows of this random pool, so that no engine's
/// compression finds more redundancy than real payloads would have.
const PAYLOAD_POOL_BYTES: usize = 1 << 20;
/// A prime stride between payload windows.
const PAYLOAD_STRIDE: usize = 4099;

/// Sizes of one run, from `PAUSELOG_BENCH_SCALE` (`quick` divides by 100).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Records of the bulk append (and of the queue replayed and reopened).
    pub bulk_records: u64,
    /// Distinct integration keys.
    pub key_count: u64,
    /// Durable appends from one writer.
    pub durable_one_records: u64,
    /// Durable appends from eight writers together.
    pub durable_eight_records: u64,
    /// Appends before the SIGKILL.
    pub kill_records: u64,
    /// Pages of one key timed for the p99.
    pub page_queries: usize,
    /// Longest time a durable-append workload runs (it stops earlier when
    /// its records are done).
    pub durable_time_max: Duration,
}

impl Scale {
    /// The sizes the issue names, or a hundredth of them in a quick run.
    pub fn from_env() -> Self {
        let divisor = if quick() { 100 } else { 1 };
        Self {
            bulk_records: 1_000_000 / divisor,
            key_count: 10_000 / divisor,
            durable_one_records: 20_000 / divisor,
            durable_eight_records: 100_000 / divisor,
            kill_records: 500_000 / divisor,
            page_queries: 2000 / divisor as usize,
            durable_time_max: Duration::from_secs(if quick() { 1 } else { 10 }),
        }
    }
}

/// The records of a run: record `i` has key `i % key_count` and a payload
/// window that depends on `i`.
#[derive(Debug)]
pub struct Records {
    keys: Vec<String>,
    pool: Vec<u8>,
}

impl Records {
    /// Keys and payload pool for `key_count` keys.
    pub fn new(key_count: u64) -> Self {
        let keys: Vec<String> = (0..key_count).map(key_name).collect();
        let mut rng = SmallRng::seed_from_u64(11);
        let pool = (0..PAYLOAD_POOL_BYTES).map(|_| rng.gen()).collect();
        Self { keys, pool }
    }

    /// The integration key of record `i`.
    pub fn key(&self, i: u64) -> &str {
        &self.keys[(i % self.keys.len() as u64) as usize]
    }

    /// The payload of record `i`.
    pub fn payload(&self, i: u64) -> &[u8] {
        let start = (i as usize).wrapping_mul(PAYLOAD_STRIDE) % (PAYLOAD_POOL_BYTES - PAYLOAD_BYTES);
        &self.pool[start..start + PAYLOAD_BYTES]
    }

    /// A key chosen by `rng` among all keys.
    pub fn random_key(&self, rng: &mut SmallRng) -> &str {
        &self.keys[rng.gen_range(0..self.keys.len())]
    }
}

/// The `index`-th integration key, 16 bytes.
pub fn key_name(index: u64) -> String {
    let key = format!("USMF|CUST-{index:06}");
    debug_assert_eq!(key.len(), KEY_BYTES);
    key
}
