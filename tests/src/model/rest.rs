//! Coming to rest after an operation: a catch-up drains or stalls, and the
//! destination's calls are checked against what the model expected.

use std::collections::HashSet;

use pauselog::{Clock, ErrorReason, KeyOrdering, MapState, QueuedRecord};

use super::check::seqs_of;
use super::{reject_text, Entry, Harness, State, SUPERSEDED_TEXT};
use crate::{all_errors, WAIT};

impl Harness {
    /// A catch-up drains to Running when its destination is up, or when it
    /// needs no call (nothing queued, or under Strict ordering every queued
    /// record held back behind its key's errors). A stalled Strict one may
    /// hold back the queued records of keys with errors (module docs).
    pub(super) fn come_to_rest(&mut self) {
        if self.state != State::CatchingUp {
            return;
        }
        let strict = self.config.ordering == KeyOrdering::Strict;
        let no_call = self.queue.is_empty() || strict && self.queue.values().all(|r| self.key_has_errors(&r.key));
        if self.down && !no_call {
            if strict {
                let held: Vec<u64> =
                    self.queue.values().filter(|r| self.key_has_errors(&r.key)).map(|r| r.seq).collect();
                self.ambiguous.extend(held);
            }
            return;
        }
        let reached = self.map().wait_for(|state| *state == MapState::Running, WAIT);
        assert!(reached.is_ok(), "the catch-up drains to Running: {:?}, {:?}", self.map().state(), self.map().stats());
        let errors = seqs_of(all_errors(self.map(), None), |e| e.record.seq);
        let now = self.clock.now();
        let mut rejected_now: HashSet<String> = HashSet::new();
        let queue = std::mem::take(&mut self.queue);
        for (&seq, rec) in &queue {
            let rec = rec.clone();
            let held_back = errors.get(&seq).filter(|e| self.ambiguous.contains(&seq) && Entry::is_held_back(e));
            // A call that straddled the destination's return may have had
            // this record answer `Unavailable` and a newer one of its key in
            // the same call accepted: it then never follows that one (R16b).
            let superseded_mid_call = errors.get(&seq).filter(|e| {
                self.came_back_mid_call
                    && e.reason == ErrorReason::Superseded
                    && e.attempts == 1
                    && e.last_error.as_deref() == Some(SUPERSEDED_TEXT)
                    && queue.range(seq + 1..).any(|(_, newer)| newer.key == rec.key)
            });
            if let Some(error) = held_back.or(superseded_mid_call) {
                self.errors.insert(seq, Entry::observed(rec, error));
            } else if strict && (rejected_now.contains(&rec.key) || self.key_has_errors(&rec.key)) {
                self.errors.insert(seq, Entry::new(rec, ErrorReason::BlockedByEarlierFailure, 0, None, now));
            } else if self.rejected.contains(&rec.key) {
                rejected_now.insert(rec.key.clone());
                let text = Some(reject_text(&rec.key));
                self.errors.insert(seq, Entry::new(rec, ErrorReason::Rejected, 1, text, now));
            } else {
                self.expect_delivered.push(seq);
                self.supersede(&rec.key, seq, now);
            }
        }
        self.ambiguous.clear();
        self.go_live();
    }

    /// A stalled Strict replay may still move held-back records.
    pub(super) fn in_motion(&self) -> bool {
        self.state == State::CatchingUp && !self.ambiguous.is_empty()
    }

    pub(super) fn key_has_errors(&self, key: &str) -> bool {
        self.errors.values().any(|e| e.rec.key == key)
    }

    /// Checks the destination's new calls: live attempts take new seqs,
    /// queued records arrive as they were acknowledged, and per key in
    /// increasing seq order.
    pub(super) fn process_calls(&mut self) {
        let calls = self.dest.calls_from(self.calls_seen);
        self.calls_seen += calls.len();
        for call in calls {
            let record = &call.record;
            let seq = record.seq;
            if std::env::var_os("MODEL_TRACE_CALLS").is_some() {
                eprintln!("call seq {seq} key {} ok {}", record.key, call.answer.is_ok());
            }
            if let Some(rec) = self.acked.get(&seq) {
                assert!(rec.matches(record), "seq {seq} delivered as {record:?}, acknowledged as {rec:?}");
                if call.answer.is_ok() {
                    self.accepted.push(seq);
                }
            } else {
                let expected = self.expect_live.take();
                assert!(seq > self.max_seq, "R21: live seq {seq} is not above every seq seen ({})", self.max_seq);
                assert_eq!(
                    expected.as_ref().map(|(k, p)| (k.as_str(), p.as_slice())),
                    Some((record.key.as_str(), record.payload.as_slice())),
                    "an unexpected call with a new seq {seq} (answered {:?})",
                    call.answer
                );
                self.max_seq = seq;
            }
            if call.answer.is_ok() {
                self.figures.accepted += 1;
                self.check_key_order(record);
            }
        }
    }

    /// Exactly the queued records the operation should have delivered were
    /// accepted by the destination.
    pub(super) fn check_deliveries(&mut self) {
        let mut expected = std::mem::take(&mut self.expect_delivered);
        let mut accepted = std::mem::take(&mut self.accepted);
        expected.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(accepted, expected, "queued records the destination accepted");
        self.delivered.extend(accepted);
    }

    pub(super) fn check_key_order(&mut self, record: &QueuedRecord) {
        let last = self.key_last.get(&record.key).copied().unwrap_or(0);
        assert!(
            record.seq > last || self.forced_retry,
            "R16b/R21: key {} got seq {} after seq {last} (not a forced retry)",
            record.key,
            record.seq
        );
        self.key_last.insert(record.key.clone(), last.max(record.seq));
    }
}
