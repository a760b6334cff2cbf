//! A blocking client of the API, over the data directory's Unix socket or a
//! loopback TCP address with a token. One connection per request, so a
//! client may be kept for as long as a command runs.
//!
//! ```no_run
//! use pauselog_admin::client::Client;
//! use pauselog_admin::schema::ResumeMode;
//! let client = Client::for_data_dir("data")?;
//! let status = client.pause("customers")?;
//! println!("{} queued", status.queued_records);
//! client.resume("customers", ResumeMode::CatchUp)?;
//! # Ok::<(), pauselog_admin::client::ClientError>(())
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::request::{encode_page_query, PageQuery};
use crate::schema::{
    ApiError, CatchupError, DiscardRequest, Discarded, ErrorBody, Health, JobList, MapList, MapStatus, Page,
    QueuedRecord, ResumeMode, ResumeRequest, RetryJob, RetryRequest, Selection, SkipToLiveRequest,
};
use crate::socket_path::{socket_path, with_short_path};
use crate::token::Token;

/// Default of [`Client::timeout`].
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

/// What a path segment keeps unescaped: the characters of map names.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No engine listens on the data directory's socket.
    #[error("no engine serves {socket} ({reason})")]
    NotServing {
        /// The socket tried.
        socket: PathBuf,
        /// What connecting said.
        reason: String,
    },
    /// The engine answered with an error; nothing changed.
    #[error("{}", .0.message)]
    Api(ApiError),
    /// The connection or the answer failed.
    #[error("admin API at {target}: {message}")]
    Transport {
        /// The socket or address.
        target: String,
        /// What went wrong.
        message: String,
    },
}

#[derive(Debug, Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "{}", path.display()),
            Target::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// A blocking API client.
#[derive(Debug)]
pub struct Client {
    target: Target,
    token: Option<Token>,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the engine serving `data_dir` (its `admin/admin.sock`).
    pub fn for_data_dir(data_dir: impl AsRef<Path>) -> Result<Client, ClientError> {
        Client::new(Target::Unix(socket_path(data_dir.as_ref())), None)
    }

    /// A client of the Unix socket at `socket`.
    pub fn unix(socket: impl Into<PathBuf>) -> Result<Client, ClientError> {
        Client::new(Target::Unix(socket.into()), None)
    }

    /// A client of a TCP listener that wants `token`.
    pub fn tcp(addr: SocketAddr, token: Token) -> Result<Client, ClientError> {
        Client::new(Target::Tcp(addr), Some(token))
    }

