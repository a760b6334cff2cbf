//! The operations of [`Harness::apply`]: each runs on the engine and on the
//! reference model, which records what the spec says it must change.

use std::collections::HashSet;
use std::time::SystemTime;

use pauselog::{
    Clock, Error, ErrorReason, KeyOrdering, Limit, Op, PauseReason, Record, ResumeMode, Selection, Submitted,
};

use super::{reject_text, Entry, Harness, Pick, Rec, State, DOWN_TEXT, MODEL_KEYS, MODEL_MAX_PAUSE, SUPERSEDED_TEXT};
use crate::WAIT;

impl Harness {
    pub(super) fn submit(&mut self, key: &str, payload_bytes: usize) {
        self.payload_counter += 1;
        let mut payload = format!("p{}:", self.payload_counter).into_bytes();
        payload.resize(payload_bytes.max(payload.len()), b'x');
        let now = self.clock.now();
        self.evaluate_rules(now);
        let record = Record::new(key, Op::Update, payload.clone());
        let result = self.map().submit(record);
        let rec = Rec { seq: 0, key: key.to_owned(), payload: payload.clone(), queued_at: now };
        if self.state == State::Running {
            // The live attempt took a new seq before any record queued after
            // it (a health rule's pause queues the record).
            self.expect_live = Some((key.to_owned(), payload));
            self.process_calls();
            self.submit_live(rec, result, now);
        } else {
            // A running catch-up may deliver the record before its
            // acknowledgement is noted: the calls are looked at after it.
            self.enqueue(rec, result, now);
        }
    }

    pub(super) fn submit_live(&mut self, rec: Rec, result: pauselog::Result<Submitted>, now: SystemTime) {
        if self.down {
            self.consecutive_unavailable += 1;
            if self.config.health_rule.is_some_and(|n| self.consecutive_unavailable >= n.max(1)) {
                self.consecutive_unavailable = 0;
                self.set_paused(now, PauseReason::DestinationUnavailable);
                return self.enqueue(rec, result, now);
            }
            assert!(matches!(result, Err(Error::Unavailable { .. })), "live submit to a down destination: {result:?}");
        } else if self.rejected.contains(&rec.key) {
            self.consecutive_unavailable = 0;
            assert!(matches!(result, Err(Error::Rejected { .. })), "live submit of a rejected key: {result:?}");
        } else {
            self.consecutive_unavailable = 0;
            assert!(matches!(result, Ok(Submitted::Live)), "live submit: {result:?}");
            let seq = *self.key_last.get(&rec.key).expect("the live delivery was seen");
            self.supersede(&rec.key, seq, now);
        }
    }

    /// A submit while Paused or CatchingUp: queued, or refused by a cap (R6–R8).
    pub(super) fn enqueue(&mut self, mut rec: Rec, result: pauselog::Result<Submitted>, now: SystemTime) {
        let refused = |limit: Limit| matches!(&result, Err(Error::Blocked { limit: l, .. }) if *l == limit);
        if let Some(limit) = self.blocked {
            assert!(refused(limit), "a blocked map refuses submits: {result:?}");
            return;
        }
        if let State::Paused { since, .. } = self.state {
            if now.duration_since(since).unwrap_or_default() >= MODEL_MAX_PAUSE {
                assert!(refused(Limit::PauseAge), "a pause past its age cap blocks: {result:?}");
                self.block(Limit::PauseAge);
                return;
            }
        }
        let queued: u64 = self.queue.values().map(Rec::bytes).sum();
        let held_back: u64 = self.ambiguous.iter().filter_map(|seq| self.queue.get(seq)).map(Rec::bytes).sum();
        let over = queued + rec.bytes() > self.config.max_queue_bytes;
        let may_fit = queued - held_back + rec.bytes() <= self.config.max_queue_bytes;
        // A stalled replay that moved held-back records to the errors has
        // freed their queue bytes: the engine may then take the record.
        if over && !(may_fit && matches!(result, Ok(Submitted::Queued { .. }))) {
            assert!(refused(Limit::Size), "a record past the size cap blocks: {result:?}");
            self.block(Limit::Size);
            return;
        }
        let Ok(Submitted::Queued { seq }) = result else { panic!("a queued submit: {result:?}") };
        assert!(seq > self.max_seq, "R21: queued seq {seq} is not above every seq seen ({})", self.max_seq);
        self.max_seq = seq;
        rec.seq = seq;
        self.figures.acked += 1;
        self.acked.insert(seq, rec.clone());
        self.queue.insert(seq, rec);
    }

