//! What a log is opened with: [`WalOptions`] and the [`SyncPolicy`].

use std::time::Duration;

use crate::error::{Error, Result};

/// When an appended record is on stable storage. Non-exhaustive: users pass
/// it in, and new policies may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// `append` returns only after the record is fsynced; concurrent appenders
    /// share one fsync (group commit). Survives a process crash and a power loss.
    #[default]
    Always,
    /// An append is written to the OS (`pwrite`) before it returns;
    /// concurrent appenders share that write as they share fsyncs. An append
    /// that finds the last sync older than the interval also syncs (group
    /// commit as above); [`crate::Wal::sync`] and close sync too. Survives a process
    /// crash; a power loss may lose the appends since the last sync, at most
    /// an interval's worth while appends keep coming.
    Interval(Duration),
    /// No fsync except on rotation, [`crate::Wal::sync`] and close. Appends are
    /// buffered in memory (1 MiB): a process crash may lose the buffer, a power
    /// loss anything since the last sync. For tests and benches.
    Never,
}

/// Options for [`crate::Wal::open`]. Built with chained setters from
/// `default()`; non-exhaustive, so a new option never breaks a caller.
#[derive(Debug, Clone)]
#[must_use]
#[non_exhaustive]
pub struct WalOptions {
    /// Size at which the active segment is sealed and a new one started, in
    /// bytes. A frame larger than this gets a segment of its own.
    /// Default: 64 MiB. Range: 4 KiB ..= 1 GiB.
    pub segment_bytes_max: u64,
    /// Durability of appends. Default: [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// Cap on live (appended, not released) bytes, framing included. An append
    /// that would pass it fails with [`Error::CapExceeded`] and writes nothing.
    /// Default: none.
    pub live_bytes_max: Option<u64>,
    /// Open without the lock and without repairing anything; appends fail.
    /// For inspecting a log another process holds. Default: false.
    pub read_only: bool,
    /// Preallocate segment files (fallocate) so durable appends skip size
    /// metadata. Default: true.
    pub preallocate: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes_max: 64 * 1024 * 1024,
            sync: SyncPolicy::Always,
            live_bytes_max: None,
            read_only: false,
            preallocate: true,
        }
    }
}

impl WalOptions {
    /// Sets [`WalOptions::segment_bytes_max`].
    pub fn segment_bytes_max(mut self, bytes: u64) -> Self {
        self.segment_bytes_max = bytes;
        self
    }
    /// Sets [`WalOptions::sync`].
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
    /// Sets [`WalOptions::live_bytes_max`].
    pub fn live_bytes_max(mut self, bytes: Option<u64>) -> Self {
        self.live_bytes_max = bytes;
        self
    }
    /// Sets [`WalOptions::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Sets [`WalOptions::preallocate`].
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.preallocate = preallocate;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(4096..=1 << 30).contains(&self.segment_bytes_max) {
            return Err(Error::InvalidOptions(format!(
                "segment_bytes_max is {} bytes; it must be between 4 KiB and 1 GiB",
                self.segment_bytes_max
            )));
        }
        Ok(())
    }
}
