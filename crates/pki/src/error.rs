//! The one error type of this crate.
//!
//! Every variant that concerns a file names it, so an operator can act on the message
//! alone. No variant may ever carry key material: problems with a key file are reported
//! as a fixed description, never with the parser's own text or the bytes it choked on.

use std::fmt;
use std::path::PathBuf;

use rustls_pki_types::pem;
use time::OffsetDateTime;

/// What went wrong while loading or creating TLS material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("creating directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{} is not a text file", path.display())]
    NotText { path: PathBuf },

    #[error("{} is not valid PEM: {problem}", path.display())]
    Pem { path: PathBuf, problem: PemProblem },

    #[error("{} holds no certificate", path.display())]
    NoCertificate { path: PathBuf },

    #[error("{} holds a certificate that cannot be parsed: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },

    #[error("{} holds no private key", path.display())]
    NoPrivateKey { path: PathBuf },

    #[error("{} holds a private key that is corrupt or of an unsupported kind", path.display())]
    BadPrivateKey { path: PathBuf },

    #[error("{} holds {count} certificates; it must hold only the CA certificate", path.display())]
    CaFileHoldsMore { path: PathBuf, count: usize },

    #[error("{} is not a CA certificate (basic constraints do not say CA)", path.display())]
    NotACa { path: PathBuf },

    #[error("CA certificate {} expired on {not_after}; move the TLS directory away to create \
             a new CA, then give every client the new ca.pem", path.display())]
    CaExpired {
        path: PathBuf,
        not_after: OffsetDateTime,
    },

    #[error("CA certificate {} exists but its key {} is missing; restore the key, or move both \
             files away to create a new CA", cert.display(), key.display())]
    CaKeyMissing { cert: PathBuf, key: PathBuf },

    #[error("CA key {} exists but its certificate {} is missing; restore the certificate, or \
             move both files away to create a new CA", key.display(), cert.display())]
    CaCertMissing { key: PathBuf, cert: PathBuf },

    #[error("CA key {} does not match CA certificate {}", key.display(), cert.display())]
    CaKeyMismatch { key: PathBuf, cert: PathBuf },

    #[error("private key {} does not match the first certificate in {}", key.display(),
            cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },

    #[error("no internal CA is in use: the TLS files were supplied by the operator ({})",
            path.display())]
    NoInternalCa { path: PathBuf },

    #[error("no server names given: the server certificate needs at least one")]
    NoServerNames,

    #[error("server name {name:?} is neither an IP address nor a valid DNS name: {reason}")]
    InvalidServerName { name: String, reason: &'static str },

    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },

    #[error("reading the system random number generator: {0}")]
    Random(getrandom::Error),
}

/// Why a PEM file could not be decoded, without quoting any of its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemProblem {
    MissingEnd,
    BadBegin,
    BadBase64,
    TooLarge,
    Other,
}

impl PemProblem {
    /// Classifies a decoder error. The decoder's own message is dropped on purpose: for
    /// a key file it may quote the line it failed on.
    pub(crate) fn of(error: &pem::Error) -> Self {
        match error {
            pem::Error::MissingSectionEnd { .. } => Self::MissingEnd,
            pem::Error::IllegalSectionStart { .. } => Self::BadBegin,
            pem::Error::Base64Decode(_) => Self::BadBase64,
            pem::Error::SectionTooLarge => Self::TooLarge,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for PemProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingEnd => "a section has no END line",
            Self::BadBegin => "a BEGIN line is malformed",
            Self::BadBase64 => "a section is not valid base64",
            Self::TooLarge => "a section is too large",
            Self::Other => "the file cannot be decoded",
        })
    }
}
