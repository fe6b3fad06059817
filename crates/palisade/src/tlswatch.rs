//! Keeping the public listener's TLS configuration current without a restart: the partner
//! CRL after every revocation (made here, by the CLI or by another node sharing the
//! database), the issuing CA once `palisade pki init` ran, and a server certificate
//! replaced on disk. Also the audit of refused client certificates and the certificate
//! expiry alerts.
//!
//! A rebuild that fails keeps the configuration in use (logged as an error); the access
//! layer still checks every partner certificate against the database on each request, so
//! a revocation is refused there even before the new CRL is in place.

use crate::config::TlsSource;
use anyhow::Context;
use palisade_audit::{ActorKind, Event, Outcome};
use palisade_gateway::partner::{Partners, Refusal, RefusalSink};
use palisade_gateway::{AppState, TlsSwap};
use palisade_pki::TlsMaterial;
use palisade_store::Store;
use palisade_vault::{Access, Vault};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// How often the CRL is signed again even when nothing was revoked (it is declared current
/// for seven days).
const CRL_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// The server certificate chain and key as last loaded, to notice a replacement.
#[derive(PartialEq, Eq)]
pub(crate) struct ServerFiles {
    chain: String,
    key: String,
}

/// What the listener's configuration is built from.
pub(crate) struct ListenerTls {
    pub(crate) source: TlsSource,
    pub(crate) data_dir: PathBuf,
    pub(crate) refusals: RefusalSink,
}

impl ListenerTls {
    /// The server certificate and key files in use.
    fn paths(&self) -> (PathBuf, PathBuf) {
        match &self.source {
            TlsSource::InternalCa { .. } => {
                let dir = self.data_dir.join("tls");
                (dir.join("server.pem"), dir.join("server-key.pem"))
            }
            TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        }
    }

    /// A configuration for `material`, asking for partner certificates once the PKI exists.
    pub(crate) async fn build(
        &self,
        store: &Store,
        partners: &Partners,
        material: &TlsMaterial,
    ) -> anyhow::Result<(rustls::ServerConfig, ServerFiles)> {
        let trust = match partners.ca() {
            Some(ca) => crate::pkicmd::client_trust(store, &ca).await?,
            None => None,
        };
        let config = palisade_gateway::server_config_for(
            material.cert_chain()?,
            material.private_key()?,
            trust.as_ref(),
            &self.refusals,
        )?;
        let files = ServerFiles {
            chain: material.server_cert_chain_pem.clone(),
            key: material.server_key_pem.clone(),
        };
        Ok((config, files))
    }
}

/// The task that rebuilds the listener's configuration when something changed.
pub(crate) struct TlsWatch {
    pub(crate) state: AppState,
    pub(crate) vault: Vault,
    pub(crate) access: Access,
    pub(crate) listener_tls: ListenerTls,
    pub(crate) swap: TlsSwap,
    pub(crate) files: ServerFiles,
    pub(crate) interval: Duration,
}

impl TlsWatch {
    pub(crate) async fn run(mut self) {
        let mut mark = None;
        let mut signed = Instant::now();
        let mut material = None;
        loop {
            let partners = self.state.partners.clone();
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = partners.revoked.notified() => {}
            }
            let store = self.state.chat.store().clone();
            let mut rebuild = signed.elapsed() >= CRL_REFRESH;

            if partners.ca().is_none() {
                match crate::pkicmd::load_issuing(&store, &self.vault, &self.access).await {
                    Ok(Some(ca)) => {
                        partners.set_ca(ca);
                        tracing::info!(
                            "partner PKI found; the listener now asks for client certificates"
                        );
                        rebuild = true;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "loading the partner CA failed")
                    }
                }
            }

            let mut revoked = false;
            match store.revocation_mark().await {
                Ok(now) if mark != Some(now) => {
                    mark = Some(now);
                    rebuild = true;
                    revoked = true;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "checking for revocations failed"),
            }

