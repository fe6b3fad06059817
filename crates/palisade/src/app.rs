//! Start-up wiring: data directory, keys, TLS material, store, chat service,
//! and the two listeners, in that order. Whatever fails stops start-up with
//! a message that says what and where.

use crate::config::{Config, TlsSource};
use crate::tlswatch::{ListenerTls, TlsWatch, audit_refusals};
use anyhow::Context;
use palisade_audit::{ActorKind, Auditor, CheckpointSigner};
use palisade_chat::Chat;
use palisade_crypto::KeyProvider;
use palisade_gateway::{AppState, Metrics, ServeHandle, Settings};
use palisade_identity::{PasswordHasher, VisitorTokens};
use palisade_store::Store;
use palisade_vault::{Access, Policy, Principal, Vault};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A running Palisade.
#[derive(Debug)]
pub struct Running {
    pub public: ServeHandle,
    pub ops_addr: SocketAddr,
    ops_task: tokio::task::JoinHandle<()>,
    checkpoint_task: tokio::task::JoinHandle<()>,
    /// Polls the operator's WAF rule file, when there is one.
    waf_watch: Option<tokio::task::JoinHandle<()>>,
    /// Raises alerts for vault secrets near expiry.
    expiry_watch: tokio::task::JoinHandle<()>,
    /// Applies revocations and a replaced server certificate to the listener.
    tls_watch: tokio::task::JoinHandle<()>,
    /// Writes refused client-certificate handshakes to the audit log.
    refusal_task: tokio::task::JoinHandle<()>,
    /// Raises alerts for certificates near expiry.
    cert_expiry_watch: tokio::task::JoinHandle<()>,
    pub state: AppState,
    /// The certificate clients must trust (the internal CA's, or the
    /// operator's chain).
    pub ca_cert_path: PathBuf,
}

impl Running {
    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr
    }

    /// Stops both listeners, lets open requests finish, closes the database.
    pub async fn shutdown(self) {
        self.ops_task.abort();
        self.expiry_watch.abort();
        self.tls_watch.abort();
        self.refusal_task.abort();
        self.cert_expiry_watch.abort();
        if let Some(watch) = &self.waf_watch {
            watch.abort();
        }
        self.public.shutdown(Duration::from_secs(10)).await;
        self.state.webhooks.shutdown();
        self.checkpoint_task.abort();
        // Sign the tail, so a verifier can tell a clean stop from a cut log.
        if let Err(err) = self.state.audit.checkpoint().await {
            tracing::warn!(error = %err, "final audit checkpoint failed");
        }
        self.state.chat.store().close().await;
    }
}

/// Installs the process-wide TLS crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Creates the data directory and its keys folder, owner-only.
pub fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    for dir in [config.data_dir.clone(), config.data_dir.join("keys")] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", dir.display()))?;
    }
    Ok(())
}

/// Where the master key comes from: `PALISADE_MASTER_KEY` when set, else
/// the key file `<data_dir>/keys/master.key`.
pub fn key_provider(config: &Config) -> anyhow::Result<Arc<dyn KeyProvider>> {
    let env = config.master_key.as_ref().map(|k| k.expose().to_owned());
    let provider =
        palisade_crypto::provider_for(&config.data_dir, env).context("reading the master key")?;
    Ok(Arc::from(provider))
}

/// Opens the database with the configured master key; a missing or wrong
/// key over existing data stops here, saying which key and where.
pub async fn open_store(config: &Config, max_connections: u32) -> anyhow::Result<Store> {
    prepare_data_dir(config)?;
    let keys = key_provider(config)?;
    Store::connect(&config.database_url, max_connections, keys)
        .await
        .context("opening the database (database.url)")
}

/// The vault name of the key that signs audit checkpoints.
pub const AUDIT_SIGNING_KEY: &str = "audit.signing-key";
/// The vault name of the key that signs visitor tokens.
pub const VISITOR_TOKEN_KEY: &str = "visitor-token.hmac-key";

