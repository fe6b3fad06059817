//! The public TLS listener: its own accept loop over tokio-rustls and
//! hyper-util, so that every connection is counted and bounded, handshakes
//! are timed out, and handlers learn the peer address and TLS version.
//!
//! The rustls configuration sits behind a lock-free swap: a new server
//! certificate applies to the next handshake without a restart.

use crate::AppState;
use crate::middleware::ConnInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A running listener: where it listens, and how to stop it.
#[derive(Debug)]
pub struct ServeHandle {
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
    tls: Arc<RwLock<Arc<ServerConfig>>>,
}

impl ServeHandle {
    /// Replaces the TLS configuration; new handshakes use it at once.
    pub fn reload_tls(&self, config: ServerConfig) {
        let mut current = self
            .tls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Arc::new(config);
    }

    /// Stops accepting, lets open connections finish (up to `grace`), then returns.
    pub async fn shutdown(self, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.done).await.is_err() {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    }
}

/// The TLS policy: TLS 1.2 and 1.3 only, ALPN h2 then http/1.1.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Binds `addr` and serves the public router over TLS until shut down.
pub async fn serve_public(
    addr: SocketAddr,
    tls: ServerConfig,
    state: AppState,
) -> std::io::Result<ServeHandle> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let tls = Arc::new(RwLock::new(Arc::new(tls)));
    let (stop, stopped) = watch::channel(false);
    let router = crate::public_router(state.clone());
    let done = tokio::spawn(accept_loop(listener, tls.clone(), router, state, stopped));
    tracing::info!(%local_addr, "public TLS listener started");
    Ok(ServeHandle {
        local_addr,
        stop,
        done,
        tls,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<RwLock<Arc<ServerConfig>>>,
    router: Router,
    state: AppState,
    mut stopped: watch::Receiver<bool>,
) {
    let settings = state.settings.clone();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_pending_accept_reset_streams(50)
        .max_local_error_reset_streams(Some(256))
        .max_header_list_size(32 * 1024);
    let http = Arc::new(http);

    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            state.metrics.connections_refused.fetch_add(1, Relaxed);
            continue; // dropping the socket refuses it
        };
        let _ = tcp.set_nodelay(true);
        let config = tls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let acceptor = TlsAcceptor::from(config);
        let (router, http, metrics) = (router.clone(), http.clone(), state.metrics.clone());
        let handshake_timeout = settings.handshake_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(_)) | Err(_) => {
                    metrics.tls_handshake_failures.fetch_add(1, Relaxed);
                    return;
                }
            };
            let tls_version = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "unknown",
            };
            let info = ConnInfo { peer, tls_version };
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    router.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            metrics.connections_open.fetch_add(1, Relaxed);
            let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = watcher.watch(conn.into_owned()).await;
            metrics.connections_open.fetch_sub(1, Relaxed);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
