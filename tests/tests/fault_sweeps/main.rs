//! Fault sweeps through the engine: three workloads (steady appends with a
//! catch-up running; rotation-heavy; fill to the size cap, skip to live
//! preserving, retry) are crashed at every storage operation, and failed
//! at every storage operation with EIO and ENOSPC, once and from then on.
//! After each, a new engine opens what is left and nothing acknowledged
//! may be missing (SPEC R2, R4, R17, R19, R21).
//!
//! CI runs a short sample; `PAUSELOG_FAULT_SWEEP=full` runs every operation
//! with 8 seeds (`PAUSELOG_FAULT_SEEDS` changes the count), a number runs
//! that many operations spread over the workload. Each test prints what it
//! covered (`--nocapture`).

mod crash_at_every_storage_operation;
mod io_errors_at_every_storage_operation;
mod workloads;
