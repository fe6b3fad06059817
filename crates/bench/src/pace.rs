//! The send schedule. One OS thread walks the schedule (`rate` sends per
//! second from `start` until `end`), sleeping between due times, and hands
//! each due time to a lane round-robin; a lane is one connection's task.
//!
//! A thread rather than async timers: tokio's timers tick in milliseconds,
//! which would add up to a millisecond of error to every latency. Latency
//! counts from the due time, never from when the lane got to send, so a
//! connection that falls behind shows it as latency.

use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One lane's due times, in order; it ends when the schedule does.
pub type Lane = mpsc::UnboundedReceiver<tokio::time::Instant>;

/// Starts the schedule thread and returns the lanes.
pub fn spawn(rate: f64, start: Instant, end: Instant, lanes: usize) -> Vec<Lane> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..lanes.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
    let step = Duration::from_secs_f64(1.0 / rate.max(0.001));
    std::thread::spawn(move || {
        let mut due = start;
        let mut k = 0usize;
        while due < end {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // A lane whose connection failed is gone; its sends are skipped.
            let _ = senders[k % senders.len()].send(tokio::time::Instant::from_std(due));
            k += 1;
            due = start + step * k as u32;
        }
    });
    receivers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn due_times_are_dealt_round_robin_until_the_end() {
        let start = Instant::now();
        let end = start + Duration::from_millis(50);
        let mut lanes = spawn(200.0, start, end, 2);
        let mut counts = Vec::new();
        for lane in &mut lanes {
            let mut n = 0;
            let mut last = None;
            while let Some(due) = lane.recv().await {
                assert!(last.is_none_or(|l| l < due));
                last = Some(due);
                n += 1;
            }
            counts.push(n);
        }
        assert_eq!(counts, vec![5, 5]);
    }
}
