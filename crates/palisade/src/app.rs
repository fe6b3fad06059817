//! Start-up wiring: data directory, keys, TLS material, store, chat service,
//! and the two listeners, in that order. Whatever fails stops start-up with
//! a message that says what and where.

use crate::config::{Config, TlsSource};
use anyhow::Context;
use palisade_chat::Chat;
use palisade_gateway::{AppState, Metrics, ServeHandle, Settings};
use palisade_identity::{PasswordHasher, VisitorTokens};
use palisade_store::Store;
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
    /// Polls the operator's WAF rule file, when there is one.
    waf_watch: Option<tokio::task::JoinHandle<()>>,
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
        if let Some(watch) = &self.waf_watch {
            watch.abort();
        }
        self.public.shutdown(Duration::from_secs(10)).await;
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

/// Opens (creating on first start) everything in `config.data_dir` and starts listening.
pub async fn start(config: &Config, demo_widget_key: Option<String>) -> anyhow::Result<Running> {
    install_crypto_provider();
    let data_dir = &config.data_dir;
    prepare_data_dir(config)?;
    let keys_dir = data_dir.join("keys");

    let material = match &config.tls {
        TlsSource::InternalCa { names } => {
            palisade_pki::load_or_create(&data_dir.join("tls"), names)
        }
        TlsSource::Files { cert, key } => palisade_pki::load_operator_files(cert, key),
    }
    .context("preparing the TLS certificate")?;
    let tls = palisade_gateway::server_config(material.cert_chain()?, material.private_key()?)
        .context("building the TLS configuration")?;

    let visitor_key = crate::keys::load_or_create(&keys_dir.join("visitor-token.key"), 32)?;
    let visitor_tokens =
        VisitorTokens::new(&visitor_key).context("visitor token key is too short")?;
    let passwords = PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;

    let store = Store::connect(&config.database_url, config.database_max_connections)
        .await
        .context("opening the database (database.url)")?;
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
    let waf = palisade_gateway::waf::Waf::load(config.waf_mode, config.waf_rules_file.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the WAF rules (waf.rules_file)")?;
    let waf = Arc::new(waf);
    let waf_watch = waf.clone().watch(Duration::from_secs(2));
    let state = AppState {
        chat: Chat::new(store),
        passwords: Arc::new(passwords),
        password_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        visitor_tokens: Arc::new(visitor_tokens),
        settings: Arc::new(settings),
        metrics: Arc::new(Metrics::default()),
        ended_sessions: tokio::sync::broadcast::channel(256).0,
        limits: Arc::new(palisade_gateway::limits::RateLimiter::new(
            config.limits.clone(),
        )),
        waf,
    };
    let public = palisade_gateway::serve_public(config.public_addr, tls, state.clone())
        .await
        .with_context(|| format!("listening on {} (server.public_addr)", config.public_addr))?;
    let (ops_addr, ops_task) = palisade_gateway::serve_ops(config.ops_addr, state.clone())
        .await
        .with_context(|| format!("listening on {} (server.ops_addr)", config.ops_addr))?;
    Ok(Running {
        public,
        ops_addr,
        ops_task,
        waf_watch,
        state,
        ca_cert_path: material.ca_cert_path.clone(),
    })
}
