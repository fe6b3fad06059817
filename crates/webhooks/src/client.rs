//! One signed POST to a checked address, following a few redirects by hand.
//!
//! hyper's connection-level client is used on a socket this module opened
//! to an address [`resolve_checked`] approved, so nothing resolves the name
//! a second time. Every redirect's target is parsed, resolved and checked
//! again before it is followed. The whole exchange, redirects included, has
//! one time-out; each connect has its own.

use crate::target::{AllowList, TargetError, TargetUrl, resolve_checked};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Redirects followed before a delivery gives up.
pub const MAX_REDIRECTS: usize = 3;

/// Why a delivery attempt got no HTTP answer. The text names hosts and
/// addresses, never a header value or the body.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("refused: {0}")]
    Target(#[from] TargetError),
    #[error("refused redirect to {location:?}: {reason}")]
    Redirect { location: String, reason: String },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("could not connect to {0}")]
    Connect(String),
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    #[error("no answer within {0} seconds")]
    Timeout(u64),
}

impl SendError {
    /// True for refusals that no retry will change.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Target(TargetError::Refused { .. } | TargetError::PlainHttp)
                | Self::Target(TargetError::BadUrl(_))
                | Self::Redirect { .. }
        )
    }
}

/// The delivery client's settings and TLS configuration.
#[derive(Clone)]
pub struct Client {
    allow: AllowList,
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("allow", &self.allow)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// The TLS configuration of deliveries: the platform's trust store (ring
/// provider), HTTP/1.1.
pub fn platform_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Client {
    pub fn new(
        allow: AllowList,
        connect_timeout: Duration,
        request_timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> Self {
        Self {
            allow,
            connect_timeout,
            request_timeout,
            tls: Arc::new(tls),
        }
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.allow
    }

    /// POSTs `body` with `headers` to `url`; the final status code.
    pub async fn post(
        &self,
        url: &TargetUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<u16, SendError> {
        let exchange = self.follow(url, headers, body);
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| SendError::Timeout(self.request_timeout.as_secs()))?
    }

    async fn follow(
        &self,
        url: &TargetUrl,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<u16, SendError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let addrs = resolve_checked(&url, &self.allow).await?;
            let (status, location) = self.once(&url, &addrs, headers, body.clone()).await?;
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            let Some(location) = location.filter(|_| redirect) else {
                return Ok(status);
            };
            url = url.join(&location).map_err(|reason| SendError::Redirect {
                location: location.clone(),
                reason,
            })?;
            tracing::debug!(host = %url.host, status, "following a webhook redirect");
        }
        Err(SendError::TooManyRedirects)
    }

    async fn connect(&self, addrs: &[SocketAddr]) -> Result<TcpStream, SendError> {
        for addr in addrs {
            let attempt = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr));
            if let Ok(Ok(stream)) = attempt.await {
                return Ok(stream);
            }
        }
        let tried: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        Err(SendError::Connect(tried.join(", ")))
    }

    async fn once(
        &self,
        url: &TargetUrl,
        addrs: &[SocketAddr],
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<(u16, Option<String>), SendError> {
        let tcp = self.connect(addrs).await?;
        let mut request = http::Request::post(url.path.as_str())
            .header(http::header::HOST, url.authority())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "Palisade-Webhooks/1")
            .header(http::header::CONTENT_LENGTH, body.len());
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| SendError::Http(e.to_string()))?;
        if !url.https {
            return exchange(tcp, request).await;
        }
        let name =
            rustls_pki_types::ServerName::try_from(url.bare_host().to_owned()).map_err(|e| {
                SendError::Tls {
                    host: url.host.clone(),
                    reason: e.to_string(),
                }
            })?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| SendError::Tls {
                host: url.host.clone(),
                reason: e.to_string(),
            })?;
        exchange(tls, request).await
    }
}

/// Sends one request on a fresh HTTP/1.1 connection; the status and the
/// `Location` header. The response body is not read.
async fn exchange<S>(
    stream: S,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Option<String>), SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| SendError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    driver.abort();
    let response = response.map_err(|e| SendError::Http(e.to_string()))?;
    let location = response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), location))
}
