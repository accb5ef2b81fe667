//! The layers every request goes through, and the access log.
//!
//! [`layer`] wraps a router so that every response, from a handler or not,
//! is accounted for: a request id (taken from a sane `x-request-id` or made
//! up, echoed in the response), one JSON access-log line, the request
//! metrics, a JSON 500 for a panic, a JSON 503 when the time limit is
//! reached, a JSON 413 for an oversized body (request bodies are read
//! before the handler runs, at most `body_limit` bytes: the API takes small
//! JSON documents, not uploads), and a JSON body for error responses that
//! have none (axum's own 404 and 405, for instance).
//!
//! Logs and metrics name the route template (`/v1/customers/{id}`), never
//! the raw path or query, and never headers or bodies: those can hold
//! customer data and keys.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The request-id header, read from the request and set on the response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The id of the current request (a request extension, and readable from
/// the handler's task with [`current_request_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Who made the request: a handler inserts it as a response extension
/// (`(Extension(Actor(name)), body)`) and the access log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// The client's address as [`client_ip`] sees it: a request extension set
/// by [`layer`] (absent when the server was not given the peer address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The id of the request being handled, inside a handler or a layer below
/// the request-id layer (also in tasks those `await`, not in spawned ones).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|r| r.0.clone()).ok()
}

/// Where access-log lines go: stderr by default, or any writer (a file, a
/// buffer in tests). Each line is written with one `write_all`.
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl LogSink {
    /// Lines to stderr.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr())
    }

    /// Lines to `w`.
    pub fn new(w: impl Write + Send + 'static) -> Self {
        LogSink(Arc::new(Mutex::new(Box::new(w))))
    }

    fn write_line(&self, line: &str) {
        let mut w = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = w.write_all(line.as_bytes()).and_then(|()| w.flush()) {
            tracing::warn!(error = %e, "could not write the access log");
        }
    }
}

impl Default for LogSink {
    fn default() -> Self {
        Self::stderr()
    }
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSink")
    }
}

/// Settings of the HTTP layers.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (default 1 MiB).
    pub body_limit: usize,
    /// Longest time from request to response head (default 30 s).
    pub timeout: Duration,
    /// Whether to write the access log (default true).
    pub log: bool,
    /// Whether the client address is the last hop of `X-Forwarded-For`
    /// (behind a reverse proxy) rather than the peer address (default
    /// false: the header is client-controlled without a proxy).
    pub trust_proxy: bool,
    /// Where the access log goes (default stderr).
    pub log_sink: LogSink,
    /// The registry the request metrics go to (render it for `/metrics`).
    pub metrics: Arc<Metrics>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 1024 * 1024,
            timeout: Duration::from_secs(30),
            log: true,
            trust_proxy: false,
            log_sink: LogSink::stderr(),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// Wraps every route of `router` (and its fallback) in the layers, outermost
/// first: request id, access log and metrics, catch-panic, timeout, body
/// limit, JSON error bodies. Call it after all routes are added: routes
/// added later are not wrapped.
///
/// The access log and the metrics sit outside catch-panic and the timeout
/// so that panics (500), timeouts (503) and oversized bodies (413) are
/// logged and counted like any other response.
pub fn layer(router: Router, cfg: &HttpConfig) -> Router {
    let limit = cfg.body_limit;
    let timeout = cfg.timeout;
    router
        .layer(from_fn(json_error_bodies))
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(limit, body_limit))
        .layer(from_fn_with_state(timeout, time_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(Arc::new(cfg.clone()), observe))
        .layer(from_fn_with_state(cfg.trust_proxy, request_id))
}

