//! `pauselog`: pause a table map for maintenance without losing a record.
//!
//! A sync service links pauselog to synchronise records from a source app to
//! a destination app through **table maps**. While a map is paused every
//! created, updated or deleted record is queued durably on local disk; the
//! queue can be listed (pages, counts, a filter by integration key); on resume
//! it is played back by catching up (new writes go to the tail until the
//! backlog drains), or skipped to live while preserving the backlog as
//! catch-up errors, or discarding it. The rules it keeps, R1–R24, are
//! written down in the repository's `docs/rules.md`.
//!
//! ```
//! use pauselog::*;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! struct Printer;
//! impl Destination for Printer {
//!     fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
//!         println!("seq {} key {}", record.seq, record.key);
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::builder(dir.path()).sync(SyncPolicy::Always).open()?;
//! let map = engine.table_map("customers", MapConfig::default(), Arc::new(Printer))?;
//! map.pause()?;
//! for i in 0..3 {
//!     map.submit(Record::new(format!("USMF|CUST-{i}"), Op::Update, b"{}".to_vec()))?;
//! }
//! let page = map.queued(&Query::default().key("USMF|CUST-1"))?;
//! assert_eq!((page.items.len(), page.total), (1, 1));
//! map.resume(ResumeMode::CatchUp)?;
//! map.wait_for(|s| matches!(s, MapState::Running), Duration::from_secs(10))?;
//! assert_eq!(map.stats().queued_records, 0);
//! # drop(map);
//! engine.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
// One unsafe block (`codec::decode_key`, ASCII keys as `str` without a second
// check); it says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "admin")]
pub mod admin;
mod clock;
mod codec;
mod destination;
mod engine;
mod error;
mod errors_table;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
mod map;
mod meta;
mod open;
mod replay;
mod retry;
mod types;
mod views;

pub use clock::{Clock, ManualClock, SystemClock};
pub use destination::{DeliveryError, Destination};
pub use engine::{list_map_names, Engine, EngineBuilder};
pub use error::{Error, Result};
pub use inspect::{inspect, inspect_map, verify, MapInspector, MapReport, VerifyReport};
pub use map::TableMap;
pub use pauselog_wal::storage::{FsStorage, Mapped, Storage, StorageFile};
pub use pauselog_wal::{SyncLatency, SyncPolicy, SYNC_LATENCY_BOUNDS_US};
pub use retry::{RetryJob, RetryProgress};
pub use types::*;

/// The README's quick start, compiled and run as a doctest so that the
/// front door cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
