//! docs/rules.md §7: `Engine` is `Send + Sync`; `TableMap` is a cheap
//! `Clone + Send + Sync` handle; every public type implements `Debug`.

use pauselog::*;

fn send_sync<T: Send + Sync>() {}
fn clone_send_sync<T: Clone + Send + Sync>() {}
fn debug<T: std::fmt::Debug>() {}

#[test]
fn handles_cross_threads() {
    send_sync::<Engine>();
    clone_send_sync::<TableMap>();
    clone_send_sync::<RetryJob>();
    send_sync::<ManualClock>();
}

#[test]
fn every_public_type_is_debug() {
    debug::<Engine>();
    debug::<EngineBuilder>();
    debug::<TableMap>();
    debug::<MapConfig>();
    debug::<MapStats>();
    debug::<MapCounters>();
    debug::<SubmitCounts>();
    debug::<SyncLatency>();
    debug::<MapState>();
    debug::<Record>();
    debug::<QueuedRecord>();
    debug::<CatchupError>();
    debug::<Page<QueuedRecord>>();
    debug::<Query>();
    debug::<Selection>();
    debug::<Submitted>();
    debug::<PauseRule>();
    debug::<ResumeMode>();
    debug::<KeyOrdering>();
    debug::<ErrorReason>();
    debug::<PauseReason>();
    debug::<Limit>();
    debug::<Op>();
    debug::<DeliveryError>();
    debug::<RetryJob>();
    debug::<RetryProgress>();
    debug::<ManualClock>();
    debug::<SystemClock>();
    debug::<SyncPolicy>();
    debug::<Error>();
    debug::<MapReport>();
    debug::<MapInspector>();
    debug::<VerifyReport>();
}
