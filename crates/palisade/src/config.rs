//! Settings, parsed in two stages: the raw TOML (with environment overrides
//! applied) into [`RawConfig`], which refuses unknown keys; then validated
//! and derived into [`Config`]. Every refusal names the key and the reason.
//!
//! Environment overrides: `PALISADE_<KEY>` for a top-level key and
//! `PALISADE_<SECTION>__<KEY>` for a key in a section, e.g.
//! `PALISADE_SERVER__PUBLIC_ADDR=0.0.0.0:443`. A value is read as TOML when it
//! parses as such (numbers, booleans, arrays) and as a string otherwise.

use palisade_gateway::limits::{Class, ClassQuotas, LimitSettings, Quota};
use palisade_gateway::waf::Mode as WafMode;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A setting that cannot be used, with the key that holds it.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn refuse(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    data_dir: Option<PathBuf>,
    server: RawServer,
    tls: RawTls,
    database: RawDatabase,
    sessions: RawSessions,
    log: RawLog,
    audit: RawAudit,
    limits: RawLimits,
    waf: RawWaf,
    pki: RawPki,
    webhooks: RawWebhooks,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPki {
    partner_cert_days: u64,
    partner_cert_max_days: u64,
    expiry_warning_days: u64,
    watch_interval_ms: u64,
}

impl Default for RawPki {
    fn default() -> Self {
        Self {
            partner_cert_days: 30,
            partner_cert_max_days: 365,
            expiry_warning_days: 7,
            watch_interval_ms: 1000,
        }
    }
}

/// The partner PKI's settings (`[pki]`).
#[derive(Clone, Debug)]
pub struct PkiSettings {
    /// Validity of a partner certificate when none is asked for.
    pub partner_cert_days: u32,
    /// The longest validity an admin or operator may ask for.
    pub partner_cert_max_days: u32,
    /// Certificates (partner, intermediate, server) expiring within this many days raise
    /// an alert and are flagged `expiring_soon`.
    pub expiry_warning_days: u32,
    /// How often the server looks for revocations and a replaced server certificate.
    pub watch_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAudit {
    checkpoint_every_entries: u64,
    checkpoint_every_secs: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            checkpoint_every_entries: 100,
            checkpoint_every_secs: 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    public_addr: String,
    ops_addr: String,
    public_origin: Option<String>,
    server_names: Vec<String>,
    handshake_timeout_secs: u64,
    header_read_timeout_secs: u64,
    idle_timeout_secs: u64,
    max_connections: usize,
    max_connections_per_address: usize,
    body_read_timeout_secs: u64,
    max_body_bytes: usize,
    max_header_bytes: usize,
    http2_max_concurrent_streams: u32,
    websocket_max_message_bytes: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            public_addr: "127.0.0.1:8443".into(),
            ops_addr: "127.0.0.1:9090".into(),
            public_origin: None,
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 120,
            max_connections: 10_000,
            max_connections_per_address: 256,
            body_read_timeout_secs: 10,
            max_body_bytes: 64 * 1024,
            max_header_bytes: 32 * 1024,
            http2_max_concurrent_streams: 100,
            websocket_max_message_bytes: 16 * 1024,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: Option<String>,
    max_connections: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSessions {
    idle_minutes: u64,
    absolute_hours: u64,
    visitor_token_hours: u64,
    /// Failed sign-ins an account may make per window before waits start.
    login_free_attempts_per_account: u32,
    /// The same per client address.
    login_free_attempts_per_address: u32,
    login_window_secs: u64,
}

impl Default for RawSessions {
    fn default() -> Self {
        Self {
            idle_minutes: 30,
            absolute_hours: 12,
            visitor_token_hours: 24,
            login_free_attempts_per_account: 5,
            login_free_attempts_per_address: 20,
            login_window_secs: 900,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: String,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "auto".into(),
            level: "info".into(),
        }
    }
}

/// `[limits]`: rates as `"<n>/<s|min|h> burst <b>"` or `"off"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    login_per_address: String,
    login_per_account: String,
    session_per_address: String,
    session_per_tenant: String,
    send_per_address: String,
    send_per_credential: String,
    send_per_tenant: String,
    read_per_address: String,
    read_per_credential: String,
    read_per_tenant: String,
    write_per_address: String,
    write_per_credential: String,
    write_per_tenant: String,
    ws_messages_per_connection: String,
    max_tracked_keys: usize,
    /// Tenant id -> class (login, session, send, read, write) -> rate.
    tenant_overrides:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

impl Default for RawLimits {
    fn default() -> Self {
        let rate = |text: &str| text.to_owned();
        Self {
            login_per_address: rate("20/min burst 10"),
            login_per_account: rate("10/min burst 5"),
            session_per_address: rate("60/min burst 20"),
            session_per_tenant: rate("3000/min burst 300"),
            send_per_address: rate("1200/min burst 120"),
            send_per_credential: rate("60/min burst 20"),
            send_per_tenant: rate("6000/min burst 600"),
            read_per_address: rate("3000/min burst 300"),
            read_per_credential: rate("600/min burst 100"),
            read_per_tenant: rate("60000/min burst 3000"),
            write_per_address: rate("600/min burst 60"),
            write_per_credential: rate("120/min burst 30"),
            write_per_tenant: rate("6000/min burst 600"),
            ws_messages_per_connection: rate("120/min burst 30"),
            max_tracked_keys: 200_000,
            tenant_overrides: Default::default(),
        }
    }
}

impl RawLimits {
    fn validate(self) -> Result<LimitSettings, ConfigError> {
        let quota = |key: &str, text: &str| {
            Quota::parse(text).map_err(|reason| refuse(&format!("limits.{key}"), reason))
        };
        let class = |name: &str, a: &str, c: Option<&str>, t: Option<&str>| {
            Ok::<_, ConfigError>(ClassQuotas {
                per_address: quota(&format!("{name}_per_address"), a)?,
                per_credential: match c {
                    Some(c) => quota(&format!("{name}_per_credential"), c)?,
                    None => None,
                },
                per_tenant: match t {
                    Some(t) => quota(&format!("{name}_per_tenant"), t)?,
                    None => None,
                },
            })
        };
        let mut overrides = std::collections::HashMap::new();
        for (tenant, classes) in &self.tenant_overrides {
            let mut parsed = std::collections::HashMap::new();
            for (name, text) in classes {
                let key = format!("limits.tenant_overrides.{tenant}.{name}");
                let class = match name.as_str() {
                    "login" => Class::Login,
                    "session" => Class::Session,
                    "send" => Class::Send,
                    "read" => Class::Read,
                    "write" => Class::Write,
                    _ => {
                        return Err(refuse(
                            &key,
                            "must be one of login, session, send, read, write",
                        ));
                    }
                };
                let quota = Quota::parse(text)
                    .map_err(|reason| refuse(&key, reason))?
                    .ok_or_else(|| refuse(&key, "an override must be a rate, not off"))?;
                parsed.insert(class, quota);
            }
            overrides.insert(tenant.clone(), parsed);
        }
        Ok(LimitSettings {
            login: class("login", &self.login_per_address, None, None)?,
            login_per_account: quota("login_per_account", &self.login_per_account)?,
            session: class(
                "session",
                &self.session_per_address,
                None,
                Some(&self.session_per_tenant),
            )?,
            send: class(
                "send",
                &self.send_per_address,
                Some(&self.send_per_credential),
                Some(&self.send_per_tenant),
            )?,
            read: class(
                "read",
                &self.read_per_address,
                Some(&self.read_per_credential),
                Some(&self.read_per_tenant),
            )?,
            write: class(
                "write",
                &self.write_per_address,
                Some(&self.write_per_credential),
                Some(&self.write_per_tenant),
            )?,
            ws_messages_per_connection: quota(
                "ws_messages_per_connection",
                &self.ws_messages_per_connection,
            )?,
            tenant_overrides: overrides,
            max_tracked_keys: positive(
                "limits.max_tracked_keys",
                self.max_tracked_keys as u64,
                "keys",
                100_000_000,
            )? as usize,
        })
    }
}

/// `[waf]`: the application firewall.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWaf {
    mode: String,
    rules_file: Option<PathBuf>,
}

impl Default for RawWaf {
    fn default() -> Self {
        Self {
            mode: "block".into(),
            rules_file: None,
        }
    }
}

/// `[webhooks]`: delivery of webhook events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWebhooks {
    /// Networks deliveries may reach despite the SSRF rules, e.g.
    /// `["127.0.0.1/32"]` for a test receiver. Also the only targets
    /// plain http:// is accepted for.
    allow_targets: Vec<String>,
    max_attempts: u64,
    concurrency: u64,
    connect_timeout_secs: u64,
    request_timeout_secs: u64,
    retry_base_ms: u64,
    retry_max_secs: u64,
}

impl Default for RawWebhooks {
    fn default() -> Self {
        let d = palisade_webhooks::Settings::default();
        Self {
            allow_targets: Vec::new(),
            max_attempts: d.max_attempts as u64,
            concurrency: d.concurrency as u64,
            connect_timeout_secs: d.connect_timeout.as_secs(),
            request_timeout_secs: d.request_timeout.as_secs(),
            retry_base_ms: d.retry_base.as_millis() as u64,
            retry_max_secs: d.retry_max.as_secs(),
        }
    }
}

impl RawWebhooks {
    fn validate(self) -> Result<palisade_webhooks::Settings, ConfigError> {
        let allow_targets = palisade_webhooks::AllowList::parse(&self.allow_targets)
            .map_err(|e| refuse("webhooks.allow_targets", e))?;
        let secs =
            |key: &str, v: u64, max: u64| positive(key, v, "seconds", max).map(Duration::from_secs);
        Ok(palisade_webhooks::Settings {
            allow_targets,
            max_attempts: positive("webhooks.max_attempts", self.max_attempts, "attempts", 100)?
                as i64,
            concurrency: positive("webhooks.concurrency", self.concurrency, "deliveries", 1000)?
                as usize,
            connect_timeout: secs(
                "webhooks.connect_timeout_secs",
                self.connect_timeout_secs,
                60,
            )?,
            request_timeout: secs(
                "webhooks.request_timeout_secs",
                self.request_timeout_secs,
                300,
            )?,
            retry_base: Duration::from_millis(positive(
                "webhooks.retry_base_ms",
                self.retry_base_ms,
                "milliseconds",
                3_600_000,
            )?),
            retry_max: secs("webhooks.retry_max_secs", self.retry_max_secs, 7 * 86_400)?,
        })
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, text when it is.
    Auto,
    Json,
    Text,
}

/// Where the server certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// The internal CA in `<data_dir>/tls`, issuing for these names.
    InternalCa { names: Vec<String> },
    /// Operator-supplied PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub public_addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub public_origin: String,
    pub tls: TlsSource,
    /// May hold a password: never logged.
    pub database_url: String,
    pub database_max_connections: u32,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub login_throttle: palisade_gateway::ThrottlePolicy,
    pub max_connections_per_address: usize,
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub http2_max_concurrent_streams: u32,
    pub websocket_max_message_bytes: usize,
    pub limits: LimitSettings,
    pub waf_mode: WafMode,
    /// Operator WAF rules, re-read when the file changes; `None`: the embedded rules.
    pub waf_rules_file: Option<PathBuf>,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub visitor_token_ttl: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    /// The master key from `PALISADE_MASTER_KEY` (base64); when absent the
    /// key file `<data_dir>/keys/master.key` is used. Never printed.
    pub master_key: Option<palisade_identity::SecretString>,
    /// When the audit log is checkpointed (`[audit]`).
    pub audit_checkpoints: palisade_audit::CheckpointPolicy,
    /// The partner PKI (`[pki]`).
    pub pki: PkiSettings,
    /// Webhook delivery (`[webhooks]`).
    pub webhooks: palisade_webhooks::Settings,
}

const SECTIONS: [&str; 10] = [
    "server", "tls", "database", "sessions", "log", "audit", "limits", "waf", "pki", "webhooks",
];
const TOP_LEVEL: [&str; 1] = ["data_dir"];

impl Config {
    /// Reads `file` (if any), applies `PALISADE_*` overrides from `env`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| refuse("--config", format!("reading {}: {e}", path.display())))?;
                text.parse::<toml::Table>().map_err(|e| {
                    refuse(
                        "--config",
                        format!("{} is not valid TOML: {e}", path.display()),
                    )
                })?
            }
            None => toml::Table::new(),
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        let master_key = env
            .iter()
            .find(|(name, _)| name == palisade_crypto::MASTER_KEY_ENV)
            .map(|(_, value)| palisade_identity::SecretString::new(value.clone()));
        apply_env(&mut table, env)?;
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| refuse(&e.path().to_string(), e.inner().to_string()))?;
        let mut config = raw.validate()?;
        config.master_key = master_key;
        Ok(config)
    }
}

fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("PALISADE_") else {
            continue;
        };
        let lower = rest.to_ascii_lowercase();
        let path: Vec<&str> = lower.split("__").collect();
        let known = match path.as_slice() {
            [key] => TOP_LEVEL.contains(key),
            [section, _] => SECTIONS.contains(section),
            _ => false,
        };
        if !known {
            continue; // not a config variable (e.g. PALISADE_TEST_POSTGRES_URL)
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut node = &mut *table;
        for section in &path[..path.len() - 1] {
            let entry = node
                .entry((*section).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| refuse(section, "must be a table, to take overrides from {name}"))?;
        }
        node.insert(path[path.len() - 1].to_owned(), parsed);
    }
    Ok(())
}

fn socket_addr(key: &str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.parse().map_err(|_| {
        refuse(
            key,
            format!("{raw:?} is not an address like 127.0.0.1:8443"),
        )
    })
}

fn positive(key: &str, value: u64, unit: &str, max: u64) -> Result<u64, ConfigError> {
    if value == 0 || value > max {
        return Err(refuse(
            key,
            format!("must be 1 to {max} {unit}, not {value}"),
        ));
    }
    Ok(value)
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./palisade-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(refuse("data_dir", "must not be empty"));
        }
        let server = self.server;
        let public_addr = socket_addr("server.public_addr", &server.public_addr)?;
        let ops_addr = socket_addr("server.ops_addr", &server.ops_addr)?;
        if !ops_addr.ip().is_loopback() {
            return Err(refuse(
                "server.ops_addr",
                "the ops listener serves metrics and must stay on loopback",
            ));
        }
        let public_origin = match server.public_origin {
            Some(origin) => {
                let well_formed = origin.starts_with("https://")
                    && !origin.trim_end_matches('/').ends_with("https:/")
                    && !origin[8..].contains('/')
                    && origin.chars().all(|c| c.is_ascii_graphic());
                if !well_formed {
                    return Err(refuse(
                        "server.public_origin",
                        "must look like https://chat.example.com (no path)",
                    ));
                }
                origin
            }
            None => match public_addr.ip() {
                std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                    format!("https://127.0.0.1:{}", public_addr.port())
                }
                std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                    format!("https://[::1]:{}", public_addr.port())
                }
                _ => format!("https://{public_addr}"),
            },
        };
        let tls = match (self.tls.cert_file, self.tls.key_file) {
            (Some(cert), Some(key)) => TlsSource::Files { cert, key },
            (None, None) => {
                if server.server_names.is_empty() {
                    return Err(refuse(
                        "server.server_names",
                        "needs at least one name for the certificate",
                    ));
                }
                TlsSource::InternalCa {
                    names: server.server_names,
                }
            }
            (Some(_), None) => {
                return Err(refuse(
                    "tls.key_file",
                    "is required when tls.cert_file is set",
                ));
            }
            (None, Some(_)) => {
                return Err(refuse(
                    "tls.cert_file",
                    "is required when tls.key_file is set",
                ));
            }
        };
        let database_url = match self.database.url {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres:")
                    || url.starts_with("postgresql:") =>
            {
                url
            }
            Some(_) => {
                return Err(refuse(
                    "database.url",
                    "must start with sqlite: or postgres:",
                ));
            }
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("palisade.db").display()
            ),
        };
        let db_max = positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
            "connections",
            1000,
        )?;
        let log_format = match self.log.format.as_str() {
            "auto" => LogFormat::Auto,
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            other => {
                return Err(refuse(
                    "log.format",
                    format!("must be auto, json or text, not {other:?}"),
                ));
            }
        };
        let plain_level = ["trace", "debug", "info", "warn", "error", "off"]
            .contains(&self.log.level.to_ascii_lowercase().as_str());
        let is_filter = self.log.level.contains('=') || self.log.level.contains(',');
        if !(plain_level || is_filter)
            || tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err()
        {
            return Err(refuse(
                "log.level",
                format!(
                    "{:?} is not a level or filter like info or palisade=debug",
                    self.log.level
                ),
            ));
        }
        let secs =
            |key: &str, v: u64, max: u64| positive(key, v, "seconds", max).map(Duration::from_secs);
        let waf_mode = match self.waf.mode.as_str() {
            "block" => WafMode::Block,
            "detect" => WafMode::Detect,
            "off" => WafMode::Off,
            other => {
                return Err(refuse(
                    "waf.mode",
                    format!("must be block, detect or off, not {other:?}"),
                ));
            }
        };
        if let Some(path) = &self.waf.rules_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                refuse("waf.rules_file", format!("reading {}: {e}", path.display()))
            })?;
            palisade_gateway::waf::Rules::parse(&text).map_err(|e| refuse("waf.rules_file", e))?;
        }
        let bytes = |key: &str, v: usize, min: usize, max: usize| {
            if v < min || v > max {
                return Err(refuse(
                    key,
                    format!("must be {min} to {max} bytes, not {v}"),
                ));
            }
            Ok(v)
        };
        Ok(Config {
            data_dir,
            public_addr,
            ops_addr,
            public_origin,
            tls,
            database_url,
            database_max_connections: db_max as u32,
            handshake_timeout: secs(
                "server.handshake_timeout_secs",
                server.handshake_timeout_secs,
                120,
            )?,
            header_read_timeout: secs(
                "server.header_read_timeout_secs",
                server.header_read_timeout_secs,
                120,
            )?,
            idle_timeout: secs("server.idle_timeout_secs", server.idle_timeout_secs, 3600)?,
            max_connections: positive(
                "server.max_connections",
                server.max_connections as u64,
                "connections",
                1_000_000,
            )? as usize,
            max_connections_per_address: positive(
                "server.max_connections_per_address",
                server.max_connections_per_address as u64,
                "connections",
                1_000_000,
            )? as usize,
            body_read_timeout: secs(
                "server.body_read_timeout_secs",
                server.body_read_timeout_secs,
                300,
            )?,
            max_body_bytes: bytes(
                "server.max_body_bytes",
                server.max_body_bytes,
                1024,
                16 << 20,
            )?,
            // hyper refuses an HTTP/1.1 read buffer under 8 KiB.
            max_header_bytes: bytes(
                "server.max_header_bytes",
                server.max_header_bytes,
                8192,
                1 << 20,
            )?,
            http2_max_concurrent_streams: positive(
                "server.http2_max_concurrent_streams",
                u64::from(server.http2_max_concurrent_streams),
                "streams",
                10_000,
            )? as u32,
            websocket_max_message_bytes: bytes(
                "server.websocket_max_message_bytes",
                server.websocket_max_message_bytes,
                1024,
                1 << 20,
            )?,
            limits: self.limits.validate()?,
            waf_mode,
            waf_rules_file: self.waf.rules_file,
            session_idle: Duration::from_secs(
                60 * positive(
                    "sessions.idle_minutes",
                    self.sessions.idle_minutes,
                    "minutes",
                    24 * 60,
                )?,
            ),
            session_absolute: Duration::from_secs(
                3600 * positive(
                    "sessions.absolute_hours",
                    self.sessions.absolute_hours,
                    "hours",
                    24 * 30,
                )?,
            ),
            login_throttle: palisade_gateway::ThrottlePolicy {
                free_per_account: positive(
                    "sessions.login_free_attempts_per_account",
                    u64::from(self.sessions.login_free_attempts_per_account),
                    "attempts",
                    1000,
                )? as u32,
                free_per_address: positive(
                    "sessions.login_free_attempts_per_address",
                    u64::from(self.sessions.login_free_attempts_per_address),
                    "attempts",
                    100_000,
                )? as u32,
                window: Duration::from_secs(positive(
                    "sessions.login_window_secs",
                    self.sessions.login_window_secs,
                    "seconds",
                    24 * 3600,
                )?),
            },
            visitor_token_ttl: Duration::from_secs(
                3600 * positive(
                    "sessions.visitor_token_hours",
                    self.sessions.visitor_token_hours,
                    "hours",
                    24 * 30,
                )?,
            ),
            webhooks: self.webhooks.validate()?,
            log_format,
            log_level: self.log.level,
            master_key: None,
            audit_checkpoints: palisade_audit::CheckpointPolicy {
                every_entries: positive(
                    "audit.checkpoint_every_entries",
                    self.audit.checkpoint_every_entries,
                    "entries",
                    1_000_000,
                )? as i64,
                every: secs(
                    "audit.checkpoint_every_secs",
                    self.audit.checkpoint_every_secs,
                    86_400,
                )?,
            },
            pki: self.pki.validate()?,
        })
    }
}