    pub(super) fn pause(&mut self) {
        let result = self.map().pause();
        assert!(result.is_ok(), "pause: {result:?}");
        if !matches!(self.state, State::Paused { .. }) {
            self.set_paused(self.clock.now(), PauseReason::Manual);
        }
    }

    pub(super) fn set_paused(&mut self, now: SystemTime, reason: PauseReason) {
        self.state = State::Paused { since: now, reason };
    }

    pub(super) fn block(&mut self, limit: Limit) {
        self.blocked = Some(limit);
    }

    pub(super) fn resume(&mut self, mode: ResumeMode) {
        let result = self.map().resume(mode);
        if !matches!(self.state, State::Paused { .. }) {
            assert!(matches!(result, Err(Error::InvalidState { .. })), "resume outside Paused: {result:?}");
            return;
        }
        assert!(result.is_ok(), "resume({mode:?}): {result:?}");
        self.resumed(mode, self.clock.now());
    }

    /// The model's half of a resume from Paused.
    pub(super) fn resumed(&mut self, mode: ResumeMode, now: SystemTime) {
        match mode {
            ResumeMode::CatchUp => {
                self.state = State::CatchingUp;
                self.ambiguous.clear();
            }
            ResumeMode::SkipToLivePreserve => self.preserve(now),
            ResumeMode::SkipToLiveDiscard => self.discard_queue(),
            other => unreachable!("the model knows the resume modes of docs/rules.md R7, not {other:?}"),
        }
    }

    pub(super) fn skip_to_live(&mut self, preserve: bool) {
        let result = self.map().skip_to_live(preserve);
        if self.state != State::CatchingUp {
            assert!(matches!(result, Err(Error::InvalidState { .. })), "skip outside CatchingUp: {result:?}");
            return;
        }
        assert!(result.is_ok(), "skip_to_live({preserve}): {result:?}");
        if preserve {
            self.preserve(self.clock.now());
        } else {
            self.discard_queue();
        }
    }

    /// Skip to live keeping the backlog as `Preserved` errors (R13, R16).
    pub(super) fn preserve(&mut self, now: SystemTime) {
        for (seq, rec) in std::mem::take(&mut self.queue) {
            self.errors.insert(seq, Entry::new(rec, ErrorReason::Preserved, 0, None, now));
        }
        self.go_live();
    }

    /// Skip to live discarding the backlog (R13, R16).
    pub(super) fn discard_queue(&mut self) {
        for seq in std::mem::take(&mut self.queue).into_keys() {
            self.discarded.insert(seq);
        }
        self.go_live();
    }

    pub(super) fn go_live(&mut self) {
        self.state = State::Running;
        self.blocked = None;
        self.consecutive_unavailable = 0;
    }

    pub(super) fn selection(&self, pick: &Pick) -> (Selection, Vec<u64>) {
        match pick {
            Pick::All => (Selection::All, self.errors.keys().copied().collect()),
            Pick::Key(index) => {
                let key = MODEL_KEYS[index % MODEL_KEYS.len()];
                let seqs = self.errors.values().filter(|e| e.rec.key == key).map(|e| e.rec.seq).collect();
                (Selection::Key(key.to_owned()), seqs)
            }
            Pick::Seqs(indexes) => {
                let listed: Vec<u64> = self.errors.keys().copied().collect();
                let mut asked: Vec<u64> =
                    indexes.iter().filter_map(|i| listed.get(i % listed.len().max(1))).copied().collect();
                let mut seqs = asked.clone();
                asked.push(self.max_seq + 1_000); // never an error: ignored
                seqs.sort_unstable();
                seqs.dedup();
                (Selection::Seqs(asked), seqs)
            }
        }
    }

