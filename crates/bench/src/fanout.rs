//! Room fan-out: M publishers broadcast on a fixed wall-clock schedule and
//! every one of N subscriber sockets receives every message, so one send
//! costs the server N deliveries.
//!
//! On Palisade the subscribers are agent sockets of one tenant (each gets
//! every message of the tenant) and the publishers are visitor sockets; the
//! run is the chat scenario with N agent sockets, so each message is also
//! committed to the database before it fans out. On nats-server the
//! subscribers and publishers are WebSocket clients of one subject, speaking
//! the few operations of the NATS text protocol this module implements
//! (`CONNECT`, `SUB`, `PUB`, `PING`/`PONG` out; `INFO`, `MSG`, `PING`,
//! `PONG`, `+OK`, `-ERR` in). NATS core keeps nothing: it forwards only.
//!
//! Latency counts from the intended send time, which each NATS payload
//! carries (nanoseconds after the schedule's start) the way a Palisade
//! `client_msg_id` does.

use crate::setup::{Ws, dial};
use crate::stats::{Latency, Summary};
use crate::tally::{Clock, CpuMeter, Errors};
use crate::target::Target;
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;

/// The most subscriber sockets and the longest schedule a run may ask for.
pub const MAX_SUBSCRIBERS: usize = 500;
pub const MAX_DURATION: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub subscribers: usize,
    pub publishers: usize,
    /// Broadcasts per second over all publishers.
    pub rate: f64,
    pub duration: Duration,
    /// Broadcasts in the first part of the schedule are not recorded.
    pub warmup: Duration,
    /// How long subscribers wait for missing deliveries after the last send.
    pub drain: Duration,
    pub body_len: usize,
    pub sources: usize,
    pub server_pid: Option<u32>,
}

impl Plan {
    /// Refuses runs beyond the bounds this scenario promises.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.subscribers == 0 || self.subscribers > MAX_SUBSCRIBERS {
            bail!("--subscribers must be 1 to {MAX_SUBSCRIBERS}");
        }
        if self.publishers == 0 || self.publishers > MAX_SUBSCRIBERS {
            bail!("--publishers must be 1 to {MAX_SUBSCRIBERS}");
        }
        if self.duration > MAX_DURATION || self.drain > MAX_DURATION {
            bail!("--duration and --drain must be at most 10 seconds");
        }
        Ok(())
    }
}

/// What was measured, the same shape for both servers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub server: &'static str,
    pub subscribers: usize,
    pub publishers: usize,
    pub offered_per_s: f64,
    pub sent: u64,
    pub delivered: u64,
    /// Deliveries expected (sent × subscribers) that never arrived.
    pub missing: u64,
    /// Deliveries received inside the measured window, per second.
    pub deliveries_per_s: f64,
    pub delivery: Summary,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub generator_cores: f64,
    pub server_cores: f64,
}

impl Report {
    /// Palisade's run, read from the chat scenario's report.
    pub fn from_chat(chat: &crate::chat::Report, plan: &Plan) -> Self {
        Self {
            scenario: "fanout",
            server: "palisade",
            subscribers: chat.agents,
            publishers: chat.visitors,
            offered_per_s: plan.rate,
            sent: chat.sent,
            delivered: chat.delivered,
            missing: (chat.sent * chat.agents as u64).saturating_sub(chat.delivered),
            deliveries_per_s: chat.delivered_per_s,
            delivery: chat.delivery,
            errors: chat.errors,
            error_samples: chat.error_samples.clone(),
            generator_cores: chat.generator_cores,
            server_cores: chat.server_cores,
        }
    }
}

/// One operation the NATS server sends a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Op {
    Info,
    Msg(Vec<u8>),
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// Reassembles server operations from WebSocket frames: a frame may hold
/// several operations, or part of one.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete operation, or `None` until more bytes arrive.
    pub fn next_op(&mut self) -> anyhow::Result<Option<Op>> {
        let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&self.buf[..eol]).context("a non-UTF-8 control line")?;
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let (op, used) = match verb.as_str() {
            "MSG" => {
                // MSG <subject> <sid> [reply-to] <#bytes>
                let size: usize = line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .with_context(|| format!("a MSG line without a size: {line:?}"))?;
                let end = eol + 2 + size;
                if self.buf.len() < end + 2 {
                    return Ok(None);
                }
                (Op::Msg(self.buf[eol + 2..end].to_vec()), end + 2)
            }
            "INFO" => (Op::Info, eol + 2),
            "PING" => (Op::Ping, eol + 2),
            "PONG" => (Op::Pong, eol + 2),
            "+OK" => (Op::Ok, eol + 2),
            "-ERR" => (Op::Err(line.to_owned()), eol + 2),
            _ => bail!("an unknown operation: {line:?}"),
        };
        self.buf.drain(..used);
        Ok(Some(op))
    }
}

