//! The engine: one data directory, many table maps, the rule ticker.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use pauselog_wal::{FsStorage, Storage};

use crate::clock::{Clock, SystemClock};
use crate::map::{validate_name, EngineCtx, MapShared, TableMap};
use crate::{Destination, Error, MapConfig, Result, SyncPolicy};

/// An open data directory. `Send + Sync`; closes (and syncs) on drop.
///
/// ```
/// use pauselog::{Engine, MapConfig, Record, Op, Submitted, Destination, DeliveryError, QueuedRecord};
/// use std::sync::Arc;
///
/// struct Accept;
/// impl Destination for Accept {
///     fn deliver(&self, _: &QueuedRecord) -> Result<(), DeliveryError> { Ok(()) }
/// }
/// let dir = tempfile::tempdir()?;
/// let engine = Engine::open(dir.path())?;
/// let map = engine.table_map("customers", MapConfig::default(), Arc::new(Accept))?;
/// assert_eq!(map.submit(Record::new("USMF|CUST-1", Op::Update, b"v1".to_vec()))?, Submitted::Live);
/// map.pause()?;
/// // The live record took seq 1: one sequence for live and queued records (R21).
/// assert_eq!(map.submit(Record::new("USMF|CUST-1", Op::Update, b"v2".to_vec()))?, Submitted::Queued { seq: 2 });
/// # drop(map);
/// engine.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine {
    shared: Arc<EngineShared>,
}

pub(crate) struct EngineShared {
    ctx: Arc<EngineCtx>,
    maps: Mutex<HashMap<String, Arc<MapShared>>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    stop: Mutex<bool>,
    stop_changed: Condvar,
    closed: AtomicBool,
    lock: Mutex<Option<Box<dyn fmt::Debug + Send + Sync>>>,
    #[cfg(feature = "admin")]
    admin: crate::admin::AdminState,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("dir", &self.shared.ctx.dir).field("sync", &self.shared.ctx.sync).finish()
    }
}

/// Builds an [`Engine`]: `Engine::builder(dir).sync(..).clock(..).open()`.
#[derive(Debug)]
#[must_use]
pub struct EngineBuilder {
    dir: PathBuf,
    sync: SyncPolicy,
    clock: Arc<dyn Clock>,
    tick_interval: Option<Duration>,
    segment_bytes_max: u64,
    storage: Arc<dyn Storage>,
    #[cfg(feature = "admin")]
    admin: crate::admin::AdminOptions,
}

impl EngineBuilder {
    /// The file I/O seam of the map logs. Default: the real file system
    /// ([`pauselog_wal::FsStorage`]). Tests wrap it to inject faults (e.g. a
    /// failing fsync, R17); the directory lock and the index store always use
    /// the real file system.
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Durability of queued records. Default: [`SyncPolicy::Always`].
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// The clock for `queued_at`, pause ages and rules. Default: the system clock.
    pub fn clock<C: Clock>(mut self, clock: Arc<C>) -> Self {
        self.clock = clock;
        self
    }

    /// How often the background ticker evaluates rules (real time); `None`
    /// turns it off (tests call [`Engine::tick`]). Default: 1 s.
    pub fn tick_interval(mut self, interval: Option<Duration>) -> Self {
        self.tick_interval = interval;
        self
    }

    /// Data log segment size in bytes. Default: 64 MiB.
    pub fn segment_bytes_max(mut self, bytes: u64) -> Self {
        self.segment_bytes_max = bytes;
        self
    }

    /// Serve the admin API (docs/rules.md R24) on `<dir>/admin/admin.sock`: a Unix
    /// socket of mode 0600 in a directory of mode 0700 that refuses peers
    /// of another user. It runs on one engine-wide thread
    /// (`pauselog-admin`); its calls run on at most 4 more, started on
    /// demand. Default: true.
    #[cfg(feature = "admin")]
    pub fn admin_socket(mut self, serve: bool) -> Self {
        self.admin.socket = serve;
        self
    }

