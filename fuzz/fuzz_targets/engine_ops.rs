//! Engine operations from arbitrary bytes, over the crash-simulating
//! storage, against the reference model of `pauselog_tests::model`: the
//! first two bytes choose the map's configuration, the rest a sequence of
//! submits, pauses, resumes, skips, retries, discards, destination outages
//! and rejections, clock moves and ticks, power losses and reopens. Every
//! invariant the model test checks holds at every step (R2–R10, R12–R17,
//! R21); a run ends with a clean reopen and a full drain.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog_tests::model::{run_model, ModelConfig, ModelOp};

/// Longest run of one input: keeps each execution well under a second.
const OPS_MAX: usize = 48;

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else { return };
    let ops = ModelOp::decode_all(rest);
    if ops.len() > OPS_MAX {
        return;
    }
    run_model(ModelConfig::decode(*a, *b), &ops);
});
