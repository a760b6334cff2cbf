//! What the meta log holds: the durable record of a map's state, replay
//! position, seq reservations, fired maintenance windows and catch-up errors
//! (R4, R19a). Replaying it from its last snapshot rebuilds them.
//!
//! One file past 600 lines on purpose: the format's table, its encoder,
//! both versions' decoders and the golden-file tests that pin them are read
//! together; the tests are a quarter of it.
//!
//! # Format (version 2)
//!
//! Every meta log body is one event, explicit little-endian throughout:
//!
//! ```text
//! event  = version u8 (= 2) | kind u8 (1 commit, 2 snapshot) | field*
//! field  = tag u8 | length u32 | value (length bytes)
//! ```
//!
//! | tag | field | value | in |
//! |---|---|---|---|
//! | 1 | state | `state` | commit (at most once), snapshot (once) |
//! | 2 | blocked | u8: 0 none, 1 size, 2 pause age | commit (at most once), snapshot (once) |
//! | 3 | head | u64 | commit (at most once), snapshot (once) |
//! | 4 | error added (snapshot: error) | `run` | commit, snapshot; repeated |
//! | 5 | error removed | lo u64, hi u64 | commit; repeated |
//! | 6 | error updated | `run` | commit; repeated |
//! | 7 | seqs reserved through | u64 | commit (at most once), snapshot (at most once) |
//! | 8 | window mark | start u64, end u64, started u8, ended u8 | commit, snapshot; repeated |
//!
//! ```text
//! state  = 1 (running) | 2 (paused) since u64 reason | 3 (catching up)
//! reason = 1 (manual) | 2 (window) start u64 end u64 | 3 (destination unavailable)
//! run    = lo u64 | hi u64 | reason u8 (1 rejected, 2 preserved, 3 blocked by an
//!          earlier failure, 4 superseded) | attempts u32 | first_failed u64 |
//!          last_failed u64 | last_error_len u32 (0xFFFF_FFFF: none) | last_error (UTF-8)
//! ```
//!
//! Times are nanoseconds since the Unix epoch. Fields come in tag order and
//! a decoder refuses an unknown tag, kind or version, a repeated single
//! field, a length that does not match its value, and trailing bytes: an
//! event it does not fully understand is never half-applied.
//!
//! # Version 1
//!
//! Logs written before version 2 hold bincode 1 encodings of the engine's
//! types of the time (a `u32` variant index first, so their first byte is
//! 0 or 1, never 2). They are still read (`legacy`); nothing writes them.
//! Golden files of both versions live in `crates/pauselog/golden/` and are
//! decoded by this module's tests, so a build that changes what old files
//! mean fails.

use std::time::SystemTime;

use crate::clock::{from_nanos, to_nanos};
use crate::errors_table::ErrorRun;
use crate::{ErrorReason, Limit, PauseReason};

/// The version byte every event written now starts with.
pub(crate) const META_VERSION: u8 = 2;

const KIND_COMMIT: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;

const TAG_STATE: u8 = 1;
const TAG_BLOCKED: u8 = 2;
const TAG_HEAD: u8 = 3;
const TAG_ADD_ERROR: u8 = 4;
const TAG_REMOVE_ERROR: u8 = 5;
const TAG_UPDATE_ERROR: u8 = 6;
const TAG_SEQ_RESERVED: u8 = 7;
const TAG_WINDOW: u8 = 8;

/// No `last_error` in a run.
const NO_TEXT: u32 = u32::MAX;

/// The durable state of a map, as the meta log stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredState {
    Running,
    Paused { since_nanos: u64, reason: PauseReason },
    CatchingUp,
}

/// What is durably known about one maintenance window of the map's rules,
/// identified by its start and end: whether it has paused the map (or was
/// found already open), and whether its end has been handled. Kept so that
/// a restart inside a window does not pause a map again that an operator
/// resumed by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowMark {
    pub start_nanos: u64,
    pub end_nanos: u64,
    pub started: bool,
    pub ended: bool,
}

