//! Latency histograms (microseconds, three significant digits) and the
//! summaries the subcommands print.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// The longest latency recorded; anything slower is clamped to it.
const MAX_MICROS: u64 = 120_000_000;

/// One latency distribution.
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // Bounds are constants that hdrhistogram accepts; a failure is a bug here.
        #[allow(
            clippy::expect_used,
            reason = "constant bounds that are known to be valid"
        )]
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid bounds");
        Self(histogram)
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        self.0.saturating_record(micros);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> Summary {
        let at = |q: f64| self.0.value_at_quantile(q);
        Summary {
            count: self.0.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.0.max(),
            mean_us: self.0.mean().round() as u64,
        }
    }
}

/// Percentiles of one distribution, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={} p99={} p99.9={} max={}",
            self.count,
            micros(self.p50_us),
            micros(self.p99_us),
            micros(self.p999_us),
            micros(self.max_us)
        )
    }
}

/// A latency for people: µs below a millisecond, ms above.
pub fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else {
        format!("{:.2}ms", us as f64 / 1000.0)
    }
}

/// Prints a report: the human lines to stderr, one JSON line to stdout, so
/// scripts read stdout and people read the terminal.
pub fn emit<T: Serialize>(report: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_what_was_recorded() {
        let mut latency = Latency::new();
        for ms in 1..=100 {
            latency.record(Duration::from_millis(ms));
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 100);
        assert!((49_000..=51_000).contains(&summary.p50_us), "{summary}");
        assert!(summary.p99_us >= 98_000, "{summary}");
    }

    #[test]
    fn merged_histograms_count_both() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_secs(500));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.summary().max_us, a.0.highest_equivalent(MAX_MICROS));
    }
}
