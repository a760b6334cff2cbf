//! `pauselog-admin`: the operator's API of a running pauselog engine
//! (docs/rules.md R24), in a crate of its own so that a service that does not want
//! it compiles no HTTP stack.
//!
//! - [`schema`]: the versioned wire types under `/v1/` (documented in
//!   `docs/admin-api.md`);
//! - [`request`]: the request decoder, pure and fuzzed;
//! - [`backend`]: the [`AdminBackend`] trait an engine implements, and
//!   [`handle`](backend::handle), one request from bytes to an answer;
//! - [`router`] (feature `server`): the axum router, to mount in a
//!   service's own server: the API, the web page ([`web`]) and `/metrics`
//!   ([`metrics`]), behind one [`gate`] (bearer token, or the page's
//!   [`session`] cookie with its CSRF token);
//! - [`server`] (feature `server`): the Unix-socket listener (mode 0600 in a
//!   0700 directory, peers of another uid refused) and the opt-in loopback
//!   TCP listener with a bearer token;
//! - [`client`] (feature `client`): the blocking client the `pauselog`
//!   command uses.
//!
//! The engine crate (`pauselog`, feature `admin`, on by default) implements
//! the backend and starts the Unix-socket listener when it opens; this crate
//! does not depend on the engine.
//!
//! ```
//! use pauselog_admin::request::{decode, ApiRequest, PageQuery};
//! let request = decode("GET", "/v1/maps/customers/queued", Some("key=USMF%7CCUST-1&limit=10"), b"")?;
//! let query = PageQuery { key: Some("USMF|CUST-1".into()), limit: 10, ..PageQuery::default() };
//! assert_eq!(request, ApiRequest::Queued { map: "customers".into(), query });
//! # Ok::<(), pauselog_admin::schema::ApiError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(missing_debug_implementations)]

pub mod backend;
#[cfg(feature = "client")]
pub mod client;
pub mod cursor;
#[cfg(feature = "server")]
pub mod gate;
pub mod metrics;
pub mod request;
#[cfg(feature = "server")]
pub mod router;
pub mod schema;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod session;
#[cfg(any(feature = "server", feature = "client"))]
pub mod socket_path;
#[cfg(any(feature = "server", feature = "client"))]
pub mod token;
#[cfg(feature = "server")]
pub mod web;

pub use backend::AdminBackend;
pub use schema::{ApiError, ErrorCode, API_VERSION};
#[cfg(feature = "server")]
pub use server::{AdminServer, ServerConfig, ServerError};
#[cfg(any(feature = "server", feature = "client"))]
pub use socket_path::socket_path;
#[cfg(any(feature = "server", feature = "client"))]
pub use token::{Token, TokenError};

/// A payload as the schema carries it: base64, standard alphabet, padded.
pub fn payload_base64(payload: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(payload)
}

/// The bytes of a `payload_base64` field.
pub fn payload_from_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