/// One change to a map's durable state, applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Commit {
    /// New state, if it changed.
    pub state: Option<StoredState>,
    /// New blocked cap (Some(None) clears it).
    pub blocked: Option<Option<Limit>>,
    /// New replay head: every seq below it has left the queue.
    pub head: Option<u64>,
    /// Entries added to the catch-up errors.
    pub add_errors: Vec<ErrorRun>,
    /// Inclusive seq ranges that left the catch-up errors.
    pub remove_errors: Vec<(u64, u64)>,
    /// Entries whose metadata changed (replace the covered seqs).
    pub update_errors: Vec<ErrorRun>,
    /// Every seq the map may hand out (live or queued) is at or below this
    /// (R21: reserved ahead, so a crash never makes a seq be reused). The
    /// last value written wins: a clean close lowers it to the last seq
    /// actually handed out.
    pub seq_reserved: Option<u64>,
    /// Windows whose marks changed.
    pub windows: Vec<WindowMark>,
}

/// A meta log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaEvent {
    /// A change.
    Commit(Commit),
    /// Everything at once; earlier entries are obsolete.
    Snapshot(Snapshot),
}

/// Everything a map's meta log says, at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub state: StoredState,
    pub blocked: Option<Limit>,
    pub head: u64,
    pub errors: Vec<ErrorRun>,
    pub seq_reserved: Option<u64>,
    pub windows: Vec<WindowMark>,
}

pub(crate) fn encode_event(event: &MetaEvent) -> Vec<u8> {
    let mut out = Writer { out: Vec::with_capacity(64) };
    out.out.push(META_VERSION);
    match event {
        MetaEvent::Commit(commit) => {
            out.out.push(KIND_COMMIT);
            if let Some(state) = &commit.state {
                out.field(TAG_STATE, |w| w.state(state));
            }
            if let Some(blocked) = commit.blocked {
                out.field(TAG_BLOCKED, |w| w.out.push(limit_byte(blocked)));
            }
            if let Some(head) = commit.head {
                out.field(TAG_HEAD, |w| w.u64(head));
            }
            for run in &commit.add_errors {
                out.field(TAG_ADD_ERROR, |w| w.run(run));
            }
            for &(lo, hi) in &commit.remove_errors {
                out.field(TAG_REMOVE_ERROR, |w| {
                    w.u64(lo);
                    w.u64(hi);
                });
            }
            for run in &commit.update_errors {
                out.field(TAG_UPDATE_ERROR, |w| w.run(run));
            }
            if let Some(seq) = commit.seq_reserved {
                out.field(TAG_SEQ_RESERVED, |w| w.u64(seq));
            }
            for mark in &commit.windows {
                out.field(TAG_WINDOW, |w| w.window(mark));
            }
        }
        MetaEvent::Snapshot(snapshot) => {
            out.out.push(KIND_SNAPSHOT);
            out.field(TAG_STATE, |w| w.state(&snapshot.state));
            out.field(TAG_BLOCKED, |w| w.out.push(limit_byte(snapshot.blocked)));
            out.field(TAG_HEAD, |w| w.u64(snapshot.head));
            for run in &snapshot.errors {
                out.field(TAG_ADD_ERROR, |w| w.run(run));
            }
            if let Some(seq) = snapshot.seq_reserved {
                out.field(TAG_SEQ_RESERVED, |w| w.u64(seq));
            }
            for mark in &snapshot.windows {
                out.field(TAG_WINDOW, |w| w.window(mark));
            }
        }
    }
    out.out
}

/// Decodes a meta log body of either version; `Err` says what is wrong.
pub(crate) fn decode_event(body: &[u8]) -> Result<MetaEvent, String> {
    match body.first() {
        Some(&META_VERSION) => decode_v2(body),
        Some(0 | 1) => legacy::decode(body),
        Some(version) => Err(format!("meta event of unknown format version {version}; a newer pauselog wrote it")),
        None => Err("empty meta event".into()),
    }
}

