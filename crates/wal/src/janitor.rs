//! The janitor: a thread that deletes fully released segments off the
//! caller's thread and off the log's lock (crash case L2 in
//! [`crate::format`]). Unlinking a 64 MiB preallocated file costs about
//! 15 ms of extent freeing, and unmapping a segment that was read through
//! about 1 ms; the thread releasing records pays neither.
//!
//! It runs only while it has segments to delete: the first deletion
//! starts it, it exits once its queue is empty, and the next deletion
//! starts it again. A log that deletes nothing (most table maps' meta
//! logs, every idle map, a map that drained its backlog and went idle)
//! holds no thread. Closing the log waits for it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::offsets::Offsets;
use crate::segment::SegmentView;
use crate::storage::{Storage, StorageFile};

/// A log's janitor: the segments waiting for deletion and the thread, if
/// one runs (see the module docs).
#[derive(Default)]
pub(crate) struct Janitor {
    state: Mutex<JanitorState>,
    /// Signalled when the thread has emptied the queue and stops.
    idle: Condvar,
}

#[derive(Default)]
struct JanitorState {
    queue: VecDeque<Released>,
    /// A thread is deleting the queue's segments (and will until it is empty).
    running: bool,
    /// The last thread started; it may have ended already.
    thread: Option<JoinHandle<()>>,
    /// The log is closed: deletions run inline.
    closed: bool,
}

/// A fully released segment waiting for deletion.
pub(crate) struct Released {
    pub sidecar: PathBuf,
    pub path: PathBuf,
    /// The log's handle: a file is removed only while this handle is still
    /// valid (a simulated crash invalidates it; a real one ends the thread).
    pub file: Arc<dyn StorageFile>,
    /// The segment's cached read view, dropped with the rest (a reader may
    /// still hold it; then it unmaps when that reader is done).
    pub view: Option<Arc<SegmentView>>,
    /// Its frame offsets, mapped from the sidecar: unmapped with the rest.
    pub offsets: Offsets,
}

impl Janitor {
    fn lock(&self) -> MutexGuard<'_, JanitorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the queue is empty and no thread runs; returns the
    /// last thread's handle to join.
    fn wait_idle<'a>(
        &'a self,
        mut state: MutexGuard<'a, JanitorState>,
    ) -> (MutexGuard<'a, JanitorState>, Option<JoinHandle<()>>) {
        while state.running {
            state = self.idle.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        let thread = state.thread.take();
        (state, thread)
    }
}

/// The janitor thread: deletes what is queued until the queue is empty.
fn run(janitor: &Janitor, storage: &dyn Storage) {
    loop {
        let batch: Vec<Released> = {
            let mut state = janitor.lock();
            if state.queue.is_empty() {
                state.running = false;
                janitor.idle.notify_all();
                return;
            }
            state.queue.drain(..).collect()
        };
        remove_segment_files(storage, batch);
    }
}

/// Queues `released` for the janitor, starting its thread if none runs;
/// deletes them on this thread if the log is closed or no thread starts.
pub(crate) fn delete(janitor: &Arc<Janitor>, storage: &Arc<dyn Storage>, released: Vec<Released>) {
    let mut state = janitor.lock();
    if state.closed {
        drop(state);
        return remove_segment_files(storage.as_ref(), released);
    }
    state.queue.extend(released);
    if state.running {
        return;
    }
    // The thread that ran last has emptied the queue and is ending (or
    // ended): joining it cannot wait on anything.
    let finished = state.thread.take();
    let (thread_janitor, thread_storage) = (janitor.clone(), storage.clone());
    let spawned = std::thread::Builder::new()
        .name("pauselog-wal-janitor".into())
        .spawn(move || run(&thread_janitor, thread_storage.as_ref()));
    let inline = match spawned {
        Ok(thread) => {
            state.running = true;
            state.thread = Some(thread);
            Vec::new()
        }
        Err(error) => {
            tracing::warn!(%error, "no janitor thread: released segments are deleted inline");
            state.queue.drain(..).collect()
        }
    };
    drop(state);
    if let Some(finished) = finished {
        let _ = finished.join();
    }
    remove_segment_files(storage.as_ref(), inline);
}

/// Waits until every segment handed to the janitor is deleted and its
/// thread has ended.
pub(crate) fn settle(janitor: &Janitor) {
    let (state, thread) = janitor.wait_idle(janitor.lock());
    drop(state);
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

/// Waits for the janitor's pending deletions; later ones run inline.
pub(crate) fn close(janitor: &Janitor) {
    let (mut state, thread) = janitor.wait_idle(janitor.lock());
    state.closed = true;
    drop(state);
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

/// Removes released segments' sidecars and files (sidecar first, so a
/// crash in between leaves a segment without one, scanned at open, never a
/// stale sidecar; a missing file is already gone), then drops their views.
fn remove_segment_files(storage: &dyn Storage, released: Vec<Released>) {
    for segment in released {
        let _unmapped_last = (segment.view, segment.offsets);
        if segment.file.len().is_err() {
            continue;
        }
        for path in [segment.sidecar, segment.path] {
            match storage.remove(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(path = %path.display(), %error, "could not remove a released segment"),
            }
        }
    }
}
