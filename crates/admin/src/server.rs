//! The listeners: a Unix socket in the data directory and, when asked, a
//! loopback TCP address with a bearer token. One thread (`pauselog-admin`)
//! runs a single-threaded tokio runtime that accepts and parses; the
//! engine's calls run on at most [`BLOCKING_THREADS_MAX`] blocking threads
//! that tokio starts on demand and ends after 10 s idle.
//!
//! ```no_run
//! # fn demo(backend: std::sync::Arc<dyn pauselog_admin::AdminBackend>) -> Result<(), pauselog_admin::ServerError> {
//! use pauselog_admin::server::{AdminServer, ServerConfig};
//! let mut server = AdminServer::start(backend, ServerConfig::default().unix_socket("data"))?;
//! println!("admin API on {}", server.socket_path().unwrap().display());
//! server.stop();
//! # Ok(()) }
//! ```
//!
//! Limits: [`ServerConfig::connections_max`] connections served at once per
//! listener, a few more answered `503 too_many_connections`, the rest closed
//! at once; request headers within [`HEADER_READ_TIMEOUT`], bodies within
//! [`BODY_READ_TIMEOUT`](crate::router::BODY_READ_TIMEOUT) and
//! [`REQUEST_BODY_BYTES_MAX`](crate::request::REQUEST_BODY_BYTES_MAX); a
//! connection lives at most [`CONNECTION_LIFETIME_MAX`], then finishes the
//! request in flight and closes.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};

use crate::backend::{AdminBackend, Answer};
use crate::router::{router_with_body_timeout, Auth, BODY_READ_TIMEOUT};
use crate::schema::{ApiError, ErrorCode};
use crate::socket_path::{socket_path, with_short_path};
use crate::token::Token;

/// Longest time the request line and headers may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection (keep-alive included): then the request
/// in flight is finished (within [`CONNECTION_CLOSE_WAIT`]) and the
/// connection closed; clients reconnect.
pub const CONNECTION_LIFETIME_MAX: Duration = Duration::from_secs(60);
/// How long a connection past its lifetime may take to finish the request
/// in flight.
pub const CONNECTION_CLOSE_WAIT: Duration = Duration::from_secs(15);
/// Default of [`ServerConfig::connections_max`].
pub const CONNECTIONS_MAX_DEFAULT: usize = 64;
/// Connections past the limit that still get a `too_many_connections`
/// answer; past these, connections are closed unanswered.
const REFUSALS_MAX: usize = 64;
/// Threads that run the engine's calls at once.
pub const BLOCKING_THREADS_MAX: usize = 4;
/// How long `stop` waits for calls in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// Largest request head hyper buffers, in bytes.
const HEAD_BYTES_MAX: usize = 64 * 1024;

/// Where and how the server listens.
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerConfig {
    unix_data_dir: Option<PathBuf>,
    tcp: Option<(SocketAddr, Token)>,
    connections_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { unix_data_dir: None, tcp: None, connections_max: CONNECTIONS_MAX_DEFAULT }
    }
}

impl ServerConfig {
    /// Listen on `<data_dir>/admin/admin.sock` (directory 0700, socket
    /// 0600; peers of another uid are refused).
    pub fn unix_socket(mut self, data_dir: impl AsRef<Path>) -> Self {
        self.unix_data_dir = Some(data_dir.as_ref().to_path_buf());
        self
    }

    /// Also listen on `addr`, which must be a loopback address (port 0
    /// picks a free port), admitting requests that carry `token`.
    pub fn tcp(mut self, addr: SocketAddr, token: Token) -> Self {
        self.tcp = Some((addr, token));
        self
    }

