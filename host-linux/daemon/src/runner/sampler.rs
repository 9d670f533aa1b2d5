//! System-wide CPU and memory load for the resource governor, from `/proc/stat` deltas and
//! `/proc/meminfo` (`MemAvailable`).

use std::io;

use heidi_core::governor::Load;

use super::procfs::{CpuTimes, MemInfo, read_cpu_times, read_meminfo};

/// System CPU and memory use, in permille (the units of the core's [`Load`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemLoad {
    /// CPU busy time over the interval since the previous sample, in permille (0..=1000).
    pub cpu_permille: u16,
    /// Memory in use (total minus available), in permille (0..=1000).
    pub mem_permille: u16,
}

impl SystemLoad {
    /// The core's governor input, with the job counts the host keeps.
    pub fn load(&self, running: u32, queued: u32) -> Load {
        Load {
            running,
            queued,
            cpu_permille: self.cpu_permille,
            mem_permille: self.mem_permille,
        }
    }
}

/// Samples system load; CPU use is the busy share of the time since the previous sample (or
/// since [`SystemSampler::new`]).
#[derive(Debug)]
pub struct SystemSampler {
    prev: CpuTimes,
}

impl SystemSampler {
    /// A sampler whose first [`sample`](Self::sample) covers the time from now. If `/proc/stat`
    /// cannot be read now, the first sample covers the time since boot.
    pub fn new() -> Self {
        Self {
            prev: read_cpu_times().unwrap_or_default(),
        }
    }

    /// Reads `/proc/stat` and `/proc/meminfo`.
    pub fn sample(&mut self) -> io::Result<SystemLoad> {
        let now = read_cpu_times()?;
        let mem = read_meminfo()?;
        let cpu_permille = cpu_permille(self.prev, now);
        self.prev = now;
        Ok(SystemLoad {
            cpu_permille,
            mem_permille: mem_permille(mem),
        })
    }
}

impl Default for SystemSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// Busy share of the ticks between two samples; 0 when no tick passed.
fn cpu_permille(prev: CpuTimes, now: CpuTimes) -> u16 {
    let total = now.total.saturating_sub(prev.total);
    let idle = now.idle.saturating_sub(prev.idle).min(total);
    permille(total - idle, total)
}

fn mem_permille(m: MemInfo) -> u16 {
    permille(m.used_kb(), m.total_kb)
}

/// `part / whole` in permille, clamped to 0..=1000; 0 when `whole` is 0.
fn permille(part: u64, whole: u64) -> u16 {
    if whole == 0 {
        return 0;
    }
    let p = u128::from(part.min(whole)) * 1000 / u128::from(whole);
    u16::try_from(p).unwrap_or(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_permille_from_deltas() {
        let a = CpuTimes {
            total: 1000,
            idle: 800,
        };
        let b = CpuTimes {
            total: 1100,
            idle: 825,
        };
        assert_eq!(cpu_permille(a, b), 750);
        assert_eq!(cpu_permille(a, a), 0);
        // Counters that went backwards (a bad read) give 0, not an overflow.
        assert_eq!(cpu_permille(b, a), 0);
    }

    #[test]
    fn mem_permille_bounds() {
        let m = |total_kb, available_kb| MemInfo {
            total_kb,
            available_kb,
        };
        assert_eq!(mem_permille(m(1000, 100)), 900);
        assert_eq!(mem_permille(m(1000, 2000)), 0);
        assert_eq!(mem_permille(m(0, 0)), 0);
        assert_eq!(permille(u64::MAX, u64::MAX), 1000);
    }

    #[test]
    fn system_sampler_values_are_permille() {
        let mut s = SystemSampler::new();
        for _ in 0..3 {
            let load = s.sample().unwrap();
            assert!(load.cpu_permille <= 1000, "{load:?}");
            assert!(
                load.mem_permille <= 1000 && load.mem_permille > 0,
                "{load:?}"
            );
            let l = load.load(1, 2);
            assert_eq!((l.running, l.queued), (1, 2));
        }
    }
}
