//! The partner PKI: a root CA, an intermediate issuing CA below it, and the short-lived client
//! certificates the intermediate issues to partners' back-ends, with the CRL that revokes them.
//!
//! A partner's identity is one URI subject alternative name,
//! `urn:palisade:partner:<tenant id>:<partner name>` (see [`PartnerIdentity`]); nothing else
//! in a certificate (subject, other names, a CSR's wishes) ever decides who the caller is.
//!
//! This module works on PEM text in memory. Where the keys are kept (sealed in the vault) and
//! where the certificates are recorded is the caller's business; it must never write a key
//! to a file itself, and no error or `Debug` output of it may carry key material.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevokedCertParams,
    SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::{CLOCK_SKEW, PkiError, random};

/// How long the root CA is valid: twenty years. Its key is meant to be kept offline.
const ROOT_VALIDITY: Duration = Duration::days(7305);

/// How long the intermediate issuing CA is valid: five years.
const INTERMEDIATE_VALIDITY: Duration = Duration::days(1826);

/// How long a CRL is declared current; the server signs a new one on every change anyway.
const CRL_VALIDITY: Duration = Duration::days(7);

/// The URI prefix of a partner identity.
const IDENTITY_PREFIX: &str = "urn:palisade:partner:";

/// The longest partner name.
const MAX_PARTNER: usize = 40;

/// A private key in PEM. Never printed.
#[derive(Clone)]
pub struct KeyPem(String);

impl KeyPem {
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPem([hidden])")
    }
}

/// A CA certificate and its key.
#[derive(Clone, Debug)]
pub struct CaPem {
    pub cert_pem: String,
    pub key_pem: KeyPem,
}

/// A new root and the intermediate it signed.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    pub root: CaPem,
    pub intermediate: CaPem,
}

/// Who a partner certificate speaks for: a tenant (by id) and a partner name within it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartnerIdentity {
    tenant_id: String,
    partner: String,
}

/// Why a tenant id or partner name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("partner names are 1 to 40 characters of a-z, 0-9 and '-', not starting with '-'")]
    BadPartner,
    #[error("tenant ids are 1 to 64 characters of a-z, 0-9 and '-'")]
    BadTenant,
}

fn name_ok(raw: &str, max: usize) -> bool {
    (1..=max).contains(&raw.len())
        && !raw.starts_with('-')
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl PartnerIdentity {
    pub fn new(tenant_id: &str, partner: &str) -> Result<Self, IdentityError> {
        if !name_ok(tenant_id, 64) {
            return Err(IdentityError::BadTenant);
        }
        if !name_ok(partner, MAX_PARTNER) {
            return Err(IdentityError::BadPartner);
        }
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            partner: partner.to_owned(),
        })
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub fn partner(&self) -> &str {
        &self.partner
    }

    /// The URI subject alternative name that carries this identity.
    pub fn uri(&self) -> String {
        format!("{IDENTITY_PREFIX}{}:{}", self.tenant_id, self.partner)
    }

    fn from_uri(uri: &str) -> Option<Self> {
        let (tenant, partner) = uri.strip_prefix(IDENTITY_PREFIX)?.split_once(':')?;
        Self::new(tenant, partner).ok()
    }
}

/// What a verified client certificate says: its identity and serial (lower-case hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCert {
    pub identity: PartnerIdentity,
    pub serial: String,
}

/// The serial of a DER certificate in lower-case hex, if it parses.
pub fn serial_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(hex(cert.raw_serial()))
}

/// Reads the partner identity and serial from a client certificate. A certificate with no
/// identity URI, or with more than one, names nobody.
pub fn presented(der: &[u8]) -> Option<PresentedCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans = cert.subject_alternative_name().ok()??;
    let mut found = sans
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(IDENTITY_PREFIX) => Some(*uri),
            _ => None,
        });
    let (Some(uri), None) = (found.next(), found.next()) else {
        return None;
    };
    Some(PresentedCert {
        identity: PartnerIdentity::from_uri(uri)?,
        serial: hex(cert.raw_serial()),
    })
}

/// When the first certificate in `pem` expires.
pub fn not_after_of(pem: &str) -> Option<OffsetDateTime> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// Whether `key_pem` is the private key of the certificate `cert_pem`.
pub fn key_matches_cert(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    crate::decode::key_matches(&key, &cert)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) || text.len() > 40 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `text` could be a serial this PKI wrote: lower-case hex, at most 20 bytes.
pub fn is_serial(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && unhex(text).is_some()
}

fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate { what, source }
}

fn new_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate(what))
}

fn ca_params(
    name: String,
    depth: u8,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<CertificateParams, PkiError> {
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, name);
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(depth));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now.saturating_sub(CLOCK_SKEW);
    params.not_after = now.saturating_add(validity);
    params.serial_number = Some(random::serial()?);
    Ok(params)
}

