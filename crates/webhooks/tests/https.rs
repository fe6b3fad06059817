//! The delivery client over real TLS, against a receiver on 127.0.0.1 with
//! a certificate for `localhost`: a trusted certificate gets the POST
//! through, the platform's trust store refuses the self-signed one, and a
//! name resolving to loopback is refused unless allow-listed.

use bytes::Bytes;
use palisade_webhooks::client::{Client, SendError, platform_tls};
use palisade_webhooks::{AllowList, TargetError, TargetUrl};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS receiver answering every request with 204.
struct Receiver {
    port: u16,
    cert: CertificateDer<'static>,
    /// The request heads it read.
    seen: tokio::sync::mpsc::Receiver<String>,
    /// TCP connections it accepted, handshake or not.
    accepted: Arc<AtomicUsize>,
}

async fn receiver() -> Receiver {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (heads, seen) = tokio::sync::mpsc::channel(8);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let heads = heads.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
                    match tls.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                }
                let _ = heads
                    .send(String::from_utf8_lossy(&buf[..got]).into_owned())
                    .await;
                let _ = tls
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Receiver {
        port,
        cert,
        seen,
        accepted,
    }
}

fn trusting(cert: CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn loopback() -> AllowList {
    AllowList::parse(&["127.0.0.1/32", "::1/128"]).expect("parses")
}

const SECONDS: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_trusted_https_receiver_gets_the_post() {
    let Receiver {
        port,
        cert,
        mut seen,
        ..
    } = receiver().await;
    let client = Client::new(loopback(), SECONDS, SECONDS, trusting(cert));
    let url = TargetUrl::parse(&format!("https://localhost:{port}/hook")).expect("url");
    let headers = [("palisade-event-id", "evt-1".to_owned())];
    let status = client
        .post(&url, &headers, Bytes::from_static(b"{}"))
        .await
        .expect("delivered");
    assert_eq!(status, 204);
    let head = seen.recv().await.expect("request seen");
    assert!(head.starts_with("POST /hook HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("palisade-event-id: evt-1"), "{head}");
    assert!(head.contains(&format!("host: localhost:{port}")), "{head}");
}

#[tokio::test]
async fn the_platform_trust_store_refuses_a_self_signed_receiver() {
    let port = receiver().await.port;
    let tls = platform_tls().expect("platform verifier");
    let client = Client::new(loopback(), SECONDS, SECONDS, tls);
    let url = TargetUrl::parse(&format!("https://localhost:{port}/hook")).expect("url");
    let err = client
        .post(&url, &[], Bytes::from_static(b"{}"))
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(err, SendError::Tls { .. }), "{err}");
}

#[tokio::test]
async fn without_the_allow_list_the_receiver_is_never_contacted() {
    let Receiver {
        port,
        cert,
        accepted,
        ..
    } = receiver().await;
    let client = Client::new(AllowList::default(), SECONDS, SECONDS, trusting(cert));
    let url = TargetUrl::parse(&format!("https://localhost:{port}/hook")).expect("url");
    let err = client
        .post(&url, &[], Bytes::from_static(b"{}"))
        .await
        .expect_err("loopback refused");
    assert!(
        matches!(err, SendError::Target(TargetError::Refused { .. })),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the receiver was contacted"
    );
}