    /// Connections served at once, per listener. Default: 64.
    pub fn connections_max(mut self, connections: usize) -> Self {
        self.connections_max = connections.max(1);
        self
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file or socket operation failed.
    #[error("admin API: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file, directory or address.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TCP address is not a loopback address.
    #[error("admin API: {addr} is not a loopback address; the TCP listener only binds 127.0.0.0/8 or ::1")]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Something that is not ours is in the way.
    #[error("admin API: {path} {why}; move it away or turn the admin socket off")]
    InTheWay {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// A running admin server. Stops on [`AdminServer::stop`] or drop.
#[derive(Debug)]
pub struct AdminServer {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    socket_path: Option<PathBuf>,
    tcp_addr: Option<SocketAddr>,
}

enum Listener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener, Token),
}

impl AdminServer {
    /// Binds the configured listeners and starts serving `backend`.
    /// Binding happens before this returns, so its errors are this call's.
    pub fn start(backend: Arc<dyn AdminBackend>, config: ServerConfig) -> Result<AdminServer, ServerError> {
        let mut listeners = Vec::new();
        let mut socket = None;
        if let Some(dir) = &config.unix_data_dir {
            let (listener, path) = bind_unix(dir)?;
            listeners.push(Listener::Unix(listener));
            socket = Some(path);
        }
        let mut tcp_addr = None;
        if let Some((addr, token)) = &config.tcp {
            let listener = bind_tcp(*addr)?;
            tcp_addr = Some(listener.local_addr().map_err(|e| io("reading the address of", addr, e))?);
            listeners.push(Listener::Tcp(listener, token.clone()));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .thread_name("pauselog-admin")
            .max_blocking_threads(BLOCKING_THREADS_MAX)
            .build()
            .map_err(|e| io("starting the runtime for", "the admin server", e))?;
        let (stop, stopped) = watch::channel(false);
        let connections_max = config.connections_max;
        let thread = std::thread::Builder::new()
            .name("pauselog-admin".into())
            .spawn(move || {
                runtime.block_on(serve(listeners, backend, connections_max, stopped));
                runtime.shutdown_timeout(SHUTDOWN_WAIT);
            })
            .map_err(|e| io("starting a thread for", "the admin server", e))?;
        if let Some(path) = &socket {
            tracing::info!(socket = %path.display(), "admin API listening");
        }
        if let Some(addr) = tcp_addr {
            tracing::info!(%addr, "admin API listening on loopback TCP");
        }
        Ok(AdminServer { stop, thread: Some(thread), socket_path: socket, tcp_addr })
    }

    /// The Unix socket, when there is one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket_path.as_deref()
    }

    /// The bound TCP address (with the port chosen), when there is one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Stops accepting, waits up to 5 s for calls in flight, removes the
    /// socket file. Idempotent.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        if let Some(path) = self.socket_path.take() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn io(what: &'static str, path: impl std::fmt::Display, source: std::io::Error) -> ServerError {
    ServerError::Io { what, path: path.to_string(), source }
}

/// Creates `<dir>/admin` (0700, ours) and binds `admin.sock` (0600) in it,
/// replacing a socket file a crashed engine left behind. The caller holds
/// the data directory's lock, so no live engine serves that socket.
fn bind_unix(data_dir: &Path) -> Result<(std::os::unix::net::UnixListener, PathBuf), ServerError> {
    let path = socket_path(data_dir);
    let dir = path.parent().expect("the socket path has a directory");
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io("creating", dir.display(), e)),
    }
    let metadata = std::fs::symlink_metadata(dir).map_err(|e| io("reading", dir.display(), e))?;
    let uid = rustix::process::geteuid().as_raw();
    if !metadata.is_dir() || metadata.uid() != uid {
        return Err(ServerError::InTheWay { path: dir.to_path_buf(), why: format!("is not a directory of uid {uid}") });
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io("setting mode 0700 on", dir.display(), e))?;
    match std::fs::symlink_metadata(&path) {
        Ok(existing) if existing.file_type().is_socket() => {
            std::fs::remove_file(&path).map_err(|e| io("removing the stale socket", path.display(), e))?;
        }
        Ok(_) => return Err(ServerError::InTheWay { path, why: "exists and is not a socket".into() }),
        Err(_) => {}
    }
    let listener = with_short_path(&path, |short| std::os::unix::net::UnixListener::bind(short))
        .map_err(|e| io("binding", path.display(), e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("setting mode 0600 on", path.display(), e))?;
    listener.set_nonblocking(true).map_err(|e| io("configuring", path.display(), e))?;
    Ok((listener, path))
}

fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    if !addr.ip().is_loopback() {
        return Err(ServerError::NotLoopback { addr });
    }
    let listener = std::net::TcpListener::bind(addr).map_err(|e| io("binding", addr, e))?;
    listener.set_nonblocking(true).map_err(|e| io("configuring", addr, e))?;
    Ok(listener)
}