fn decode_v2(body: &[u8]) -> Result<MetaEvent, String> {
    let mut reader = Reader { bytes: body, at: 1 };
    let kind = reader.u8()?;
    if kind != KIND_COMMIT && kind != KIND_SNAPSHOT {
        return Err(format!("meta event of unknown kind {kind}"));
    }
    let mut commit = Commit::default();
    let mut last_tag = 0u8;
    while !reader.is_done() {
        let tag = reader.u8()?;
        let length = reader.u32()? as usize;
        let value = reader.take(length)?;
        if tag < last_tag {
            return Err(format!("meta field {tag} after field {last_tag}: fields come in tag order"));
        }
        let repeated = tag == last_tag;
        last_tag = tag;
        let mut field = Reader { bytes: value, at: 0 };
        let single =
            |present: bool| if repeated || present { Err(format!("meta field {tag} repeated")) } else { Ok(()) };
        match tag {
            TAG_STATE => {
                single(commit.state.is_some())?;
                commit.state = Some(field.state()?);
            }
            TAG_BLOCKED => {
                single(commit.blocked.is_some())?;
                commit.blocked = Some(limit_from(field.u8()?)?);
            }
            TAG_HEAD => {
                single(commit.head.is_some())?;
                commit.head = Some(field.u64()?);
            }
            TAG_ADD_ERROR => commit.add_errors.push(field.run()?),
            TAG_REMOVE_ERROR if kind == KIND_COMMIT => commit.remove_errors.push((field.u64()?, field.u64()?)),
            TAG_UPDATE_ERROR if kind == KIND_COMMIT => commit.update_errors.push(field.run()?),
            TAG_SEQ_RESERVED => {
                single(commit.seq_reserved.is_some())?;
                commit.seq_reserved = Some(field.u64()?);
            }
            TAG_WINDOW => commit.windows.push(field.window()?),
            _ => return Err(format!("meta event of kind {kind} has unknown field {tag}")),
        }
        if !field.is_done() {
            return Err(format!("meta field {tag} is {length} bytes, longer than its value"));
        }
    }
    if kind == KIND_COMMIT {
        return Ok(MetaEvent::Commit(commit));
    }
    let (Some(state), Some(blocked), Some(head)) = (commit.state, commit.blocked, commit.head) else {
        return Err("meta snapshot without its state, blocked limit or head".into());
    };
    Ok(MetaEvent::Snapshot(Snapshot {
        state,
        blocked,
        head,
        errors: commit.add_errors,
        seq_reserved: commit.seq_reserved,
        windows: commit.windows,
    }))
}

fn limit_byte(limit: Option<Limit>) -> u8 {
    match limit {
        None => 0,
        Some(Limit::Size) => 1,
        Some(Limit::PauseAge) => 2,
    }
}

fn limit_from(byte: u8) -> Result<Option<Limit>, String> {
    match byte {
        0 => Ok(None),
        1 => Ok(Some(Limit::Size)),
        2 => Ok(Some(Limit::PauseAge)),
        _ => Err(format!("unknown blocked limit {byte}")),
    }
}

fn reason_byte(reason: ErrorReason) -> u8 {
    match reason {
        ErrorReason::Rejected => 1,
        ErrorReason::Preserved => 2,
        ErrorReason::BlockedByEarlierFailure => 3,
        ErrorReason::Superseded => 4,
    }
}