/// An access by Palisade itself, for the audit log.
pub fn system_access(component: &str, reason: &str, source: &str) -> Access {
    Access {
        actor_kind: ActorKind::System,
        actor_id: "palisade".into(),
        principal: Principal::System(component.into()),
        source: source.into(),
        reason: reason.into(),
        request_id: uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// The audit log's appender and the vault. The checkpoint signing key lives
/// in the vault (imported from `<data_dir>/keys/audit-signing.key` by older
/// data directories, then that file is removed); its read at start-up is
/// the first thing audited, and start-up stops if it cannot be.
pub async fn open_auditor(
    config: &Config,
    store: Store,
    source: &str,
) -> anyhow::Result<(Auditor, Vault)> {
    let legacy = config.data_dir.join("keys").join("audit-signing.key");
    let policy = Policy {
        readers: vec!["system:audit".into()],
        ..Policy::default()
    };
    let (seed, origin) =
        palisade_vault::bootstrap_platform_secret(&store, AUDIT_SIGNING_KEY, &legacy, 32, &policy)
            .await
            .context("loading the audit signing key from the vault")?;
    let signer = CheckpointSigner::from_seed(seed.expose())
        .context("the audit signing key in the vault is not 32 bytes")?;
    let auditor = Auditor::new(store.clone(), signer, config.audit_checkpoints);
    let vault = Vault::new(store, auditor.clone());
    let access = system_access("audit", "sign audit checkpoints", source);
    vault
        .record_bootstrap(AUDIT_SIGNING_KEY, seed.version, origin, &access)
        .await
        .context("recording the audit signing key's use")?;
    Ok((auditor, vault))
}

/// The visitor-token keys: the current one and any replaced one still in
/// its overlap (as long as a token lives), from the vault; an older data
/// directory's `keys/visitor-token.key` is imported on first start.
async fn visitor_tokens(config: &Config, vault: &Vault) -> anyhow::Result<VisitorTokens> {
    let policy = Policy {
        overlap_secs: config.visitor_token_ttl.as_secs(),
        readers: vec!["system:gateway".into()],
        ..Policy::default()
    };
    let legacy = config.data_dir.join("keys").join("visitor-token.key");
    let access = system_access("gateway", "sign and check visitor tokens", "internal");
    let (keys, _) = palisade_vault::ensure_platform_secret(
        vault,
        VISITOR_TOKEN_KEY,
        &legacy,
        32,
        policy,
        &access,
    )
    .await
    .context("loading the visitor token key from the vault")?;
    let (current, previous) = keys
        .split_first()
        .context("the vault returned no visitor token key")?;
    let previous: Vec<&[u8]> = previous.iter().map(|k| k.expose()).collect();
    VisitorTokens::with_previous(current.expose(), &previous)
        .context("a visitor token key in the vault is shorter than 32 bytes")
}

/// Opens (creating on first start) everything in `config.data_dir` and starts listening.
pub async fn start(config: &Config, demo_widget_key: Option<String>) -> anyhow::Result<Running> {
    install_crypto_provider();
    let data_dir = &config.data_dir;
    prepare_data_dir(config)?;

    let material = match &config.tls {
        TlsSource::InternalCa { names } => {
            palisade_pki::load_or_create(&data_dir.join("tls"), names)
        }
        TlsSource::Files { cert, key } => palisade_pki::load_operator_files(cert, key),
    }
    .context("preparing the TLS certificate")?;

    let passwords = PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;

    let store = open_store(config, config.database_max_connections).await?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let settings = Settings {
        public_origin: config.public_origin.clone(),
        session_idle: config.session_idle,
        session_absolute: config.session_absolute,
        visitor_token_ttl: config.visitor_token_ttl,
        handshake_timeout: config.handshake_timeout,
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        max_connections: config.max_connections,
        demo_widget_key,
        max_connections_per_address: config.max_connections_per_address,
        body_read_timeout: config.body_read_timeout,
        max_body_bytes: config.max_body_bytes,
        max_header_bytes: config.max_header_bytes,
        http2_max_concurrent_streams: config.http2_max_concurrent_streams,
        websocket_max_message_bytes: config.websocket_max_message_bytes,
    };
    let (audit, vault) = open_auditor(config, store.clone(), "internal").await?;
    let visitor_tokens = visitor_tokens(config, &vault).await?;
    let checkpoint_task = audit.spawn_checkpoints();
    let waf = palisade_gateway::waf::Waf::load(config.waf_mode, config.waf_rules_file.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the WAF rules (waf.rules_file)")?;
    let waf = Arc::new(waf);
    let waf_watch = waf.clone().watch(Duration::from_secs(2));
    if !config.webhooks.allow_targets.is_empty() {
        tracing::warn!(
            "webhooks.allow_targets is set: webhook deliveries may reach the networks it lists"
        );
    }
    let (webhooks, outbound) =
        palisade_webhooks::Webhooks::start(store.clone(), vault.clone(), config.webhooks.clone())
            .await
            .context("starting webhook delivery (webhooks.*)")?;
    let partners = Arc::new(crate::pkicmd::partners(config));
    let pki_access = system_access(
        "pki",
        "issue partner certificates and sign the CRL",
        "internal",
    );
    if let Some(ca) = crate::pkicmd::load_issuing(&store, &vault, &pki_access).await? {
        partners.set_ca(ca);
    }
    let (refusals, refused) = palisade_gateway::partner::RefusalSink::new();
    let listener_tls = ListenerTls {
        source: config.tls.clone(),
        data_dir: data_dir.clone(),
        refusals,
    };
    let (tls, files) = listener_tls
        .build(&store, &partners, &material)
        .await
        .context("building the TLS configuration")?;
    let state = AppState {
        vault: vault.clone(),
        audit,
        chat: Chat::with_outbound(store, Some(outbound)),
        webhooks,
        passwords: Arc::new(passwords),
        password_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        visitor_tokens: Arc::new(visitor_tokens),
        settings: Arc::new(settings),
        metrics: Arc::new(Metrics::default()),
        ended_sessions: tokio::sync::broadcast::channel(256).0,
        login_throttle: Arc::new(palisade_gateway::LoginThrottle::new(config.login_throttle)),
        limits: Arc::new(palisade_gateway::limits::RateLimiter::new(
            config.limits.clone(),
        )),
        waf,
        partners,
    };
    let public = palisade_gateway::serve_public(config.public_addr, tls, state.clone())
        .await
        .with_context(|| format!("listening on {} (server.public_addr)", config.public_addr))?;
    let (ops_addr, ops_task) = palisade_gateway::serve_ops(config.ops_addr, state.clone())
        .await
        .with_context(|| format!("listening on {} (server.ops_addr)", config.ops_addr))?;
    let refusal_task = tokio::spawn(audit_refusals(state.clone(), refused));
    let watch = TlsWatch {
        state: state.clone(),
        vault,
        access: pki_access,
        listener_tls,
        swap: public.tls_swap(),
        files,
        interval: config.pki.watch_interval,
    };
    let tls_watch = tokio::spawn(watch.run());
    let expiry_watch = tokio::spawn(watch_secret_expiry(state.clone()));
    let cert_expiry_watch = tokio::spawn(crate::tlswatch::watch_cert_expiry(
        state.clone(),
        material.server_cert_path.clone(),
        config.pki.expiry_warning_days,
    ));
    Ok(Running {
        public,
        ops_addr,
        ops_task,
        checkpoint_task,
        waf_watch,
        expiry_watch,
        tls_watch,
        refusal_task,
        cert_expiry_watch,
        state,
        ca_cert_path: material.ca_cert_path.clone(),
    })
}

/// How far ahead a secret's expiry raises an alert.
const EXPIRY_WARNING_MS: i64 = 7 * 24 * 3600 * 1000;

/// Every ten minutes, counts the vault secrets whose current version expires
/// within [`EXPIRY_WARNING_MS`] (or has expired) for the metrics, and raises
/// an alert (`palisade::alert` log target) once per secret version. Reads
/// metadata only, never a value.
async fn watch_secret_expiry(state: AppState) {
    let mut alerted = std::collections::HashSet::new();
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let horizon = palisade_model::now_millis().saturating_add(EXPIRY_WARNING_MS);
        let expiring = match state.chat.store().vault_expiring(horizon).await {
            Ok(expiring) => expiring,
            Err(err) => {
                tracing::warn!(error = %err, "checking vault secrets for expiry failed");
                continue;
            }
        };
        let count = u64::try_from(expiring.len()).unwrap_or(u64::MAX);
        state
            .metrics
            .secrets_expiring
            .store(count, std::sync::atomic::Ordering::Relaxed);
        for (scope, name, version, expires_at) in expiring {
            if alerted.insert((scope.clone(), name.clone(), version)) {
                tracing::warn!(target: "palisade::alert", alert = "secret_expiring", %scope,
                    secret = %name, version, expires_at, "a vault secret expires soon; rotate it");
            }
        }
    }
}
