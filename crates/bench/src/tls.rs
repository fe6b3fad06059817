//! TLS for the load generator (trusting one CA file) and for `bench-echo`.

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// Installs the process-wide crypto provider (ring, as Palisade does).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration that trusts exactly the certificates in `ca`.
/// `resume` off makes every connection a full handshake.
pub fn client_config(
    ca: &Path,
    alpn: &[&[u8]],
    resume: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    install_provider();
    let pem = std::fs::read(ca).with_context(|| format!("reading --ca {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.with_context(|| format!("{} is not PEM certificates", ca.display()))?;
        roots.add(cert).context("adding the CA certificate")?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(config)
}

/// The name to verify the server certificate against: the URL's host.
pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).with_context(|| format!("{host:?} is not a server name"))
}

/// A server configuration from PEM files (certificate chain, private key).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    install_provider();
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not PEM certificates", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
