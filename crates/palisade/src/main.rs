//! `palisade`: the one binary. `demo` runs everything on embedded defaults;
//! `serve` is the production entry, configured by a TOML file and
//! `PALISADE_*` environment overrides.

use anyhow::Context;
use clap::{Parser, Subcommand};
use palisade::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "palisade", version, about = "Secure multi-tenant live chat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run on embedded defaults with a demo tenant, widget and agent.
    Demo {
        /// Where Palisade keeps its database, keys and certificates.
        #[arg(long, default_value = "./palisade-data")]
        data_dir: PathBuf,
        /// Give the demo agent a new password (shown once).
        #[arg(long)]
        new_agent_password: bool,
    },
    /// Create a tenant with a widget and an owner account (prints the
    /// owner's one-time password and the widget's snippet).
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Run from a configuration file (see palisade.example.toml).
    Serve {
        /// TOML settings; without it, defaults and PALISADE_* variables apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TenantAction {
    Create {
        /// The same settings file `serve` uses (for the database).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Short id: a-z, 0-9 and '-'.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        #[arg(long, default_value = "Owner")]
        owner_name: String,
        /// An origin whose pages may show the widget (repeatable).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Give an existing owner a new password.
        #[arg(long)]
        new_owner_password: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("palisade: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("palisade: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo {
            data_dir,
            new_agent_password,
        } => {
            let mut env: Vec<(String, String)> = std::env::vars().collect();
            env.push(("PALISADE_DATA_DIR".into(), data_dir.display().to_string()));
            let config = Config::load(None, env)?;
            palisade::telemetry::init(config.log_format, &config.log_level);
            demo(config, new_agent_password).await
        }
        Command::Tenant {
            action:
                TenantAction::Create {
                    config,
                    slug,
                    name,
                    owner_email,
                    owner_name,
                    allowed_origins,
                    new_owner_password,
                },
        } => {
            let config = Config::load(config.as_deref(), std::env::vars())?;
            palisade::app::prepare_data_dir(&config)?;
            let store = palisade_store::Store::connect(&config.database_url, 2)
                .await
                .context("opening the database (database.url)")?;
            let passwords =
                palisade_identity::PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan = palisade::demo::TenantPlan {
                slug: &slug,
                name: &name,
                owner_email: &owner_email,
                owner_name: &owner_name,
                allowed_origins,
                new_password: new_owner_password,
            };
            let done = palisade::demo::provision(&store, &passwords, plan).await;
            store.close().await;
            let done = done?;
            let password = done
                .owner_password
                .as_ref()
                .map_or("unchanged", |p| p.expose());
            println!(
                "Tenant {slug} is ready.\n  Owner:      {}\n  Password:   {password}\n  Widget key: {}\n  Snippet:    <script src=\"{}/widget/loader.js\" data-widget-key=\"{}\" async></script>",
                done.owner_email,
                done.widget.public_key,
                config.public_origin,
                done.widget.public_key
            );
            Ok(())
        }
        Command::Serve { config } => {
            let config = Config::load(config.as_deref(), std::env::vars())?;
            palisade::telemetry::init(config.log_format, &config.log_level);
            let running = palisade::app::start(&config, None).await?;
            wait_for_signal().await;
            running.shutdown().await;
            Ok(())
        }
    }
}

async fn demo(config: Config, new_agent_password: bool) -> anyhow::Result<()> {
    // Seed before starting, so the demo page is served with its widget key.
    palisade::app::prepare_data_dir(&config)?;
    let seed_store = palisade_store::Store::connect(&config.database_url, 2)
        .await
        .context("opening the database")?;
    let passwords = palisade_identity::PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = palisade::demo::ensure(
        &seed_store,
        &passwords,
        &config.public_origin,
        new_agent_password,
    )
    .await?;
    seed_store.close().await;

    let running = match palisade::app::start(&config, Some(tenant.widget.public_key.clone())).await
    {
        Ok(running) => running,
        Err(err) => {
            // The password was made before start failed: show it, or it is lost.
            if let Some(password) = &tenant.owner_password {
                eprintln!(
                    "The demo agent {} has the password {} (shown once; save it).",
                    tenant.owner_email,
                    password.expose()
                );
            }
            return Err(err);
        }
    };
    let origin = &config.public_origin;
    let password = match &tenant.owner_password {
        Some(password) => format!("{} (shown once; save it)", password.expose()),
        None => "set at first start; run with --new-agent-password for a new one".into(),
    };
    println!(
        "\nPalisade demo is running.\n\n  \
         Agent console:   {origin}/app/\n  \
         Agent login:     {email}\n  \
         Password:        {password}\n  \
         Visitor demo:    {origin}/widget/demo.html\n  \
         Widget key:      {key}\n  \
         Trust this CA:   {ca}\n  \
         Health/metrics:  http://{ops}/healthz  http://{ops}/metrics\n\n\
         Try: curl --cacert {ca} {origin}/widget/loader.js -I\n\
         Stop with Ctrl-C.\n",
        email = tenant.owner_email,
        key = tenant.widget.public_key,
        ca = running.ca_cert_path.display(),
        ops = running.ops_addr,
    );
    wait_for_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
