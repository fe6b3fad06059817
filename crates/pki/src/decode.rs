//! Turning PEM text into certificates and keys, with errors that name the file.
//!
//! This module only decodes and inspects; it never decides whether material is good enough
//! to use, and it never puts key bytes or decoder messages about a key into an error.

use std::path::Path;

use rcgen::KeyPair;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;

use crate::{PemProblem, PkiError};

/// Every certificate in `pem_text`, in order; at least one, each of them parseable.
pub(crate) fn certificates(
    path: &Path,
    pem_text: &str,
) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, &error))?;
    if certs.is_empty() {
        return Err(PkiError::NoCertificate {
            path: path.to_path_buf(),
        });
    }

    for der in &certs {
        x509(path, der)?;
    }
    Ok(certs)
}

/// The first private key in `pem_text`, in whichever encoding it comes.
pub(crate) fn private_key(path: &Path, pem_text: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem_text.as_bytes()).map_err(|error| match error {
        pem::Error::NoItemsFound => PkiError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        other => pem_error(path, &other),
    })
}

/// The private key in `pem_text` as a key pair that can sign. With the ring backend only
/// PKCS#8 keys of the kinds rcgen knows (ECDSA P-256/P-384, Ed25519, RSA) qualify.
pub(crate) fn key_pair(path: &Path, pem_text: &str) -> Result<KeyPair, PkiError> {
    let der = private_key(path, pem_text)?;
    KeyPair::try_from(&der).map_err(|_| PkiError::BadPrivateKey {
        path: path.to_path_buf(),
    })
}

/// Parses one DER certificate.
pub(crate) fn x509<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_rest, cert)| cert)
        .map_err(|error| PkiError::BadCertificate {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
}

/// Whether `key` is the private half of the public key in `cert`.
pub(crate) fn key_matches(key: &KeyPair, cert: &X509Certificate<'_>) -> bool {
    key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref()
}

fn pem_error(path: &Path, error: &pem::Error) -> PkiError {
    PkiError::Pem {
        path: path.to_path_buf(),
        problem: PemProblem::of(error),
    }
}
