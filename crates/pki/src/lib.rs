//! Palisade's TLS material: an internal certificate authority and the server certificate it
//! issues, or certificate files supplied by the operator.
//!
//! [`load_or_create`] keeps four files in one private directory: the CA certificate and key,
//! created on the first start and never replaced after, and the server certificate chain and
//! key, issued again whenever they expire soon or no longer fit. [`load_operator_files`] reads
//! the operator's own files instead. Either way the result is a [`TlsMaterial`] that hands
//! rustls its certificates and key.
//!
//! This crate knows nothing of networking or of rustls configuration, and it must never put a
//! private key into an error, a `Debug` output or a file that others can read. Unix only: file
//! modes are part of its contract.

mod ca;
mod decode;
mod error;
mod files;
mod leaf;
mod material;
mod names;
mod operator;
pub mod partner;
mod random;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

pub use error::{PemProblem, PkiError};
pub use leaf::IssueReason;
pub use material::{CertOrigin, TlsMaterial};
pub use names::ServerName;
pub use operator::load_operator_files;

/// How far back a new certificate's validity starts, so that a client whose clock runs a
/// little behind still accepts it.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// The files of the TLS directory.
pub(crate) struct TlsPaths {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl TlsPaths {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
        }
    }
}

/// Loads the internal CA and the server certificate from `dir`, creating what is missing.
///
/// - `dir` is created with mode 0700 if it does not exist.
/// - The CA (`ca.pem`, mode 0644, and `ca-key.pem`, mode 0600) is an ECDSA P-256 root valid
///   for ten years, made on the first start and only loaded after that. If one of its files
///   is missing, unreadable, or does not match the other, this fails naming the file: a new
///   CA would no longer be trusted by clients, so it is never made silently.
/// - The server certificate (`server.pem`: the leaf, then the CA certificate) and its key
///   (`server-key.pem`, mode 0600) are ECDSA P-256, valid for 90 days, for `server_names`
///   (each an IP address or a DNS name). They are issued again when missing, mismatched,
///   not signed by the CA, expiring within 30 days, or not covering every name; see
///   [`TlsMaterial::origin`]. A server file that cannot be parsed is an error.
///
/// Every file is written to a temporary file in `dir` and renamed into place.
pub fn load_or_create(dir: &Path, server_names: &[String]) -> Result<TlsMaterial, PkiError> {
    load_or_create_at(dir, server_names, OffsetDateTime::now_utc())
}

/// Issues a new server certificate and key in `dir` with the existing internal CA, whatever
/// the state of the current pair: for an operator who wants a fresh one now. The CA must
/// exist (see [`load_or_create`]).
pub fn reissue_server(dir: &Path, server_names: &[String]) -> Result<TlsMaterial, PkiError> {
    let now = OffsetDateTime::now_utc();
    let names = ServerName::parse_all(server_names)?;
    let paths = TlsPaths::in_dir(dir);
    if files::read_optional(&paths.ca_cert)?.is_none() {
        return Err(PkiError::CaCertMissing {
            key: paths.ca_key.clone(),
            cert: paths.ca_cert.clone(),
        });
    }
    let ca = ca::InternalCa::load_or_create(&paths, now)?;
    let server = leaf::issue(&paths, &ca, &names, now)?;
    Ok(TlsMaterial {
        ca_cert_pem: ca.cert_pem().to_owned(),
        server_cert_chain_pem: server.chain_pem,
        server_key_pem: server.key_pem,
        ca_cert_path: paths.ca_cert,
        server_cert_path: paths.server_cert,
        server_key_path: paths.server_key,
        origin: CertOrigin::Issued(IssueReason::Requested),
    })
}

/// [`load_or_create`] as if the time were `now`.
fn load_or_create_at(
    dir: &Path,
    server_names: &[String],
    now: OffsetDateTime,
) -> Result<TlsMaterial, PkiError> {
    let names = ServerName::parse_all(server_names)?;
    files::create_private_dir(dir)?;
    let paths = TlsPaths::in_dir(dir);

    let ca = ca::InternalCa::load_or_create(&paths, now)?;
    let (server, origin) = match leaf::examine(&paths, &ca, &names, now)? {
        leaf::Existing::Keep(server) => (server, CertOrigin::Reused),
        leaf::Existing::Replace(reason) => {
            let server = leaf::issue(&paths, &ca, &names, now)?;
            (server, CertOrigin::Issued(reason))
        }
    };

    Ok(TlsMaterial {
        ca_cert_pem: ca.cert_pem().to_owned(),
        server_cert_chain_pem: server.chain_pem,
        server_key_pem: server.key_pem,
        ca_cert_path: paths.ca_cert,
        server_cert_path: paths.server_cert,
        server_key_path: paths.server_key,
        origin,
    })
}
