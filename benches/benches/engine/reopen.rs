//! Experiment 5: reopening a full queue after a clean close against a
//! memmap2 scan of its data files.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use pauselog::KeyOrdering;
use pauselog_benches::report_ratio;

use crate::full_queue::{fill_queue, FullQueue};
use crate::mmap::scan_mmap;
use crate::{group_name, mb_per_second, measurement, median, ms, queue_bytes_criterion, RATIO_RUNS};

/// Reopen of the full `queue` against the raw scan (median of
/// [`RATIO_RUNS`]).
pub fn report(queue: &mut FullQueue) {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        ours.push(queue.reopen());
        peer.push(scan_mmap(&queue.data_dir()).0);
    }
    let (ours, peer) = (median(ours), median(peer));
    println!(
        "TIME reopen of a full queue ({:.1} MB): {:.1} ms; memmap2 scan of its data files: {:.1} ms ({:.0} MB/s)",
        queue.queued_bytes as f64 / 1e6,
        ms(ours),
        ms(peer),
        mb_per_second(queue.queued_bytes, peer)
    );
    report_ratio(
        "reopen (close, open + table_map) vs memmap2 scan of the data [lower is better]",
        ms(ours),
        ms(peer),
        "ms",
    );
}

/// The criterion group of reopens, on a queue of its own
/// ([`queue_bytes_criterion`]).
pub fn bench(c: &mut Criterion) {
    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_criterion());
    let mut group = c.benchmark_group(group_name("engine_reopen"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(100)).measurement_time(measurement(1000));
    group.throughput(Throughput::Bytes(queue.queued_bytes));
    group.bench_function("close_then_open_table_map", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| queue.reopen()).sum())
    });
    let data_dir = queue.data_dir();
    group.bench_function("raw_memmap2_scan", |b| b.iter(|| scan_mmap(&data_dir)));
    group.finish();
}
