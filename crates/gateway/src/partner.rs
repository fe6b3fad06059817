//! Partners over mutual TLS: the client-certificate verifier of the public listener, the
//! registry of live connections by certificate serial, and the issuing CA the admin and S2S
//! routes sign with.
//!
//! The listener asks every client for a certificate but does not require one: browsers and
//! visitors go on without, and only `Access::Partner` routes look at one. A certificate that
//! is presented must chain to the partner root, not be expired, and not be on the current
//! CRL, or the handshake fails; each such refusal is sent to the audit log with the serial.
//! A revocation rebuilds the verifier (with a new CRL) for the next handshake and closes the
//! live connections that presented the serial.

use palisade_pki::partner::{IssuingCa, PresentedCert};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{Notify, mpsc};

/// A handshake refused for its client certificate: the serial (when it parses) and why.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub serial: Option<String>,
    pub reason: String,
}

/// What the listener trusts for client certificates: the partner root and the current CRL.
#[derive(Clone, Debug)]
pub struct ClientTrust {
    pub root: CertificateDer<'static>,
    pub crl: CertificateRevocationListDer<'static>,
}

/// Wraps the WebPKI verifier to report every refused certificate.
#[derive(Debug)]
struct AuditedVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refusals: mpsc::Sender<Refusal>,
    dropped: Arc<AtomicU64>,
}

