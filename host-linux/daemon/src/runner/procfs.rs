//! Parsers for the few /proc files the runner reads. Pure functions over the file text, so
//! they are tested with fixed strings; thin readers beside them.

use std::io;

/// The fields of `/proc/PID/stat` the runner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Process state letter (`R`, `S`, `Z`, …).
    pub state: u8,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// CPU time of the process and its waited-for children (utime + stime + cutime + cstime),
    /// in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
    /// When the process started, in clock ticks since boot (field 22): with the pid, it names
    /// one process (a reused pid has a later start time).
    pub start_ticks: u64,
}

/// Parses `/proc/PID/stat`. The command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
pub(crate) fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `fields[0]` is field 3 of proc(5); field n is `fields[n - 3]`.
    let num = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    let ticks = |n: usize| num(n).and_then(|v| u64::try_from(v).ok());
    Some(ProcStat {
        state: *fields.first()?.as_bytes().first()?,
        ppid: i32::try_from(num(4)?).ok()?,
        pgrp: i32::try_from(num(5)?).ok()?,
        cpu_ticks: ticks(14)? + ticks(15)? + ticks(16)? + ticks(17)?,
        rss_pages: ticks(24)?,
        start_ticks: ticks(22)?,
    })
}

/// Reads and parses `/proc/<pid>/stat`.
pub(crate) fn read_proc_stat(pid: i32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_proc_stat(&text).ok_or_else(|| bad_data("/proc/PID/stat"))
}

/// Memory figures from `/proc/meminfo`, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemInfo {
    /// `MemTotal`.
    pub total_kb: u64,
    /// `MemAvailable`.
    pub available_kb: u64,
}

impl MemInfo {
    /// Memory in use (total minus available), in KiB.
    pub(crate) fn used_kb(&self) -> u64 {
        self.total_kb.saturating_sub(self.available_kb)
    }
}

/// Parses `/proc/meminfo` (needs `MemTotal` and `MemAvailable`, Linux 3.14+).
pub(crate) fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .split_ascii_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
    };
    Some(MemInfo {
        total_kb: field("MemTotal")?,
        available_kb: field("MemAvailable")?,
    })
}

/// Reads and parses `/proc/meminfo`.
pub(crate) fn read_meminfo() -> io::Result<MemInfo> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_meminfo(&text).ok_or_else(|| bad_data("/proc/meminfo"))
}

/// Aggregate CPU time from the first line of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// All time (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total: u64,
    /// Idle time (idle + iowait).
    pub idle: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat`.
pub(crate) fn parse_cpu_times(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if v.len() < 5 {
        return None;
    }
    Some(CpuTimes {
        total: v.iter().sum(),
        idle: v[3] + v[4],
    })
}

/// Reads and parses `/proc/stat`.
pub(crate) fn read_cpu_times() -> io::Result<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat")?;
    parse_cpu_times(&text).ok_or_else(|| bad_data("/proc/stat"))
}

fn bad_data(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected format of {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_spaces_and_parens_in_the_name() {
        let text = "42 (a) b (c)) S 7 42 42 0 -1 4194560 100 0 0 0 11 5 3 2 20 0 1 0 \
                    100 1000 250 18446744073709551615";
        let st = parse_proc_stat(text).unwrap();
        assert_eq!(st.state, b'S');
        assert_eq!((st.ppid, st.pgrp), (7, 42));
        assert_eq!(st.cpu_ticks, 11 + 5 + 3 + 2);
        assert_eq!(st.rss_pages, 250);
        assert_eq!(st.start_ticks, 100);
    }

    #[test]
    fn truncated_proc_stat_is_none() {
        assert_eq!(parse_proc_stat("42 (x) S 1 42"), None);
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:       16000 kB\nMemFree:  100 kB\nMemAvailable:   4000 kB\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(
            (m.total_kb, m.available_kb, m.used_kb()),
            (16000, 4000, 12000)
        );
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn cpu_line() {
        let text = "cpu  10 1 5 80 4 0 0 0 0 0\ncpu0 1 1 1 1 1 0 0 0 0 0\n";
        assert_eq!(
            parse_cpu_times(text),
            Some(CpuTimes {
                total: 100,
                idle: 84
            })
        );
        assert_eq!(parse_cpu_times("cpu  1 x 3\n"), None);
    }

    #[test]
    fn readers_work_on_this_machine() {
        let me = read_proc_stat(std::process::id() as i32).unwrap();
        assert!(me.rss_pages > 0);
        assert!(read_meminfo().unwrap().total_kb > 0);
        assert!(read_cpu_times().unwrap().total > 0);
    }
}
