//! `bench-echo`: the smallest TLS WebSocket echo server tokio-tungstenite
//! makes, with its default buffer settings. It is the yardstick for idle
//! connection memory: what one socket costs with nothing else on it.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "bench-echo", about = "Minimal TLS WebSocket echo server")]
struct Cli {
    /// Must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.listen.ip().is_loopback() {
        eprintln!("bench-echo: --listen {} is not loopback", cli.listen);
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench-echo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-echo: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let tls = palisade_bench::tls::server_config(&cli.cert, &cli.key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    eprintln!("bench-echo: listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait, then go on.
                eprintln!("bench-echo: accept: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            while let Some(Ok(message)) = stream.next().await {
                if (message.is_text() || message.is_binary()) && sink.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
