//! Submit: live delivery (R1), queueing (R2, R3), pass-through during
//! catch-up (R23), and the one sequence every record takes its seq from
//! (R21).

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use pauselog_wal::frame_bytes;

use super::{key_hash, validate_key, Core, List, MapShared};
use crate::clock::from_nanos;
use crate::codec;
use crate::meta::StoredState;
use crate::{
    DeliveryError, Error, Limit, PauseReason, PauseRule, QueuedRecord, Record, Result, Submitted, PAYLOAD_BYTES_MAX,
};

/// Longest gap between the data log's next seq and the map's that is
/// filled with seq markers rather than skipped with a rotation.
const MARKER_FILL_MAX: u64 = 256;

/// How a record goes to the destination without being queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LivePath {
    /// The map is Running (R1).
    Live,
    /// The map is catching up and the key has no backlog (R23).
    PassThrough,
}

impl MapShared {
    pub(super) fn submit(self: &Arc<Self>, record: Record) -> Result<Submitted> {
        validate_key(&record.key)?;
        if record.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(Error::InvalidInput(format!(
                "payload of {} bytes is larger than the {PAYLOAD_BYTES_MAX} byte limit",
                record.payload.len()
            )));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let now = self.ctx.clock.now();
        let encoded = self.queueing_hint.load(Ordering::Relaxed).then(|| codec::encode_record(&record, now));
        let hash = key_hash(&record.key);
        let mut core = self.lock()?;
        core = self.evaluate_rules(core, now)?;
        loop {
            let path = match core.state {
                StoredState::Running => Some(LivePath::Live),
                StoredState::CatchingUp if self.config.live_pass_through => {
                    self.has_no_backlog(&core, &record.key).then_some(LivePath::PassThrough)
                }
                _ => None,
            };
            let Some(path) = path else {
                if let Some(until) = core.closing_tail.filter(|_| core.state == StoredState::CatchingUp) {
                    let now = std::time::Instant::now();
                    if now < until {
                        core = self.wait_timeout(core, until - now)?;
                        continue;
                    }
                }
                break;
            };
            if core.key_busy(hash) {
                // One delivery of a key at a time, in seq order: wait for
                // the one in flight, then look again (the state may change).
                core = self.wait(core)?;
                continue;
            }
            drop(core);
            self.queueing_hint.store(false, Ordering::Relaxed);
            return self.deliver_live(record, hash, now, path);
        }
        self.enqueue(core, &record, encoded, now)
    }

    /// Appends to the queue tail; waits for durability outside the lock so
    /// concurrent submitters share an fsync (R2, R17).
    /// `encoded`: the record already encoded for `now`, if it was.
    fn enqueue(
        &self,
        mut core: MutexGuard<'_, Core>,
        record: &Record,
        encoded: Option<Vec<u8>>,
        now: SystemTime,
    ) -> Result<Submitted> {
        if let Some(limit) = core.blocked {
            return Err(Error::Blocked { map: self.name.clone(), limit });
        }
        if let StoredState::Paused { since_nanos, .. } = core.state {
            if now.duration_since(from_nanos(since_nanos)).unwrap_or_default() >= self.config.max_pause {
                self.block_locked(&mut core, Limit::PauseAge)?;
                return Err(Error::Blocked { map: self.name.clone(), limit: Limit::PauseAge });
            }
        }
        self.queueing_hint.store(true, Ordering::Relaxed);
        let body = encoded.unwrap_or_else(|| codec::encode_record(record, now));
        let record_bytes = frame_bytes(body.len());
        if core.queue_bytes() + record_bytes > self.config.max_queue_bytes {
            self.block_locked(&mut core, Limit::Size)?;
            return Err(Error::Blocked { map: self.name.clone(), limit: Limit::Size });
        }
        self.prepare_append(&mut core)?;
        let seq = self.data.append_unsynced(&body).map_err(|e| Error::from_wal(&self.name, e))?;
        core.enqueued(&record.key, seq, record_bytes)?;
        drop(core);
        self.data.commit(seq).map_err(|e| Error::from_wal(&self.name, e))?;
        Ok(Submitted::Queued { seq })
    }

    /// R23: the key has nothing queued (in flight in the replay included:
    /// a record stays queued until the replay commits it) and no errors.
    fn has_no_backlog(&self, core: &Core, key: &str) -> bool {
        let queued = core.queue_records() > 0 && core.key_in(&self.data, List::Queue, key);
        let errors = core.error_records() > 0 && core.key_in(&self.data, List::Errors, key);
        !queued && !errors
    }

