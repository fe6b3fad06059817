//! `palisade-bench`: the load generator. Each subcommand runs one scenario
//! against a loopback server, prints a summary for people on standard error
//! and one JSON object for scripts on standard output.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use palisade_bench::{
    ceiling, chat, fanout, handshake, https, idle, setup, smoke, stats, target, tls,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "palisade-bench",
    version,
    about = "Load generator for Palisade and its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The server to load.
#[derive(Debug, Args)]
struct Server {
    /// Base URL; must resolve to a loopback address.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    url: String,
    /// CA certificate (PEM) that issued the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// Spread connections over this many source addresses 127.0.0.2, ...
    #[arg(long, default_value_t = 1)]
    sources: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Persisted chat messages: visitors send on a schedule, agents receive.
    Chat {
        #[command(flatten)]
        server: Server,
        /// The demo widget's public key (`palisade demo` prints it).
        #[arg(long)]
        widget_key: String,
        #[arg(long, default_value = "agent@demo.palisade.test")]
        agent_email: String,
        #[arg(long, env = "PALISADE_BENCH_AGENT_PASSWORD")]
        agent_password: String,
        /// Agent sockets; each receives every message.
        #[arg(long, default_value_t = 1)]
        agents: usize,
        #[arg(long, default_value_t = 100)]
        visitors: usize,
        /// Messages per second, all visitors together.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        drain: f64,
        #[arg(long, default_value_t = 100)]
        body_len: usize,
        /// The Origin agent sockets send (default: the URL).
        #[arg(long)]
        origin: Option<String>,
        /// With it, also how many cores the server kept busy.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Room fan-out: publishers broadcast, every subscriber socket receives
    /// every message (Palisade agent sockets, or nats-server WebSocket clients).
    Fanout {
        #[command(flatten)]
        server: Server,
        #[arg(long, value_enum, default_value = "palisade")]
        kind: FanoutKind,
        /// The demo widget's public key (Palisade only).
        #[arg(long)]
        widget_key: Option<String>,
        #[arg(long, default_value = "agent@demo.palisade.test")]
        agent_email: String,
        #[arg(long, env = "PALISADE_BENCH_AGENT_PASSWORD")]
        agent_password: Option<String>,
        /// Subscriber sockets, each receiving every message (at most 500).
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Publisher sockets sending concurrently.
        #[arg(long, default_value_t = 10)]
        publishers: usize,
        /// Broadcasts per second, all publishers together.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of schedule (at most 10).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Seconds to wait for missing deliveries (at most 10).
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
        #[arg(long, default_value_t = 100)]
        body_len: usize,
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Idle TLS WebSockets and the server's resident memory per connection.
    Idle {
        #[command(flatten)]
        server: Server,
        /// The server process whose VmRSS is read.
        #[arg(long)]
        server_pid: u32,
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Palisade visitor sockets (needs --widget-key), or plain ones (bench-echo).
        #[arg(long, value_enum, default_value = "palisade")]
        kind: IdleKind,
        #[arg(long)]
        widget_key: Option<String>,
        /// Seconds to wait after the last connection before measuring.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// All Palisade sockets join one visitor's conversation, so the
        /// per-conversation state is paid once (to tell it apart).
        #[arg(long)]
        one_conversation: bool,
    },
    /// Small HTTPS GETs at a fixed rate over keep-alive connections.
    Https {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value = "/widget/loader.js")]
        path: String,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
    },
    /// Full TLS handshakes (no resumption) per second.
    Handshake {
        #[command(flatten)]
        server: Server,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// With it, also handshakes per second of server CPU.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The SQLite ceiling: the same rows committed in batches, nothing in front.
    SqliteCeiling {
        /// Directory for the scratch database (same disk as Palisade's data).
        #[arg(long, default_value = "/tmp")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "insert")]
        statements: ceiling::Statements,
        /// Batch sizes to try, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,64,512")]
        batch: Vec<usize>,
        #[arg(long, default_value_t = 100)]
        conversations: usize,
        #[arg(long, default_value_t = 100)]
        body_len: usize,
        /// Seconds per batch size.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
    },
    /// Starts Palisade in-process and runs a tiny chat load (for CI).
    Smoke {
        #[arg(long, default_value_t = 4)]
        visitors: usize,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FanoutKind {
    Palisade,
    Nats,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum IdleKind {
    Palisade,
    Echo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("palisade-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("palisade-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

async fn connect(server: &Server) -> anyhow::Result<(target::Target, Arc<rustls::ClientConfig>)> {
    let target = target::Target::parse(&server.url).await?;
    let tls = tls::client_config(&server.ca, &[], true)?;
    Ok((target, Arc::new(tls)))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Chat {
            server,
            widget_key,
            agent_email,
            agent_password,
            agents,
            visitors,
            rate,
            duration,
            warmup,
            drain,
            body_len,
            origin,
            server_pid,
        } => {
            let (target, tls) = connect(&server).await?;
            let api = setup::Api::new(&target, &tls)?;
            let sessions = api
                .agent_sessions(&agent_email, &agent_password, agents)
                .await?;
            let cast = chat::Cast {
                visitors: api.visitors(&widget_key, visitors, 32).await?,
                agents: sessions,
                origin: origin.unwrap_or_else(|| target.base.clone()),
            };
            let plan = chat::Plan {
                rate,
                duration: secs(duration),
                warmup: secs(warmup),
                drain: secs(drain),
                body_len,
                sources: server.sources,
                server_pid,
            };
            let report = chat::run(&target, &tls, &cast, &plan).await?;
            eprintln!(
                "chat: offered {:.0}/s, acked {:.0}/s ({} of {} sent), {} delivered, \
                 {} unanswered at the end, {} errors",
                report.offered_per_s,
                report.acked_per_s,
                report.acked,
                report.sent,
                report.delivered,
                report.unanswered,
                report.errors
            );
            eprintln!("  ack      {}", report.ack);
            eprintln!("  delivery {}", report.delivery);
            eprintln!(
                "  busy: generator {:.2} cores, server {:.2} cores",
                report.generator_cores, report.server_cores
            );
            for sample in &report.error_samples {
                eprintln!("  error: {sample}");
            }
            stats::emit(&report)
        }
        Command::Fanout {
            server,
            kind,
            widget_key,
            agent_email,
            agent_password,
            subscribers,
            publishers,
            rate,
            duration,
            warmup,
            drain,
            body_len,
            server_pid,
        } => {
            let plan = fanout::Plan {
                subscribers,
                publishers,
                rate,
                duration: secs(duration),
                warmup: secs(warmup),
                drain: secs(drain),
                body_len,
                sources: server.sources,
                server_pid,
            };
            plan.check()?;
            let (target, tls) = connect(&server).await?;
            let report = match kind {
                FanoutKind::Nats => fanout::run_nats(&target, &tls, &plan).await?,
                FanoutKind::Palisade => {
                    let key = widget_key.context("--kind palisade needs --widget-key")?;
                    let password = agent_password
                        .context("--kind palisade needs --agent-password (or its variable)")?;
                    let api = setup::Api::new(&target, &tls)?;
                    let session = api
                        .agent_sessions(&agent_email, &password, 1)
                        .await?
                        .into_iter()
                        .next()
                        .context("no agent session")?;
                    let cast = chat::Cast {
                        visitors: api.visitors(&key, publishers, 32).await?,
                        agents: vec![session; subscribers],
                        origin: target.base.clone(),
                    };
                    let chat_plan = chat::Plan {
                        rate,
                        duration: plan.duration,
                        warmup: plan.warmup,
                        drain: plan.drain,
                        body_len,
                        sources: server.sources,
                        server_pid,
                    };
                    let report = chat::run(&target, &tls, &cast, &chat_plan).await?;
                    fanout::Report::from_chat(&report, &plan)
                }
            };
            eprintln!(
                "fanout ({}): {} subscribers, {} publishers, offered {:.0}/s, {} sent, \
                 {} delivered ({:.0}/s), {} missing, {} errors",
                report.server,
                report.subscribers,
                report.publishers,
                report.offered_per_s,
                report.sent,
                report.delivered,
                report.deliveries_per_s,
                report.missing,
                report.errors
            );
            eprintln!("  delivery {}", report.delivery);
            eprintln!(
                "  busy: generator {:.2} cores, server {:.2} cores",
                report.generator_cores, report.server_cores
            );
            for sample in &report.error_samples {
                eprintln!("  error: {sample}");
            }
            stats::emit(&report)
        }
        Command::Idle {
            server,
            server_pid,
            connections,
            kind,
            widget_key,
            settle,
            one_conversation,
        } => {
            let (target, tls) = connect(&server).await?;
            let kind = match kind {
                IdleKind::Echo => idle::Kind::Plain(connections),
                IdleKind::Palisade => {
                    let key = widget_key.context("--kind palisade needs --widget-key")?;
                    let api = setup::Api::new(&target, &tls)?;
                    let visitors = if one_conversation {
                        vec![api.visitor(&key, "bench").await?; connections]
                    } else {
                        api.visitors(&key, connections, 32).await?
                    };
                    idle::Kind::Palisade(visitors)
                }
            };
            let report = idle::run(
                &target,
                &tls,
                kind,
                server_pid,
                server.sources,
                secs(settle),
            )
            .await?;
            eprintln!(
                "idle: {} connections ({} failed), RSS {} -> {} KiB, {} bytes each",
                report.connections,
                report.failed,
                report.rss_before_kib,
                report.rss_after_kib,
                report.bytes_per_connection
            );
            stats::emit(&report)
        }
        Command::Https {
            server,
            path,
            connections,
            rate,
            duration,
            warmup,
        } => {
            let (target, tls) = connect(&server).await?;
            let plan = https::Plan {
                path,
                connections,
                rate,
                duration: secs(duration),
                warmup: secs(warmup),
            };
            let report = https::run(&target, &tls, &plan).await?;
            eprintln!(
                "https: offered {:.0}/s, completed {:.0}/s, {} errors, {} byte bodies",
                report.offered_per_s, report.completed_per_s, report.errors, report.body_bytes
            );
            eprintln!("  latency {}", report.latency);
            stats::emit(&report)
        }
        Command::Handshake {
            server,
            concurrency,
            duration,
            server_pid,
        } => {
            let target = target::Target::parse(&server.url).await?;
            let tls = Arc::new(tls::client_config(&server.ca, &[b"http/1.1"], false)?);
            let report = handshake::run(
                &target,
                &tls,
                concurrency,
                secs(duration),
                server.sources,
                server_pid,
            )
            .await?;
            eprintln!(
                "handshake: {:.0}/s ({} done, {} errors), server CPU {:.2}s -> {:.0} per core-second, {} {}",
                report.per_s,
                report.handshakes,
                report.errors,
                report.server_cpu_s,
                report.per_server_core_s,
                report.tls_version,
                report.cipher_suite
            );
            stats::emit(&report)
        }
        Command::SqliteCeiling {
            dir,
            statements,
            batch,
            conversations,
            body_len,
            duration,
        } => {
            for size in batch {
                let report = ceiling::run(
                    &dir,
                    statements,
                    size,
                    conversations,
                    body_len,
                    secs(duration),
                )
                .await?;
                eprintln!(
                    "sqlite-ceiling ({:?}, batch {}): {:.0} rows/s, commit {}",
                    statements, size, report.rows_per_s, report.commit
                );
                stats::emit(&report)?;
            }
            Ok(())
        }
        Command::Smoke { visitors } => {
            let report = smoke::run(visitors, &smoke::plan()).await?;
            eprintln!(
                "smoke: {} sent, {} acked, {} delivered, {} errors; ack {}",
                report.sent, report.acked, report.delivered, report.errors, report.ack
            );
            stats::emit(&report)?;
            anyhow::ensure!(report.errors == 0, "errors: {:?}", report.error_samples);
            anyhow::ensure!(report.acked > 0, "no message was acked");
            Ok(())
        }
    }
}
