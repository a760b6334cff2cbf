//! Readers: iterate frames through memmap2 views while appends continue.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::frame::decode_at;
use crate::log::{Inner, State};
use crate::storage::Mapped;
use crate::{io_error, Error, Result};

/// Frames planned per lock acquisition.
const READ_BATCH_RECORDS: usize = 1024;

/// One record read from the log. The body borrows the segment's mapping, so
/// reading copies nothing.
#[derive(Clone)]
pub struct Entry {
    seq: u64,
    view: Arc<dyn Mapped>,
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
        crate::frame_bytes(self.body_len)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("seq", &self.seq).field("body_len", &self.body_len).finish()
    }
}

/// Iterates live records in seq order from a starting seq up to the tail as it
/// is when each batch is planned. Takes the log's lock only to plan a batch;
/// decoding and CRC checks run without it, so the writer is not blocked.
pub struct Reader {
    inner: Arc<Inner>,
    next_seq: u64,
    batch: VecDeque<Entry>,
    failed: bool,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").field("next_seq", &self.next_seq).finish()
    }
}

struct Planned {
    seq: u64,
    offset: usize,
    view: Arc<dyn Mapped>,
    path_index: usize,
}

impl Reader {
    pub(crate) fn new(inner: Arc<Inner>, from_seq: u64) -> Self {
        Reader { inner, next_seq: from_seq.max(1), batch: VecDeque::new(), failed: false }
    }

    /// The seq this reader will look at next.
    pub fn position(&self) -> u64 {
        self.batch.front().map_or(self.next_seq, |e| e.seq)
    }

    fn fill(&mut self) -> Result<()> {
        let mut planned = Vec::new();
        let mut paths = Vec::new();
        {
            // A clone of the handle so `self` stays free to plan (one atomic
            // increment per batch of up to READ_BATCH_RECORDS).
            let inner = self.inner.clone();
            let mut state = inner.lock_state();
            self.plan(&mut state, &mut planned, &mut paths)?;
            // Records still in the write buffer are invisible to readers until
            // flushed. Flush only when this batch ran out before the tail, so
            // a reader far behind does not break up the writer's buffering.
            // (Checking only the start seq is not enough: a start inside the
            // flushed part, followed by released records, would end the
            // iteration before the buffered ones.)
            let has_unflushed = state.flushed_seq + 1 < state.next_seq;
            if planned.len() < READ_BATCH_RECORDS && has_unflushed && !inner.options.read_only {
                inner.flush_locked(&mut state)?;
                self.plan(&mut state, &mut planned, &mut paths)?;
            }
        }
        for plan in planned {
            let decoded = decode_at(plan.view.bytes(), plan.offset, plan.seq).map_err(|damage| Error::Corrupt {
                path: paths[plan.path_index].clone(),
                offset: plan.offset as u64,
                reason: format!("frame failed its check on read: {damage:?}"),
            })?;
            self.batch.push_back(Entry {
                seq: plan.seq,
                view: plan.view,
                body_offset: decoded.body_offset,
                body_len: decoded.body_len,
            });
        }
        Ok(())
    }

    /// Plans up to [`READ_BATCH_RECORDS`] live records from `next_seq` up to
    /// the last flushed seq, mapping segments as needed.
    fn plan(&mut self, state: &mut State, planned: &mut Vec<Planned>, paths: &mut Vec<PathBuf>) -> Result<()> {
        let limit = state.flushed_seq;
        let flushed_end = state.flushed_end;
        let active_first = state.segments.back().map(|s| s.first_seq);
        let start = state.segments.partition_point(|s| s.end_seq() <= self.next_seq);
        for segment in state.segments.range_mut(start..) {
            if planned.len() >= READ_BATCH_RECORDS || self.next_seq > limit {
                break;
            }
            self.next_seq = self.next_seq.max(segment.first_seq);
            let last_seq = (segment.end_seq() - 1).min(limit);
            if self.next_seq > last_seq {
                continue;
            }
            let last_index = (last_seq - segment.first_seq) as usize;
            let needed_end = segment.offsets.get(last_index + 1).map_or(segment.end, |&o| u64::from(o));
            let covered = segment.view.as_ref().map_or(0, |(_, covered)| *covered);
            if covered < needed_end {
                let view = segment.file.map().map_err(|e| io_error(&segment.path, e))?;
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
            let view = segment.view.as_ref().expect("view set above").0.clone();
            paths.push(segment.path.clone());
            let mut index = (self.next_seq - segment.first_seq) as usize;
            while index <= last_index && planned.len() < READ_BATCH_RECORDS {
                if !segment.is_released(index) {
                    let offset = segment.offsets[index] as usize;
                    planned.push(Planned {
                        seq: segment.first_seq + index as u64,
                        offset,
                        view: view.clone(),
                        path_index: paths.len() - 1,
                    });
                }
                index += 1;
            }
            self.next_seq = segment.first_seq + index as u64;
        }
        Ok(())
    }
}

impl Iterator for Reader {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if let Some(entry) = self.batch.pop_front() {
            return Some(Ok(entry));
        }
        if self.failed {
            return None;
        }
        match self.fill() {
            Ok(()) => self.batch.pop_front().map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}
