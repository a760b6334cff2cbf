//! Readers: iterate frames through memmap2 views while appends continue, and
//! frames still in the writer's buffer through a copy of them.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ahead::{AheadHelper, Job, AHEAD_BYTES_MIN, AHEAD_SEGMENTS, READER_RUN_BYTES};
use crate::error::{io_error, Error, Result};
use crate::frame::FRAME_HEADER_BYTES;
use crate::segment::{check_frame, CopiedBytes, Segment, SegmentView};
use crate::state::{Shared, State};
use crate::storage::Mapped;

/// Frames planned per lock acquisition.
const READ_BATCH_RECORDS: usize = 1024;

/// One record read from the log. The body borrows the segment's mapping, so
/// reading copies nothing.
#[derive(Clone)]
pub struct Entry {
    seq: u64,
    view: Arc<SegmentView>,
    body_offset: usize,
    body_len: usize,
}

impl Entry {
    /// The record's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The record's bytes.
    pub fn body(&self) -> &[u8] {
        &self.view.bytes()[self.body_offset..self.body_offset + self.body_len]
    }

    /// Encoded bytes of the frame (what the accounting counts).
    pub fn frame_bytes(&self) -> u64 {
        crate::frame::frame_bytes(self.body_len)
    }

    /// The segment file the record was read from.
    pub fn path(&self) -> &Path {
        &self.view.path
    }

    /// Byte offset of the record's frame in [`Entry::path`]: with the
    /// path, what an error about this record names. (A record read while
    /// still in the writer's buffer is there once the buffer is written.)
    pub fn offset(&self) -> u64 {
        self.view.base + (self.body_offset - FRAME_HEADER_BYTES as usize) as u64
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("seq", &self.seq)
            .field("path", &self.view.path)
            .field("offset", &self.offset())
            .field("body_len", &self.body_len)
            .finish()
    }
}

/// Iterates live records in seq order from a starting seq up to the tail as it
/// is when each batch is planned. Takes the log's lock only to plan a batch
/// (positions only, no reference counting); each frame is checked and handed
/// out in `next`, right before the caller touches its body.
///
/// A frame is CRC-checked only if it has not been checked in this process
/// yet (a segment loaded from its sidecar index at open); frames recovery
/// scanned or this process appended get a cheap check of their seq field.
/// A scan over such segments hands their check to a helper thread that runs
/// a little ahead (see `ahead.rs`), so the reader thread mostly finds its
/// frames already checked; over checked segments the helper maps their
/// pages ahead instead, so the reader takes no page faults.
pub struct Reader {
    shared: Arc<Shared>,
    next_seq: u64,
    batch: VecDeque<Planned>,
    /// The segments the current batch reads from.
    sources: Vec<Source>,
    failed: bool,
    /// Frames planned per lock acquisition.
    batch_records_max: usize,
    /// The helper checking frames or mapping pages ahead of this scan, once
    /// one was needed.
    ahead: Option<AheadHelper>,
    /// The segments handed to `ahead` lately (the last [`AHEAD_SEGMENTS`] + 1).
    ahead_jobs: VecDeque<Arc<Job>>,
    /// First seq of the last segment considered for `ahead` (0: none).
    ahead_through_seq: u64,
    /// Runs this reader claimed and checked itself and has not passed yet,
    /// as (segment first seq, byte range), in read order.
    own_runs: VecDeque<(u64, Range<u64>)>,
    /// Batches planned so far.
    fills: u64,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("next_seq", &self.next_seq).finish()
    }
}

struct Source {
    /// The segment's first seq (names it among the sources of a batch).
    first_seq: u64,
    /// The view holds frames copied from the writer's buffer.
    in_buffer: bool,
    view: Arc<SegmentView>,
    verified_end: Arc<AtomicU64>,
    /// The segment's job, if its frames are being checked ahead.
    job: Option<Arc<Job>>,
}

