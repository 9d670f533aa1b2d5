//! Process facts for `status`: resident set size and thread count, from `/proc/self/status`.

/// `(rss_kb, threads)` of this process; zeros when `/proc` cannot be read.
pub(crate) fn rss_and_threads() -> (u64, u32) {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return (0, 0);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:"),
        u32::try_from(field("Threads:")).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let (rss, threads) = super::rss_and_threads();
        assert!(rss > 0);
        assert!(threads >= 1);
    }
}
