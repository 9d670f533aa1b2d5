//! A stage's resource use, sampled from /proc before, during and after the run.
//!
//! - `cpu_pct`: CPU time of the stage leader and its waited-for descendants (utime + stime +
//!   cutime + cstime of `/proc/PID/stat`) over the stage's wall time, in percent of one core.
//!   The leader's counters vanish when it is reaped, so they are sampled every
//!   [`USAGE_SAMPLE_INTERVAL`] while it runs; the last interval before exit is not counted.
//! - `memory_mb_delta`: change of system memory in use (`MemTotal - MemAvailable`) from before
//!   to after the stage, in MiB, as the seed engine measured it.
//! - the leader's peak resident set size, for logs.

use std::time::Duration;

use heidi_core::pipeline::UsageDelta;

use super::procfs::{read_meminfo, read_proc_stat};

/// How often the leader's /proc counters are read while it runs.
pub const USAGE_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Usage bookkeeping for one stage run.
#[derive(Debug)]
pub(crate) struct UsageTracker {
    mem_used_before_kb: Option<u64>,
    cpu_ticks: u64,
    peak_rss_pages: u64,
}

impl UsageTracker {
    /// Takes the "before" sample.
    pub(crate) fn start() -> Self {
        Self {
            mem_used_before_kb: read_meminfo().ok().map(|m| m.used_kb()),
            cpu_ticks: 0,
            peak_rss_pages: 0,
        }
    }

    /// Reads the leader's counters; a vanished or unreadable process keeps the last sample.
    pub(crate) fn sample_leader(&mut self, pid: i32) {
        if let Ok(st) = read_proc_stat(pid) {
            self.cpu_ticks = self.cpu_ticks.max(st.cpu_ticks);
            self.peak_rss_pages = self.peak_rss_pages.max(st.rss_pages);
        }
    }

    /// The leader's peak resident set size seen, in KiB.
    pub(crate) fn peak_rss_kb(&self) -> u64 {
        self.peak_rss_pages * (rustix::param::page_size() as u64) / 1024
    }

    /// Takes the "after" sample and computes the delta over `elapsed`.
    pub(crate) fn finish(&self, elapsed: Duration) -> UsageDelta {
        let after_kb = read_meminfo().ok().map(|m| m.used_kb());
        let memory_mb_delta = match (self.mem_used_before_kb, after_kb) {
            (Some(b), Some(a)) => (i128::from(a) - i128::from(b)) / 1024,
            _ => 0,
        };
        UsageDelta {
            memory_mb_delta: i64::try_from(memory_mb_delta).unwrap_or(0),
            cpu_pct: cpu_pct(
                self.cpu_ticks,
                rustix::param::clock_ticks_per_second(),
                elapsed,
            ),
        }
    }
}

/// CPU time in `ticks` (at `ticks_per_s`) over `elapsed`, in percent of one core.
fn cpu_pct(ticks: u64, ticks_per_s: u64, elapsed: Duration) -> u32 {
    let elapsed_ms = elapsed.as_millis().max(1);
    let cpu_ms = u128::from(ticks) * 1000 / u128::from(ticks_per_s.max(1));
    u32::try_from(cpu_ms * 100 / elapsed_ms).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_pct_is_percent_of_one_core() {
        assert_eq!(cpu_pct(100, 100, Duration::from_secs(1)), 100);
        assert_eq!(cpu_pct(50, 100, Duration::from_secs(2)), 25);
        assert_eq!(cpu_pct(400, 100, Duration::from_secs(2)), 200);
        assert_eq!(cpu_pct(0, 100, Duration::ZERO), 0);
        assert_eq!(cpu_pct(u64::MAX, 1, Duration::ZERO), u32::MAX);
    }

    #[test]
    fn sampling_this_process_sees_cpu_and_rss() {
        let mut t = UsageTracker::start();
        t.sample_leader(std::process::id() as i32);
        assert!(t.peak_rss_kb() > 0);
        t.sample_leader(-1); // unreadable: keeps the last sample
        assert!(t.peak_rss_kb() > 0);
        let _ = t.finish(Duration::from_secs(1));
    }
}
