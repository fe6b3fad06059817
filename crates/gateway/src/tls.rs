//! The public TLS listener: its own accept loop over tokio-rustls and
//! hyper-util, so that every connection is counted and bounded, handshakes
//! are timed out, and handlers learn the peer address and TLS version.
//!
//! The rustls configuration sits behind a lock-free swap: a new server
//! certificate applies to the next handshake without a restart.

use crate::AppState;
use crate::middleware::ConnInfo;
use crate::partner::{ClientTrust, RefusalSink, client_verifier};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

#[derive(Clone, Copy)]
struct Limits {
    handshake: Duration,
    /// From the end of the handshake to the first bytes of a request.
    first_bytes: Duration,
    /// The longest a connection may stay silent.
    idle: Duration,
}

/// A connection's stream, which notes when it last read anything and holds
/// the connection's slot for as long as the stream lives (also after an
/// upgrade to WebSocket).
struct Watched<S> {
    inner: S,
    activity: Activity,
    _slot: (OwnedSemaphorePermit, AddressSlot),
    metrics: Arc<crate::Metrics>,
}

/// When the connection last read a byte, in milliseconds after it opened
/// (0: never).
#[derive(Clone)]
struct Activity {
    opened: Instant,
    last_read_ms: Arc<AtomicU64>,
}

impl Activity {
    /// Resolves when the connection has been silent too long: no first
    /// request bytes within `first_bytes`, or nothing at all for `idle`.
    async fn idle(self, limits: Limits) {
        loop {
            let last = self.last_read_ms.load(Relaxed);
            let deadline = if last == 0 {
                self.opened + limits.first_bytes
            } else {
                self.opened + Duration::from_millis(last) + limits.idle
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

impl<S> Watched<S> {
    fn new(
        inner: S,
        slot: (OwnedSemaphorePermit, AddressSlot),
        metrics: Arc<crate::Metrics>,
    ) -> (Self, Activity) {
        let activity = Activity {
            opened: Instant::now(),
            last_read_ms: Arc::new(AtomicU64::new(0)),
        };
        metrics.connections_open.fetch_add(1, Relaxed);
        (
            Self {
                inner,
                activity: activity.clone(),
                _slot: slot,
                metrics,
            },
            activity,
        )
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.metrics.connections_open.fetch_sub(1, Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let ms = u64::try_from(self.activity.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.activity.last_read_ms.store(ms.max(1), Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

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

    /// A handle that replaces the TLS configuration, for a task that reloads it.
    pub fn tls_swap(&self) -> TlsSwap {
        TlsSwap(self.tls.clone())
    }

    /// Stops accepting, lets open connections finish (up to `grace`), then returns.
    pub async fn shutdown(self, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.done).await.is_err() {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    }
}

/// Replaces the listener's TLS configuration: the next handshake uses the
/// new one, open connections keep theirs.
#[derive(Clone, Debug)]
pub struct TlsSwap(Arc<RwLock<Arc<ServerConfig>>>);

impl TlsSwap {
    pub fn replace(&self, config: ServerConfig) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
    }
}

/// The cipher suites offered, named explicitly rather than taken from the
/// provider's defaults: each is an AEAD (AES-GCM or ChaCha20-Poly1305), and
/// the TLS 1.2 ones use ephemeral ECDH key exchange, so every session is
/// forward secret. No CBC, no RSA key exchange, no SHA-1 MACs.
pub const CIPHER_SUITES: &[rustls::SupportedCipherSuite] = {
    use rustls::crypto::ring::cipher_suite as suite;
    &[
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
};

/// The TLS policy: TLS 1.2 and 1.3 only, the suites above, ECDHE groups
/// only (X25519, P-256, P-384), ALPN h2 then http/1.1, and session tickets
/// whose keys rotate every 6 hours (a ticket is honoured for at most 12).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    server_config_for(chain, key, None, &RefusalSink::new().0)
}

/// [`server_config`], also asking clients for a partner certificate checked against
/// `trust` (root and CRL) when given; refused certificates are reported to `refusals`.
pub fn server_config_for(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    trust: Option<&ClientTrust>,
    refusals: &RefusalSink,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..rustls::crypto::ring::default_provider()
    });
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_verifier(provider, trust, refusals)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Fresh ticket keys (and, from the builder, a fresh session cache) with every
    // configuration: after a revocation rebuilds it, no session of the revoked
    // certificate can be resumed without a full handshake and a new CRL check.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(config)
}

/// Open connections per address (IPv6: per /64), bounded by a limit.
#[derive(Debug, Default)]
struct PerAddress {
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// A connection's place in [`PerAddress`], given back on drop.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: String,
}

impl PerAddress {
    fn acquire(self: &Arc<Self>, ip: std::net::IpAddr, limit: usize) -> Option<AddressSlot> {
        let key = crate::limits::address_key(ip);
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
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
    let per_address = Arc::new(PerAddress::default());
    let header_bytes = settings.max_header_bytes;
    let graceful = GracefulShutdown::new();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(header_bytes);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(50)
        .max_local_error_reset_streams(Some(256))
        .max_header_list_size(u32::try_from(header_bytes).unwrap_or(u32::MAX));
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
        let Some(address_slot) =
            per_address.acquire(peer.ip(), settings.max_connections_per_address)
        else {
            state
                .metrics
                .connections_refused_per_address
                .fetch_add(1, Relaxed);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let config = tls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let acceptor = TlsAcceptor::from(config);
        let (router, http, metrics) = (router.clone(), http.clone(), state.metrics.clone());
        let live = state.partners.live.clone();
        let limits = Limits {
            handshake: settings.handshake_timeout,
            first_bytes: settings.header_read_timeout,
            idle: settings.idle_timeout,
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await {
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
            let client_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|der| palisade_pki::partner::presented(der))
                .map(Arc::new);
            // A connection that presented a partner certificate can be closed when its
            // serial is revoked; the entry leaves the registry when the connection ends.
            let entry = client_cert.as_ref().map(|cert| live.register(&cert.serial));
            let revoked = async {
                match &entry {
                    Some(entry) => entry.close.notified().await,
                    None => std::future::pending().await,
                }
            };
            let info = ConnInfo {
                peer,
                tls_version,
                client_cert,
            };
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    router.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let (io, activity) = Watched::new(stream, (permit, address_slot), metrics);
            let conn = http.serve_connection_with_upgrades(TokioIo::new(io), service);
            // An upgraded connection (WebSocket) leaves this future and keeps
            // its slot; its own keep-alive closes it when idle.
            tokio::select! {
                _ = watcher.watch(conn.into_owned()) => {}
                _ = activity.idle(limits) => {}
                _ = revoked => {
                    tracing::info!(%peer, "closed a connection whose partner certificate was revoked");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
