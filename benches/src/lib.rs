//! Shared helpers for the pauselog criterion benches (see `benches/`).
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

/// Bench scale, from `PAUSELOG_BENCH_SCALE`: `full` (default, the sizes the
/// issues name, e.g. a 1 GB log) or `quick` (a small fraction, for CI smoke runs).
pub fn quick() -> bool {
    std::env::var("PAUSELOG_BENCH_SCALE").map(|v| v == "quick").unwrap_or(false)
}

/// Prints a ratio line that is easy to grep out of criterion's output.
pub fn report_ratio(name: &str, ours: f64, peer: f64, unit: &str) {
    let ratio = if peer > 0.0 { ours / peer } else { f64::NAN };
    println!("RATIO {name}: ours {ours:.1} {unit} / peer {peer:.1} {unit} = {ratio:.3}x");
}

/// Runs `count` operations split over `thread_count` threads at once and
/// returns the wall time. Each thread calls `work(i)` for its own share of
/// the operation indexes `i` (`count / thread_count` of them, rounded up),
/// so a workload can derive keys from `i`.
pub fn timed_threads(thread_count: u64, count: u64, work: impl Fn(u64) + Sync) -> std::time::Duration {
    let per_thread = count.div_ceil(thread_count);
    let work = &work;
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..thread_count {
            scope.spawn(move || (0..per_thread).for_each(|n| work(thread * per_thread + n)));
        }
    });
    start.elapsed()
}

/// Reads every 8 bytes of `bytes` once and sums them: what touching every
/// record body costs, in a way the optimiser cannot skip.
pub fn touch(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut sum = 0u64;
    for chunk in &mut chunks {
        sum = sum.wrapping_add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
    }
    chunks.remainder().iter().fold(sum, |sum, &b| sum.wrapping_add(u64::from(b)))
}

/// Replaces `dst`'s bytes with `src`, 64 bytes at a time from first to
/// last: how the engine copies a payload out of the log (pauselog's
/// `codec::append_in_order`, which says why it does not use memmove), for
/// the benches' models of a drain.
pub fn copy_in_order(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.reserve(src.len());
    let mut chunks = src.chunks_exact(64);
    for chunk in &mut chunks {
        let chunk: &[u8; 64] = chunk.try_into().expect("64 bytes");
        dst.extend_from_slice(chunk);
    }
    dst.extend_from_slice(chunks.remainder());
}
