//! Full TLS handshakes per second: connect, handshake with resumption off,
//! close, repeat, from several tasks at once. With the server's pid, also
//! handshakes per second of server CPU time, which is the fair figure when
//! the generator (verifying two signatures per handshake) is the busier side.

use crate::target::Target;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub concurrency: usize,
    pub handshakes: u64,
    pub errors: u64,
    pub per_s: f64,
    pub server_cpu_s: f64,
    /// Handshakes per second of server CPU (per core fully used).
    pub per_server_core_s: f64,
    pub tls_version: String,
    pub cipher_suite: String,
}

pub async fn run(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    concurrency: usize,
    duration: Duration,
    sources: usize,
    server_pid: Option<u32>,
) -> anyhow::Result<Report> {
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = match server_pid {
        Some(pid) => crate::procfs::cpu_seconds(pid)?,
        None => 0.0,
    };
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let (connector, target) = (connector.clone(), target.clone());
        let (done, errors) = (done.clone(), errors.clone());
        tasks.spawn(async move {
            let mut negotiated = None;
            let mut i = worker;
            while Instant::now() < end {
                let attempt = async {
                    let tcp = target.connect(i, sources).await?;
                    let name = crate::tls::server_name(&target.host)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    let mut stream = connector.connect(name, tcp).await?;
                    let (_, session) = stream.get_ref();
                    let seen = (
                        format!("{:?}", session.protocol_version()),
                        format!(
                            "{:?} {:?}",
                            session.negotiated_cipher_suite().map(|s| s.suite()),
                            session.negotiated_key_exchange_group().map(|g| g.name()),
                        ),
                    );
                    let _ = stream.shutdown().await;
                    Ok::<_, std::io::Error>(seen)
                };
                match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                    Ok(Ok(seen)) => {
                        done.fetch_add(1, Relaxed);
                        negotiated.get_or_insert(seen);
                    }
                    Ok(Err(err)) => {
                        if errors.fetch_add(1, Relaxed) == 0 {
                            eprintln!("handshake: {err}");
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Relaxed);
                    }
                }
                i += concurrency;
            }
            negotiated
        });
    }
    let mut negotiated = None;
    while let Some(seen) = tasks.join_next().await {
        if let Ok(Some(seen)) = seen {
            negotiated.get_or_insert(seen);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu_s = match server_pid {
        Some(pid) => crate::procfs::cpu_seconds(pid)? - cpu_before,
        None => 0.0,
    };
    let handshakes = done.load(Relaxed);
    let (tls_version, cipher_suite) = negotiated.unwrap_or_default();
    Ok(Report {
        scenario: "handshake",
        concurrency,
        handshakes,
        errors: errors.load(Relaxed),
        per_s: handshakes as f64 / elapsed,
        server_cpu_s,
        per_server_core_s: if server_cpu_s > 0.0 {
            handshakes as f64 / server_cpu_s
        } else {
            0.0
        },
        tls_version,
        cipher_suite,
    })
}
