//! The checks after every operation and every reopen: what the engine shows
//! (state, figures, queue, errors and their pages) against the model.

use std::collections::{BTreeMap, BTreeSet};

use pauselog::{MapState, Query, TableMap};

use super::{record_bytes, Entry, Harness, Seen, State, MODEL_KEYS};

use crate::{all_errors, all_queued};

impl Harness {
    /// Reads the engine's state, figures and full listings; while a
    /// stalled replay may move records, reads until two readings agree.
    pub(super) fn observe(&self) -> Seen {
        let map = self.map();
        for _ in 0..1000 {
            let queue = seqs_of(all_queued(map, None), |r| r.seq);
            let errors = seqs_of(all_errors(map, None), |e| e.record.seq);
            let stats = map.stats();
            let state = map.state();
            let queue_again = seqs_of(all_queued(map, None), |r| r.seq);
            let errors_again = seqs_of(all_errors(map, None), |e| e.record.seq);
            let stats_again = map.stats();
            let still = queue_again.keys().eq(queue.keys())
                && errors_again.keys().eq(errors.keys())
                && stats_again.queued_records == stats.queued_records
                && stats_again.error_records == stats.error_records;
            if still {
                return Seen { state, stats, queue, errors };
            }
        }
        panic!("the map's listings never held still");
    }

    pub(super) fn check(&mut self, context: &str) {
        let seen = self.observe();
        // The state (R1–R5, R8).
        match (self.state, &seen.state) {
            (State::Running, MapState::Running) => {}
            (State::Paused { since, reason }, MapState::Paused { since: s, reason: r, blocked }) => {
                assert_eq!((since, reason, self.blocked), (*s, *r, *blocked), "{context}: the pause")
            }
            (State::CatchingUp, MapState::CatchingUp { remaining, .. }) => {
                assert_eq!(*remaining, seen.queue.len() as u64, "{context}: remaining")
            }
            (expected, state) => panic!("{context}: state {state:?}, the model says {expected:?}"),
        }
        assert_eq!(seen.stats.blocked, self.blocked, "{context}: blocked");
        // Records a stalled Strict replay held back: adopted at rest,
        // tolerated while it may still move them.
        let at_rest = self.state != State::CatchingUp;
        let mut tolerated = BTreeSet::new();
        for seq in self.ambiguous.clone() {
            let Some(error) = seen.errors.get(&seq).filter(|e| Entry::is_held_back(e)) else { continue };
            if self.errors.get(&seq).is_some_and(|entry| entry.matches(error)) {
                continue;
            }
            if at_rest {
                let rec = self.acked[&seq].clone();
                self.queue.remove(&seq);
                self.discarded.remove(&seq);
                self.errors.insert(seq, Entry::observed(rec, error));
            } else if self.queue.contains_key(&seq) {
                tolerated.insert(seq);
            }
        }
        if at_rest {
            self.ambiguous.clear();
        }
        // The queue and the errors, record by record.
        for (seq, rec) in &self.queue {
            match seen.queue.get(seq) {
                Some(record) => assert!(rec.matches(record), "{context}: queued {record:?}, the model says {rec:?}"),
                None => assert!(tolerated.contains(seq), "{context}: queued record {seq} is missing: {rec:?}"),
            }
        }
        for seq in seen.queue.keys() {
            assert!(self.queue.contains_key(seq), "{context}: unexpected queued record {seq}");
        }
        for (seq, error) in &seen.errors {
            match self.errors.get(seq) {
                Some(entry) => assert!(entry.matches(error), "{context}: error {error:?}, the model says {entry:?}"),
                None => assert!(tolerated.contains(seq), "{context}: unexpected catch-up error {error:?}"),
            }
        }
        for (seq, entry) in &self.errors {
            assert!(seen.errors.contains_key(seq), "{context}: catch-up error {seq} is missing: {entry:?}");
        }
        // Nothing acknowledged is lost (R2, R17).
        for seq in self.acked.keys() {
            let kept = seen.queue.contains_key(seq) || seen.errors.contains_key(seq);
            assert!(
                kept || self.delivered.contains(seq) || self.discarded.contains(seq),
                "{context}: acknowledged seq {seq} is lost"
            );
        }
        // Counts, bytes and totals agree with the listings (R6, R9, R10).
        let stats = &seen.stats;
        let queued_bytes: u64 = seen.queue.values().map(|r| record_bytes(&r.key, r.payload.len())).sum();
        let error_bytes: u64 = seen.errors.values().map(|e| record_bytes(&e.record.key, e.record.payload.len())).sum();
        assert_eq!(stats.queued_records, seen.queue.len() as u64, "{context}: queued_records");
        assert_eq!(stats.queued_bytes, queued_bytes, "{context}: queued_bytes (R6)");
        assert_eq!(stats.bytes_left, self.config.max_queue_bytes.saturating_sub(queued_bytes), "{context}: bytes_left");
        assert_eq!(stats.error_records, seen.errors.len() as u64, "{context}: error_records");
        assert_eq!(stats.error_bytes, error_bytes, "{context}: error_bytes");
        if at_rest {
            check_pages(self.map(), &seen, context);
        }
    }
}

/// Pages of 3, with and without a key filter, visit exactly the full
/// listing, and their totals are its counts (R10, R11).
fn check_pages(map: &TableMap, seen: &Seen, context: &str) {
    for key in std::iter::once(None).chain(MODEL_KEYS.iter().map(Some)) {
        let mut query = Query::default().limit(3);
        if let Some(key) = key {
            query = query.key(*key);
        }
        let expected: Vec<u64> =
            seen.queue.values().filter(|r| key.is_none_or(|k| r.key == *k)).map(|r| r.seq).collect();
        let mut listed = Vec::new();
        let mut page = map.queued(&query).expect("a page");
        loop {
            assert_eq!(page.total, expected.len() as u64, "{context}: page total for {key:?}");
            assert!(page.items.len() <= 3, "{context}: a page holds at most its limit");
            listed.extend(page.items.iter().map(|r| r.seq));
            let Some(next) = page.next.take() else { break };
            page = map.queued(&query.clone().after(next)).expect("the next page");
        }
        assert_eq!(listed, expected, "{context}: pages of {key:?}");
        let errors = map.catchup_errors(&query.clone().limit(1000)).expect("errors page");
        let expected_errors = seen.errors.values().filter(|e| key.is_none_or(|k| e.record.key == *k)).count();
        assert_eq!(errors.total, expected_errors as u64, "{context}: errors total for {key:?}");
    }
}

/// Items by their seq.
pub(super) fn seqs_of<T>(items: Vec<T>, seq: impl Fn(&T) -> u64) -> BTreeMap<u64, T> {
    items.into_iter().map(|item| (seq(&item), item)).collect()
}