fn reason_from(byte: u8) -> Result<ErrorReason, String> {
    match byte {
        1 => Ok(ErrorReason::Rejected),
        2 => Ok(ErrorReason::Preserved),
        3 => Ok(ErrorReason::BlockedByEarlierFailure),
        4 => Ok(ErrorReason::Superseded),
        _ => Err(format!("unknown catch-up error reason {byte}")),
    }
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// A field: its tag, then its value's length (patched in after it).
    fn field(&mut self, tag: u8, value: impl FnOnce(&mut Writer)) {
        self.out.push(tag);
        let length_at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        value(self);
        let length = u32::try_from(self.out.len() - length_at - 4).expect("a meta field is far below 4 GiB");
        self.out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn state(&mut self, state: &StoredState) {
        match *state {
            StoredState::Running => self.out.push(1),
            StoredState::Paused { since_nanos, reason } => {
                self.out.push(2);
                self.u64(since_nanos);
                match reason {
                    PauseReason::Manual => self.out.push(1),
                    PauseReason::Window { start, end } => {
                        self.out.push(2);
                        self.u64(to_nanos(start));
                        self.u64(to_nanos(end));
                    }
                    PauseReason::DestinationUnavailable => self.out.push(3),
                }
            }
            StoredState::CatchingUp => self.out.push(3),
        }
    }

    fn run(&mut self, run: &ErrorRun) {
        self.u64(run.lo);
        self.u64(run.hi);
        self.out.push(reason_byte(run.reason));
        self.u32(run.attempts);
        self.u64(run.first_failed_nanos);
        self.u64(run.last_failed_nanos);
        match &run.last_error {
            // Error texts come from destinations; one past 4 GiB is cut
            // rather than written with a wrong length.
            Some(text) => {
                let bytes = &text.as_bytes()[..text.len().min(NO_TEXT as usize - 1)];
                self.u32(bytes.len() as u32);
                self.out.extend_from_slice(bytes);
            }
            None => self.u32(NO_TEXT),
        }
    }

    fn window(&mut self, mark: &WindowMark) {
        self.u64(mark.start_nanos);
        self.u64(mark.end_nanos);
        self.out.push(u8::from(mark.started));
        self.out.push(u8::from(mark.ended));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(length).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("meta event truncated: {length} bytes wanted at offset {}", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes taken")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes taken")))
    }

    fn flag(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("flag byte {other} is neither 0 nor 1")),
        }
    }

    fn state(&mut self) -> Result<StoredState, String> {
        match self.u8()? {
            1 => Ok(StoredState::Running),
            2 => {
                let since_nanos = self.u64()?;
                let reason = match self.u8()? {
                    1 => PauseReason::Manual,
                    2 => PauseReason::Window { start: from_nanos(self.u64()?), end: from_nanos(self.u64()?) },
                    3 => PauseReason::DestinationUnavailable,
                    other => return Err(format!("unknown pause reason {other}")),
                };
                Ok(StoredState::Paused { since_nanos, reason })
            }
            3 => Ok(StoredState::CatchingUp),
            other => Err(format!("unknown map state {other}")),
        }
    }

    fn run(&mut self) -> Result<ErrorRun, String> {
        let (lo, hi) = (self.u64()?, self.u64()?);
        if lo == 0 || lo > hi {
            return Err(format!("catch-up error run {lo}..={hi} is empty or names seq 0"));
        }
        let reason = reason_from(self.u8()?)?;
        let attempts = self.u32()?;
        let (first_failed_nanos, last_failed_nanos) = (self.u64()?, self.u64()?);
        let last_error = match self.u32()? {
            NO_TEXT => None,
            length => {
                let bytes = self.take(length as usize)?;
                Some(String::from_utf8(bytes.to_vec()).map_err(|_| "catch-up error text is not UTF-8".to_owned())?)
            }
        };
        Ok(ErrorRun { lo, hi, reason, last_error, attempts, first_failed_nanos, last_failed_nanos })
    }

    fn window(&mut self) -> Result<WindowMark, String> {
        Ok(WindowMark { start_nanos: self.u64()?, end_nanos: self.u64()?, started: self.flag()?, ended: self.flag()? })
    }
}

/// Version 1: bincode 1 of the engine's types before version 2, frozen here.
mod legacy {
    use serde::Deserialize;

    use super::{Commit, MetaEvent, Snapshot, StoredState};
    use crate::errors_table::ErrorRun;
    use crate::{ErrorReason, Limit, PauseReason};

    #[derive(Deserialize)]
    enum V1PauseReason {
        Manual,
        Window,
        DestinationUnavailable,
    }

    #[derive(Deserialize)]
    enum V1Limit {
        Size,
        PauseAge,
    }

    #[derive(Deserialize)]
    enum V1ErrorReason {
        Rejected,
        Preserved,
        BlockedByEarlierFailure,
        Superseded,
    }

    #[derive(Deserialize)]
    enum V1StoredState {
        Running,
        Paused { since_nanos: u64, reason: V1PauseReason },
        CatchingUp,
    }

    #[derive(Deserialize)]
    struct V1ErrorRun {
        lo: u64,
        hi: u64,
        reason: V1ErrorReason,
        last_error: Option<String>,
        attempts: u32,
        first_failed_nanos: u64,
        last_failed_nanos: u64,
    }

