//! The chat scenario: visitors send over their sockets on a fixed
//! wall-clock schedule; agents' sockets receive every message of the tenant.
//!
//! Each `client_msg_id` carries its intended send time (nanoseconds after
//! the schedule's start), so an ack or a delivered `message` event can be
//! timed by whoever receives it, with no shared table: ack latency is
//! intended send → ack on the visitor socket; delivery latency is intended
//! send → `message` event on an agent socket.

use crate::setup::{AgentSession, Visitor, Ws, dial};
use crate::stats::{Latency, Summary};
use crate::tally::{Clock, CpuMeter, Errors};
use crate::target::Target;
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as Frame;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Messages per second over all visitors.
    pub rate: f64,
    /// How long the schedule runs.
    pub duration: Duration,
    /// Sends in the first part of the schedule are not recorded.
    pub warmup: Duration,
    /// How long to wait for outstanding acks after the last send.
    pub drain: Duration,
    /// Characters per message body.
    pub body_len: usize,
    /// Source addresses to spread connections over (1: the default).
    pub sources: usize,
    /// The server's pid, to report how busy it was.
    pub server_pid: Option<u32>,
}

/// Who takes part: visitors (each with a conversation) and agent sessions.
#[derive(Clone, Debug)]
pub struct Cast {
    pub visitors: Vec<Visitor>,
    pub agents: Vec<AgentSession>,
    /// The `Origin` agent sockets present (Palisade's public origin).
    pub origin: String,
}

/// What was measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub visitors: usize,
    pub agents: usize,
    pub offered_per_s: f64,
    pub sent: u64,
    pub acked: u64,
    /// Acks received inside the measured window, per second.
    pub acked_per_s: f64,
    pub delivered: u64,
    /// Deliveries (one per agent socket per message) received inside the
    /// measured window, per second.
    pub delivered_per_s: f64,
    /// Sends with neither an ack nor an error when the drain time ran out.
    pub unanswered: u64,
    /// Error events, refused sends and closed sockets.
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub ack: Summary,
    pub delivery: Summary,
    /// CPU cores the generator kept busy during the schedule; near the
    /// number it may use means the figures are the generator's limit.
    pub generator_cores: f64,
    /// CPU cores the server kept busy (0 without its pid).
    pub server_cores: f64,
}

/// Counters every task adds to.
#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    acked: AtomicU64,
    acked_in_window: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
    unanswered: AtomicU64,
    errors: Errors,
    senders_left: AtomicU64,
    ack: Mutex<Latency>,
    delivery: Mutex<Latency>,
}

