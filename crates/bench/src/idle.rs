//! Idle connections: open N TLS WebSockets, let them sit, and read how much
//! the server's resident memory grew per connection.

use crate::setup::{Visitor, Ws, dial};
use crate::target::Target;
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// What the sockets do after connecting.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Palisade visitor sockets, each past `hello`.
    Palisade(Vec<Visitor>),
    /// Plain WebSockets on `/` (the echo server).
    Plain(usize),
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub connections: usize,
    pub failed: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub bytes_per_connection: u64,
}

/// Opens the sockets 64 at a time, waits `settle`, measures, then closes them.
pub async fn run(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    kind: Kind,
    server_pid: u32,
    sources: usize,
    settle: Duration,
) -> anyhow::Result<Report> {
    let rss_before_kib = crate::procfs::rss_kib(server_pid)?;
    let count = match &kind {
        Kind::Palisade(visitors) => visitors.len(),
        Kind::Plain(count) => *count,
    };
    let kind = &kind;
    let opened: Vec<anyhow::Result<Ws>> = futures_util::stream::iter(0..count)
        .map(|i| async move {
            match kind {
                Kind::Palisade(visitors) => {
                    let mut ws = dial(target, tls, "/v1/visitor/ws", &[], i, sources).await?;
                    crate::chat::hello(&mut ws, &visitors[i]).await?;
                    Ok(ws)
                }
                Kind::Plain(_) => dial(target, tls, "/", &[], i, sources).await,
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut failed = 0;
    let mut readers = tokio::task::JoinSet::new();
    for ws in opened {
        match ws {
            // Keep reading, so the server's keep-alive pings are answered.
            Ok(mut ws) => {
                readers.spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
            }
            Err(err) => {
                if failed == 0 {
                    eprintln!("idle: a connection failed: {err:#}");
                }
                failed += 1;
            }
        }
    }
    tokio::time::sleep(settle).await;
    let rss_after_kib = crate::procfs::rss_kib(server_pid)?;
    let connected = count - failed;
    readers.abort_all();
    let grown = rss_after_kib.saturating_sub(rss_before_kib) * 1024;
    Ok(Report {
        scenario: "idle",
        connections: connected,
        failed,
        rss_before_kib,
        rss_after_kib,
        bytes_per_connection: grown / connected.max(1) as u64,
    })
}
