//! The internal certificate authority: one ECDSA P-256 root that signs the server
//! certificate.
//!
//! It is created on the first start and only ever loaded after that. Nothing here may
//! replace an existing CA file: clients trust the CA certificate they were handed, and a
//! silently new CA would lock every one of them out. A CA that lacks its key, does not match
//! it, or cannot be read is an error for the operator to resolve.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use crate::files::{self, CERT_MODE, KEY_MODE};
use crate::{CLOCK_SKEW, PkiError, TlsPaths, decode, random};

/// How long the CA is valid: ten years, leap days included.
const CA_VALIDITY: Duration = Duration::days(3653);

/// The loaded or freshly created CA, with its signing key.
pub(crate) struct InternalCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl InternalCa {
    /// Loads the CA from `paths`, creating it when neither of its files exists.
    pub(crate) fn load_or_create(paths: &TlsPaths, now: OffsetDateTime) -> Result<Self, PkiError> {
        let cert_pem = files::read_optional(&paths.ca_cert)?;
        let key_pem = files::read_optional(&paths.ca_key)?;

        match (cert_pem, key_pem) {
            (Some(cert_pem), Some(key_pem)) => Self::load(paths, cert_pem, &key_pem, now),
            (Some(_), None) => Err(PkiError::CaKeyMissing {
                cert: paths.ca_cert.clone(),
                key: paths.ca_key.clone(),
            }),
            (None, Some(_)) => Err(PkiError::CaCertMissing {
                key: paths.ca_key.clone(),
                cert: paths.ca_cert.clone(),
            }),
            (None, None) => Self::create(paths, now),
        }
    }

    /// The CA certificate as stored in ca.pem.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub(crate) fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// An issuer that signs with the CA key under the CA's own name.
    pub(crate) fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der, &self.key).map_err(|source| PkiError::Generate {
            what: "an issuer from the CA certificate",
            source,
        })
    }

    /// Whether `cert` names this CA as its issuer and carries a valid signature by it.
    pub(crate) fn issued(&self, cert: &X509Certificate<'_>) -> bool {
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        cert.issuer().as_raw() == ca.subject().as_raw()
            && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    fn load(
        paths: &TlsPaths,
        cert_pem: String,
        key_pem: &str,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let cert_path = &paths.ca_cert;
        let mut certs = decode::certificates(cert_path, &cert_pem)?;
        if certs.len() != 1 {
            return Err(PkiError::CaFileHoldsMore {
                path: cert_path.clone(),
                count: certs.len(),
            });
        }
        let Some(cert_der) = certs.pop() else {
            return Err(PkiError::NoCertificate {
                path: cert_path.clone(),
            });
        };

        let key = decode::key_pair(&paths.ca_key, key_pem)?;
        let not_after = check_ca_cert(paths, &cert_der, &key, now)?;
        Ok(Self {
            cert_pem,
            cert_der,
            key,
            not_after,
        })
    }

    fn create(paths: &TlsPaths, now: OffsetDateTime) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
            PkiError::Generate {
                what: "the CA key",
                source,
            }
        })?;

        let mut name = DistinguishedName::new();
        let id = random::hex::<4>()?;
        name.push(DnType::CommonName, format!("Palisade Internal CA {id}"));

        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now.saturating_sub(CLOCK_SKEW);
        params.not_after = now.saturating_add(CA_VALIDITY);
        params.serial_number = Some(random::serial()?);

        let cert = params
            .self_signed(&key)
            .map_err(|source| PkiError::Generate {
                what: "the CA certificate",
                source,
            })?;
        let cert_pem = cert.pem();

        // The key goes first: should the process die between the two writes, the next start
        // finds a key without a certificate and says so, rather than a certificate nobody
        // can sign with.
        files::write_atomic(&paths.ca_key, &key.serialize_pem(), KEY_MODE)?;
        files::write_atomic(&paths.ca_cert, &cert_pem, CERT_MODE)?;
        Ok(Self {
            cert_pem,
            cert_der: cert.der().clone(),
            key,
            not_after: params.not_after,
        })
    }
}

/// Checks that a stored CA certificate can serve: a CA, not expired, matching `key`, and
/// with a subject rcgen can copy into the certificates it signs. Returns its end of validity.
fn check_ca_cert(
    paths: &TlsPaths,
    der: &[u8],
    key: &KeyPair,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, PkiError> {
    let path = &paths.ca_cert;
    let cert = decode::x509(path, der)?;
    if !cert.is_ca() {
        return Err(PkiError::NotACa { path: path.clone() });
    }

    // rcgen copies the subject one attribute per name component and gives up (or worse) on
    // anything else, so refuse such a subject here with a clear message.
    if cert.subject().iter().any(|rdn| rdn.iter().count() != 1) {
        return Err(PkiError::BadCertificate {
            path: path.clone(),
            reason: "its subject has a name component with other than one attribute".into(),
        });
    }

    let not_after = cert.validity().not_after.to_datetime();
    if not_after <= now {
        return Err(PkiError::CaExpired {
            path: path.clone(),
            not_after,
        });
    }

    if !decode::key_matches(key, &cert) {
        return Err(PkiError::CaKeyMismatch {
            key: paths.ca_key.clone(),
            cert: path.clone(),
        });
    }
    Ok(not_after)
}