    /// Before an append to the data log: its next seq must be above every
    /// seq handed to a live delivery, and covered by the reservation (R21).
    /// A short gap is filled with seq markers (released at once); a longer
    /// one costs the data log a rotation (`Wal::skip_to`), once per switch
    /// from live sync to queueing.
    fn prepare_append(&self, core: &mut Core) -> Result<()> {
        let wal_error = |e| Error::from_wal(&self.name, e);
        let gap = core.seqs.live_next.saturating_sub(self.data.next_seq());
        if gap > MARKER_FILL_MAX {
            self.data.skip_to(core.seqs.live_next).map_err(wal_error)?;
        } else if gap > 0 {
            let markers = vec![codec::MARKER_BODY; gap as usize];
            let seqs = self.data.append_batch_unsynced(&markers).map_err(wal_error)?;
            self.data.release(seqs).map_err(wal_error)?;
        }
        self.reserve_seqs(core, self.data.next_seq())
    }

    /// The seq of a live delivery while Running: the map's next, without
    /// touching the data log (R21).
    fn issue_live_seq(&self, core: &mut Core) -> Result<u64> {
        let seq = core.seqs.live_next.max(self.data.next_seq());
        self.reserve_seqs(core, seq)?;
        core.seqs.live_next = seq + 1;
        Ok(seq)
    }

    /// The seq of a pass-through delivery: the data log is taking appends,
    /// so the seq comes from it, as a marker released at once (see
    /// `codec`), so that the records queued after it get higher seqs.
    fn append_marker(&self, core: &mut Core) -> Result<u64> {
        self.prepare_append(core)?;
        let wal_error = |e| Error::from_wal(&self.name, e);
        let seq = self.data.append_unsynced(&codec::MARKER_BODY).map_err(wal_error)?;
        self.data.release(seq..=seq).map_err(wal_error)?;
        core.tail = seq;
        Ok(seq)
    }

    /// Delivers a record on the caller's thread: live (R1) or passing
    /// through a catch-up (R23). The key is marked busy meanwhile, so no
    /// other delivery of it overlaps this one.
    fn deliver_live(self: &Arc<Self>, record: Record, hash: u64, now: SystemTime, path: LivePath) -> Result<Submitted> {
        let seq = {
            let mut core = self.lock()?;
            // Checked again: the state may have changed since `submit`
            // dropped the lock.
            let still = match path {
                LivePath::Live => core.state == StoredState::Running,
                LivePath::PassThrough => {
                    core.state == StoredState::CatchingUp && self.has_no_backlog(&core, &record.key)
                }
            };
            if !still || core.key_busy(hash) {
                drop(core);
                return self.submit(record);
            }
            let seq = match path {
                LivePath::Live => self.issue_live_seq(&mut core)?,
                LivePath::PassThrough => self.append_marker(&mut core)?,
            };
            core.busy_keys.insert(hash);
            seq
        };
        let live = QueuedRecord { seq, key: record.key, op: record.op, payload: record.payload, queued_at: now };
        let outcome = self.destination().deliver(&live);
        let core = self.lock();
        let mut core = match core {
            Ok(core) => core,
            Err(error) => {
                self.lock_to_read().busy_keys.remove(&hash);
                self.changed.notify_all();
                return Err(error);
            }
        };
        core.busy_keys.remove(&hash);
        self.changed.notify_all();
        match outcome {
            Ok(()) => {
                if path == LivePath::Live {
                    core.consecutive_unavailable = 0;
                } else {
                    core.passed_through += 1;
                }
                if core.error_records() > 0 {
                    // R16b: a newer record of the key is in the destination now.
                    self.supersede_locked(&mut core, &live.key, seq, now)?;
                }
                Ok(Submitted::Live)
            }
            Err(DeliveryError::Rejected(reason)) => {
                if path == LivePath::Live {
                    core.consecutive_unavailable = 0;
                }
                Err(Error::Rejected { map: self.name.clone(), reason })
            }
            Err(DeliveryError::Unavailable(reason)) => {
                let record = Record { key: live.key, op: live.op, payload: live.payload };
                if path == LivePath::PassThrough || core.state != StoredState::Running {
                    // Not applied: the catch-up backs off on its own; this
                    // record joins the tail instead of failing.
                    return self.enqueue(core, &record, None, now);
                }
                core.consecutive_unavailable += 1;
                let threshold = self.config.rules.iter().find_map(|rule| match rule {
                    PauseRule::DestinationUnavailable { consecutive } => Some(*consecutive),
                    _ => None,
                });
                if threshold.is_some_and(|n| core.consecutive_unavailable >= n.max(1)) {
                    tracing::warn!(map = %self.name, %reason, "destination unavailable: pausing by rule");
                    core.consecutive_unavailable = 0;
                    self.pause_locked(&mut core, PauseReason::DestinationUnavailable, now, Vec::new())?;
                    // The tripping record is queued, not failed (R14).
                    return self.enqueue(core, &record, None, now);
                }
                Err(Error::Unavailable { map: self.name.clone(), reason })
            }
        }
    }
}
