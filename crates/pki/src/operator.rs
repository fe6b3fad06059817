//! Certificate and key files supplied by the operator, used instead of the internal CA.
//!
//! These files belong to the operator: this module only reads and checks them and must never
//! write, fix or replace them.

use std::path::Path;

use rcgen::KeyPair;

use crate::{CertOrigin, PkiError, TlsMaterial, decode, files};

/// Loads an operator's certificate chain (`cert`, PEM, leaf first) and private key (`key`,
/// PEM in PKCS#8, PKCS#1 or SEC1 form).
///
/// Every certificate must parse and the key file must hold a private key. When the key is a
/// PKCS#8 key of a kind rcgen can load (ECDSA P-256 or P-384, Ed25519, RSA) it must also
/// match the first certificate; a PKCS#1 or SEC1 key is only checked to decode, and rustls
/// reports a mismatch when the server configuration is built.
///
/// There is no internal CA in this mode: the returned `ca_cert_pem` is empty and
/// `ca_cert_path` is `cert`.
pub fn load_operator_files(cert: &Path, key: &Path) -> Result<TlsMaterial, PkiError> {
    let chain_pem = files::read_required(cert)?;
    let chain = decode::certificates(cert, &chain_pem)?;
    let Some(leaf_der) = chain.first() else {
        return Err(PkiError::NoCertificate {
            path: cert.to_path_buf(),
        });
    };
    let leaf = decode::x509(cert, leaf_der)?;

    let key_pem = files::read_required(key)?;
    let key_der = decode::private_key(key, &key_pem)?;
    if let Ok(pair) = KeyPair::try_from(&key_der)
        && !decode::key_matches(&pair, &leaf)
    {
        return Err(PkiError::KeyMismatch {
            key: key.to_path_buf(),
            cert: cert.to_path_buf(),
        });
    }

    Ok(TlsMaterial {
        ca_cert_pem: String::new(),
        server_cert_chain_pem: chain_pem,
        server_key_pem: key_pem,
        ca_cert_path: cert.to_path_buf(),
        server_cert_path: cert.to_path_buf(),
        server_key_path: key.to_path_buf(),
        origin: CertOrigin::Operator,
    })
}