    fn new(target: Target, token: Option<Token>) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map_err(|e| {
            ClientError::Transport { target: target.to_string(), message: format!("cannot start a runtime: {e}") }
        })?;
        Ok(Client { target, token, timeout: REQUEST_TIMEOUT_DEFAULT, runtime })
    }

    /// Longest wait for one answer. Default: 60 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one request; returns the status and body, whatever the status.
    pub fn send(&self, method: &str, path_and_query: &str, body: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
        let transport = |message: String| ClientError::Transport { target: self.target.to_string(), message };
        let exchange = self.exchange(method, path_and_query, body.to_vec());
        let timeout = self.timeout;
        self.runtime.block_on(async move {
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(transport(format!("no answer within {} s", timeout.as_secs_f64()))),
            }
        })
    }

    async fn exchange(&self, method: &str, path_and_query: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), ClientError> {
        let transport = |message: String| ClientError::Transport { target: self.target.to_string(), message };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", "pauselog")
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.as_str()));
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| transport(format!("bad request: {e}")))?;
        let response = match &self.target {
            Target::Unix(path) => {
                let stream = with_short_path(path, |short| {
                    let stream = std::os::unix::net::UnixStream::connect(short)?;
                    stream.set_nonblocking(true)?;
                    Ok(stream)
                })
                .map_err(|e| self.connect_error(e))?;
                let stream = tokio::net::UnixStream::from_std(stream).map_err(|e| transport(e.to_string()))?;
                round_trip(stream, request).await
            }
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| self.connect_error(e))?;
                round_trip(stream, request).await
            }
        };
        response.map_err(|e| transport(e.to_string()))
    }

    fn connect_error(&self, error: std::io::Error) -> ClientError {
        use std::io::ErrorKind;
        match (&self.target, error.kind()) {
            (Target::Unix(socket), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                ClientError::NotServing { socket: socket.clone(), reason: error.to_string() }
            }
            (target, ErrorKind::PermissionDenied) => ClientError::Transport {
                target: target.to_string(),
                message: format!("{error}: the socket belongs to another user; run as the engine's user"),
            },
            (target, _) => ClientError::Transport { target: target.to_string(), message: error.to_string() },
        }
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path_and_query: &str, body: &[u8]) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method, path_and_query, body)?;
        let unexpected = |e: serde_json::Error| ClientError::Transport {
            target: self.target.to_string(),
            message: format!("answer {status} is not the expected JSON: {e}"),
        };
        if (200..300).contains(&status) {
            serde_json::from_slice(&bytes).map_err(unexpected)
        } else {
            Err(ClientError::Api(serde_json::from_slice::<ErrorBody>(&bytes).map_err(unexpected)?.error))
        }
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).expect("request bodies always serialise");
        self.call("POST", path, &body)
    }

    /// `GET /v1`.
    pub fn health(&self) -> Result<Health, ClientError> {
        self.call("GET", "/v1", b"")
    }

    /// `GET /v1/maps`.
    pub fn maps(&self) -> Result<Vec<MapStatus>, ClientError> {
        Ok(self.call::<MapList>("GET", "/v1/maps", b"")?.maps)
    }

    /// `GET /v1/maps/{map}`.
    pub fn map(&self, map: &str) -> Result<MapStatus, ClientError> {
        self.call("GET", &map_path(map, ""), b"")
    }

    /// `GET /v1/maps/{map}/queued`.
    pub fn queued(&self, map: &str, query: &PageQuery) -> Result<Page<QueuedRecord>, ClientError> {
        self.call("GET", &format!("{}?{}", map_path(map, "/queued"), encode_page_query(query)), b"")
    }

    /// `GET /v1/maps/{map}/errors`.
    pub fn errors(&self, map: &str, query: &PageQuery) -> Result<Page<CatchupError>, ClientError> {
        self.call("GET", &format!("{}?{}", map_path(map, "/errors"), encode_page_query(query)), b"")
    }

    /// `POST /v1/maps/{map}/pause`.
    pub fn pause(&self, map: &str) -> Result<MapStatus, ClientError> {
        self.call("POST", &map_path(map, "/pause"), b"{}")
    }

    /// `POST /v1/maps/{map}/resume`.
    pub fn resume(&self, map: &str, mode: ResumeMode) -> Result<MapStatus, ClientError> {
        self.post(&map_path(map, "/resume"), &ResumeRequest { mode })
    }

    /// `POST /v1/maps/{map}/skip-to-live`.
    pub fn skip_to_live(&self, map: &str, preserve: bool) -> Result<MapStatus, ClientError> {
        self.post(&map_path(map, "/skip-to-live"), &SkipToLiveRequest { preserve })
    }

    /// `POST /v1/maps/{map}/retry`.
    pub fn retry(&self, map: &str, selection: Selection, forced: bool) -> Result<RetryJob, ClientError> {
        self.post(&map_path(map, "/retry"), &RetryRequest { selection, forced })
    }

    /// `POST /v1/maps/{map}/discard-errors`.
    pub fn discard_errors(&self, map: &str, selection: Selection) -> Result<Discarded, ClientError> {
        self.post(&map_path(map, "/discard-errors"), &DiscardRequest { selection })
    }

    /// `GET /v1/jobs`.
    pub fn jobs(&self) -> Result<Vec<RetryJob>, ClientError> {
        Ok(self.call::<JobList>("GET", "/v1/jobs", b"")?.jobs)
    }

    /// `GET /v1/jobs/{id}`.
    pub fn job(&self, id: u64) -> Result<RetryJob, ClientError> {
        self.call("GET", &format!("/v1/jobs/{id}"), b"")
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub fn cancel_job(&self, id: u64) -> Result<RetryJob, ClientError> {
        self.call("POST", &format!("/v1/jobs/{id}/cancel"), b"{}")
    }
}

fn map_path(map: &str, rest: &str) -> String {
    format!("/v1/maps/{}{rest}", utf8_percent_encode(map, SEGMENT))
}

async fn round_trip<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    drop(sender);
    let _ = driver.await;
    Ok((status, body))
}