    /// Also serve the admin API on `addr`, which must be a loopback
    /// address (port 0 picks one; [`Engine::admin_tcp_addr`] tells which),
    /// to requests that carry `Authorization: Bearer <token>`, the token
    /// being the content of `token_file`: a file of this process's user
    /// with mode 0600 (or 0400), read once at open. Default: off.
    #[cfg(feature = "admin")]
    pub fn admin_tcp(mut self, addr: std::net::SocketAddr, token_file: impl AsRef<Path>) -> Self {
        self.admin.tcp = Some((addr, token_file.as_ref().to_path_buf()));
        self
    }

    /// Opens the directory, taking its exclusive lock; then starts the
    /// admin API's listeners (feature `admin`), so a failure to bind them
    /// closes the engine again and is this call's error.
    pub fn open(self) -> Result<Engine> {
        let dir = self.dir;
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
        let holder = format!("pauselog engine, pid {}", std::process::id());
        let lock = FsStorage.lock_dir(&dir, &holder).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked { dir: dir.clone(), holder: e.to_string() },
            _ => Error::Io { path: dir.clone(), source: e },
        })?;
        remove_legacy_index_store(&dir.join("index"));
        let ctx = Arc::new(EngineCtx {
            dir: dir.clone(),
            clock: self.clock,
            sync: self.sync,
            segment_bytes_max: self.segment_bytes_max,
            storage: self.storage,
        });
        let shared = Arc::new_cyclic(|_weak: &Weak<EngineShared>| EngineShared {
            #[cfg(feature = "admin")]
            admin: crate::admin::AdminState::new(_weak.clone(), dir.clone()),
            ctx,
            maps: Mutex::new(HashMap::new()),
            ticker: Mutex::new(None),
            stop: Mutex::new(false),
            stop_changed: Condvar::new(),
            closed: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        });
        if let Some(interval) = self.tick_interval {
            let weak = Arc::downgrade(&shared);
            let handle = std::thread::Builder::new()
                .name("pauselog-ticker".into())
                .spawn(move || run_ticker(weak, interval))
                .map_err(|e| Error::Io { path: dir.clone(), source: e })?;
            *shared.ticker.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        let engine = Engine { shared };
        #[cfg(feature = "admin")]
        engine.shared.admin.start(&self.admin)?;
        tracing::info!(dir = %dir.display(), sync = ?self.sync, "engine opened");
        Ok(engine)
    }
}

/// Data directories written before the key index moved next to each map's
/// logs kept it in a sled store at `index/`: derived data (R19a), deleted.
fn remove_legacy_index_store(path: &Path) {
    if path.is_dir() {
        match std::fs::remove_dir_all(path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed the key index store of an older version"),
            Err(error) => tracing::warn!(path = %path.display(), %error, "could not remove an old key index store"),
        }
    }
}

fn run_ticker(engine: Weak<EngineShared>, interval: Duration) {
    loop {
        let Some(shared) = engine.upgrade() else { return };
        let stop = shared.stop.lock().unwrap_or_else(|p| p.into_inner());
        let (stop, _) = shared.stop_changed.wait_timeout(stop, interval).unwrap_or_else(|p| p.into_inner());
        if *stop {
            return;
        }
        drop(stop);
        shared.tick();
    }
}

impl EngineShared {
    fn maps(&self) -> Vec<Arc<MapShared>> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Handles on the open maps.
    pub(crate) fn open_maps(&self) -> Vec<TableMap> {
        self.maps().into_iter().map(|shared| TableMap { shared }).collect()
    }

    /// A handle on the open map `name`.
    #[cfg(feature = "admin")]
    pub(crate) fn open_map(&self, name: &str) -> Option<TableMap> {
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        maps.get(name).map(|shared| TableMap { shared: shared.clone() })
    }

    #[cfg(feature = "admin")]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn tick(&self) {
        for map in self.maps() {
            map.tick();
            // Under Interval, an idle map's last appends are synced here once
            // the interval has passed (appends sync when they find it due).
            if let SyncPolicy::Interval(_) = self.ctx.sync {
                if let Err(error) = map.data.commit(map.data.next_seq() - 1) {
                    tracing::error!(map = %map.name, %error, "interval sync failed");
                }
            }
        }
    }

    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // No operator request may reach a map while it closes.
        #[cfg(feature = "admin")]
        self.admin.stop();
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop_changed.notify_all();
        let ticker = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ticker) = ticker {
            if ticker.thread().id() != std::thread::current().id() {
                let _ = ticker.join();
            }
        }
        let mut first_error = None;
        let maps: Vec<Arc<MapShared>> =
            self.maps.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, map)| map).collect();
        for map in maps {
            if let Err(error) = map.shutdown() {
                tracing::error!(map = %map.name, %error, "closing table map failed");
                first_error.get_or_insert(error);
            }
        }
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        tracing::info!(dir = %self.ctx.dir.display(), "engine closed");
        first_error.map_or(Ok(()), Err)
    }
}