    /// A retry job, run to its end (R16, R16a, R16b, R22).
    pub(super) fn retry(&mut self, pick: &Pick, forced: bool) {
        let (selection, seqs) = self.selection(pick);
        let job = if forced { self.map().retry_errors_forced(selection) } else { self.map().retry_errors(selection) };
        let progress = job.expect("retry starts").wait(WAIT).expect("the retry job finishes");
        self.forced_retry = forced;
        let now = self.clock.now();
        let strict = self.config.ordering == KeyOrdering::Strict;
        let (mut delivered, mut failed, mut skipped) = (0u64, 0u64, 0u64);
        let mut failed_keys: HashSet<String> = HashSet::new();
        for &seq in &seqs {
            let entry = self.errors.get(&seq).expect("selected from the errors").clone();
            let key = entry.rec.key.clone();
            if failed_keys.contains(&key) {
                failed += 1;
            } else if (entry.reason == ErrorReason::Superseded && !forced)
                || (self.state == State::CatchingUp && !strict && self.queue.values().any(|r| r.key == key))
            {
                // Superseded without force; or a BestEffort catch-up still
                // has newer records of the key to deliver.
                skipped += 1;
            } else if self.down || self.rejected.contains(&key) {
                let entry = self.errors.get_mut(&seq).expect("present");
                if !self.down {
                    entry.reason = ErrorReason::Rejected;
                }
                entry.attempts += 1;
                entry.last_error = Some(if self.down { DOWN_TEXT.to_owned() } else { reject_text(&key) });
                entry.last_failed_at = now;
                failed_keys.insert(key);
                failed += 1;
            } else {
                self.errors.remove(&seq);
                self.expect_delivered.push(seq);
                self.supersede(&key, seq, now);
                delivered += 1;
            }
        }
        let expected = (seqs.len() as u64, delivered, failed, skipped);
        let got = (progress.total, progress.delivered, progress.failed, progress.skipped);
        assert_eq!(got, expected, "retry progress (total, delivered, failed, skipped)");
        assert!(progress.done && !progress.cancelled, "{progress:?}");
    }

    pub(super) fn discard(&mut self, pick: &Pick) {
        let (selection, seqs) = self.selection(pick);
        let discarded = self.map().discard_errors(selection).expect("discard_errors");
        assert_eq!(discarded, seqs.len() as u64, "discard_errors count");
        for seq in seqs {
            self.errors.remove(&seq);
            self.discarded.insert(seq);
        }
    }

    /// R16b: a delivery of `seq` of `key` supersedes the key's older errors.
    pub(super) fn supersede(&mut self, key: &str, seq: u64, now: SystemTime) {
        for entry in self.errors.values_mut() {
            if entry.rec.key == key && entry.rec.seq < seq && entry.reason != ErrorReason::Superseded {
                entry.reason = ErrorReason::Superseded;
                entry.last_error = Some(SUPERSEDED_TEXT.to_owned());
                entry.last_failed_at = now;
            }
        }
    }

    /// Rules on the engine clock, as `submit` and `tick` evaluate them (R7, R14).
    pub(super) fn evaluate_rules(&mut self, now: SystemTime) {
        if let (State::Paused { since, .. }, None) = (self.state, self.blocked) {
            if now.duration_since(since).unwrap_or_default() >= MODEL_MAX_PAUSE {
                self.block(Limit::PauseAge);
            }
        }
        let Some((start, end, resume)) = self.config.window() else { return };
        let (started, ended) = self.window_marks;
        if !started && now >= start && now < end {
            if !matches!(self.state, State::Paused { .. }) {
                self.set_paused(now, PauseReason::Window { start, end });
            }
            self.window_marks.0 = true;
        }
        if !ended && now >= end {
            let paused_by_it = matches!(self.state,
                State::Paused { reason: PauseReason::Window { start: s, end: e }, .. } if s == start && e == end);
            if let Some(mode) = resume.filter(|_| paused_by_it) {
                self.resumed(mode, now);
            }
            self.window_marks = (true, true);
        }
    }
}
