//! The gateway's server certificate, issued by the internal CA.
//!
//! Unlike the CA, the server key and certificate are disposable: whenever they are missing,
//! do not match each other, were not issued by the current CA, expire soon or do not cover
//! the names asked for, a new pair is issued. A file that cannot be parsed at all is still an
//! error, never something to overwrite, since it may not be ours.

use std::collections::BTreeSet;
use std::fmt;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::ca::InternalCa;
use crate::files::{self, CERT_MODE, KEY_MODE};
use crate::{CLOCK_SKEW, PkiError, ServerName, TlsPaths, decode, random};

/// How long a server certificate is valid.
const SERVER_VALIDITY: Duration = Duration::days(90);

/// A server certificate that expires sooner than this is replaced.
const RENEW_BEFORE: Duration = Duration::days(30);

/// Why a new server certificate was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueReason {
    /// There was no server certificate yet.
    Missing,
    /// The certificate was there but its key was not.
    KeyMissing,
    /// The key did not belong to the certificate.
    KeyMismatch,
    /// The certificate was not signed by the current CA.
    NotIssuedByCa,
    /// The certificate was about to expire.
    ExpiresSoon,
    /// The certificate did not name every requested host name or address.
    NamesNotCovered,
    /// The operator asked for a new one (`palisade pki reissue-server`).
    Requested,
}

impl fmt::Display for IssueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "there was no server certificate",
            Self::KeyMissing => "the server key was missing",
            Self::KeyMismatch => "the server key did not match the certificate",
            Self::NotIssuedByCa => "the certificate was not issued by the current CA",
            Self::ExpiresSoon => "the certificate expires within 30 days",
            Self::NamesNotCovered => "the certificate did not cover every server name",
            Self::Requested => "the operator asked for a new certificate",
        })
    }
}

/// A server certificate chain (leaf, then CA) and its key, both in PEM.
pub(crate) struct ServerPair {
    pub(crate) chain_pem: String,
    pub(crate) key_pem: String,
}

/// What to do with the server certificate found on disk.
pub(crate) enum Existing {
    Keep(ServerPair),
    Replace(IssueReason),
}

/// Examines the stored server certificate and key.
pub(crate) fn examine(
    paths: &TlsPaths,
    ca: &InternalCa,
    names: &BTreeSet<ServerName>,
    now: OffsetDateTime,
) -> Result<Existing, PkiError> {
    // Both files are parsed before anything is decided, so that neither is ever overwritten
    // while it holds something unreadable.
    let chain_pem = files::read_optional(&paths.server_cert)?;
    let key_pem = files::read_optional(&paths.server_key)?;
    let key = match &key_pem {
        Some(pem) => Some(decode::key_pair(&paths.server_key, pem)?),
        None => None,
    };

    let Some(chain_pem) = chain_pem else {
        return Ok(Existing::Replace(IssueReason::Missing));
    };
    let chain = decode::certificates(&paths.server_cert, &chain_pem)?;
    let Some(leaf_der) = chain.first() else {
        return Err(PkiError::NoCertificate {
            path: paths.server_cert.clone(),
        });
    };
    let leaf = decode::x509(&paths.server_cert, leaf_der)?;

    let (Some(key_pem), Some(key)) = (key_pem, key) else {
        return Ok(Existing::Replace(IssueReason::KeyMissing));
    };

    let reason = if !decode::key_matches(&key, &leaf) {
        Some(IssueReason::KeyMismatch)
    } else if !ca.issued(&leaf) {
        Some(IssueReason::NotIssuedByCa)
    } else if leaf.validity().not_after.to_datetime() - now < RENEW_BEFORE {
        Some(IssueReason::ExpiresSoon)
    } else if !names.is_subset(&ServerName::all_in(&leaf)) {
        Some(IssueReason::NamesNotCovered)
    } else {
        None
    };

    Ok(match reason {
        Some(reason) => Existing::Replace(reason),
        None => Existing::Keep(ServerPair { chain_pem, key_pem }),
    })
}

/// Issues a new server key and certificate for `names` and stores them.
pub(crate) fn issue(
    paths: &TlsPaths,
    ca: &InternalCa,
    names: &BTreeSet<ServerName>,
    now: OffsetDateTime,
) -> Result<ServerPair, PkiError> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
            what: "the server key",
            source,
        })?;

    let mut subject = DistinguishedName::new();
    if let Some(first) = names.first() {
        subject.push(DnType::CommonName, first.to_string());
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.subject_alt_names = names
        .iter()
        .map(ServerName::to_san)
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now.saturating_sub(CLOCK_SKEW);
    // A certificate outliving its CA would be of no use past the CA's end.
    params.not_after = now.saturating_add(SERVER_VALIDITY).min(ca.not_after());
    params.serial_number = Some(random::serial()?);

    let cert = params
        .signed_by(&key, &ca.issuer()?)
        .map_err(|source| PkiError::Generate {
            what: "the server certificate",
            source,
        })?;

    let mut chain_pem = cert.pem();
    if !chain_pem.ends_with('\n') {
        chain_pem.push('\n');
    }
    chain_pem.push_str(ca.cert_pem());
    let key_pem = key.serialize_pem();

    // The key goes first: should the process die between the two writes, the next start
    // finds a key that does not match the certificate and issues a new pair.
    files::write_atomic(&paths.server_key, &key_pem, KEY_MODE)?;
    files::write_atomic(&paths.server_cert, &chain_pem, CERT_MODE)?;
    Ok(ServerPair { chain_pem, key_pem })
}