/// Runs every listener's accept loop until `stop` turns true.
async fn serve(
    listeners: Vec<Listener>,
    backend: Arc<dyn AdminBackend>,
    connections_max: usize,
    mut stop: watch::Receiver<bool>,
) {
    for listener in listeners {
        let limits = Limits {
            serving: Arc::new(Semaphore::new(connections_max)),
            refusing: Arc::new(Semaphore::new(REFUSALS_MAX)),
        };
        let stop = stop.clone();
        match listener {
            Listener::Unix(listener) => match tokio::net::UnixListener::from_std(listener) {
                Ok(listener) => {
                    let app = router_with_body_timeout(backend.clone(), Auth::Vetted, Some(BODY_READ_TIMEOUT));
                    tokio::spawn(accept_unix(listener, app, limits, stop));
                }
                Err(error) => tracing::error!(%error, "admin API: the Unix socket could not join the runtime"),
            },
            Listener::Tcp(listener, token) => match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    let app = router_with_body_timeout(backend.clone(), Auth::Bearer(token), Some(BODY_READ_TIMEOUT));
                    tokio::spawn(accept_tcp(listener, app, limits, stop));
                }
                Err(error) => tracing::error!(%error, "admin API: the TCP listener could not join the runtime"),
            },
        }
    }
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break;
        }
    }
}

#[derive(Clone)]
struct Limits {
    serving: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

async fn accept_unix(listener: tokio::net::UnixListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let uid = rustix::process::geteuid().as_raw();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                accept_failed(&error).await;
                continue;
            }
        };
        let peer_uid = stream.peer_cred().map(|cred| cred.uid()).ok();
        if peer_uid != Some(uid) {
            let shown = peer_uid.map_or_else(|| "unknown".to_owned(), |u| u.to_string());
            tracing::warn!(peer_uid = %shown, "admin API: refused a peer of another user");
            let error = ApiError::new(
                ErrorCode::ForbiddenPeer,
                format!("the admin socket serves uid {uid} only; this peer runs as uid {shown}"),
            );
            refuse(stream, error, &limits);
            continue;
        }
        admit(stream, &app, &limits);
    }
}

async fn accept_tcp(listener: tokio::net::TcpListener, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => admit(stream, &app, &limits),
            Err(error) => accept_failed(&error).await,
        }
    }
}

/// Out of file descriptors or a connection reset before accept: back off
/// briefly so the loop does not spin, and keep serving.
async fn accept_failed(error: &std::io::Error) {
    tracing::warn!(%error, "admin API: accept failed");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Serves `stream` if a connection slot is free, else refuses it.
fn admit<S>(stream: S, app: &Router, limits: &Limits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = limits.serving.clone().try_acquire_owned() else {
        let error = ApiError::new(
            ErrorCode::TooManyConnections,
            "the admin API serves its most connections at once; try again shortly",
        );
        refuse(stream, error, limits);
        return;
    };
    let service = TowerToHyperService::new(app.clone());
    tokio::spawn(async move {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(HEAD_BYTES_MAX)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = tokio::time::sleep(CONNECTION_LIFETIME_MAX) => {
                // Finish the request in flight, answer it with
                // `connection: close`, then close: a browser that keeps
                // the connection open for the page's polling opens a new
                // one without a failed request.
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CONNECTION_CLOSE_WAIT, connection).await;
            }
        }
        drop(permit);
    });
}

/// Answers every request on `stream` with `error` and closes it; closes it
/// unanswered when too many refusals are under way already.
fn refuse<S>(stream: S, error: ApiError, limits: &Limits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = limits.refusing.clone().try_acquire_owned() else { return };
    let answer = Answer::error(&error);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |_request: hyper::Request<Incoming>| {
            let answer = answer.clone();
            async move {
                hyper::Response::builder()
                    .status(answer.status)
                    .header("content-type", "application/json")
                    .header("connection", "close")
                    .body(http_body_util::Full::new(hyper::body::Bytes::from(answer.body)))
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(2))
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), service);
        let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        drop(permit);
    });
}