    #[derive(Deserialize)]
    struct V1Commit {
        state: Option<V1StoredState>,
        blocked: Option<Option<V1Limit>>,
        head: Option<u64>,
        add_errors: Vec<V1ErrorRun>,
        remove_errors: Vec<(u64, u64)>,
        update_errors: Vec<V1ErrorRun>,
    }

    #[derive(Deserialize)]
    enum V1MetaEvent {
        Commit(V1Commit),
        Snapshot { state: V1StoredState, blocked: Option<V1Limit>, head: u64, errors: Vec<V1ErrorRun> },
    }

    pub(super) fn decode(body: &[u8]) -> Result<MetaEvent, String> {
        use bincode::Options;
        // bincode 1's `deserialize` defaults: fixed-width little-endian
        // integers, trailing bytes allowed; refuse them here.
        let options = bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes();
        let event: V1MetaEvent =
            options.deserialize(body).map_err(|error| format!("version 1 meta event does not decode: {error}"))?;
        // The same check as version 2's: a run names seqs from 1 up.
        let runs = match &event {
            V1MetaEvent::Commit(commit) => commit.add_errors.iter().chain(&commit.update_errors).collect::<Vec<_>>(),
            V1MetaEvent::Snapshot { errors, .. } => errors.iter().collect(),
        };
        if let Some(bad) = runs.iter().find(|run| run.lo == 0 || run.lo > run.hi) {
            return Err(format!("catch-up error run {}..={} is empty or names seq 0", bad.lo, bad.hi));
        }
        Ok(match event {
            V1MetaEvent::Commit(commit) => MetaEvent::Commit(Commit {
                state: commit.state.map(state),
                blocked: commit.blocked.map(|blocked| blocked.map(limit)),
                head: commit.head,
                add_errors: commit.add_errors.into_iter().map(run).collect(),
                remove_errors: commit.remove_errors,
                update_errors: commit.update_errors.into_iter().map(run).collect(),
                seq_reserved: None,
                windows: Vec::new(),
            }),
            V1MetaEvent::Snapshot { state: s, blocked, head, errors } => MetaEvent::Snapshot(Snapshot {
                state: state(s),
                blocked: blocked.map(limit),
                head,
                errors: errors.into_iter().map(run).collect(),
                seq_reserved: None,
                windows: Vec::new(),
            }),
        })
    }

    fn state(state: V1StoredState) -> StoredState {
        match state {
            V1StoredState::Running => StoredState::Running,
            V1StoredState::CatchingUp => StoredState::CatchingUp,
            V1StoredState::Paused { since_nanos, reason } => StoredState::Paused {
                since_nanos,
                reason: match reason {
                    V1PauseReason::Manual => PauseReason::Manual,
                    // Version 1 did not say which window: the epoch stands
                    // for "unknown" (it matches no configured window).
                    V1PauseReason::Window => {
                        PauseReason::Window { start: std::time::UNIX_EPOCH, end: std::time::UNIX_EPOCH }
                    }
                    V1PauseReason::DestinationUnavailable => PauseReason::DestinationUnavailable,
                },
            },
        }
    }

    fn limit(limit: V1Limit) -> Limit {
        match limit {
            V1Limit::Size => Limit::Size,
            V1Limit::PauseAge => Limit::PauseAge,
        }
    }

    fn run(run: V1ErrorRun) -> ErrorRun {
        ErrorRun {
            lo: run.lo,
            hi: run.hi,
            reason: match run.reason {
                V1ErrorReason::Rejected => ErrorReason::Rejected,
                V1ErrorReason::Preserved => ErrorReason::Preserved,
                V1ErrorReason::BlockedByEarlierFailure => ErrorReason::BlockedByEarlierFailure,
                V1ErrorReason::Superseded => ErrorReason::Superseded,
            },
            last_error: run.last_error,
            attempts: run.attempts,
            first_failed_nanos: run.first_failed_nanos,
            last_failed_nanos: run.last_failed_nanos,
        }
    }
}

