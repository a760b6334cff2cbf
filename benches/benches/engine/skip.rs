//! Experiment 2: skip to live (preserve and discard) on a full queue against
//! draining it.

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use pauselog::{KeyOrdering, MapState, ResumeMode};
use pauselog_benches::report_ratio;

use crate::drain::DrainFigures;
use crate::full_queue::{fill_queue, FullQueue};
use crate::mmap::segment_paths;
use crate::{group_name, median, ms, queue_bytes_full, RATIO_RUNS};

/// Skip to live with `mode`: the resume call alone (it returns Running).
fn skip(queue: &FullQueue, mode: ResumeMode) -> Duration {
    let start = Instant::now();
    queue.map().resume(mode).expect("skip to live");
    let elapsed = start.elapsed();
    let stats = queue.map().stats();
    assert_eq!((stats.state, stats.queued_records), (MapState::Running, 0));
    let expected_errors = if mode == ResumeMode::SkipToLivePreserve { queue.record_count } else { 0 };
    assert_eq!(stats.error_records, expected_errors);
    elapsed
}

/// Time to unlink the data segment files of a closed full queue: what a
/// discard pays when it deletes released segments inline.
fn report_unlink_phase() {
    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
    queue.close();
    let paths = segment_paths(&queue.data_dir());
    let start = Instant::now();
    for path in &paths {
        std::fs::remove_file(path).expect("remove segment");
    }
    let elapsed = start.elapsed();
    println!(
        "PHASE unlink of the {} data segment files of a full queue (page cache warm): {:.1} ms ({:.2} ms per segment)",
        paths.len(),
        ms(elapsed),
        ms(elapsed) / paths.len() as f64
    );
}

/// Skips of a full queue, preserve and discard, against the drains of
/// [`DrainFigures`] (median of [`RATIO_RUNS`]), and the unlink phase.
pub fn report(drains: &DrainFigures) {
    for (name, mode) in [("preserve", ResumeMode::SkipToLivePreserve), ("discard", ResumeMode::SkipToLiveDiscard)] {
        let runs: Vec<Duration> = (0..RATIO_RUNS)
            .map(|_| {
                let queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
                skip(&queue, mode)
            })
            .collect();
        let ours = median(runs);
        println!(
            "TIME skip to live ({name}) of a full queue ({:.1} MB): {:.3} ms",
            drains.queued_bytes as f64 / 1e6,
            ms(ours)
        );
        report_ratio(
            &format!("skip to live ({name}) time / Strict drain time [target <= 0.010x]"),
            ms(ours),
            ms(drains.strict),
            "ms",
        );
        report_ratio(
            &format!("skip to live ({name}) time / BestEffort drain time [target <= 0.010x]"),
            ms(ours),
            ms(drains.best_effort),
            "ms",
        );
    }
    report_unlink_phase();
}

/// The criterion group of skips, on queues of `queue_bytes`.
pub fn bench(c: &mut Criterion, queue_bytes: u64) {
    // A skip lasts about a millisecond and each one needs a freshly filled
    // queue: a tiny measurement time keeps criterion to a few iterations.
    let mut group = c.benchmark_group(group_name("engine_skip_to_live"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_millis(10));
    for (name, mode) in [("preserve", ResumeMode::SkipToLivePreserve), ("discard", ResumeMode::SkipToLiveDiscard)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| skip(&fill_queue(KeyOrdering::Strict, queue_bytes), mode)).sum())
        });
    }
    group.finish();
}