struct Planned {
    seq: u64,
    offset: usize,
    frame_bytes: u32,
    source: u32,
    check_crc: bool,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, from_seq: u64) -> Self {
        Self::with_batch(shared, from_seq, READ_BATCH_RECORDS)
    }

    /// A reader that plans at most `batch_records_max` frames at a time (1
    /// for a point read, so it does not map and plan frames it won't use).
    pub(crate) fn with_batch(shared: Arc<Shared>, from_seq: u64, batch_records_max: usize) -> Self {
        Reader {
            shared,
            next_seq: from_seq.max(1),
            batch: VecDeque::new(),
            sources: Vec::new(),
            failed: false,
            batch_records_max: batch_records_max.max(1),
            ahead: None,
            ahead_jobs: VecDeque::new(),
            ahead_through_seq: 0,
            own_runs: VecDeque::new(),
            fills: 0,
        }
    }

    /// The seq this reader will look at next.
    pub fn position(&self) -> u64 {
        self.batch.front().map_or(self.next_seq, |e| e.seq)
    }

    fn fill(&mut self) -> Result<()> {
        self.sources.clear();
        // A clone of the handle so `self` stays free to plan (one atomic
        // increment per batch of up to READ_BATCH_RECORDS).
        let shared = self.shared.clone();
        let mut state = shared.lock_state();
        self.plan(&mut state)?;
        self.fills += 1;
        Ok(())
    }

    /// Checks a planned frame and makes it an entry.
    fn entry(&mut self, planned: Planned) -> Result<Entry> {
        let source = &self.sources[planned.source as usize];
        let bytes = source.view.bytes();
        let frame_bytes = u64::from(planned.frame_bytes);
        let body_offset = planned.offset + FRAME_HEADER_BYTES as usize;
        // The frame's place in its file (a view of buffered frames starts
        // past the file's written end).
        let frame_start = source.view.base + planned.offset as u64;
        let corrupt =
            |reason: String| Error::Corrupt { path: source.view.path.to_path_buf(), offset: frame_start, reason };
        let frame_end = frame_start + frame_bytes;
        let checked_before = !planned.check_crc
            || source.verified_end.load(Ordering::Acquire) >= frame_end
            || match &source.job {
                Some(job) => checked_ahead(job, &mut self.own_runs, frame_start, frame_end),
                None => false,
            };
        if !checked_before {
            debug_assert_eq!(source.view.base, 0, "frames to CRC-check are read from their file");
            check_frame(bytes, planned.offset, frame_bytes, planned.seq, &source.view.path)?;
            // Contiguous progress only: a frame skipped (released) stays unverified.
            let _ = source.verified_end.compare_exchange(frame_start, frame_end, Ordering::AcqRel, Ordering::Acquire);
        } else {
            // Checked before in this process: the index is right unless
            // memory is; a cheap paired check of the seq field stays.
            let seq_field = bytes
                .get(planned.offset + 8..body_offset)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8-byte slice")));
            if seq_field != Some(planned.seq) || planned.offset as u64 + frame_bytes > bytes.len() as u64 {
                return Err(corrupt(format!("frame does not carry the expected seq {}", planned.seq)));
            }
        }
        Ok(Entry {
            seq: planned.seq,
            view: source.view.clone(),
            body_offset,
            body_len: (frame_bytes - FRAME_HEADER_BYTES) as usize,
        })
    }

    /// Plans up to `batch_records_max` live records from `next_seq` up to
    /// the last appended seq, mapping segments as needed. Frames still in
    /// the writer's buffer are copied out of it (see [`buffered_view`]).
    fn plan(&mut self, state: &mut State) -> Result<()> {
        let limit = state.next_seq - 1;
        let flushed_seq = state.flushed_seq;
        let flushed_end = state.flushed_end;
        let active_first = state.segments.back().map(|s| s.first_seq);
        let start = state.segments.partition_point(|s| s.end_seq() <= self.next_seq);
        // A reader that comes back for a second batch is a scan; one that
        // reads a few records (a page, `TableMap::stats`) never starts the
        // helper thread.
        if self.batch_records_max >= READ_BATCH_RECORDS && self.fills > 0 {
            self.check_ahead(state, start)?;
        }
        let buffer = &state.buffer;
        for segment in state.segments.range_mut(start..) {
            if self.batch.len() >= self.batch_records_max || self.next_seq > limit {
                break;
            }
            self.next_seq = self.next_seq.max(segment.first_seq);
            let last_seq = (segment.end_seq() - 1).min(limit);
            let is_active = Some(segment.first_seq) == active_first;
            // The frames of the active segment after `flushed_seq` are in
            // the buffer, not yet in the file.
            let file_last_seq = if is_active { last_seq.min(flushed_seq) } else { last_seq };
            if self.next_seq <= file_last_seq {
                let last_index = (file_last_seq - segment.first_seq) as usize;
                let needed_end = segment.offsets.get(last_index + 1).unwrap_or(segment.end);
                let view = segment_view(segment, active_first, flushed_end, needed_end)?;
                let job = self.ahead_jobs.iter().find(|job| job.segment_first_seq == segment.first_seq).cloned();
                self.plan_run(segment, view, job, last_index);
            }
            if is_active && self.next_seq <= last_seq && self.batch.len() < self.batch_records_max {
                let first_index = (self.next_seq - segment.first_seq) as usize;
                let room = self.batch_records_max - self.batch.len();
                let last_index = ((last_seq - segment.first_seq) as usize).min(first_index + room - 1);
                let view = buffered_view(segment, buffer, flushed_end, first_index..=last_index);
                self.plan_run(segment, view, None, last_index);
            }
        }
        Ok(())
    }

    /// Plans the live frames of `segment` from `next_seq` to local index
    /// `last_index` (while the batch has room), read through `view`.
    fn plan_run(&mut self, segment: &Segment, view: Arc<SegmentView>, job: Option<Arc<Job>>, last_index: usize) {
        let verified_end = segment.verified_end.load(Ordering::Acquire);
        let source = self.sources.len() as u32;
        let base = view.base;
        let in_buffer = base > 0;
        self.sources.push(Source {
            first_seq: segment.first_seq,
            in_buffer,
            view,
            verified_end: segment.verified_end.clone(),
            job,
        });
        let mut index = (self.next_seq - segment.first_seq) as usize;
        // Each offset is read once: it ends one frame and starts the next.
        let mut offset = segment.offsets.get(index).unwrap_or(segment.end);
        while index <= last_index && self.batch.len() < self.batch_records_max {
            let next_offset = segment.offsets.get(index + 1).unwrap_or(segment.end);
            if !segment.is_released(index) {
                let frame_bytes = next_offset - offset;
                self.batch.push_back(Planned {
                    seq: segment.first_seq + index as u64,
                    offset: (offset - base) as usize,
                    frame_bytes: u32::try_from(frame_bytes).expect("a frame is below 4 GiB"),
                    source,
                    check_crc: offset >= verified_end && offset < segment.loaded_end,
                });
            }
            offset = next_offset;
            index += 1;
        }
        self.next_seq = segment.first_seq + index as u64;
    }

    /// Plans the frames of `seqs` (in their order, repeats allowed) that are
    /// live; the others get no plan. One source per segment, shared by the
    /// points in it, and one for the writer's buffer if a point is there.
    fn plan_points(&mut self, state: &mut State, seqs: &[u64]) -> Result<()> {
        let limit = state.next_seq - 1;
        let flushed_seq = state.flushed_seq;
        let flushed_end = state.flushed_end;
        let active_first = state.segments.back().map(|s| s.first_seq);
        let buffer = &state.buffer;
        for &seq in seqs {
            if seq == 0 || seq > limit {
                continue;
            }
            let position = state.segments.partition_point(|s| s.end_seq() <= seq);
            let Some(segment) = state.segments.get_mut(position) else { continue };
            let Some(index) = seq.checked_sub(segment.first_seq).map(|index| index as usize) else { continue };
            if segment.is_released(index) {
                continue;
            }
            let in_buffer = seq > flushed_seq;
            let source =
                match self.sources.iter().position(|s| s.first_seq == segment.first_seq && s.in_buffer == in_buffer) {
                    // A later point may need a longer view of the active
                    // segment than an earlier one: the newest view covers all.
                    Some(source) if !in_buffer && Some(segment.first_seq) == active_first => {
                        let needed_end = segment.offsets.get(index + 1).unwrap_or(segment.end);
                        self.sources[source].view = segment_view(segment, active_first, flushed_end, needed_end)?;
                        source
                    }
                    Some(source) => source,
                    None => {
                        let view = if in_buffer {
                            // The whole buffer at once: the points are few and in any order.
                            let first_buffered = (flushed_seq + 1 - segment.first_seq) as usize;
                            buffered_view(segment, buffer, flushed_end, first_buffered..=segment.offsets.len() - 1)
                        } else {
                            let needed_end = segment.offsets.get(index + 1).unwrap_or(segment.end);
                            segment_view(segment, active_first, flushed_end, needed_end)?
                        };
                        self.sources.push(Source {
                            first_seq: segment.first_seq,
                            in_buffer,
                            view,
                            verified_end: segment.verified_end.clone(),
                            job: None,
                        });
                        self.sources.len() - 1
                    }
                };
            let offset = segment.offsets.at(index);
            self.batch.push_back(Planned {
                seq,
                offset: (offset - self.sources[source].view.base) as usize,
                frame_bytes: u32::try_from(segment.frame_bytes(index)).expect("a frame is below 4 GiB"),
                source: source as u32,
                check_crc: segment.needs_check(offset),
            });
        }
        Ok(())
    }

    /// Asks the CPU to start loading the first [`PREFETCH_FRAME_BYTES`] of
    /// every planned frame. Points of a page lie far apart in the log, so
    /// each one's first touch waits on memory; started together, these
    /// waits overlap instead of adding up.
    fn prefetch_planned(&self) {
        for planned in &self.batch {
            let bytes = self.sources[planned.source as usize].view.bytes();
            let end = (planned.offset + (planned.frame_bytes as usize).min(PREFETCH_FRAME_BYTES)).min(bytes.len());
            for line in (planned.offset..end).step_by(64) {
                prefetch(&bytes[line]);
            }
        }
    }

    /// Hands the next [`AHEAD_SEGMENTS`] sealed segments from `start` on to
    /// the helper thread (started on first need), each segment once, where
    /// there are enough bytes to be worth it: the unverified frames of a
    /// segment to check, or a checked segment's pages to map. Called for
    /// scans only, not point reads.
    fn check_ahead(&mut self, state: &mut State, start: usize) -> Result<()> {
        let flushed_end = state.flushed_end;
        let active_first = state.segments.back().map(|s| s.first_seq);
        for segment in state.segments.range_mut(start..).take(AHEAD_SEGMENTS) {
            if !segment.sealed || segment.first_seq <= self.ahead_through_seq {
                continue;
            }
            self.ahead_through_seq = segment.first_seq;
            let view = segment_view(segment, active_first, flushed_end, segment.end)?;
            if segment.is_verified() {
                if segment.end < AHEAD_BYTES_MIN {
                    continue;
                }
                match self.helper() {
                    Some(ahead) if ahead.populate(view.mapped.clone()) => continue,
                    _ => break,
                }
            }
            let Some(job) = Job::of(segment, view.mapped.clone()) else { continue };
            if job.bytes() < AHEAD_BYTES_MIN {
                continue;
            }
            let job = Arc::new(job);
            match self.helper() {
                Some(ahead) if ahead.submit(job.clone()) => {
                    self.ahead_jobs.push_back(job);
                    if self.ahead_jobs.len() > AHEAD_SEGMENTS + 1 {
                        self.ahead_jobs.pop_front();
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The helper thread, started on first use; `None` if it cannot run.
    fn helper(&mut self) -> Option<&AheadHelper> {
        if self.ahead.is_none() {
            self.ahead = AheadHelper::start();
        }
        self.ahead.as_ref()
    }
}

/// Whether the frame `offset..frame_end` of a segment being checked ahead is
/// checked once this returns. While it is not, the reader does not idle: it
/// claims and checks the next small unclaimed run itself (which may hold the
/// frame), so reader and helper share the checking in proportion to their
/// spare time. Once every run is claimed it waits for the helper while that
/// makes progress. False: the helper stopped or stalled, or the frame is
/// damaged, and the caller checks the frame alone (and reports the damage).
fn checked_ahead(job: &Job, own_runs: &mut VecDeque<(u64, Range<u64>)>, offset: u64, frame_end: u64) -> bool {
    // Runs of segments read before, or passed in this one, are done with.
    while own_runs.front().is_some_and(|(segment, run)| *segment != job.segment_first_seq || run.end <= offset) {
        own_runs.pop_front();
    }
    loop {
        if job.is_checked(frame_end) || own_runs.iter().any(|(_, run)| run.contains(&offset)) {
            return true;
        }
        match job.claim(READER_RUN_BYTES) {
            Some(run) => {
                // Damage is reported when the reader gets to the damaged
                // frame, not when it checks ahead: the frames before it are
                // still handed out.
                let (checked_end, damage) = job.check_prefix(run);
                own_runs.push_back((job.segment_first_seq, run.start..checked_end));
                if damage.is_some() && frame_end > checked_end {
                    return false;
                }
            }
            None => return job.wait_checked(frame_end),
        }
    }
}

/// The segment's cached read view, remapped if it does not cover `needed_end`.
fn segment_view(
    segment: &mut Segment,
    active_first: Option<u64>,
    flushed_end: u64,
    needed_end: u64,
) -> Result<Arc<SegmentView>> {
    let covered = segment.view.as_ref().map_or(0, |(_, covered)| *covered);
    if covered < needed_end {
        let mapped = segment.file.map().map_err(|e| io_error(&segment.path, e))?;
        let view = Arc::new(SegmentView { path: Arc::from(segment.path.as_path()), base: 0, mapped });
        let is_active = Some(segment.first_seq) == active_first;
        let covered = if segment.file.map_is_coherent() {
            view.bytes().len() as u64
        } else if is_active {
            flushed_end
        } else {
            segment.end
        };
        segment.view = Some((view, covered));
    }
    Ok(segment.view.as_ref().expect("view set above").0.clone())
}

/// A view of the frames at local indexes `indexes` of the active segment,
/// copied out of the writer's buffer (which starts at file offset
/// `flushed_end`). Readers read appended frames that are not in the file
/// yet here, instead of asking the writer to write them out: a reader
/// never writes. The copy costs what the frames weigh, and only frames a
/// reader plans to hand out are copied.
fn buffered_view(
    segment: &Segment,
    buffer: &[u8],
    flushed_end: u64,
    indexes: std::ops::RangeInclusive<usize>,
) -> Arc<SegmentView> {
    let from = segment.offsets.at(*indexes.start());
    let to = segment.offsets.get(indexes.end() + 1).unwrap_or(segment.end);
    let bytes = buffer[(from - flushed_end) as usize..(to - flushed_end) as usize].to_vec();
    Arc::new(SegmentView { path: Arc::from(segment.path.as_path()), base: from, mapped: Arc::new(CopiedBytes(bytes)) })
}

/// How much of each frame a point read prefetches (a page's records are
/// about 1 KiB; larger ones stream in as they are copied).
const PREFETCH_FRAME_BYTES: usize = 2048;

/// A hint that `byte` will be read soon; does nothing where there is no
/// prefetch instruction.
#[inline]
fn prefetch(byte: &u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program,
    // never faults, and `byte` is a valid reference anyway. SSE is part of
    // every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((byte as *const u8).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

/// Reads the records of `seqs` with one lock acquisition: each is its
/// entry, or `None` if it was released or never appended. Each frame is
/// checked as [`Reader::next`] checks it.
pub(crate) fn read_points(shared: &Arc<Shared>, seqs: &[u64]) -> Result<Vec<Option<Entry>>> {
    let mut reader = Reader::with_batch(shared.clone(), 1, seqs.len());
    reader.plan_points(&mut shared.lock_state(), seqs)?;
    reader.prefetch_planned();
    let mut entries = Vec::with_capacity(seqs.len());
    for &seq in seqs {
        let entry = match reader.batch.front() {
            Some(planned) if planned.seq == seq => {
                let planned = reader.batch.pop_front().expect("front exists");
                Some(reader.entry(planned).map_err(|e| shared.noted(e))?)
            }
            _ => None,
        };
        entries.push(entry);
    }
    debug_assert!(reader.batch.is_empty(), "every planned point was read");
    Ok(entries)
}

impl Iterator for Reader {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.batch.is_empty() {
            if self.failed {
                return None;
            }
            if let Err(error) = self.fill() {
                self.failed = true;
                return Some(Err(error));
            }
        }
        let planned = self.batch.pop_front()?;
        match self.entry(planned) {
            Ok(entry) => Some(Ok(entry)),
            Err(error) => {
                self.failed = true;
                self.batch.clear();
                Some(Err(self.shared.noted(error)))
            }
        }
    }
}