impl ClientCertVerifier for AuditedVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(err) = &verified {
            let refusal = Refusal {
                serial: palisade_pki::partner::serial_of(end_entity),
                reason: err.to_string(),
            };
            // The audit task is far behind only under a flood of bad certificates; the
            // count of what could not be queued is kept for the metrics.
            if self.refusals.try_send(refusal).is_err() {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        verified
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A verifier that accepts no client certificate but lets clients go on without one, and
/// one that checks partner certificates against `trust`.
pub(crate) fn client_verifier(
    provider: Arc<rustls::crypto::CryptoProvider>,
    trust: Option<&ClientTrust>,
    refusals: &RefusalSink,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, rustls::Error> {
    let Some(trust) = trust else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.root.clone())?;
    // Only the partner's own certificate is looked up on the CRL: the intermediate is
    // Palisade's and is revoked by replacing the whole partner PKI.
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls([trust.crl.clone()])
        .only_check_end_entity_revocation()
        .allow_unauthenticated()
        .build()
        .map_err(|err| rustls::Error::General(format!("client verifier: {err}")))?;
    Ok(Some(Arc::new(AuditedVerifier {
        inner,
        refusals: refusals.sender.clone(),
        dropped: refusals.dropped.clone(),
    })))
}

/// Where refused handshakes are queued for the audit log.
#[derive(Clone, Debug)]
pub struct RefusalSink {
    sender: mpsc::Sender<Refusal>,
    pub dropped: Arc<AtomicU64>,
}

impl RefusalSink {
    /// A sink and the receiver the audit task drains.
    pub fn new() -> (Self, mpsc::Receiver<Refusal>) {
        let (sender, receiver) = mpsc::channel(1024);
        let sink = Self {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, receiver)
    }
}

/// Each serial's open connections: an id and the signal that closes it.
type BySerial = HashMap<String, Vec<(u64, Arc<Notify>)>>;

/// Open connections that presented a partner certificate, by serial.
#[derive(Debug, Default)]
pub struct LiveConns {
    next: AtomicU64,
    open: Mutex<BySerial>,
}

/// A connection's entry in [`LiveConns`], removed on drop.
pub(crate) struct LiveEntry {
    conns: Arc<LiveConns>,
    serial: String,
    id: u64,
    pub(crate) close: Arc<Notify>,
}

impl LiveConns {
    pub(crate) fn register(self: &Arc<Self>, serial: &str) -> LiveEntry {
        let id = self.next.fetch_add(1, Relaxed);
        let close = Arc::new(Notify::new());
        self.lock()
            .entry(serial.to_owned())
            .or_default()
            .push((id, close.clone()));
        LiveEntry {
            conns: self.clone(),
            serial: serial.to_owned(),
            id,
            close,
        }
    }

    /// Closes every live connection that presented `serial`; returns how many.
    pub fn close_serial(&self, serial: &str) -> usize {
        let closing = self.lock().remove(serial).unwrap_or_default();
        for (_, close) in &closing {
            close.notify_one();
        }
        closing.len()
    }

    /// How many connections presented `serial` and are still open.
    pub fn count(&self, serial: &str) -> usize {
        self.lock().get(serial).map_or(0, Vec::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BySerial> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for LiveEntry {
    fn drop(&mut self) {
        let mut open = self.conns.lock();
        if let Some(list) = open.get_mut(&self.serial) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                open.remove(&self.serial);
            }
        }
    }
}

/// The partner side of the gateway: the issuing CA once the PKI exists, the live
/// connections, and the issuing settings.
#[derive(Debug)]
pub struct Partners {
    ca: RwLock<Option<Arc<IssuingCa>>>,
    pub live: Arc<LiveConns>,
    /// Validity of a new partner certificate when none is asked for.
    pub default_days: u32,
    /// The most days an admin may ask for.
    pub max_days: u32,
    /// Certificates expiring within this many days are flagged `expiring_soon`.
    pub expiry_window_days: u32,
    /// Woken when a certificate is revoked here, so the CRL is rebuilt at once.
    pub revoked: Notify,
}

impl Partners {
    pub fn new(default_days: u32, max_days: u32, expiry_window_days: u32) -> Self {
        Self {
            ca: RwLock::new(None),
            live: Arc::default(),
            default_days,
            max_days,
            expiry_window_days,
            revoked: Notify::new(),
        }
    }

    /// The issuing CA, when the partner PKI has been created.
    pub fn ca(&self) -> Option<Arc<IssuingCa>> {
        self.ca
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set_ca(&self, ca: IssuingCa) {
        *self
            .ca
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(ca));
    }

    /// Whether a certificate that ends at `not_after` (ms) is within the expiry window.
    pub fn expiring_soon(&self, not_after: i64, now: i64) -> bool {
        let window = i64::from(self.expiry_window_days) * 86_400_000;
        not_after <= now.saturating_add(window)
    }
}

/// The partner a request's connection proved, set by the access layer on
/// `Access::Partner` routes.
#[derive(Clone, Debug)]
pub struct PartnerAuth {
    pub tenant_id: palisade_model::TenantId,
    pub partner: String,
    pub serial: String,
}

/// The presented certificate of a connection, for the access layer and the access log.
pub type ConnCert = Option<Arc<PresentedCert>>;

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the partner PKI does not exist yet; run `palisade pki init`")]
    NoPki,
    #[error("days must be 1 to {0}")]
    BadDays(u32),
    #[error(transparent)]
    BadIdentity(#[from] palisade_pki::partner::IdentityError),
    #[error(transparent)]
    BadCsr(#[from] palisade_pki::partner::CsrError),
    #[error("issuing the certificate: {0}")]
    Pki(#[from] palisade_pki::PkiError),
    #[error("recording the certificate: {0}")]
    Store(#[from] palisade_store::StoreError),
}

/// What to issue: for whom, for how long, and from a CSR (renewal) or with a new key.
#[derive(Debug)]
pub struct IssueRequest<'a> {
    pub tenant: &'a palisade_model::TenantId,
    pub partner: &'a str,
    pub days: Option<u32>,
    /// A renewal: the CSR's key is certified, and the old serial recorded.
    pub renewal: Option<(&'a str, &'a str)>,
}

impl Partners {
    /// Issues a partner certificate with the loaded issuing CA and records it.
    pub async fn issue(
        &self,
        store: &palisade_store::Store,
        request: IssueRequest<'_>,
    ) -> Result<palisade_pki::partner::Issued, IssueError> {
        let ca = self.ca().ok_or(IssueError::NoPki)?;
        let days = request.days.unwrap_or(self.default_days);
        if !(1..=self.max_days).contains(&days) {
            return Err(IssueError::BadDays(self.max_days));
        }
        let identity =
            palisade_pki::partner::PartnerIdentity::new(request.tenant.as_str(), request.partner)?;
        let validity = time::Duration::days(i64::from(days));
        let now = time::OffsetDateTime::now_utc();
        let issued = match request.renewal {
            Some((csr, _)) => ca.issue_for_csr(csr, &identity, validity, now)?,
            None => ca.issue(&identity, validity, now)?,
        };
        store
            .add_partner_cert(palisade_store::NewPartnerCert {
                serial: &issued.serial,
                tenant: request.tenant,
                partner: request.partner,
                not_before: millis(issued.not_before),
                not_after: millis(issued.not_after),
                renewed_from: request.renewal.map(|(_, old)| old),
            })
            .await?;
        Ok(issued)
    }
}

/// Unix milliseconds of a time.
pub fn millis(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PartnerAuth {
    type Rejection = crate::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(crate::ApiError::Forbidden(
                "this route declares no partner access",
            ))
    }
}
