//! End-to-end tests of the HTTP infrastructure: a small router through
//! `layer`, served on 127.0.0.1:0 over plain TCP and TLS, driven by a real
//! client (reqwest for plain HTTP, tokio-rustls and raw HTTP/1.1 for TLS and
//! chunked bodies).
// Test helpers (not only #[test] fns) unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod admin_pages;
mod browser;
mod consent;
mod erase;
mod export;
mod fixture;
mod pages;
mod pages_feedback;
mod privacy_aggregate;
mod security;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::routing::{get, post};
use infogap_engine::EngineError;
use infogap_server::extract::{Json, Path, Query};
use infogap_server::{
    Actor, ApiError, ClientIp, HttpConfig, LogSink, Metrics, ServeError, TlsConfig, bind, layer,
    serve,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// A writer into a shared buffer, for the access log.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

#[derive(serde::Deserialize)]
struct Params {
    k: u32,
}

fn app(metrics: Arc<Metrics>, drain_started: Arc<Notify>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("boom with ann@example.com");
                }
                "unreachable"
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(
            "/drain",
            get(move || async move {
                drain_started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "drained"
            }),
        )
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route(
            "/v1/customers/{id}",
            get(
                |Path(id): Path<String>, Extension(ip): Extension<ClientIp>| async move {
                    (
                        Extension(Actor("key:test".into())),
                        Json(serde_json::json!({ "id": id, "ip": ip.0.to_string() })),
                    )
                },
            ),
        )
        .route(
            "/typed/{n}",
            get(|Path(n): Path<u32>| async move { Json(n) }),
        )
        .route(
            "/query",
            get(|Query(p): Query<Params>| async move { Json(p.k) }),
        )
        .route(
            "/engine/{kind}",
            get(|Path(kind): Path<String>| async move {
                let err = match kind.as_str() {
                    "io" => EngineError::Io {
                        path: "/data/ann@example.com.csv".into(),
                        source: std::io::Error::other("disk on fire"),
                    },
                    "unauthorized" => EngineError::Unauthorized("unknown key".into()),
                    "invalid" => EngineError::Invalid("k must be positive".into()),
                    _ => EngineError::NotFound(format!("customer {kind}")),
                };
                Err::<(), ApiError>(err.into())
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&metrics);
                async move { m.render() }
            }),
        )
}

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
    log: SharedBuf,
    /// Notified when a `/drain` request has reached its handler.
    drain_started: Arc<Notify>,
}

