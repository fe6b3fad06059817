//! `palisade`: the one binary. `demo` runs everything on embedded defaults;
//! `serve` is the production entry, configured by a TOML file and
//! `PALISADE_*` environment overrides.

use anyhow::Context;
use clap::{Parser, Subcommand};
use palisade::config::Config;
use palisade::keycmd::KeyCommand;
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
    /// Manage platform operator accounts.
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Run from a configuration file (see palisade.example.toml).
    Serve {
        /// TOML settings; without it, defaults and PALISADE_* variables apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage encryption keys; safe while the server runs.
    Keys {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Store, read and rotate secrets; every access is audited.
    Vault {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: VaultAction,
    },
    /// The partner PKI: root and intermediate CAs, partner client certificates
    /// (mutual TLS), revocation, and the server certificate.
    Pki {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: PkiAction,
    },
    /// Verify or export the audit log.
    Audit {
        #[command(flatten)]
        target: Target,
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Debug, Subcommand)]
enum VaultAction {
    /// Store a new secret (or a new version), reading the value from
    /// --value-file or standard input.
    Put {
        #[command(flatten)]
        secret: SecretArgs,
        #[arg(long)]
        value_file: Option<PathBuf>,
        /// Report the secret as due for rotation after this many days.
        #[arg(long)]
        rotate_every_days: Option<u64>,
        /// Refuse reads of a version older than this many days.
        #[arg(long)]
        expire_after_days: Option<u64>,
        /// Keep a replaced version valid this many hours.
        #[arg(long)]
        overlap_hours: Option<u64>,
        /// Who may read values: `operator` or `system:<component>` (repeatable).
        #[arg(long = "reader")]
        readers: Vec<String>,
    },
    /// Print the current value to standard output.
    Get {
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Make a new version from --value-file, standard input (--stdin), or
    /// --generate random bytes.
    Rotate {
        #[command(flatten)]
        secret: SecretArgs,
        #[arg(long, conflicts_with = "stdin")]
        value_file: Option<PathBuf>,
        #[arg(long)]
        stdin: bool,
        /// How many random bytes to generate when no value is given.
        #[arg(long, default_value_t = 32)]
        generate: usize,
    },
    /// List secrets (no values) and whether each is due for rotation.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Show a secret's versions (no values).
    History {
        #[command(flatten)]
        secret: SecretArgs,
    },
}

/// Which secret, and why it is being accessed (recorded in the audit log).
#[derive(Debug, clap::Args)]
struct SecretArgs {
    #[arg(long)]
    name: String,
    /// The tenant's slug; without it, a platform secret.
    #[arg(long)]
    tenant: Option<String>,
    /// Why: recorded in the audit log. Never put a secret here.
    #[arg(long)]
    reason: String,
}

fn read_value(file: Option<&std::path::Path>) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let mut value = zeroize::Zeroizing::new(Vec::new());
    match file {
        Some(path) => {
            *value = std::fs::read(path)
                .with_context(|| format!("reading the value from {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut value)
                .context("reading the value from standard input")?;
        }
    }
    Ok(value)
}

#[derive(Debug, Subcommand)]
enum PkiAction {
    /// Create the root CA and the intermediate issuing CA (keys sealed in the vault).
    Init,
    /// Issue a partner client certificate and key into --out-dir.
    IssuePartner {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The partner's name: a-z, 0-9 and '-'.
        #[arg(long)]
        partner: String,
        /// Validity in days (default: pki.partner_cert_days).
        #[arg(long)]
        days: Option<u32>,
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
    /// Revoke a partner certificate: running servers refuse it within a watch tick.
    Revoke {
        #[arg(long)]
        serial: String,
    },
    /// List the CAs and partner certificates with their expiry.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Write the root CA key to a new file (mode 0600) for offline keeping.
    ExportRootKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete the root CA key from the vault, once --exported holds it.
    RemoveRootKey {
        #[arg(long)]
        exported: PathBuf,
    },
    /// Issue a new server certificate now; running servers load it without a restart.
    ReissueServer,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the chain and checkpoints; exit status 0 only when intact.
    Verify {
        /// Verify this export file instead of the database (needs --public-key).
        #[arg(long, requires = "public_key")]
        export: Option<PathBuf>,
        /// The public key file (hex) to verify checkpoints with; for the
        /// database, defaults to the installation's own key.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Write the log as JSON Lines (to --out, or standard output).
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public key that verifies checkpoints (hex).
    PublicKey,
}

/// Which installation an operator command works on.
#[derive(Debug, clap::Args)]
struct Target {
    /// The configuration file the server runs with.
    #[arg(long, global = true, conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// The data directory (when the server runs on defaults plus environment).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

impl Target {
    fn load(&self) -> anyhow::Result<Config> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        if let Some(dir) = &self.data_dir {
            env.push(("PALISADE_DATA_DIR".into(), dir.display().to_string()));
        }
        Ok(Config::load(self.config.as_deref(), env)?)
    }
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Wrap every data key with a new master key (no data is re-encrypted).
    RotateMaster,
    /// Give a tenant a new active data key; older versions stay readable.
    RotateData {
        #[arg(long)]
        tenant: String,
    },
    /// Delete a tenant's retired data keys that no row uses any more.
    Purge {
        #[arg(long)]
        tenant: String,
    },
    /// Show the master key id and a tenant's data-key versions.
    Status {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorAction {
    /// Create an operator account (prints its one-time password; the
    /// operator sets up a second factor at first sign-in).
    Create {
        /// The same settings file `serve` uses (for the database).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Operator")]
        name: String,
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
            let store = palisade::app::open_store(&config, 2).await?;
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
        Command::Operator {
            action:
                OperatorAction::Create {
                    config,
                    email,
                    name,
                },
        } => {
            let config = Config::load(config.as_deref(), std::env::vars())?;
            palisade::app::prepare_data_dir(&config)?;
            let password = palisade::operatorcmd::create(&config, &email, &name).await?;
            println!(
                "Operator {email} is ready.\n  Password: {}\n  Sign in at {}/app/ and set up a second factor.",
                password.expose(),
                config.public_origin
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
        Command::Keys { target, action } => {
            let config = target.load()?;
            palisade::telemetry::init(config.log_format, "warn");
            let command = match action {
                KeysAction::RotateMaster => KeyCommand::RotateMaster,
                KeysAction::RotateData { tenant } => KeyCommand::RotateData { tenant },
                KeysAction::Purge { tenant } => KeyCommand::Purge { tenant },
                KeysAction::Status { tenant } => KeyCommand::Status { tenant },
            };
            println!("{}", palisade::keycmd::run(&config, command).await?);
            Ok(())
        }
        Command::Vault { target, action } => {
            use palisade::vaultcmd::{Scope, VaultCommand, VaultOutput};
            let config = target.load()?;
            palisade::telemetry::init(config.log_format, "warn");
            let (command, reason) = match action {
                VaultAction::Put {
                    secret,
                    value_file,
                    rotate_every_days,
                    expire_after_days,
                    overlap_hours,
                    readers,
                } => {
                    let given = rotate_every_days.is_some()
                        || expire_after_days.is_some()
                        || overlap_hours.is_some()
                        || !readers.is_empty();
                    let policy = given.then(|| palisade_vault::Policy {
                        rotate_every_secs: rotate_every_days.map(|d| d.saturating_mul(86_400)),
                        expire_after_secs: expire_after_days.map(|d| d.saturating_mul(86_400)),
                        overlap_secs: overlap_hours.unwrap_or(0).saturating_mul(3600),
                        readers: if readers.is_empty() {
                            vec!["operator".into()]
                        } else {
                            readers
                        },
                    });
                    let command = VaultCommand::Put {
                        scope: Scope(secret.tenant),
                        name: secret.name,
                        value: read_value(value_file.as_deref())?,
                        policy,
                    };
                    (command, secret.reason)
                }
                VaultAction::Get { secret } => {
                    let command = VaultCommand::Get {
                        scope: Scope(secret.tenant),
                        name: secret.name,
                    };
                    (command, secret.reason)
                }
                VaultAction::Rotate {
                    secret,
                    value_file,
                    stdin,
                    generate,
                } => {
                    let value = if value_file.is_some() || stdin {
                        Some(read_value(value_file.as_deref())?)
                    } else {
                        None
                    };
                    let command = VaultCommand::Rotate {
                        scope: Scope(secret.tenant),
                        name: secret.name,
                        value,
                        generate,
                    };
                    (command, secret.reason)
                }
                VaultAction::List { tenant, reason } => (
                    VaultCommand::List {
                        scope: Scope(tenant),
                    },
                    reason,
                ),
                VaultAction::History { secret } => {
                    let command = VaultCommand::History {
                        scope: Scope(secret.tenant),
                        name: secret.name,
                    };
                    (command, secret.reason)
                }
            };
            match palisade::vaultcmd::run(&config, command, &reason).await? {
                VaultOutput::Text(text) => println!("{text}"),
                VaultOutput::Value(value) => {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    out.write_all(value.expose())
                        .and_then(|()| out.flush())
                        .context("writing the value to standard output")?;
                }
            }
            Ok(())
        }
        Command::Pki { target, action } => {
            use palisade::pkicmd::PkiCommand;
            let config = target.load()?;
            palisade::telemetry::init(config.log_format, "warn");
            let command = match action {
                PkiAction::Init => PkiCommand::Init,
                PkiAction::IssuePartner {
                    tenant,
                    partner,
                    days,
                    out_dir,
                } => PkiCommand::IssuePartner {
                    tenant,
                    partner,
                    days,
                    out_dir,
                },
                PkiAction::Revoke { serial } => PkiCommand::Revoke { serial },
                PkiAction::List { tenant } => PkiCommand::List { tenant },
                PkiAction::ExportRootKey { out } => PkiCommand::ExportRootKey { out },
                PkiAction::RemoveRootKey { exported } => PkiCommand::RemoveRootKey { exported },
                PkiAction::ReissueServer => PkiCommand::ReissueServer,
            };
            println!("{}", palisade::pkicmd::run(&config, command).await?);
            Ok(())
        }
        Command::Audit { target, action } => {
            use palisade::auditcmd;
            let report = match action {
                AuditAction::Verify {
                    export: Some(file),
                    public_key: Some(key),
                } => auditcmd::verify_export(&file, &key)?.into_result()?,
                AuditAction::Verify { public_key, .. } => {
                    let config = target.load()?;
                    palisade::telemetry::init(config.log_format, "warn");
                    auditcmd::verify_installation(&config, public_key.as_deref())
                        .await?
                        .into_result()?
                }
                AuditAction::Export { out } => {
                    let config = target.load()?;
                    palisade::telemetry::init(config.log_format, "warn");
                    let note = auditcmd::export(&config, out.as_deref()).await?;
                    eprintln!("{note}");
                    return Ok(());
                }
                AuditAction::PublicKey => auditcmd::public_key(&target.load()?).await?,
            };
            println!("{report}");
            Ok(())
        }
    }
}

async fn demo(config: Config, new_agent_password: bool) -> anyhow::Result<()> {
    // Seed before starting, so the demo page is served with its widget key.
    palisade::app::prepare_data_dir(&config)?;
    let seed_store = palisade::app::open_store(&config, 2).await?;
    let passwords = palisade_identity::PasswordHasher::new().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = palisade::demo::ensure(
        &seed_store,
        &passwords,
        &config.public_origin,
        new_agent_password,
    )
    .await?;
    let created = palisade::pkicmd::run_init(&config, &seed_store).await;
    seed_store.close().await;
    if created? {
        println!("Created the partner PKI (palisade pki list shows it).");
    }

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