/// The intended send time encoded in a bench `client_msg_id`.
fn intended(clock: &Clock, client_msg_id: &str) -> Option<Instant> {
    let nanos: u64 = client_msg_id
        .strip_prefix("b-")?
        .rsplit('-')
        .next()?
        .parse()
        .ok()?;
    Some(clock.start + Duration::from_nanos(nanos))
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    client_msg_id: Option<String>,
    message: Option<IncomingMessage>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct IncomingMessage {
    client_msg_id: String,
}

/// Connects everyone, runs the schedule, and reports.
pub async fn run(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    cast: &Cast,
    plan: &Plan,
) -> anyhow::Result<Report> {
    let mut agent_sockets = Vec::new();
    for (i, agent) in cast.agents.iter().enumerate() {
        let headers = [
            ("cookie", agent.cookie.clone()),
            ("origin", cast.origin.clone()),
        ];
        let ws = dial(target, tls, "/v1/agent/ws", &headers, i, plan.sources)
            .await
            .context("agent socket")?;
        agent_sockets.push(ws);
    }
    let visitor_sockets = connect_visitors(target, tls, &cast.visitors, plan.sources).await?;

    let start = Instant::now() + Duration::from_millis(200);
    let clock = Clock {
        start,
        measure_from: start + plan.warmup,
        end: start + plan.duration,
        give_up: start + plan.duration + plan.drain,
    };
    let shared = Arc::new(Shared::default());
    shared
        .senders_left
        .store(visitor_sockets.len() as u64, Relaxed);
    let body: String = "x".repeat(plan.body_len.clamp(1, 4000));
    let lanes = crate::pace::spawn(
        plan.rate,
        start.into_std(),
        clock.end.into_std(),
        visitor_sockets.len(),
    );

    let cpu = CpuMeter::start(plan.server_pid);
    let mut tasks = tokio::task::JoinSet::new();
    for ws in agent_sockets {
        tasks.spawn(agent(ws, clock, shared.clone()));
    }
    for (v, (ws, lane)) in visitor_sockets.into_iter().zip(lanes).enumerate() {
        let schedule = Schedule {
            v,
            lane,
            body: body.clone(),
        };
        tasks.spawn(visitor(ws, schedule, clock, shared.clone()));
    }
    while tasks.join_next().await.is_some() {}
    let (generator_cores, server_cores) = cpu.cores(start.elapsed().as_secs_f64());

    let window = plan
        .duration
        .saturating_sub(plan.warmup)
        .as_secs_f64()
        .max(0.001);
    let lock = |m: &Mutex<Latency>| m.lock().map(|l| l.summary()).unwrap_or_default();
    Ok(Report {
        scenario: "chat",
        visitors: cast.visitors.len(),
        agents: cast.agents.len(),
        offered_per_s: plan.rate,
        sent: shared.sent.load(Relaxed),
        acked: shared.acked.load(Relaxed),
        acked_per_s: shared.acked_in_window.load(Relaxed) as f64 / window,
        delivered: shared.delivered.load(Relaxed),
        delivered_per_s: shared.delivered_in_window.load(Relaxed) as f64 / window,
        unanswered: shared.unanswered.load(Relaxed),
        errors: shared.errors.count(),
        error_samples: shared.errors.samples(),
        ack: lock(&shared.ack),
        delivery: lock(&shared.delivery),
        generator_cores,
        server_cores,
    })
}

/// Opens the visitor sockets (64 at a time), each past `hello` and `ready`.
async fn connect_visitors(
    target: &Target,
    tls: &Arc<rustls::ClientConfig>,
    visitors: &[Visitor],
    sources: usize,
) -> anyhow::Result<Vec<Ws>> {
    futures_util::stream::iter(visitors.iter().enumerate())
        .map(|(i, visitor)| async move {
            let mut ws = dial(target, tls, "/v1/visitor/ws", &[], i, sources).await?;
            hello(&mut ws, visitor).await?;
            Ok(ws)
        })
        .buffered(64)
        .collect::<Vec<anyhow::Result<Ws>>>()
        .await
        .into_iter()
        .collect()
}

/// Sends `hello` and waits for `ready` (skipping the replay before it).
pub async fn hello(ws: &mut Ws, visitor: &Visitor) -> anyhow::Result<()> {
    let hello = serde_json::json!({
        "type": "hello",
        "token": visitor.token,
        "conversation_id": visitor.conversation_id,
        "last_seq": 0,
    });
    ws.send(Frame::Text(hello.to_string().into())).await?;
    let wait = async {
        while let Some(frame) = ws.next().await {
            if let Frame::Text(text) = frame? {
                let incoming: Incoming = serde_json::from_str(&text)?;
                match incoming.kind.as_str() {
                    "ready" => return Ok(()),
                    "error" => anyhow::bail!("hello refused: {text}"),
                    _ => {}
                }
            }
        }
        anyhow::bail!("socket closed before ready")
    };
    tokio::time::timeout(Duration::from_secs(15), wait)
        .await
        .context("no ready within 15 s")?
}

struct Schedule {
    v: usize,
    lane: crate::pace::Lane,
    body: String,
}

async fn visitor(ws: Ws, mut schedule: Schedule, clock: Clock, shared: Arc<Shared>) {
    let (mut sink, mut stream) = ws.split();
    let sent = AtomicU64::new(0);
    let done_sending = AtomicU64::new(0);

    let send = async {
        let mut k = 0u64;
        while let Some(due) = schedule.lane.recv().await {
            let nanos = (due - clock.start).as_nanos();
            let frame = format!(
                r#"{{"type":"send","client_msg_id":"b-{}-{k}-{nanos}","body":"{}"}}"#,
                schedule.v, schedule.body
            );
            if let Err(err) = sink.send(Frame::Text(frame.into())).await {
                shared
                    .errors
                    .note(format!("visitor {} send: {err}", schedule.v));
                break;
            }
            sent.fetch_add(1, Relaxed);
            shared.sent.fetch_add(1, Relaxed);
            k += 1;
        }
        done_sending.store(1, Relaxed);
        shared.senders_left.fetch_sub(1, Relaxed);
        sink
    };

    let receive = async {
        let mut answered = 0u64;
        let mut local = Latency::new();
        loop {
            if done_sending.load(Relaxed) == 1 && answered >= sent.load(Relaxed) {
                break;
            }
            let next = tokio::time::timeout_at(clock.poll_until(), stream.next()).await;
            let frame = match next {
                Err(_) if Instant::now() < clock.give_up => continue,
                Err(_) => {
                    let missing = sent.load(Relaxed).saturating_sub(answered);
                    shared.unanswered.fetch_add(missing, Relaxed);
                    break;
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    shared
                        .errors
                        .note(format!("visitor {}: socket closed", schedule.v));
                    break;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Frame::Text(text) = frame else { continue };
            let Ok(incoming) = serde_json::from_str::<Incoming>(&text) else {
                shared
                    .errors
                    .note(format!("visitor {}: unreadable frame", schedule.v));
                continue;
            };
            match incoming.kind.as_str() {
                "ack" => {
                    answered += 1;
                    let now = Instant::now();
                    shared.acked.fetch_add(1, Relaxed);
                    if now >= clock.measure_from && now <= clock.end {
                        shared.acked_in_window.fetch_add(1, Relaxed);
                    }
                    let intended = incoming
                        .client_msg_id
                        .as_deref()
                        .and_then(|id| intended(&clock, id));
                    if let Some(intended) = intended
                        && intended >= clock.measure_from
                    {
                        local.record(now - intended);
                    }
                }
                "error" => {
                    answered += u64::from(incoming.client_msg_id.is_some());
                    let code = incoming.code.unwrap_or_default();
                    shared
                        .errors
                        .note(format!("visitor {}: error {code}", schedule.v));
                }
                _ => {}
            }
        }
        local
    };

    let (sink, local) = tokio::join!(send, receive);
    if let Ok(mut ack) = shared.ack.lock() {
        ack.merge(&local);
    }
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = ws.close(None).await;
    }
}

async fn agent(mut ws: Ws, clock: Clock, shared: Arc<Shared>) {
    let mut local = Latency::new();
    let mut delivered = 0u64;
    loop {
        if shared.senders_left.load(Relaxed) == 0 && delivered >= shared.sent.load(Relaxed) {
            break;
        }
        let frame = match tokio::time::timeout_at(clock.poll_until(), ws.next()).await {
            Err(_) if Instant::now() < clock.give_up => continue,
            Err(_) => break,
            Ok(None) | Ok(Some(Err(_))) => {
                shared.errors.note("agent socket closed".into());
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Frame::Text(text) = frame else { continue };
        let Ok(incoming) = serde_json::from_str::<Incoming>(&text) else {
            continue;
        };
        if incoming.kind == "resync" {
            shared
                .errors
                .note("agent socket fell behind (resync)".into());
            continue;
        }
        let Some(message) = incoming.message else {
            continue;
        };
        let Some(intended) = intended(&clock, &message.client_msg_id) else {
            continue;
        };
        delivered += 1;
        shared.delivered.fetch_add(1, Relaxed);
        let now = Instant::now();
        if now >= clock.measure_from && now <= clock.end {
            shared.delivered_in_window.fetch_add(1, Relaxed);
        }
        if intended >= clock.measure_from {
            local.record(now - intended);
        }
    }
    if let Ok(mut delivery) = shared.delivery.lock() {
        delivery.merge(&local);
    }
    let _ = ws.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_time_is_read_back_from_the_client_msg_id() {
        let start = Instant::now();
        let clock = Clock {
            start,
            measure_from: start,
            end: start,
            give_up: start,
        };
        let at = intended(&clock, "b-12-3-1500000").expect("bench id");
        assert_eq!(at - start, Duration::from_micros(1500));
        assert!(intended(&clock, "c-123").is_none());
    }
}
