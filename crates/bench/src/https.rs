//! Small HTTPS requests at a fixed rate: HTTP/1.1 keep-alive GETs over TLS,
//! one request in flight per connection, latency from the intended send
//! time. Run against any server serving the same path.

use crate::stats::{Latency, Summary};
use crate::target::Target;
use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Plan {
    pub path: String,
    pub connections: usize,
    /// Requests per second over all connections.
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub connections: usize,
    pub offered_per_s: f64,
    pub completed: u64,
    pub completed_per_s: f64,
    pub errors: u64,
    pub body_bytes: usize,
    pub latency: Summary,
}

struct Outcome {
    latency: Latency,
    completed: u64,
    in_window: u64,
    errors: u64,
    body_bytes: usize,
}

pub async fn run(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    plan: &Plan,
) -> anyhow::Result<Report> {
    let mut tls = (**tls).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let connections = plan.connections.max(1);
    let mut streams = Vec::with_capacity(connections);
    for c in 0..connections {
        let tcp = target.connect(c, 1).await.context("TCP connect")?;
        let name = crate::tls::server_name(&target.host)?;
        streams.push(
            connector
                .connect(name, tcp)
                .await
                .context("TLS handshake")?,
        );
    }
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + plan.warmup;
    let end = start + plan.duration;
    let lanes = crate::pace::spawn(plan.rate, start.into_std(), end.into_std(), connections);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: palisade-bench\r\n\r\n",
        plan.path, target.host
    );

    let mut tasks = tokio::task::JoinSet::new();
    for (c, (stream, mut lane)) in streams.into_iter().zip(lanes).enumerate() {
        let request = request.clone();
        tasks.spawn(async move {
            let mut stream = BufReader::new(stream);
            let mut out = Outcome {
                latency: Latency::new(),
                completed: 0,
                in_window: 0,
                errors: 0,
                body_bytes: 0,
            };
            while let Some(due) = lane.recv().await {
                let result = async {
                    stream.get_mut().write_all(request.as_bytes()).await?;
                    read_response(&mut stream).await
                };
                match tokio::time::timeout(Duration::from_secs(10), result).await {
                    Ok(Ok(len)) => {
                        let now = Instant::now();
                        out.completed += 1;
                        out.body_bytes = len;
                        if due >= measure_from {
                            out.latency.record(now - due);
                        }
                        if now >= measure_from && now <= end {
                            out.in_window += 1;
                        }
                    }
                    Ok(Err(err)) => {
                        eprintln!("https: connection {c}: {err:#}");
                        out.errors += 1;
                        break;
                    }
                    Err(_) => {
                        out.errors += 1;
                        break;
                    }
                }
            }
            out
        });
    }

    let mut latency = Latency::new();
    let (mut completed, mut in_window, mut errors, mut body_bytes) = (0, 0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        let out = done.context("a connection task panicked")?;
        latency.merge(&out.latency);
        completed += out.completed;
        in_window += out.in_window;
        errors += out.errors;
        body_bytes = body_bytes.max(out.body_bytes);
    }
    let window = plan
        .duration
        .saturating_sub(plan.warmup)
        .as_secs_f64()
        .max(0.001);
    Ok(Report {
        scenario: "https",
        connections,
        offered_per_s: plan.rate,
        completed,
        completed_per_s: in_window as f64 / window,
        errors,
        body_bytes,
        latency: latency.summary(),
    })
}

/// Reads one response with a `content-length` body; returns the body length.
async fn read_response<R: tokio::io::AsyncBufRead + Unpin>(
    stream: &mut R,
) -> anyhow::Result<usize> {
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        bail!("status line {:?}", line.trim_end());
    }
    let mut length = None;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("connection closed inside the headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.context("response has no content-length")?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_response_is_read_to_the_end_of_its_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 200 OK\r\n";
        let mut reader = BufReader::new(&raw[..]);
        assert_eq!(read_response(&mut reader).await.expect("parsed"), 5);
        let mut rest = String::new();
        reader.read_line(&mut rest).await.expect("rest");
        assert_eq!(rest, "HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn a_non_200_is_an_error() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        assert!(read_response(&mut reader).await.is_err());
    }
}
