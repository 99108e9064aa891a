//! What a process costs, read from /proc: CPU time of all its threads (the
//! renderer's driver threads included) in nanoseconds, and its peak RSS.

/// CPU time of every thread of `pid`, from /proc/PID/task/*/schedstat (nanoseconds).
pub fn cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// Peak resident set size of `pid` in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM for {pid}"))
}