/// A window mark for `start..end`.
pub(crate) fn window_mark(start: SystemTime, end: SystemTime, started: bool, ended: bool) -> WindowMark {
    WindowMark { start_nanos: to_nanos(start), end_nanos: to_nanos(end), started, ended }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: u64 = 1_767_225_600_000_000_000;

    fn run(lo: u64, hi: u64, reason: ErrorReason, last_error: Option<&str>, attempts: u32) -> ErrorRun {
        ErrorRun {
            lo,
            hi,
            reason,
            last_error: last_error.map(str::to_owned),
            attempts,
            first_failed_nanos: T0,
            last_failed_nanos: 1_767_225_661_000_000_123,
        }
    }

    fn paused(since_nanos: u64, reason: PauseReason) -> Option<StoredState> {
        Some(StoredState::Paused { since_nanos, reason })
    }

    /// The events of `golden/meta_v1_*.bin`, as version 2 reads them.
    fn v1_events() -> Vec<(&'static str, MetaEvent)> {
        let unknown_window = PauseReason::Window { start: std::time::UNIX_EPOCH, end: std::time::UNIX_EPOCH };
        vec![
            ("commit_empty", MetaEvent::Commit(Commit::default())),
            (
                "commit_paused_manual",
                MetaEvent::Commit(Commit { state: paused(T0, PauseReason::Manual), ..Commit::default() }),
            ),
            (
                "commit_paused_window_blocked_size",
                MetaEvent::Commit(Commit {
                    state: paused(42, unknown_window),
                    blocked: Some(Some(Limit::Size)),
                    ..Commit::default()
                }),
            ),
            (
                "commit_paused_unavailable_blocked_age",
                MetaEvent::Commit(Commit {
                    state: paused(7, PauseReason::DestinationUnavailable),
                    blocked: Some(Some(Limit::PauseAge)),
                    ..Commit::default()
                }),
            ),
            (
                "commit_catching_up",
                MetaEvent::Commit(Commit { state: Some(StoredState::CatchingUp), ..Commit::default() }),
            ),
            (
                "commit_running_unblocked_head",
                MetaEvent::Commit(Commit {
                    state: Some(StoredState::Running),
                    blocked: Some(None),
                    head: Some(1_000_001),
                    ..Commit::default()
                }),
            ),
            (
                "commit_errors",
                MetaEvent::Commit(Commit {
                    head: Some(77),
                    add_errors: vec![
                        run(10, 10, ErrorReason::Rejected, Some("CHECK constraint \"credit_ok\" failed: ü"), 1),
                        run(11, 11, ErrorReason::BlockedByEarlierFailure, None, 0),
                    ],
                    remove_errors: vec![(3, 5), (8, 8)],
                    update_errors: vec![run(
                        12,
                        12,
                        ErrorReason::Superseded,
                        Some("a newer record of this key was delivered live"),
                        2,
                    )],
                    ..Commit::default()
                }),
            ),
            (
                "snapshot",
                MetaEvent::Snapshot(Snapshot {
                    state: StoredState::Paused { since_nanos: 99, reason: PauseReason::Manual },
                    blocked: Some(Limit::Size),
                    head: 500,
                    errors: vec![
                        run(1, 400, ErrorReason::Preserved, None, 0),
                        run(401, 401, ErrorReason::Rejected, Some("bad"), 3),
                    ],
                    seq_reserved: None,
                    windows: Vec::new(),
                }),
            ),
            (
                "snapshot_running_empty",
                MetaEvent::Snapshot(Snapshot {
                    state: StoredState::Running,
                    blocked: None,
                    head: 1,
                    errors: Vec::new(),
                    seq_reserved: None,
                    windows: Vec::new(),
                }),
            ),
        ]
    }

    /// The events of `golden/meta_v2_*.bin`.
    fn v2_events() -> Vec<(&'static str, MetaEvent)> {
        let start = std::time::UNIX_EPOCH + Duration::from_nanos(T0);
        let end = start + Duration::from_secs(1800);
        let mut events: Vec<(&'static str, MetaEvent)> =
            v1_events().into_iter().filter(|(name, _)| *name != "commit_paused_window_blocked_size").collect();
        events.extend([
            (
                "commit_paused_window",
                MetaEvent::Commit(Commit {
                    state: paused(T0, PauseReason::Window { start, end }),
                    windows: vec![window_mark(start, end, true, false)],
                    ..Commit::default()
                }),
            ),
            ("commit_seq_reserved", MetaEvent::Commit(Commit { seq_reserved: Some(65_537), ..Commit::default() })),
            (
                "snapshot_full",
                MetaEvent::Snapshot(Snapshot {
                    state: StoredState::CatchingUp,
                    blocked: Some(Limit::PauseAge),
                    head: 12,
                    errors: vec![run(3, 3, ErrorReason::Rejected, Some(""), 1)],
                    seq_reserved: Some(131_072),
                    windows: vec![
                        window_mark(start, end, true, true),
                        window_mark(end, end + Duration::from_secs(1), false, false),
                    ],
                }),
            ),
        ]);
        events
    }

    fn golden(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("golden file {}: {e}", path.display()))
    }

    /// Files written by version 1 (bincode) still mean what they meant.
    #[test]
    fn version_1_golden_files_decode() {
        for (name, expected) in v1_events() {
            let decoded = decode_event(&golden(&format!("meta_v1_{name}.bin")));
            assert_eq!(decoded.as_ref(), Ok(&expected), "meta_v1_{name}.bin");
        }
    }

    /// Version 2 writes exactly the committed bytes and reads them back.
    /// `GOLDEN_WRITE=1` rewrites the files (only for a new version's).
    #[test]
    fn version_2_golden_files_are_stable() {
        for (name, event) in v2_events() {
            let file = format!("meta_v2_{name}.bin");
            let bytes = encode_event(&event);
            if std::env::var_os("GOLDEN_WRITE").is_some() {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden").join(&file);
                std::fs::write(path, &bytes).expect("write golden file");
            }
            assert_eq!(bytes, golden(&file), "{file}: the encoding changed");
            assert_eq!(decode_event(&bytes), Ok(event), "{file}");
        }
    }

    /// Found by the `meta_event` fuzz target: a version 1 event whose error
    /// run is empty or names seq 0 decoded (version 2 refuses it), so the
    /// engine applied a run that `ErrorTable` cannot hold and re-encoding
    /// the event gave bytes it refuses to read.
    #[test]
    fn version_1_runs_that_are_empty_or_name_seq_0_are_refused() {
        let v1_commit_adding = |lo: u64, hi: u64| {
            let mut body = vec![0, 0, 0, 0]; // variant Commit
            body.extend([0, 0, 0]); // no state, no blocked, no head
            body.extend(1u64.to_le_bytes()); // one added run
            body.extend(lo.to_le_bytes());
            body.extend(hi.to_le_bytes());
            body.extend(0u32.to_le_bytes()); // Rejected
            body.push(0); // no last_error
            body.extend(1u32.to_le_bytes()); // attempts
            body.extend(T0.to_le_bytes());
            body.extend(T0.to_le_bytes());
            body.extend(0u64.to_le_bytes()); // no removed runs
            body.extend(0u64.to_le_bytes()); // no updated runs
            body
        };
        assert!(decode_event(&v1_commit_adding(3, 4)).is_ok(), "a valid run decodes");
        assert!(decode_event(&v1_commit_adding(0, 0)).is_err(), "a run naming seq 0");
        assert!(decode_event(&v1_commit_adding(5, 3)).is_err(), "an empty run");
    }

    /// What a decoder does not fully understand is refused, never half-read.
    #[test]
    fn malformed_events_are_refused() {
        let good = encode_event(&v2_events()[6].1);
        assert!(decode_event(&good).is_ok());
        let refused = |bytes: &[u8], why: &str| assert!(decode_event(bytes).is_err(), "{why}: {bytes:?}");
        refused(&[], "empty");
        refused(&[3, 1], "a future version");
        refused(&[2, 9], "an unknown kind");
        refused(&[2, 1, 99, 0, 0, 0, 0], "an unknown field");
        refused(&good[..good.len() - 1], "truncated");
        let mut trailing = good.clone();
        trailing.push(0);
        refused(&trailing, "trailing bytes");
        let head = [2, 1, 3, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        assert!(decode_event(&head).is_ok());
        refused(&[&head[..], &head[2..]].concat(), "a repeated single field");
        refused(&[2, 1, 3, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0], "a field longer than its value");
        refused(&[2, 2, 3, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], "a snapshot without its state");
        refused(&[2, 1, 1, 1, 0, 0, 0, 9], "an unknown state");
    }
}
