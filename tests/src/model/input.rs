//! The input of a model run: its configuration and its operations, and
//! their decoding from arbitrary bytes (the fuzz target's input).

use std::time::{Duration, SystemTime};

use pauselog::{KeyOrdering, MapConfig, PauseRule, ResumeMode};

use super::MODEL_MAX_PAUSE;
use crate::epoch;

/// The configuration of one model run.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Per-key order of the catch-up (R15).
    pub ordering: KeyOrdering,
    /// Key lanes of the catch-up and of retries (R22).
    pub lanes: usize,
    /// Records per `deliver_batch` call.
    pub batch_records: usize,
    /// The size cap, `max_queue_bytes` (R6).
    pub max_queue_bytes: u64,
    /// A maintenance window: start (seconds after [`epoch`]), length in
    /// seconds, and the resume mode at its end (R14).
    pub window: Option<(u64, u64, Option<ResumeMode>)>,
    /// A `DestinationUnavailable { consecutive }` rule (R14).
    pub health_rule: Option<u32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            ordering: KeyOrdering::Strict,
            lanes: 1,
            batch_records: 2,
            max_queue_bytes: 2000,
            window: None,
            health_rule: None,
        }
    }
}

impl ModelConfig {
    pub(super) fn window(&self) -> Option<(SystemTime, SystemTime, Option<ResumeMode>)> {
        self.window.map(|(start, length, resume)| {
            let start = epoch() + Duration::from_secs(start);
            (start, start + Duration::from_secs(length.max(1)), resume)
        })
    }

    /// The map's configuration.
    pub fn map_config(&self) -> MapConfig {
        let mut rules = Vec::new();
        if let Some((start, end, resume)) = self.window() {
            rules.push(PauseRule::Window { start, end, resume });
        }
        if let Some(consecutive) = self.health_rule {
            rules.push(PauseRule::DestinationUnavailable { consecutive });
        }
        MapConfig {
            max_queue_bytes: self.max_queue_bytes,
            max_pause: MODEL_MAX_PAUSE,
            key_ordering: self.ordering,
            rules,
            replay_batch_records: self.batch_records.max(1),
            lanes: self.lanes.max(1),
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(10),
            ..MapConfig::default()
        }
    }
}

/// Which catch-up errors a retry or a discard selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// `Selection::All`.
    All,
    /// `Selection::Key` of `MODEL_KEYS[i % 4]`.
    Key(usize),
    /// `Selection::Seqs` of the model's error entries at these indexes
    /// (modulo their count), plus a seq that was never an error.
    Seqs(Vec<usize>),
}

/// One operation of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOp {
    /// Submits a record of `MODEL_KEYS[key % 4]` with a payload of this size.
    Submit {
        /// Index into [`MODEL_KEYS`].
        key: usize,
        /// Payload bytes.
        payload_bytes: usize,
    },
    /// `pause()`.
    Pause,
    /// `resume(mode)`.
    Resume(ResumeMode),
    /// `skip_to_live(preserve)`.
    SkipToLive {
        /// Preserve the backlog as catch-up errors.
        preserve: bool,
    },
    /// `retry_errors` (or `retry_errors_forced`), waiting for the job.
    Retry {
        /// What to retry.
        pick: Pick,
        /// Also deliver `Superseded` entries.
        forced: bool,
    },
    /// `discard_errors`.
    Discard {
        /// What to discard.
        pick: Pick,
    },
    /// The destination goes down (answers `Unavailable`) or comes back.
    Destination {
        /// Down from now on.
        down: bool,
    },
    /// The destination starts or stops rejecting a key.
    Reject {
        /// Index into [`MODEL_KEYS`].
        key: usize,
        /// Reject from now on.
        rejected: bool,
    },
    /// Moves the engine's clock forward.
    Advance {
        /// Seconds.
        secs: u64,
    },
    /// `Engine::tick()`.
    Tick,
    /// A power loss: unsynced writes are dropped, or a torn prefix of
    /// `torn_bytes` of each file's unsynced writes is kept; the key index
    /// is kept or deleted; then the engine is opened again.
    Crash {
        /// Unsynced bytes kept per file (a torn write).
        torn_bytes: Option<usize>,
        /// Keep the key index (else it is deleted: R19a).
        keep_index: bool,
    },
    /// A clean close and open.
    Reopen,
}

impl ModelOp {
    /// Decodes operations from arbitrary bytes (the fuzz target's input):
    /// every byte string is a valid, deterministic sequence.
    pub fn decode_all(mut bytes: &[u8]) -> Vec<ModelOp> {
        let mut next = move || {
            let (&first, rest) = bytes.split_first()?;
            bytes = rest;
            Some(first)
        };
        let mut ops = Vec::new();
        while let Some(tag) = next() {
            let arg = next().unwrap_or(0) as usize;
            let op = match tag % 16 {
                0..=3 => ModelOp::Submit { key: arg % 4, payload_bytes: (arg / 4) * 3 },
                4 => ModelOp::Pause,
                5 => ModelOp::Resume(resume_mode(arg)),
                6 => ModelOp::SkipToLive { preserve: arg.is_multiple_of(2) },
                7 => ModelOp::Retry { pick: pick(arg), forced: arg & 0x80 != 0 },
                8 => ModelOp::Discard { pick: pick(arg) },
                9 => ModelOp::Destination { down: arg.is_multiple_of(2) },
                10 => ModelOp::Reject { key: arg % 4, rejected: arg & 4 == 0 },
                11 => ModelOp::Advance { secs: [1, 60, 600, 1800, 4000][arg % 5] },
                12 => ModelOp::Tick,
                13 => ModelOp::Crash {
                    torn_bytes: (!arg.is_multiple_of(3)).then_some(arg * 7),
                    keep_index: arg & 0x80 == 0,
                },
                14 => ModelOp::Reopen,
                _ => ModelOp::Submit { key: arg % 4, payload_bytes: 1 },
            };
            ops.push(op);
        }
        ops
    }
}

fn resume_mode(arg: usize) -> ResumeMode {
    [ResumeMode::CatchUp, ResumeMode::SkipToLivePreserve, ResumeMode::SkipToLiveDiscard][arg % 3]
}

fn pick(arg: usize) -> Pick {
    match arg % 4 {
        0 | 1 => Pick::All,
        2 => Pick::Key(arg / 4),
        _ => Pick::Seqs(vec![arg / 4, arg / 16]),
    }
}

impl ModelConfig {
    /// Decodes a configuration from two bytes (the fuzz target's input).
    pub fn decode(a: u8, b: u8) -> ModelConfig {
        ModelConfig {
            ordering: if a & 1 == 0 { KeyOrdering::Strict } else { KeyOrdering::BestEffort },
            lanes: if a & 2 == 0 { 1 } else { 3 },
            batch_records: 1 + usize::from((a >> 2) & 3),
            max_queue_bytes: 400 + 200 * u64::from(a >> 4),
            window: (b & 3 != 0).then(|| {
                let resume =
                    [None, Some(ResumeMode::CatchUp), Some(ResumeMode::SkipToLivePreserve)][usize::from(b >> 2) % 3];
                (u64::from(b >> 4) * 600, 1800, resume)
            }),
            health_rule: (b & 4 != 0).then_some(2),
        }
    }
}