const SUBJECT: &str = "palisade.bench.room";
const CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\
                       \"name\":\"palisade-bench\",\"lang\":\"rust\",\"version\":\"0\",\"protocol\":1}\r\n";

/// A NATS WebSocket client past `CONNECT`, with its read buffer.
struct Client {
    ws: Ws,
    parser: Parser,
}

impl Client {
    async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.ws
            .send(Frame::Binary(text.into_bytes().into()))
            .await?;
        Ok(())
    }

    /// The next operation, answering the server's pings on the way.
    async fn next_op(&mut self) -> anyhow::Result<Option<Op>> {
        loop {
            match self.parser.next_op()? {
                Some(Op::Ping) => self.send("PONG\r\n".into()).await?,
                Some(op) => return Ok(Some(op)),
                None => match self.ws.next().await {
                    None => return Ok(None),
                    Some(frame) => match frame? {
                        Frame::Binary(bytes) => self.parser.push(&bytes),
                        Frame::Text(text) => self.parser.push(text.as_bytes()),
                        Frame::Close(_) => return Ok(None),
                        _ => {}
                    },
                },
            }
        }
    }

    /// Sends `extra` after `CONNECT`, then a `PING`, and waits for the
    /// `PONG`: the server has then processed everything before it.
    async fn open(ws: Ws, extra: &str) -> anyhow::Result<Self> {
        let mut client = Self {
            ws,
            parser: Parser::default(),
        };
        client.send(format!("{CONNECT}{extra}PING\r\n")).await?;
        let wait = async {
            loop {
                match client.next_op().await? {
                    Some(Op::Pong) => return Ok(()),
                    Some(Op::Err(line)) => bail!("the server refused: {line}"),
                    Some(_) => {}
                    None => bail!("closed before PONG"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .context("no PONG within 15 s")??;
        Ok(client)
    }
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
    errors: Errors,
    publishers_left: AtomicU64,
    delivery: Mutex<Latency>,
}

/// Runs the fan-out against nats-server's WebSocket listener.
pub async fn run_nats(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    plan: &Plan,
) -> anyhow::Result<Report> {
    plan.check()?;
    let sub = format!("SUB {SUBJECT} 1\r\n");
    let subscribers: Vec<Client> = futures_util::stream::iter(0..plan.subscribers)
        .map(|i| {
            let sub = sub.clone();
            async move {
                let ws = dial(target, tls, "/", &[], i, plan.sources).await?;
                Client::open(ws, &sub).await
            }
        })
        .buffered(64)
        .collect::<Vec<anyhow::Result<Client>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()
        .context("subscriber socket")?;
    let mut publishers = Vec::with_capacity(plan.publishers);
    for i in 0..plan.publishers {
        let ws = dial(target, tls, "/", &[], plan.subscribers + i, plan.sources).await?;
        publishers.push(Client::open(ws, "").await.context("publisher socket")?);
    }

    let start = Instant::now() + Duration::from_millis(200);
    let clock = Clock {
        start,
        measure_from: start + plan.warmup,
        end: start + plan.duration,
        give_up: start + plan.duration + plan.drain,
    };
    let shared = Arc::new(Shared::default());
    shared
        .publishers_left
        .store(plan.publishers as u64, Relaxed);
    let lanes = crate::pace::spawn(
        plan.rate,
        start.into_std(),
        clock.end.into_std(),
        publishers.len(),
    );

    let cpu = CpuMeter::start(plan.server_pid);
    let mut tasks = tokio::task::JoinSet::new();
    for client in subscribers {
        tasks.spawn(subscriber(client, clock, shared.clone()));
    }
    for (client, lane) in publishers.into_iter().zip(lanes) {
        tasks.spawn(publisher(
            client,
            lane,
            plan.body_len,
            clock,
            shared.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64().max(0.001);
    let (generator_cores, server_cores) = cpu.cores(elapsed);

    let window = plan
        .duration
        .saturating_sub(plan.warmup)
        .as_secs_f64()
        .max(0.001);
    let sent = shared.sent.load(Relaxed);
    let delivered = shared.delivered.load(Relaxed);
    Ok(Report {
        scenario: "fanout",
        server: "nats",
        subscribers: plan.subscribers,
        publishers: plan.publishers,
        offered_per_s: plan.rate,
        sent,
        delivered,
        missing: (sent * plan.subscribers as u64).saturating_sub(delivered),
        deliveries_per_s: shared.delivered_in_window.load(Relaxed) as f64 / window,
        delivery: shared
            .delivery
            .lock()
            .map(|l| l.summary())
            .unwrap_or_default(),
        errors: shared.errors.count(),
        error_samples: shared.errors.samples(),
        generator_cores,
        server_cores,
    })
}

/// A payload: the intended send time, then padding to `len` bytes.
fn payload(nanos: u128, len: usize) -> String {
    let mut text = format!("{nanos} ");
    let pad = len.saturating_sub(text.len()).min(4000);
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// The intended send time a payload carries.
fn intended(clock: &Clock, payload: &[u8]) -> Option<Instant> {
    let head = payload.split(|b| *b == b' ').next()?;
    let nanos: u64 = std::str::from_utf8(head).ok()?.parse().ok()?;
    Some(clock.start + Duration::from_nanos(nanos))
}

async fn publisher(
    mut client: Client,
    mut lane: crate::pace::Lane,
    body_len: usize,
    clock: Clock,
    shared: Arc<Shared>,
) {
    while let Some(due) = lane.recv().await {
        let body = payload((due - clock.start).as_nanos(), body_len);
        let op = format!("PUB {SUBJECT} {}\r\n{body}\r\n", body.len());
        if let Err(err) = client.send(op).await {
            shared.errors.note(format!("publisher: {err}"));
            break;
        }
        shared.sent.fetch_add(1, Relaxed);
    }
    shared.publishers_left.fetch_sub(1, Relaxed);
    let _ = client.ws.close(None).await;
}

async fn subscriber(mut client: Client, clock: Clock, shared: Arc<Shared>) {
    let mut local = Latency::new();
    let mut delivered = 0u64;
    loop {
        if shared.publishers_left.load(Relaxed) == 0 && delivered >= shared.sent.load(Relaxed) {
            break;
        }
        let until = (Instant::now() + Duration::from_millis(100)).min(clock.give_up);
        let op = match tokio::time::timeout_at(until, client.next_op()).await {
            Err(_) if Instant::now() < clock.give_up => continue,
            Err(_) => break,
            Ok(Ok(Some(op))) => op,
            Ok(Ok(None)) => {
                shared.errors.note("subscriber socket closed".into());
                break;
            }
            Ok(Err(err)) => {
                shared.errors.note(format!("subscriber: {err:#}"));
                break;
            }
        };
        let payload = match op {
            Op::Msg(payload) => payload,
            Op::Err(line) => {
                shared.errors.note(format!("subscriber: {line}"));
                continue;
            }
            _ => continue,
        };
        let Some(at) = intended(&clock, &payload) else {
            continue;
        };
        delivered += 1;
        shared.delivered.fetch_add(1, Relaxed);
        let now = Instant::now();
        if now >= clock.measure_from && now <= clock.end {
            shared.delivered_in_window.fetch_add(1, Relaxed);
        }
        if at >= clock.measure_from {
            local.record(now - at);
        }
    }
    if let Ok(mut delivery) = shared.delivery.lock() {
        delivery.merge(&local);
    }
    let _ = client.ws.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_split_across_frames_are_reassembled() {
        let mut parser = Parser::default();
        parser.push(b"INFO {\"server_id\":\"x\"}\r\nPING\r\nMSG palisade.bench.room 1 5\r\nhel");
        assert_eq!(parser.next_op().expect("parses"), Some(Op::Info));
        assert_eq!(parser.next_op().expect("parses"), Some(Op::Ping));
        assert_eq!(parser.next_op().expect("parses"), None);
        parser.push(b"lo\r\nMSG a 1 reply.to 0\r\n\r\n-ERR 'Slow Consumer'\r\n");
        assert_eq!(
            parser.next_op().expect("parses"),
            Some(Op::Msg(b"hello".to_vec()))
        );
        assert_eq!(parser.next_op().expect("parses"), Some(Op::Msg(Vec::new())));
        assert_eq!(
            parser.next_op().expect("parses"),
            Some(Op::Err("-ERR 'Slow Consumer'".into()))
        );
        assert_eq!(parser.next_op().expect("parses"), None);
    }

    #[test]
    fn a_payload_carries_its_intended_send_time() {
        let start = Instant::now();
        let clock = Clock {
            start,
            measure_from: start,
            end: start,
            give_up: start,
        };
        let body = payload(1_500_000, 100);
        assert_eq!(body.len(), 100);
        let at = intended(&clock, body.as_bytes()).expect("a bench payload");
        assert_eq!(at - start, Duration::from_micros(1500));
    }

    #[test]
    fn runs_beyond_the_bounds_are_refused() {
        let plan = Plan {
            subscribers: 501,
            publishers: 1,
            rate: 1.0,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            drain: Duration::from_secs(1),
            body_len: 10,
            sources: 1,
            server_pid: None,
        };
        assert!(plan.check().is_err());
        let long = Plan {
            subscribers: 10,
            duration: Duration::from_secs(11),
            ..plan
        };
        assert!(long.check().is_err());
    }
}
