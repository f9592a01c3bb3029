//! The listener: accepts connections (plain or TLS, HTTP/1.1 and HTTP/2), hands requests to the
//! proxy, and shuts down gracefully: on the shutdown signal it stops accepting, lets in-flight
//! requests finish within the grace period, then returns.

pub mod gate;
mod manifest;
pub mod proxy;
pub mod respond;
pub mod route;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::clock::SharedClock;
use crate::config::{Config, TlsIdentity};
use proxy::Proxy;

/// A TLS handshake that has not finished by then is dropped, so idle sockets cannot pile up.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("{0}")]
    Setup(#[from] proxy::SetupError),
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    grace: Duration,
}

// === impl Server ===

impl Server {
    /// Binds the configured address and builds the upstream clients.
    pub async fn bind(config: &Config, clock: SharedClock) -> Result<Server, ServerError> {
        // Everything that can be wrong with the configuration first, the port last.
        let proxy = Proxy::new(config, clock)?;
        let tls = config.server.tls.as_deref().map(tls_acceptor).transpose()?;
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Server {
            listener,
            tls,
            proxy,
            grace: config.server.shutdown_grace,
        })
    }

    /// Whether a failure to start is the configuration's fault (exit 64: restarting will not
    /// help) rather than the environment's (a port in use).
    pub fn is_config_error(e: &ServerError) -> bool {
        matches!(e, ServerError::Setup(_) | ServerError::Tls(_))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The request handler, for signal handling (audit log reopen).
    pub fn proxy(&self) -> Arc<Proxy> {
        self.proxy.clone()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests for up to the grace
    /// period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        self.proxy.start();
        let graceful = GracefulShutdown::new();
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                proxy: self.proxy.clone(),
                builder: builder.clone(),
                watcher: graceful.watcher(),
                peer,
            };
            let tls = self.tls.clone();
            tokio::spawn(conn.serve(stream, tls));
        }
        drop(self.listener);
        tracing::info!(grace = ?self.grace, "shutting down; finishing in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.grace) => tracing::warn!("grace period over; dropping remaining connections"),
        }
    }
}

struct Connection {
    proxy: Arc<Proxy>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
    peer: SocketAddr,
}

impl Connection {
    async fn serve(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let proxy = self.proxy;
        let peer = self.peer;
        let service = service_fn(move |req| {
            let proxy = proxy.clone();
            async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, peer).await) }
        });
        let result = match tls {
            None => {
                let conn = self.builder.serve_connection(TokioIo::new(stream), service);
                self.watcher.watch(conn.into_owned()).await
            }
            Some(acceptor) => {
                let handshake =
                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                        return;
                    }
                };
                let conn = self.builder.serve_connection(TokioIo::new(stream), service);
                self.watcher.watch(conn.into_owned()).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

fn tls_acceptor(id: &TlsIdentity) -> Result<TlsAcceptor, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}
