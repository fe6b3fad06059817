//! What Linux says about a server process: resident memory and CPU time.

use anyhow::Context;

/// Resident set size of `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))
}

/// User plus system CPU seconds `pid` has used, threads and reaped children
/// included (nginx and haproxy workers are children of a master).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let mut total = own_cpu_seconds(pid)?;
    for child in children(pid) {
        total += own_cpu_seconds(child).unwrap_or(0.0);
    }
    Ok(total)
}

fn own_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command field"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path} field {i} is not a number"))
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// The direct children of `pid` (from /proc/PID/task/*/children).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Kernel clock ticks per second; 100 on every Linux this runs on.
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_memory_and_cpu() {
        let pid = std::process::id();
        assert!(rss_kib(pid).expect("rss") > 0);
        assert!(cpu_seconds(pid).expect("cpu") >= 0.0);
    }
}
