//! Bookkeeping the load scenarios share: a run's fixed points in time, and
//! errors counted with the first few kept as samples for the report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// The schedule's fixed points.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub start: Instant,
    /// Latencies count from here (after the warm-up).
    pub measure_from: Instant,
    pub end: Instant,
    /// Receivers stop waiting for stragglers here.
    pub give_up: Instant,
}

impl Clock {
    /// How long a receiver waits before it looks at the counters again.
    pub fn poll_until(&self) -> Instant {
        (Instant::now() + Duration::from_millis(100)).min(self.give_up)
    }
}

/// Errors of a run: how many, and the first [`Errors::SAMPLES`] of them.
#[derive(Debug, Default)]
pub struct Errors {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Errors {
    pub const SAMPLES: usize = 5;

    pub fn note(&self, what: String) {
        self.count.fetch_add(1, Relaxed);
        if let Ok(mut samples) = self.samples.lock()
            && samples.len() < Self::SAMPLES
        {
            samples.push(what);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// CPU time of the generator (this process) and, when its pid is known, the
/// server, read at the start of a run and turned into busy cores at its end.
#[derive(Clone, Copy, Debug)]
pub struct CpuMeter {
    server_pid: Option<u32>,
    generator_before: f64,
    server_before: f64,
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    crate::procfs::cpu_seconds(pid).ok()
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            generator_before: cpu_seconds(std::process::id()).unwrap_or(0.0),
            server_before: server_pid.and_then(cpu_seconds).unwrap_or(0.0),
        }
    }

    /// (generator cores, server cores) busy on average over `elapsed_secs`;
    /// the server's is 0 without its pid.
    pub fn cores(&self, elapsed_secs: f64) -> (f64, f64) {
        let elapsed = elapsed_secs.max(0.001);
        let generator = cpu_seconds(std::process::id()).unwrap_or(0.0) - self.generator_before;
        let server = self
            .server_pid
            .and_then(cpu_seconds)
            .map_or(0.0, |after| (after - self.server_before) / elapsed);
        (generator / elapsed, server)
    }
}