impl TestServer {
    async fn start(tls: Option<TlsConfig>) -> Self {
        let log = SharedBuf::default();
        let cfg = HttpConfig {
            body_limit: 1024,
            timeout: Duration::from_secs(2),
            log_sink: LogSink::new(log.clone()),
            ..HttpConfig::default()
        };
        let drain_started = Arc::new(Notify::new());
        let router = layer(
            app(Arc::clone(&cfg.metrics), Arc::clone(&drain_started)),
            &cfg,
        );
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tls, router, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            stop: Some(tx),
            task,
            log,
            drain_started,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

/// Checks a JSON error response: status, `code`, and returns the message.
async fn json_error(res: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(res.status().as_u16(), status);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    let obj = body.as_object().unwrap();
    assert_eq!(obj.len(), 2, "only code and message: {body}");
    body["message"].as_str().unwrap().to_string()
}

/// A `reqwest` client builder, with the process's TLS provider installed
/// (the server's webhook client has none built in).
pub fn http_client() -> reqwest::ClientBuilder {
    infogap_server::delivery::install_tls_provider();
    reqwest::Client::builder()
}

fn client() -> reqwest::Client {
    crate::http_client()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let s = TestServer::start(None).await;
    let c = client();
    let res = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(res.text().await.unwrap(), "ok");

    let res = c
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    for bad in ["has space", "quote\"", &"x".repeat(65)] {
        let res = c
            .get(s.url("/healthz"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let got = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(got, bad);
        assert_eq!(got.len(), 32);
    }
    let ids: Vec<Value> = s
        .log
        .lines()
        .iter()
        .map(|l| l["request_id"].clone())
        .collect();
    assert_eq!(ids[1], "abc-123");
    s.stop().await;
}

#[tokio::test]
async fn errors_are_json() {
    let s = TestServer::start(None).await;
    let c = client();

    json_error(
        c.get(s.url("/nope")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let res = c.post(s.url("/healthz")).send().await.unwrap();
    assert!(res.headers().contains_key("allow"));
    json_error(res, 405, "method_not_allowed").await;

    // Panic: 500 with the request id, nothing of the panic message.
    let res = c
        .get(s.url("/panic"))
        .header("x-request-id", "panic-1")
        .send()
        .await
        .unwrap();
    let msg = json_error(res, 500, "internal").await;
    assert_eq!(msg, "internal error (request id panic-1)");

    // Timeout (the limit is 2 s; the handler sleeps 10 s).
    let start = std::time::Instant::now();
    let res = c.get(s.url("/slow")).send().await.unwrap();
    json_error(res, 503, "timeout").await;
    assert!(start.elapsed() < Duration::from_secs(5));

    // Body over the limit (1 KiB), with Content-Length.
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(2000));
    let res = c
        .post(s.url("/echo"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let msg = json_error(res, 413, "payload_too_large").await;
    assert!(msg.contains("1024"), "{msg}");

    // Malformed JSON: the message quotes nothing of the body.
    let res = c
        .post(s.url("/echo"))
        .header("content-type", "application/json")
        .body(r#"{"email": "ann@example.com", "#)
        .send()
        .await
        .unwrap();
    let msg = json_error(res, 400, "invalid_request").await;
    assert!(msg.starts_with("malformed JSON"), "{msg}");
    assert!(!msg.contains("ann@"), "{msg}");

    // Not JSON at all.
    let res = c.post(s.url("/echo")).body("{}").send().await.unwrap();
    json_error(res, 415, "unsupported_media_type").await;

    // A good body round-trips.
    let res = c
        .post(s.url("/echo"))
        .json(&serde_json::json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({"a": 1})
    );

    // Path and query rejections.
    let res = c.get(s.url("/typed/ann@example.com")).send().await.unwrap();
    let msg = json_error(res, 400, "invalid_request").await;
    assert!(msg.contains("`n`") || msg.contains("expected u32"), "{msg}");
    assert!(!msg.contains("ann@"), "{msg}");
    let res = c
        .get(s.url("/query?k=ann@example.com"))
        .send()
        .await
        .unwrap();
    let msg = json_error(res, 400, "invalid_request").await;
    assert!(!msg.contains("ann@"), "{msg}");
    let res = c.get(s.url("/query")).send().await.unwrap();
    let msg = json_error(res, 400, "invalid_request").await;
    assert!(msg.contains("missing field `k`"), "{msg}");

    // Engine errors.
    let res = c
        .get(s.url("/engine/io"))
        .header("x-request-id", "io-1")
        .send()
        .await
        .unwrap();
    let msg = json_error(res, 500, "internal").await;
    assert_eq!(msg, "internal error (request id io-1)");
    let res = c.get(s.url("/engine/unauthorized")).send().await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    json_error(res, 401, "unauthorized").await;
    let res = c.get(s.url("/engine/invalid")).send().await.unwrap();
    let msg = json_error(res, 400, "invalid_request").await;
    assert_eq!(msg, "k must be positive");
    json_error(
        c.get(s.url("/engine/x1")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;

    s.stop().await;
}

/// Sends raw bytes over HTTP/1.1 and returns the whole response.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_json() {
    let s = TestServer::start(None).await;
    let chunk = "a".repeat(1500);
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let res = raw_http(s.addr, req.as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 413"), "{res}");
    assert!(res.contains(r#""code":"payload_too_large""#), "{res}");
    s.stop().await;
}

#[tokio::test]
async fn large_bodies_get_the_413_not_a_reset() {
    // A body far over the limit: the server reads it to the end before
    // answering, so the client gets the 413 rather than a broken pipe, and
    // the connection stays usable.
    let s = TestServer::start(None).await;
    let c = client();
    for _ in 0..3 {
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
        let res = c
            .post(s.url("/echo"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        json_error(res, 413, "payload_too_large").await;
        // A body on a route that never reads it.
        let res = c
            .get(s.url("/healthz"))
            .body(vec![b'a'; 1024 * 1024 + 1])
            .send()
            .await
            .unwrap();
        json_error(res, 413, "payload_too_large").await;
    }
    let chunk = "a".repeat(64 * 1024);
    let mut req = String::from(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..32 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let res = raw_http(s.addr, req.as_bytes()).await;
    assert!(
        res.starts_with("HTTP/1.1 413"),
        "{}",
        &res[..res.len().min(300)]
    );
    // A body within the limit, chunked, reaches the handler whole.
    let req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
               Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
               4\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n";
    let res = raw_http(s.addr, req.as_bytes()).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.ends_with(r#"{"a":1}"#), "{res}");
    s.stop().await;
}

#[tokio::test]
async fn metrics_and_access_log_name_templates_only() {
    let s = TestServer::start(None).await;
    let c = client();
    let res = c
        .get(s.url("/v1/customers/ann@example.com?email=bob@example.com&token=secret"))
        .header("authorization", "Bearer topsecret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], "ann@example.com");
    assert_eq!(body["ip"], "127.0.0.1");
    c.get(s.url("/nope/carl@example.com")).send().await.unwrap();
    c.get(s.url("/panic")).send().await.unwrap();

    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"infogap_http_requests_total{route="/v1/customers/{id}",method="GET",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"infogap_http_requests_total{route="unmatched",method="GET",status="404"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"infogap_http_requests_total{route="/panic",method="GET",status="500"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"infogap_http_request_duration_seconds_count{route="/v1/customers/{id}"} 1"#
        ),
        "{metrics}"
    );
    for secret in ["ann@", "bob@", "carl@", "secret"] {
        assert!(!metrics.contains(secret), "{secret} in\n{metrics}");
    }

    let raw = String::from_utf8(s.log.0.lock().unwrap().clone()).unwrap();
    for secret in [
        "ann@",
        "bob@",
        "carl@",
        "secret",
        "?",
        "email",
        "authorization",
        "Bearer",
    ] {
        assert!(!raw.contains(secret), "{secret} in access log:\n{raw}");
    }
    let lines = s.log.lines();
    assert_eq!(lines.len(), 4, "{raw}");
    let first = &lines[0];
    for field in [
        "ts",
        "request_id",
        "method",
        "route",
        "status",
        "ms",
        "bytes",
        "client",
    ] {
        assert!(first.get(field).is_some(), "{field} missing: {first}");
    }
    assert_eq!(first["route"], "/v1/customers/{id}");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["actor"], "key:test");
    assert!(first["ms"].as_f64().unwrap() >= 0.0);
    assert!(first["bytes"].as_u64().unwrap() > 0);
    assert!(first["ts"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[1]["route"], "unmatched");
    assert_eq!(lines[1]["status"], 404);
    assert!(lines[1].get("actor").is_none());
    assert_eq!(lines[2]["route"], "/panic");
    assert_eq!(lines[2]["status"], 500);
    s.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let s = TestServer::start(None).await;
    let c = client();
    let url = s.url("/drain");
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move { c.get(url).send().await }
    });
    tokio::time::timeout(Duration::from_secs(10), s.drain_started.notified())
        .await
        .expect("the request reaches its handler");
    let addr = s.addr;
    let start = std::time::Instant::now();
    s.stop().await;
    // The server waited for the request (500 ms) but not much longer.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "drained");
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_shutdown() {
    let s = TestServer::start(None).await;
    let c = client();
    // reqwest keeps this connection open in its pool.
    assert_eq!(c.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let start = std::time::Instant::now();
    s.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().to_vec())
}

#[tokio::test]
async fn serves_tls() {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(dir.path());
    let tls = TlsConfig::load(&cert, &key).unwrap();
    let s = TestServer::start(Some(tls)).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der)).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    stream
        .write_all(b"GET /v1/customers/c1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // rustls reports a close without close_notify as an error after the
    // data; the response is what matters.
    let _ = stream.read_to_end(&mut out).await;
    let res = String::from_utf8_lossy(&out);
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains(r#""id":"c1""#), "{res}");
    assert!(res.to_ascii_lowercase().contains("x-request-id: "), "{res}");

    // HTTP/2 is offered by ALPN and spoken: the server answers the
    // connection preface with its SETTINGS frame.
    let mut h2_config = rustls::ClientConfig::clone(connector.config());
    h2_config.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = tokio_rustls::TlsConnector::from(Arc::new(h2_config));
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut stream = h2
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame_head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut frame_head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frame_head[3], 4, "SETTINGS frame: {frame_head:?}");
    drop(stream);

    // Plain HTTP on the TLS port does not get through.
    let plain = client().get(s.url("/healthz")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    s.stop().await;
}

#[test]
fn tls_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let missing = dir.path().join("missing.pem");

    let err = TlsConfig::load(&missing, &key).unwrap_err().to_string();
    assert!(
        err.contains("missing.pem") && err.contains("cannot read"),
        "{err}"
    );

    let err = TlsConfig::load(&cert, &missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.pem") && err.contains("private key"),
        "{err}"
    );

    // Key and certificate swapped.
    let err = TlsConfig::load(&key, &cert).unwrap_err().to_string();
    assert!(
        err.contains("key.pem") && err.contains("no certificate"),
        "{err}"
    );

    // A key that is not the certificate's.
    let (_, other_key, _) = {
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        self_signed(&other)
    };
    let err = TlsConfig::load(&cert, &other_key).unwrap_err().to_string();
    assert!(err.contains("cert.pem") && err.contains("other"), "{err}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n!!!notbase64\n").unwrap();
    let err = TlsConfig::load(&garbage, &key).unwrap_err().to_string();
    assert!(err.contains("garbage.pem"), "{err}");
    assert!(!err.contains("notbase64"), "{err}");
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = l.local_addr().unwrap();
    let err = bind(addr).await.unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn status_passthrough_for_handlers_errors() {
    // A handler returning a bare status gets a JSON body; one returning its
    // own JSON keeps it.
    let cfg = HttpConfig {
        log: false,
        ..HttpConfig::default()
    };
    let router = layer(
        Router::new()
            .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
            .route("/own", get(|| async { ApiError::rate_limited(7) })),
        &cfg,
    );
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, None, router, async {
        let _ = rx.await;
    }));
    let c = client();
    let res = c.get(format!("http://{addr}/teapot")).send().await.unwrap();
    json_error(res, 418, "error").await;
    let res = c.get(format!("http://{addr}/own")).send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "7");
    json_error(res, 429, "rate_limited").await;
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}
