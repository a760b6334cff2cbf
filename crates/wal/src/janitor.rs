//! The janitor: a thread that deletes fully released segments off the
//! caller's thread and off the log's lock (crash case L2 in
//! [`crate::format`]). Unlinking a 64 MiB preallocated file costs about
//! 15 ms of extent freeing, and unmapping a segment that was read through
//! about 1 ms; the thread releasing records pays neither.
//!
//! It is started by the log's first deletion, so a log that never releases
//! a whole segment (most table maps' meta logs, every idle map) costs no
//! thread; closing the log stops and joins it.

use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::segment::SegmentView;
use crate::storage::{Storage, StorageFile};

/// Whether the log's janitor runs.
pub(crate) enum JanitorSlot {
    /// Not started yet. If starting it fails, that deletion runs inline
    /// and the next one tries again.
    Idle,
    Running(Janitor),
    /// The log is closed: deletions run inline.
    Closed,
}

/// The janitor thread (see the module docs).
pub(crate) struct Janitor {
    queue: Sender<JanitorJob>,
    thread: JoinHandle<()>,
}

/// Work for the janitor thread.
enum JanitorJob {
    /// Delete these segments.
    Delete(Vec<Released>),
    /// Answer once everything sent before is done.
    Barrier(Sender<()>),
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
}

impl Janitor {
    fn start(storage: Arc<dyn Storage>) -> Option<Janitor> {
        let (queue, work) = mpsc::channel::<JanitorJob>();
        let run = move || {
            for job in work {
                match job {
                    JanitorJob::Delete(released) => remove_segment_files(storage.as_ref(), released),
                    JanitorJob::Barrier(done) => drop(done.send(())),
                }
            }
        };
        match std::thread::Builder::new().name("pauselog-wal-janitor".into()).spawn(run) {
            Ok(thread) => Some(Janitor { queue, thread }),
            Err(error) => {
                tracing::warn!(%error, "no janitor thread: released segments are deleted inline");
                None
            }
        }
    }
}

/// Hands `released` to the janitor of `slot`, starting it if it is idle;
/// deletes them on this thread if there is no janitor.
pub(crate) fn delete(slot: &Mutex<JanitorSlot>, storage: &Arc<dyn Storage>, released: Vec<Released>) {
    let sent = {
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*slot, JanitorSlot::Idle) {
            if let Some(janitor) = Janitor::start(storage.clone()) {
                *slot = JanitorSlot::Running(janitor);
            }
        }
        match &*slot {
            JanitorSlot::Running(janitor) => janitor.queue.send(JanitorJob::Delete(released)).map_err(|e| match e.0 {
                JanitorJob::Delete(released) => released,
                JanitorJob::Barrier(_) => unreachable!("a delete job was sent"),
            }),
            JanitorSlot::Idle | JanitorSlot::Closed => Err(released),
        }
    };
    if let Err(released) = sent {
        remove_segment_files(storage.as_ref(), released);
    }
}

/// Waits until every segment handed to the janitor of `slot` is deleted.
pub(crate) fn settle(slot: &Mutex<JanitorSlot>) {
    let (done, finished) = mpsc::channel();
    let sent = match &*slot.lock().unwrap_or_else(|p| p.into_inner()) {
        JanitorSlot::Running(janitor) => janitor.queue.send(JanitorJob::Barrier(done)).is_ok(),
        JanitorSlot::Idle | JanitorSlot::Closed => false,
    };
    if sent {
        let _ = finished.recv();
    }
}

/// Stops the janitor of `slot` after its pending deletions; later ones run
/// inline.
pub(crate) fn close(slot: &Mutex<JanitorSlot>) {
    let slot = std::mem::replace(&mut *slot.lock().unwrap_or_else(|p| p.into_inner()), JanitorSlot::Closed);
    if let JanitorSlot::Running(janitor) = slot {
        drop(janitor.queue);
        let _ = janitor.thread.join();
    }
}

/// Removes released segments' sidecars and files (sidecar first, so a
/// crash in between leaves a segment without one, scanned at open, never a
/// stale sidecar; a missing file is already gone), then drops their views.
fn remove_segment_files(storage: &dyn Storage, released: Vec<Released>) {
    for segment in released {
        let _unmapped_last = segment.view;
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
