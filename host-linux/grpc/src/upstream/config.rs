//! What the reference upstream is told to do: its faults, its cost model and its memory bound.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The largest dedupe capacity accepted (records; about 100 bytes each with the apply log).
pub const MAX_CAPACITY: usize = 1 << 24;
/// The most service lanes accepted.
pub const MAX_CONCURRENCY: usize = 4096;
/// The most outage windows accepted.
pub const MAX_OUTAGES: usize = 64;
/// The longest injected latency or per-call cost accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// How the reference upstream behaves. [`UpstreamConfig::default`] is a perfect upstream:
/// no failures, no latency, no cost, 65 536 dedupe records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Probability, in parts per million (0 ..= [`PPM`]), that an `ApplyBatch` call fails with
    /// `UNAVAILABLE`, drawn from an RNG seeded with [`seed`](Self::seed). A failed call applies
    /// nothing. [`parse_rate`] reads `0.2` or `20%` as 200 000.
    pub failure_rate_ppm: u32,
    /// Seed of the failure RNG: the same seed and call order give the same failures.
    pub seed: u64,
    /// Delay added to every call (both RPCs) before it is handled, outside the service lanes:
    /// the network and queueing in front of the upstream.
    pub latency: Duration,
    /// Service time of one `ApplyBatch` call, whatever its size: the commit that batching
    /// amortises. Calls are served by [`concurrency`](Self::concurrency) lanes, each busy for
    /// `cost` per call, so a lane serves at most `1 / cost` calls per second.
    pub cost: Duration,
    /// Service lanes: how many `ApplyBatch` calls are in service at once (1 to
    /// [`MAX_CONCURRENCY`]). Further calls wait for a lane.
    pub concurrency: usize,
    /// Windows, relative to the start, during which every `ApplyBatch` call fails with
    /// `UNAVAILABLE` (and applies nothing).
    pub outages: Vec<Outage>,
    /// How many idempotency keys the dedupe table holds (1 to [`MAX_CAPACITY`], rounded up to
    /// a multiple of 8). A key is never forgotten: when no slot is free for a new key the call
    /// is refused with `RESOURCE_EXHAUSTED` and applies nothing. The table places each key in
    /// one of two groups of 8 slots, so a refusal can come somewhat before every slot is used.
    pub capacity: usize,
}

impl Default for UpstreamConfig {
    fn default() -> UpstreamConfig {
        UpstreamConfig {
            failure_rate_ppm: 0,
            seed: 0,
            latency: Duration::ZERO,
            cost: Duration::ZERO,
            concurrency: 1,
            outages: Vec::new(),
            capacity: 65_536,
        }
    }
}

impl UpstreamConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.failure_rate_ppm > PPM {
            return Err(ConfigError::FailureRate(self.failure_rate_ppm));
        }
        if self.latency > MAX_DELAY {
            return Err(ConfigError::Latency(self.latency));
        }
        if self.cost > MAX_DELAY {
            return Err(ConfigError::Cost(self.cost));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(ConfigError::Concurrency(self.concurrency));
        }
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(ConfigError::Capacity(self.capacity));
        }
        if self.outages.len() > MAX_OUTAGES {
            return Err(ConfigError::Outages(self.outages.len()));
        }
        Ok(())
    }

    /// Whether `since_start` falls in one of the outage windows.
    pub fn in_outage(&self, since_start: Duration) -> bool {
        self.outages.iter().any(|o| o.contains(since_start))
    }
}

/// A time window relative to the upstream's start: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// When it begins.
    pub start: Duration,
    /// When it ends (after `start`).
    pub end: Duration,
}

impl Outage {
    /// The window `[start, end)`; `None` unless `start < end`.
    pub fn new(start: Duration, end: Duration) -> Option<Outage> {
        (start < end).then_some(Outage { start, end })
    }

    /// Whether `t` is inside the window.
    pub fn contains(&self, t: Duration) -> bool {
        self.start <= t && t < self.end
    }
}

impl FromStr for Outage {
    type Err = String;

    /// Parses `START_MS..END_MS`, milliseconds from the start, e.g. `5000..8000`.
    fn from_str(s: &str) -> Result<Outage, String> {
        let bad = || format!("outage {s:?}: expected START_MS..END_MS with START_MS < END_MS");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let ms = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
        Outage::new(Duration::from_millis(ms(a)?), Duration::from_millis(ms(b)?)).ok_or_else(bad)
    }
}

/// One million: a probability of 1 in parts per million.
pub const PPM: u32 = 1_000_000;

/// Parses a probability written as a fraction (`0.2`, `1`, `0.000001`) or a percentage
/// (`20%`, `0.5%`) into parts per million, exactly (no floating point); at most 1.
pub fn parse_rate(s: &str) -> Result<u32, String> {
    let bad = || format!("rate {s:?}: expected 0 to 1 (e.g. 0.2) or 0% to 100% (e.g. 20%)");
    let (number, scale_digits) = match s.trim().strip_suffix('%') {
        Some(p) => (p, 4u32),
        None => (s.trim(), 6u32),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) || frac.len() > scale_digits as usize {
        return Err(bad());
    }
    let unit = 10u64.pow(scale_digits);
    let int: u64 = int.parse().map_err(|_| bad())?;
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let frac_scaled = frac_value * 10u64.pow(scale_digits - frac.len() as u32);
    let ppm = int
        .checked_mul(unit)
        .and_then(|v| v.checked_add(frac_scaled))
        .filter(|&v| v <= u64::from(PPM))
        .ok_or_else(bad)?;
    Ok(ppm as u32)
}

/// An [`UpstreamConfig`] field out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `failure_rate_ppm` is above [`PPM`].
    FailureRate(u32),
    /// `latency` is above [`MAX_DELAY`].
    Latency(Duration),
    /// `cost` is above [`MAX_DELAY`].
    Cost(Duration),
    /// `concurrency` is not in 1 ..= [`MAX_CONCURRENCY`].
    Concurrency(usize),
    /// `capacity` is not in 1 ..= [`MAX_CAPACITY`].
    Capacity(usize),
    /// More than [`MAX_OUTAGES`] outage windows.
    Outages(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::FailureRate(r) => {
                write!(f, "failure rate {r} ppm: expected 0 to {PPM}")
            }
            ConfigError::Latency(d) => write!(f, "latency {d:?}: at most {MAX_DELAY:?}"),
            ConfigError::Cost(d) => write!(f, "cost {d:?}: at most {MAX_DELAY:?}"),
            ConfigError::Concurrency(n) => {
                write!(f, "concurrency {n}: expected 1 to {MAX_CONCURRENCY}")
            }
            ConfigError::Capacity(n) => write!(f, "capacity {n}: expected 1 to {MAX_CAPACITY}"),
            ConfigError::Outages(n) => write!(f, "{n} outage windows: at most {MAX_OUTAGES}"),
        }
    }
}

impl std::error::Error for ConfigError {}
