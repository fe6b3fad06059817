//! The loaded TLS material and its conversion into the types rustls takes.
//!
//! The server key lives here as PEM text. It must never be printed: `Debug` is written by
//! hand to leave it out, and no error made here quotes it.

use std::fmt;
use std::path::PathBuf;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

use crate::{IssueReason, PkiError, decode};

/// Where the server certificate came from on this start; for the caller's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertOrigin {
    /// The internal CA's server certificate was found on disk and still fits.
    Reused,
    /// The internal CA issued a new server certificate, for this reason.
    Issued(IssueReason),
    /// The operator supplied the certificate and key files.
    Operator,
}

/// The CA certificate and the server certificate chain and key, all in PEM.
///
/// With operator-supplied files ([`crate::load_operator_files`]) there is no internal CA:
/// `ca_cert_pem` is empty, `ca_cert_path` is the operator's certificate file, and
/// [`TlsMaterial::ca_cert_der`] returns [`PkiError::NoInternalCa`].
#[derive(Clone)]
pub struct TlsMaterial {
    /// The internal CA certificate, for clients to trust; empty with operator files.
    pub ca_cert_pem: String,
    /// The server certificate followed by the certificates that chain it to its root.
    pub server_cert_chain_pem: String,
    /// The server's private key. Secret: never log or print it.
    pub server_key_pem: String,
    /// The file holding `ca_cert_pem`, or the operator's certificate file.
    pub ca_cert_path: PathBuf,
    /// The file holding `server_cert_chain_pem`.
    pub server_cert_path: PathBuf,
    /// The file holding `server_key_pem`.
    pub server_key_path: PathBuf,
    /// Whether the server certificate was reused, newly issued, or supplied.
    pub origin: CertOrigin,
}

impl TlsMaterial {
    /// The server certificate chain, leaf first.
    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        decode::certificates(&self.server_cert_path, &self.server_cert_chain_pem)
    }

    /// The server's private key.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        decode::private_key(&self.server_key_path, &self.server_key_pem)
    }

    /// The internal CA certificate. Fails with [`PkiError::NoInternalCa`] when the operator
    /// supplied the TLS files.
    pub fn ca_cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        if self.ca_cert_pem.is_empty() {
            return Err(PkiError::NoInternalCa {
                path: self.ca_cert_path.clone(),
            });
        }
        let mut certs = decode::certificates(&self.ca_cert_path, &self.ca_cert_pem)?;
        if certs.len() != 1 {
            return Err(PkiError::CaFileHoldsMore {
                path: self.ca_cert_path.clone(),
                count: certs.len(),
            });
        }
        certs.pop().ok_or_else(|| PkiError::NoCertificate {
            path: self.ca_cert_path.clone(),
        })
    }

    /// When the server certificate (the first of the chain) expires.
    pub fn server_cert_not_after(&self) -> Result<OffsetDateTime, PkiError> {
        let chain = self.cert_chain()?;
        let leaf = chain.first().ok_or_else(|| PkiError::NoCertificate {
            path: self.server_cert_path.clone(),
        })?;
        let leaf = decode::x509(&self.server_cert_path, leaf)?;
        Ok(leaf.validity().not_after.to_datetime())
    }
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("server_cert_chain_pem", &self.server_cert_chain_pem)
            .field("server_key_pem", &"[hidden]")
            .field("ca_cert_path", &self.ca_cert_path)
            .field("server_cert_path", &self.server_cert_path)
            .field("server_key_path", &self.server_key_path)
            .field("origin", &self.origin)
            .finish()
    }
}