            match self.replaced_server_files() {
                Ok(Some(loaded)) => {
                    material = Some(loaded);
                    rebuild = true;
                }
                Ok(None) => {}
                // Most often a replacement caught half-way (the key before the certificate):
                // the next tick sees both.
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    "the server certificate files cannot be used yet"
                ),
            }

            if rebuild {
                self.rebuild(&store, material.as_ref()).await;
                signed = Instant::now();
            }
            // After the new CRL is in place: a connection made before it is closed here,
            // one made after it never completed its handshake.
            if revoked {
                self.close_revoked(&store).await;
            }
        }
    }

    /// Closes the open connections of every revoked certificate.
    async fn close_revoked(&self, store: &Store) {
        let now = palisade_model::now_millis();
        let Ok(revoked) = store.revoked_partner_certs(now).await else {
            return;
        };
        for (serial, _) in revoked {
            let closed = self.state.partners.live.close_serial(&serial);
            if closed > 0 {
                tracing::info!(%serial, closed, "closed connections of a revoked partner certificate");
            }
        }
    }

    /// The server certificate and key when they differ from those in use and form a pair.
    fn replaced_server_files(&self) -> anyhow::Result<Option<TlsMaterial>> {
        let (cert, key) = self.listener_tls.paths();
        let chain = std::fs::read_to_string(&cert)
            .with_context(|| format!("reading {}", cert.display()))?;
        let key_text =
            std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
        if chain == self.files.chain && key_text == self.files.key {
            return Ok(None);
        }
        Ok(Some(palisade_pki::load_operator_files(&cert, &key)?))
    }

    async fn rebuild(&mut self, store: &Store, replaced: Option<&TlsMaterial>) {
        let (cert, key) = self.listener_tls.paths();
        let material = match replaced {
            Some(material) => Ok(material.clone()),
            None => palisade_pki::load_operator_files(&cert, &key).map_err(anyhow::Error::from),
        };
        let built = match material {
            Ok(material) => {
                self.listener_tls
                    .build(store, &self.state.partners, &material)
                    .await
            }
            Err(err) => Err(err),
        };
        match built {
            Ok((config, files)) => {
                let new_cert = files != self.files;
                self.swap.replace(config);
                self.files = files;
                if new_cert {
                    tracing::info!(file = %cert.display(), "server certificate reloaded");
                } else {
                    tracing::info!("partner CRL reloaded");
                }
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "rebuilding the TLS configuration failed; the previous one stays in use"
                );
            }
        }
    }
}

/// Writes each refused client-certificate handshake to the audit log.
pub(crate) async fn audit_refusals(
    state: AppState,
    mut refused: tokio::sync::mpsc::Receiver<Refusal>,
) {
    while let Some(refusal) = refused.recv().await {
        let serial = refusal.serial.unwrap_or_else(|| "unparseable".into());
        let event = Event {
            actor_kind: ActorKind::Partner,
            actor_id: serial.clone(),
            tenant_id: None,
            action: "partner.tls_refused",
            target: format!("serial {serial}: {}", refusal.reason),
            outcome: Outcome::Denied,
            source: "tls".into(),
            request_id: uuid::Uuid::new_v4().simple().to_string(),
        };
        if let Err(err) = state.audit.record(event).await {
            tracing::error!(target: "palisade::alert", alert = "audit_write_failed", error = %err,
                "a refused client certificate could not be audited");
        }
    }
}

/// Once at start and then every ten minutes: partner, intermediate and server certificates
/// that expire within `window_days` are counted for the metrics and raise an alert
/// (`palisade::alert`) once each.
pub(crate) async fn watch_cert_expiry(state: AppState, server_cert: PathBuf, window_days: u32) {
    let mut alerted = std::collections::HashSet::new();
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let now = palisade_model::now_millis();
        let horizon = now.saturating_add(i64::from(window_days) * 86_400_000);
        let mut expiring: Vec<(String, i64)> = Vec::new();
        let store = state.chat.store();
        if let Ok(certs) = store.partner_certs(None).await {
            expiring.extend(
                certs
                    .into_iter()
                    .filter(|c| {
                        c.revoked_at.is_none() && c.not_after > now && c.not_after <= horizon
                    })
                    .map(|c| {
                        (
                            format!("partner {} serial {}", c.partner, c.serial),
                            c.not_after,
                        )
                    }),
            );
        }
        if let Ok(Some((_, not_after))) = store.pki_authority("intermediate").await
            && not_after <= horizon
        {
            expiring.push(("partner intermediate CA".into(), not_after));
        }
        let server = std::fs::read_to_string(&server_cert).ok();
        if let Some(at) = server
            .as_deref()
            .and_then(palisade_pki::partner::not_after_of)
        {
            let at = palisade_gateway::partner::millis(at);
            if at <= horizon {
                expiring.push((format!("server certificate {}", server_cert.display()), at));
            }
        }
        let count = u64::try_from(expiring.len()).unwrap_or(u64::MAX);
        state.metrics.certificates_expiring.store(count, Relaxed);
        for (what, not_after) in expiring {
            if alerted.insert((what.clone(), not_after)) {
                tracing::warn!(target: "palisade::alert", alert = "certificate_expiring",
                    certificate = %what, not_after, "a certificate expires soon; renew it");
            }
        }
    }
}