/// The client's address: the peer address from [`ConnectInfo`], or with
/// `trust_proxy` the last hop of `X-Forwarded-For` (the address the proxy
/// saw) when that parses. IPv4-mapped IPv6 addresses are given as IPv4.
pub fn client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if trust_proxy && let Some(ip) = last_forwarded_hop(headers) {
        return Some(ip.to_canonical());
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

fn last_forwarded_hop(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|s| !s.is_empty())?;
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Whether an incoming request id is safe to adopt (and to log).
fn valid_request_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new request id: 32 hex digits, unique within the process and not
/// guessable from the previous ones.
fn new_request_id() -> String {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = STATE.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = state.build_hasher();
    a.write_u64(n);
    let mut b = state.build_hasher();
    b.write_u64(!n);
    b.write_u8(1);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

async fn request_id(State(trust_proxy): State<bool>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_request_id(s))
        .map_or_else(new_request_id, str::to_string);
    if let Some(ip) = client_ip(req.headers(), req.extensions(), trust_proxy) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = REQUEST_ID.scope(RequestId(id.clone()), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

async fn observe(State(cfg): State<Arc<HttpConfig>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let ts = chrono::Utc::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let client = req.extensions().get::<ClientIp>().map(|c| c.0);
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    cfg.metrics
        .observe_request(&route, &method, status, elapsed);
    if cfg.log {
        let bytes = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .or_else(|| res.body().size_hint().exact());
        let mut line = serde_json::json!({
            "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "request_id": id,
            "method": method.as_str(),
            "route": route,
            "status": status,
            "ms": (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            "bytes": bytes,
            "client": client.map(|c| c.to_string()),
        });
        if let Some(actor) = res.extensions().get::<Actor>()
            && let Some(obj) = line.as_object_mut()
        {
            obj.insert("actor".into(), serde_json::Value::String(actor.0.clone()));
        }
        let mut text = line.to_string();
        text.push('\n');
        cfg.log_sink.write_line(&text);
    }
    res
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    tracing::error!(
        request_id = current_request_id().as_deref().unwrap_or("-"),
        panic = %what,
        "handler panicked"
    );
    ApiError::internal().into_response()
}

async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(
                request_id = current_request_id().as_deref().unwrap_or("-"),
                limit_ms = limit.as_millis() as u64,
                "request timed out"
            );
            ApiError::timeout(limit.as_secs_f64()).into_response()
        }
    }
}

/// Most bytes of an oversized body read and discarded before the 413 is
/// sent (see [`body_limit`]).
pub const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
/// Longest time spent discarding an oversized body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads the request body (at most `limit` bytes) before the handler runs,
/// and answers 413 for a larger one, whether it declares its length or is
/// chunked.
///
/// An oversized body is read to its end and discarded (up to
/// [`DRAIN_LIMIT`] bytes, for at most 5 s) before the 413 is sent: a server
/// that answers and closes while the client is still sending makes the
/// client's socket reset, and most clients then report a broken pipe
/// instead of the 413. Bodies beyond the drain limit are refused at once.
async fn body_limit(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, mut body) = req.into_parts();
    if let Some(n) = declared
        && n > limit as u64
    {
        if n <= (limit + DRAIN_LIMIT) as u64 {
            drain(body, limit + DRAIN_LIMIT).await;
        }
        return ApiError::payload_too_large(limit).into_response();
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut buf: Vec<u8> = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(error = %e, "request body could not be read");
                return ApiError::bad_request("the request body could not be read").into_response();
            }
        };
        // Trailers are dropped: no handler uses them.
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body, DRAIN_LIMIT).await;
                return ApiError::payload_too_large(limit).into_response();
            }
            buf.extend_from_slice(&data);
        }
    }
    next.run(Request::from_parts(parts, Body::from(buf))).await
}

/// Reads and discards at most `max` bytes of `body`, for at most
/// [`DRAIN_TIME`].
async fn drain(mut body: Body, max: usize) {
    let mut seen = 0usize;
    let reading = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > max {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, reading).await;
}

/// Gives error responses without a JSON body one (`{"code","message"}` from
/// the status). Responses with a body of another kind (HTML pages) are left
/// as they are; plain text is replaced since it may hold internal details.
async fn json_error_bodies(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let replace = match res.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct
            .to_str()
            .map(|s| {
                s.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/plain")
            })
            .unwrap_or(true),
    };
    if !replace {
        return res;
    }
    let (parts, _body) = res.into_parts();
    let mut new = ApiError::from_status(status).into_response();
    // Keep the headers that matter for the status (Allow, Retry-After,
    // WWW-Authenticate, …); the body headers are the new body's.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().append(name.clone(), value.clone());
        }
    }
    *new.extensions_mut() = parts.extensions;
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(valid_request_id("abc-123"));
        assert!(valid_request_id(&"a".repeat(64)));
        assert!(!valid_request_id(&"a".repeat(65)));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\"b"));
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(valid_request_id(&a));
    }

    #[test]
    fn client_ip_from_peer_or_proxy() {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo::<SocketAddr>(
            "[::ffff:10.0.0.9]:4000".parse().unwrap(),
        ));
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        h.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(
            client_ip(&h, &ext, false),
            Some("10.0.0.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&h, &ext, true),
            Some("198.51.100.7".parse().unwrap())
        );
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(&h, &ext, true), Some("10.0.0.9".parse().unwrap()));
        h.insert("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(
            client_ip(&h, &ext, true),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(client_ip(&HeaderMap::new(), &Extensions::new(), true), None);
    }
}