impl RawPki {
    fn validate(self) -> Result<PkiSettings, ConfigError> {
        let days = |key, value, max| {
            positive(key, value, "days", max).map(|d| u32::try_from(d).unwrap_or(u32::MAX))
        };
        let max_days = days(
            "pki.partner_cert_max_days",
            self.partner_cert_max_days,
            1826,
        )?;
        let default_days = days("pki.partner_cert_days", self.partner_cert_days, 1826)?;
        if default_days > max_days {
            return Err(refuse(
                "pki.partner_cert_days",
                "must not exceed pki.partner_cert_max_days",
            ));
        }
        let interval = positive(
            "pki.watch_interval_ms",
            self.watch_interval_ms,
            "ms",
            60_000,
        )?;
        Ok(PkiSettings {
            partner_cert_days: default_days,
            partner_cert_max_days: max_days,
            expiry_warning_days: days("pki.expiry_warning_days", self.expiry_warning_days, 365)?,
            watch_interval: Duration::from_millis(interval),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("palisade-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("palisade.toml");
        std::fs::write(&file, toml).expect("write config");
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let loaded = Config::load(Some(&file), env);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn defaults_are_loopback_and_embedded() {
        let config = load("", &[]).expect("defaults load");
        assert_eq!(config.public_addr.to_string(), "127.0.0.1:8443");
        assert_eq!(config.ops_addr.to_string(), "127.0.0.1:9090");
        assert_eq!(config.public_origin, "https://127.0.0.1:8443");
        assert!(config.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn bad_value_names_its_key() {
        let err = load("[server]\npublic_addr = \"nowhere\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "server.public_addr");
        let err = load("[server]\nmax_connections = \"many\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "server.max_connections");
        let err = load("[sessions]\nidle_minutes = 0\n", &[]).expect_err("refused");
        assert_eq!(err.key, "sessions.idle_minutes");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = load("[server]\npublic_adr = \"127.0.0.1:1\"\n", &[]).expect_err("refused");
        assert!(err.to_string().contains("public_adr"), "{err}");
    }

    #[test]
    fn ops_listener_must_stay_on_loopback() {
        let err = load("[server]\nops_addr = \"0.0.0.0:9090\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "server.ops_addr");
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = [
            ("PALISADE_SERVER__PUBLIC_ADDR", "127.0.0.1:9443"),
            ("PALISADE_DATABASE__MAX_CONNECTIONS", "4"),
            ("PALISADE_TEST_POSTGRES_URL", "ignored"),
        ];
        let config = load("[server]\npublic_addr = \"127.0.0.1:1\"\n", &env).expect("loads");
        assert_eq!(config.public_addr.to_string(), "127.0.0.1:9443");
        assert_eq!(config.database_max_connections, 4);
    }

    #[test]
    fn bad_environment_value_names_the_key() {
        let err = load("", &[("PALISADE_SERVER__MAX_CONNECTIONS", "lots")]).expect_err("refused");
        assert_eq!(err.key, "server.max_connections");
    }

    #[test]
    fn limit_defaults_match_the_gateway_defaults() {
        let config = load("", &[]).expect("defaults load");
        let gateway = LimitSettings::default();
        for class in [
            Class::Login,
            Class::Session,
            Class::Send,
            Class::Read,
            Class::Write,
        ] {
            let (a, b) = (config.limits.class(class), gateway.class(class));
            assert_eq!(a.per_address, b.per_address, "{class:?}");
            assert_eq!(a.per_credential, b.per_credential, "{class:?}");
            assert_eq!(a.per_tenant, b.per_tenant, "{class:?}");
        }
        assert_eq!(config.limits.login_per_account, gateway.login_per_account);
        assert_eq!(
            config.limits.ws_messages_per_connection,
            gateway.ws_messages_per_connection
        );
        assert_eq!(config.waf_mode, WafMode::Block);
    }

    #[test]
    fn bad_limits_and_waf_settings_name_their_key() {
        let err = load("[limits]\nsend_per_tenant = \"lots\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "limits.send_per_tenant");
        let env = [("PALISADE_LIMITS__READ_PER_ADDRESS", "5/week")];
        assert_eq!(
            load("", &env).expect_err("refused").key,
            "limits.read_per_address"
        );
        let toml = "[limits.tenant_overrides.t1]\nsending = \"5/s\"\n";
        let err = load(toml, &[]).expect_err("refused");
        assert_eq!(err.key, "limits.tenant_overrides.t1.sending");
        let err = load("[waf]\nmode = \"loud\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "waf.mode");
        let err = load("[waf]\nrules_file = \"/nonexistent/rules.toml\"\n", &[]).expect_err("x");
        assert_eq!(err.key, "waf.rules_file");
        let err = load("[server]\nmax_header_bytes = 100\n", &[]).expect_err("refused");
        assert_eq!(err.key, "server.max_header_bytes");
    }

    #[test]
    fn limits_can_be_set_and_turned_off() {
        let toml = "[limits]\nsend_per_tenant = \"5/s burst 9\"\nlogin_per_account = \"off\"\n\
                    [limits.tenant_overrides.t1]\nsend = \"100/s\"\n";
        let config = load(toml, &[]).expect("loads");
        let quota = config.limits.send.per_tenant.expect("on");
        assert_eq!((quota.count, quota.burst), (5, 9));
        assert_eq!(config.limits.login_per_account, None);
        assert_eq!(
            config.limits.tenant_overrides["t1"][&Class::Send].count,
            100
        );
    }

    #[test]
    fn half_an_operator_certificate_is_refused() {
        let err = load("[tls]\ncert_file = \"a.pem\"\n", &[]).expect_err("refused");
        assert_eq!(err.key, "tls.key_file");
    }

    #[test]
    fn webhook_settings_load_and_bad_ones_name_their_key() {
        let config = load("", &[]).expect("defaults");
        assert!(config.webhooks.allow_targets.is_empty());
        assert_eq!(config.webhooks.max_attempts, 8);
        let config = load(
            "[webhooks]\nallow_targets = [\"127.0.0.1/32\"]\nretry_base_ms = 250\n",
            &[("PALISADE_WEBHOOKS__MAX_ATTEMPTS", "3")],
        )
        .expect("valid");
        assert!(
            config
                .webhooks
                .allow_targets
                .contains("127.0.0.1".parse().expect("ip"))
        );
        assert_eq!(config.webhooks.retry_base, Duration::from_millis(250));
        assert_eq!(config.webhooks.max_attempts, 3);
        let err = load("[webhooks]\nallow_targets = [\"localhost\"]\n", &[]).expect_err("x");
        assert_eq!(err.key, "webhooks.allow_targets");
        let err = load("[webhooks]\nconcurrency = 0\n", &[]).expect_err("x");
        assert_eq!(err.key, "webhooks.concurrency");
        let err = load("[webhooks]\nsurprise = 1\n", &[]).expect_err("x");
        assert!(err.key.contains("webhooks"), "{}", err.key);
    }

    #[test]
    fn the_example_file_loads() {
        let text = include_str!("../../../palisade.example.toml");
        load(text, &[]).expect("palisade.example.toml is valid");
    }
}
