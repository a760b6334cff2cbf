//! Shared helpers for the pauselog criterion benches (see `benches/`).
#![deny(missing_docs)]

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
