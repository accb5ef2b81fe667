//! infogap-server: the HTTP infrastructure of `infogap serve`.
//!
//! This crate owns what every endpoint shares, so that handlers only turn
//! requests into engine calls: the JSON error type and its mapping from
//! engine errors ([`error`]), extractors whose rejections are JSON errors
//! ([`extract`]), the request layers and access log ([`middleware`]), request
//! metrics ([`metrics`]), the lockout after failed authentication
//! ([`ratelimit`]), and serving over TCP or TLS with graceful shutdown
//! ([`http`]). Nothing here prints: logs go through `tracing` and the access
//! log's sink.

pub mod delivery;
pub mod error;
pub mod extract;
pub mod http;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod ratelimit;
pub mod routes;
pub mod state;

pub use error::ApiError;
pub use http::{ServeError, ServeOptions, TlsConfig, bind, serve, shutdown_signal};
pub use metrics::Metrics;
pub use middleware::{
    Actor, ClientIp, HttpConfig, LogSink, RequestId, client_ip, current_request_id, layer,
};
pub use ratelimit::FailedAuthLimiter;
