//! Serving a router over TCP or TLS, and stopping gracefully.
//!
//! `axum::serve` cannot terminate TLS, bound the time a TLS handshake or a
//! shutdown may take, or read request heads with a time limit, so the accept
//! loop is our own: hyper-util's automatic HTTP/1 or HTTP/2 connection, over
//! rustls (ring provider only: no C toolchain beyond ring's) when a
//! certificate is given. Handlers see the peer address as
//! `ConnectInfo<SocketAddr>`. On shutdown the listener is closed at once,
//! requests in flight get [`DRAIN_TIMEOUT`] to finish, and idle keep-alive
//! connections are closed.
//!
//! Nothing is printed here except through `tracing`: the caller binds with
//! [`bind`], says where it listens, then calls [`serve`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_service::Service as _;

/// Longest wait for requests in flight once shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time a client may take for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time a client may take to send a request head (HTTP/1).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// The address to bind (port 0 picks a free port).
    pub bind: SocketAddr,
    /// TLS certificate chain and private key (PEM files); plain HTTP if
    /// absent.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl ServeOptions {
    /// Loads the TLS certificate and key, if any (before binding, so a bad
    /// file fails fast).
    pub fn tls_config(&self) -> Result<Option<TlsConfig>, ServeError> {
        self.tls
            .as_ref()
            .map(|(cert, key)| TlsConfig::load(cert, key))
            .transpose()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate file is unreadable or holds no valid certificate.
    #[error("TLS certificate {}: {reason}", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is unreadable or holds no valid private key.
    #[error("TLS private key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Certificate and key were read but rustls refused them (for
    /// instance, the key does not belong to the certificate).
    #[error("TLS certificate {} with key {}: {reason}", cert.display(), key.display())]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// A loaded TLS server configuration (rustls, ring provider; HTTP/2 and
/// HTTP/1.1 offered by ALPN).
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ServeError> {
        let cert_err = |reason: String| ServeError::Cert {
            path: cert.to_path_buf(),
            reason,
        };
        let key_err = |reason: String| ServeError::Key {
            path: key.to_path_buf(),
            reason,
        };
        let cert_pem = std::fs::read(cert).map_err(|e| cert_err(format!("cannot read: {e}")))?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(format!("invalid PEM: {}", pem_reason(&e))))?;
        if certs.is_empty() {
            return Err(cert_err(
                "no certificate found (expected PEM `-----BEGIN CERTIFICATE-----`)".into(),
            ));
        }
        let key_pem = std::fs::read(key).map_err(|e| key_err(format!("cannot read: {e}")))?;
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => key_err(
                "no private key found (expected a PEM PKCS#8, RSA or EC private key)".into(),
            ),
            e => key_err(format!("invalid PEM: {}", pem_reason(&e))),
        })?;
        // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange;
        // the alternative (aws-lc-rs) needs cmake and a long C build. ring
        // still offers X25519 and the NIST curves.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_err = |e: rustls::Error| ServeError::Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(certs, private_key)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }

    /// The rustls configuration.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.0)
    }
}

/// A PEM error without echoing file contents (key material).
fn pem_reason(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line".into(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".into(),
        pem::Error::Io(e) => format!("read error: {e}"),
        pem::Error::NoItemsFound => "nothing found".into(),
        _ => "unreadable PEM".into(),
    }
}

/// Binds `addr` (port 0 picks a free port: read it with
/// `listener.local_addr()`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `app` on `listener` (TLS if `tls` is given) until `shutdown`
/// resolves, then stops accepting and lets requests in flight finish for at
/// most [`DRAIN_TIMEOUT`]. Handlers can extract `ConnectInfo<SocketAddr>`.
///
/// Errors accepting one connection are logged and the loop goes on, so this
/// returns only after shutdown.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let acceptor = tls.map(|t| TlsAcceptor::from(t.0));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(&e).await;
                    continue;
                }
            },
        };
        let Ok(service) = make_service.call(peer).await;
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
            }
            let result = match acceptor {
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let Some(tls) = handshake(&acceptor, stream, peer).await else {
                        return;
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        "shutting down: waiting for requests in flight"
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {} s of shutdown; closing their connections",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Logs an accept error; waits a little when out of file descriptors or
/// memory so the loop does not spin.
async fn accept_error(e: &std::io::Error) {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            tracing::debug!(error = %e, "accept failed");
        }
        _ => {
            tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. A signal whose handler cannot
/// be installed is logged and never resolves (it does not stop the server).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
