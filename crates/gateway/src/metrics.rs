//! Counters for the ops listener, in Prometheus' text format. Plain atomics:
//! a handful of numbers do not need a metrics framework.

use palisade_chat::ChatStats;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests_2xx: AtomicU64,
    pub requests_3xx: AtomicU64,
    pub requests_4xx: AtomicU64,
    pub requests_5xx: AtomicU64,
    pub request_micros_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_refused: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub websockets_open: AtomicU64,
    pub websocket_frames_refused: AtomicU64,
    pub rate_limited: AtomicU64,
    pub waf_blocked: AtomicU64,
    pub connections_refused_per_address: AtomicU64,
    /// Alerts: audited actions refused because their entry could not be written.
    pub alert_audit_write_failed: AtomicU64,
    /// Alerts: vault secrets whose current version expires within the warning window.
    pub secrets_expiring: AtomicU64,
    /// Partner, intermediate and server certificates within the expiry window.
    pub certificates_expiring: AtomicU64,
}

impl Metrics {
    pub fn record_status(&self, status: u16, micros: u64) {
        let counter = match status {
            200..=299 => &self.requests_2xx,
            300..=399 => &self.requests_3xx,
            400..=499 => &self.requests_4xx,
            _ => &self.requests_5xx,
        };
        counter.fetch_add(1, Relaxed);
        self.request_micros_total.fetch_add(micros, Relaxed);
    }

    /// Renders every counter, with the chat service's beside them.
    pub fn render(&self, chat: &ChatStats, commits: u64, hub_channels: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut put = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        put(
            "palisade_http_requests_total",
            "counter",
            "HTTP requests answered, by status class.",
            &[
                ("{class=\"2xx\"}", self.requests_2xx.load(Relaxed)),
                ("{class=\"3xx\"}", self.requests_3xx.load(Relaxed)),
                ("{class=\"4xx\"}", self.requests_4xx.load(Relaxed)),
                ("{class=\"5xx\"}", self.requests_5xx.load(Relaxed)),
            ],
        );
        let simple: [(&str, &str, &str, u64); 11] = [
            (
                "palisade_http_request_duration_microseconds_total",
                "counter",
                "Time spent answering HTTP requests.",
                self.request_micros_total.load(Relaxed),
            ),
            (
                "palisade_connections_open",
                "gauge",
                "Public connections open now.",
                self.connections_open.load(Relaxed),
            ),
            (
                "palisade_connections_refused_total",
                "counter",
                "Connections refused at the connection limit.",
                self.connections_refused.load(Relaxed),
            ),
            (
                "palisade_tls_handshake_failures_total",
                "counter",
                "TLS handshakes that failed or timed out.",
                self.tls_handshake_failures.load(Relaxed),
            ),
            (
                "palisade_websockets_open",
                "gauge",
                "WebSocket connections open now.",
                self.websockets_open.load(Relaxed),
            ),
            (
                "palisade_websocket_frames_refused_total",
                "counter",
                "WebSocket frames refused as invalid.",
                self.websocket_frames_refused.load(Relaxed),
            ),
            (
                "palisade_rate_limited_total",
                "counter",
                "Requests and WebSocket frames refused by a rate limit.",
                self.rate_limited.load(Relaxed),
            ),
            (
                "palisade_waf_blocked_total",
                "counter",
                "Requests refused by the application firewall.",
                self.waf_blocked.load(Relaxed),
            ),
            (
                "palisade_connections_refused_per_address_total",
                "counter",
                "Connections refused at the per-address connection limit.",
                self.connections_refused_per_address.load(Relaxed),
            ),
            (
                "palisade_messages_stored_total",
                "counter",
                "Chat messages durably stored.",
                chat.messages_stored.load(Relaxed),
            ),
            (
                "palisade_messages_resent_total",
                "counter",
                "Resent messages answered from the store.",
                chat.messages_resent.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in simple {
            put(name, kind, help, &[("", value)]);
        }
        put(
            "palisade_alerts_total",
            "counter",
            "Alerts raised (also logged with target palisade::alert).",
            &[(
                "{alert=\"audit_write_failed\"}",
                self.alert_audit_write_failed.load(Relaxed),
            )],
        );
        put(
            "palisade_secrets_expiring",
            "gauge",
            "Vault secrets expiring within the warning window (or expired).",
            &[("", self.secrets_expiring.load(Relaxed))],
        );
        put(
            "palisade_certificates_expiring",
            "gauge",
            "Partner, intermediate and server certificates expiring within the warning window.",
            &[("", self.certificates_expiring.load(Relaxed))],
        );
        put(
            "palisade_message_commits_total",
            "counter",
            "Message write transactions committed.",
            &[("", commits)],
        );
        put(
            "palisade_hub_channels",
            "gauge",
            "Fan-out channels open now.",
            &[("", hub_channels as u64)],
        );
        out
    }
}

/// The webhook service's counters, in the same format.
pub fn render_webhooks(stats: &palisade_webhooks::Stats) -> String {
    let mut out = String::with_capacity(512);
    let name = "palisade_webhook_attempts_total";
    let _ = writeln!(
        out,
        "# HELP {name} Webhook delivery attempts, by what became of the delivery.\n# TYPE {name} counter"
    );
    for (outcome, counter) in [
        ("delivered", &stats.delivered),
        ("retry", &stats.retried),
        ("failed", &stats.failed),
    ] {
        let _ = writeln!(
            out,
            "{name}{{outcome=\"{outcome}\"}} {}",
            counter.load(Relaxed)
        );
    }
    let name = "palisade_webhook_events_dropped_total";
    let _ = writeln!(
        out,
        "# HELP {name} Events that never reached the webhook outbox.\n# TYPE {name} counter\n{name} {}",
        stats.dropped.load(Relaxed)
    );
    out
}