/// Creates a root CA and an intermediate issuing CA signed by it (ECDSA P-256).
pub fn create_hierarchy(now: OffsetDateTime) -> Result<Hierarchy, PkiError> {
    let id = random::hex::<4>()?;
    let root_key = new_key("the partner root key")?;
    let root_params = ca_params(format!("Palisade Partner Root {id}"), 1, now, ROOT_VALIDITY)?;
    let root_cert = root_params
        .self_signed(&root_key)
        .map_err(generate("the partner root certificate"))?;

    let key = new_key("the intermediate key")?;
    let params = ca_params(
        format!("Palisade Partner Issuing CA {id}"),
        0,
        now,
        INTERMEDIATE_VALIDITY,
    )?;
    let issuer = Issuer::new(root_params, &root_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(generate("the intermediate certificate"))?;

    Ok(Hierarchy {
        root: CaPem {
            cert_pem: root_cert.pem(),
            key_pem: KeyPem(root_key.serialize_pem()),
        },
        intermediate: CaPem {
            cert_pem: cert.pem(),
            key_pem: KeyPem(key.serialize_pem()),
        },
    })
}

/// A certificate the intermediate issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The leaf followed by the intermediate: what the client presents.
    pub cert_pem: String,
    /// The new private key; `None` when the client sent a CSR and keeps its key.
    pub key_pem: Option<KeyPem>,
    /// Lower-case hex.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The intermediate issuing CA, loaded with its key.
pub struct IssuingCa {
    cert_pem: String,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuingCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl IssuingCa {
    /// Loads the intermediate from its certificate and key, which must match.
    pub fn load(cert_pem: &str, key_pem: &KeyPem) -> Result<Self, PkiError> {
        let bad = |reason: &str| PkiError::BadCertificate {
            path: "intermediate certificate".into(),
            reason: reason.into(),
        };
        let key = KeyPair::from_pem(key_pem.expose()).map_err(|_| PkiError::BadPrivateKey {
            path: "intermediate key (vault)".into(),
        })?;
        if !key_matches_cert(cert_pem, key_pem.expose()) {
            return Err(bad("its key in the vault does not match it"));
        }
        let not_after = not_after_of(cert_pem).ok_or_else(|| bad("it does not parse"))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key,
            not_after,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)
            .map_err(generate("an issuer from the intermediate certificate"))
    }

    fn leaf_params(
        &self,
        identity: &PartnerIdentity,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<CertificateParams, PkiError> {
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, identity.partner.clone());
        subject.push(DnType::OrganizationName, identity.tenant_id.clone());
        let uri = identity
            .uri()
            .try_into()
            .map_err(generate("the partner identity URI"))?;

        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now.saturating_sub(CLOCK_SKEW);
        params.not_after = now.saturating_add(validity).min(self.not_after);
        params.serial_number = Some(random::serial()?);
        Ok(params)
    }

    fn finish(
        &self,
        cert: &rcgen::Certificate,
        params: &CertificateParams,
        key_pem: Option<KeyPem>,
    ) -> Result<Issued, PkiError> {
        let serial = serial_of(cert.der()).ok_or_else(|| PkiError::BadCertificate {
            path: "new partner certificate".into(),
            reason: "it does not parse".into(),
        })?;
        let mut cert_pem = cert.pem();
        if !cert_pem.ends_with('\n') {
            cert_pem.push('\n');
        }
        cert_pem.push_str(&self.cert_pem);
        Ok(Issued {
            cert_pem,
            key_pem,
            serial,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }

    /// Issues a client certificate and a new key for `identity`, valid for `validity` from
    /// `now` (never past the intermediate's own end).
    pub fn issue(
        &self,
        identity: &PartnerIdentity,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Issued, PkiError> {
        let key = new_key("the partner key")?;
        let params = self.leaf_params(identity, validity, now)?;
        let cert = params
            .signed_by(&key, &self.issuer()?)
            .map_err(generate("the partner certificate"))?;
        self.finish(&cert, &params, Some(KeyPem(key.serialize_pem())))
    }

    /// Issues a certificate for the key in a CSR (PEM). Only the CSR's public key is used:
    /// its subject, names and extensions are ignored, and the identity is `identity`.
    pub fn issue_for_csr(
        &self,
        csr_pem: &str,
        identity: &PartnerIdentity,
        validity: Duration,
        now: OffsetDateTime,
    ) -> Result<Issued, CsrError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|_| CsrError)?;
        csr.params = self
            .leaf_params(identity, validity, now)
            .map_err(|_| CsrError)?;
        let cert = csr
            .signed_by(&self.issuer().map_err(|_| CsrError)?)
            .map_err(|_| CsrError)?;
        self.finish(&cert, &csr.params, None).map_err(|_| CsrError)
    }

    /// A CRL (DER) listing `revoked` (serial in hex, revocation time), signed by the
    /// intermediate. `number` must grow with every new CRL.
    pub fn crl(
        &self,
        revoked: &[(String, OffsetDateTime)],
        number: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let revoked_certs = revoked
            .iter()
            .filter_map(|(serial, at)| {
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&unhex(serial)?),
                    revocation_time: *at,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now.saturating_sub(CLOCK_SKEW),
            next_update: now.saturating_add(CRL_VALIDITY),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer()?)
            .map_err(generate("the certificate revocation list"))?;
        Ok(crl.der().to_vec())
    }
}

/// A CSR that could not be used: malformed, badly signed, or of a key type not supported.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the CSR is not a valid PEM certificate signing request with an ECDSA, Ed25519 or RSA key and a good signature"
)]
pub struct CsrError;

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn issuing() -> (Hierarchy, IssuingCa) {
        let hierarchy = create_hierarchy(now()).expect("hierarchy");
        let ca = IssuingCa::load(
            &hierarchy.intermediate.cert_pem,
            &hierarchy.intermediate.key_pem,
        )
        .expect("intermediate loads");
        (hierarchy, ca)
    }

    fn leaf_der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("leaf")
    }

    #[test]
    fn identity_names_are_checked_and_round_trip_through_the_uri() {
        assert_eq!(
            PartnerIdentity::new("t1", ""),
            Err(IdentityError::BadPartner)
        );
        assert_eq!(
            PartnerIdentity::new("t1", "Bad"),
            Err(IdentityError::BadPartner)
        );
        assert_eq!(
            PartnerIdentity::new("t1", "-x"),
            Err(IdentityError::BadPartner)
        );
        assert_eq!(
            PartnerIdentity::new("a:b", "crm"),
            Err(IdentityError::BadTenant)
        );
        let id = PartnerIdentity::new("0190-ab", "crm-2").expect("valid");
        assert_eq!(id.uri(), "urn:palisade:partner:0190-ab:crm-2");
        assert_eq!(PartnerIdentity::from_uri(&id.uri()), Some(id));
        assert_eq!(
            PartnerIdentity::from_uri("urn:palisade:partner:t:a:b"),
            None
        );
    }

    #[test]
    fn issued_certificate_carries_the_identity_a_serial_and_the_intermediate() {
        let (hierarchy, ca) = issuing();
        let id = PartnerIdentity::new("tenant-1", "crm").expect("id");
        let issued = ca.issue(&id, Duration::days(30), now()).expect("issued");
        assert!(issued.cert_pem.ends_with(&hierarchy.intermediate.cert_pem));
        assert!(is_serial(&issued.serial));
        let seen = presented(&leaf_der(&issued.cert_pem)).expect("identity");
        assert_eq!((seen.identity, seen.serial), (id, issued.serial.clone()));
        let key = issued.key_pem.expect("a key");
        assert!(key_matches_cert(&issued.cert_pem, key.expose()));
        assert!(!key_matches_cert(&hierarchy.root.cert_pem, key.expose()));
        assert_eq!(format!("{key:?}"), "KeyPem([hidden])");
    }

    #[test]
    fn a_csr_gives_only_its_key_never_its_names() {
        let (_, ca) = issuing();
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).expect("params");
        let other = "urn:palisade:partner:other:boss".try_into().expect("uri");
        params.subject_alt_names.push(SanType::URI(other));
        let csr = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let id = PartnerIdentity::new("tenant-1", "crm").expect("id");
        let issued = ca
            .issue_for_csr(&csr, &id, Duration::days(5), now())
            .expect("issued");
        assert!(issued.key_pem.is_none());
        let seen = presented(&leaf_der(&issued.cert_pem)).expect("identity");
        assert_eq!(seen.identity, id);
        assert!(key_matches_cert(&issued.cert_pem, &key.serialize_pem()));
        assert!(
            ca.issue_for_csr("not a csr", &id, Duration::days(5), now())
                .is_err()
        );
    }

    #[test]
    fn validity_never_outlives_the_intermediate_and_the_crl_lists_serials() {
        let (_, ca) = issuing();
        let id = PartnerIdentity::new("t", "p").expect("id");
        let issued = ca.issue(&id, Duration::days(9000), now()).expect("issued");
        assert!(issued.not_after <= ca.not_after());
        let revoked = vec![(issued.serial.clone(), now())];
        let der = ca.crl(&revoked, 7, now()).expect("crl");
        let (_, crl) = x509_parser::parse_x509_crl(&der).expect("parses");
        let listed: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex(r.raw_serial()))
            .collect();
        assert_eq!(listed, vec![issued.serial]);
    }
}