impl Engine {
    /// Opens `dir` with the defaults (`SyncPolicy::Always`, system clock).
    pub fn open(dir: impl AsRef<Path>) -> Result<Engine> {
        Engine::builder(dir).open()
    }

    /// A builder for `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> EngineBuilder {
        EngineBuilder {
            dir: dir.as_ref().to_path_buf(),
            sync: SyncPolicy::Always,
            clock: Arc::new(SystemClock),
            tick_interval: Some(Duration::from_secs(1)),
            segment_bytes_max: 64 * 1024 * 1024,
            storage: Arc::new(FsStorage),
            #[cfg(feature = "admin")]
            admin: crate::admin::AdminOptions::default(),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.ctx.dir
    }

    /// Opens (or creates) a table map. Opening a map that is already open
    /// returns a handle on it with `destination` attached; `config` applies
    /// from the first open of this engine. A map that was catching up
    /// continues as soon as it is opened (R4).
    pub fn table_map(&self, name: &str, config: MapConfig, destination: Arc<dyn Destination>) -> Result<TableMap> {
        validate_name(name)?;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut maps = self.shared.maps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = maps.get(name) {
            let map = TableMap { shared: shared.clone() };
            map.set_destination(destination);
            return Ok(map);
        }
        let shared = crate::open::open_map(&self.shared.ctx, name, config, destination)?;
        maps.insert(name.to_owned(), shared.clone());
        Ok(TableMap { shared })
    }

    /// Handles on the table maps open in this engine, in no order.
    pub fn open_maps(&self) -> Vec<TableMap> {
        self.shared.open_maps()
    }

    /// The admin API's backend, to mount its router in the service's own
    /// HTTP server: `pauselog_admin::router::router(engine.admin_backend(), auth)`.
    /// It shares its retry-job registry with the engine's own listeners and
    /// holds the engine weakly (after close, calls answer `engine_closed`).
    #[cfg(feature = "admin")]
    pub fn admin_backend(&self) -> Arc<dyn pauselog_admin::AdminBackend> {
        self.shared.admin.backend.clone()
    }

    /// The admin socket this engine serves, if it serves one.
    #[cfg(feature = "admin")]
    pub fn admin_socket_path(&self) -> Option<PathBuf> {
        self.shared.admin.socket_path()
    }

    /// The loopback address of the admin API's TCP listener, if asked for.
    #[cfg(feature = "admin")]
    pub fn admin_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.shared.admin.tcp_addr()
    }

    /// Names of the table maps stored in the data directory.
    pub fn map_names(&self) -> Result<Vec<String>> {
        list_map_names(&self.shared.ctx.dir)
    }

    /// Evaluates every open map's rules now (R14).
    pub fn tick(&self) {
        self.shared.tick();
    }

    /// Makes everything acknowledged so far durable, under any sync policy (R17).
    pub fn sync(&self) -> Result<()> {
        for map in self.shared.maps() {
            map.data.sync().map_err(|e| Error::from_wal(&map.name, e))?;
            map.meta.sync().map_err(|e| Error::from_wal(&map.name, e))?;
        }
        Ok(())
    }

    /// Stops background work, syncs, saves the index checkpoints and releases
    /// the directory lock. Also done on drop (errors are then logged).
    pub fn close(self) -> Result<()> {
        self.shared.shutdown()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(error) = self.shared.shutdown() {
            tracing::error!(%error, "engine close on drop failed");
        }
    }
}

/// Names of the table maps stored under `dir`.
pub fn list_map_names(dir: &Path) -> Result<Vec<String>> {
    let maps_dir = dir.join("maps");
    let entries = match std::fs::read_dir(&maps_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path: maps_dir, source: e }),
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
