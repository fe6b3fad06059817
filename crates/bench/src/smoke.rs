//! The CI smoke run: Palisade started in-process on a temporary data
//! directory and loopback ports, the demo tenant seeded, and a second of
//! chat load through the real TLS WebSocket path. It checks only that the
//! load works (messages acked, nothing failed), never how fast.

use crate::chat::{Cast, Plan, Report};
use crate::setup::Api;
use crate::target::Target;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// Starts Palisade, runs `plan` with `visitors` visitors and one agent, stops it.
pub async fn run(visitors: usize, plan: &Plan) -> anyhow::Result<Report> {
    let data_dir = std::env::temp_dir().join(format!(
        "palisade-bench-smoke-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let env = [
        ("PALISADE_DATA_DIR", data_dir.display().to_string()),
        ("PALISADE_SERVER__PUBLIC_ADDR", "127.0.0.1:0".to_owned()),
        ("PALISADE_SERVER__OPS_ADDR", "127.0.0.1:0".to_owned()),
        ("PALISADE_DATABASE__MAX_CONNECTIONS", "4".to_owned()),
        // Capacity, not quotas: one generator address would hit these.
        ("PALISADE_LIMITS__SEND_PER_ADDRESS", "off".to_owned()),
        ("PALISADE_LIMITS__SEND_PER_CREDENTIAL", "off".to_owned()),
        ("PALISADE_LIMITS__SEND_PER_TENANT", "off".to_owned()),
        (
            "PALISADE_LIMITS__WS_MESSAGES_PER_CONNECTION",
            "off".to_owned(),
        ),
        ("PALISADE_LIMITS__SESSION_PER_ADDRESS", "off".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let config = palisade::config::Config::load(None, env)?;
    let running = palisade::app::start(&config, None)
        .await
        .context("starting Palisade in-process")?;
    let origin = running.state.settings.public_origin.clone();
    let outcome = load(&running, &origin, visitors, plan).await;
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    outcome
}

async fn load(
    running: &palisade::app::Running,
    origin: &str,
    visitors: usize,
    plan: &Plan,
) -> anyhow::Result<Report> {
    let store = running.state.chat.store();
    let demo = palisade::demo::ensure(store, &running.state.passwords, origin, false).await?;
    let password = demo
        .owner_password
        .context("a fresh data directory gives the demo agent a new password")?;

    let target = Target::parse(&format!(
        "https://127.0.0.1:{}",
        running.public_addr().port()
    ))
    .await?;
    let tls = Arc::new(crate::tls::client_config(&running.ca_cert_path, &[], true)?);
    let api = Api::new(&target, &tls)?;
    let cast = Cast {
        visitors: api.visitors(&demo.widget.public_key, visitors, 8).await?,
        agents: api
            .agent_sessions(&demo.owner_email, password.expose(), 1)
            .await?,
        origin: origin.to_owned(),
    };
    crate::chat::run(&target, &tls, &cast, plan).await
}

/// The smoke plan: a small rate for about a second.
pub fn plan() -> Plan {
    Plan {
        rate: 200.0,
        duration: Duration::from_millis(1500),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(10),
        body_len: 40,
        sources: 1,
        server_pid: None,
    }
}
