//! The trace every scenario produces: per-tick aggregates, events and a summary.
//!
//! Written by [`crate::json`] in struct field order; every number is an integer (times in
//! µs or ms, rates in permille, means in thousandths), so the bytes are the same on every
//! target. The format is documented in `host-wasm/README.md`.

use crate::error::{SimError, check_range};
use crate::json::{ToJson, Writer};
use heidi_core::{Duration, Instant};

/// The `format` field of every trace; bumped on any incompatible change.
pub const TRACE_FORMAT: &str = "heidi-sim-trace/1";
/// Most events kept in a trace; later ones are counted in `events_dropped`.
pub const MAX_EVENTS: usize = 1_000;
/// Most ticks in a run (`duration_ms / tick_ms`).
pub const MAX_TICKS: u64 = 10_000;
/// Longest simulated run: one day.
pub const MAX_DURATION_MS: u64 = 86_400_000;

/// A whole run. `P` are the parameters in force (defaults filled in), `T` a tick, `E` an
/// event, `S` the summary.
#[derive(Debug)]
pub struct Trace<P, T, E, S> {
    /// [`TRACE_FORMAT`].
    pub format: &'static str,
    /// The scenario's name.
    pub scenario: &'static str,
    /// The seed of the PRNG.
    pub seed: u64,
    /// The step cap in force.
    pub max_steps: u64,
    /// The parameters in force.
    pub params: P,
    /// Width of a tick, in ms.
    pub tick_ms: u64,
    /// Events processed (the simulator's steps).
    pub steps: u64,
    /// Whether the run stopped at `max_steps` with work left; the trace then ends early.
    pub step_cap_reached: bool,
    /// Virtual time when the run ended, in ms.
    pub end_ms: u64,
    /// Per-tick aggregates, tick `i` covering `[i·tick_ms, (i+1)·tick_ms)`.
    pub ticks: Vec<T>,
    /// Notable events in time order, at most [`MAX_EVENTS`].
    pub events: Vec<E>,
    /// Events left out once [`MAX_EVENTS`] were kept.
    pub events_dropped: u64,
    /// Totals for the whole run.
    pub summary: S,
    /// The journal lines (scenario `pipeline` only), without their `\n`; absent from the
    /// JSON when `None`.
    pub journal: Option<Vec<String>>,
}

impl<P: ToJson, T: ToJson, E: ToJson, S: ToJson> ToJson for Trace<P, T, E, S> {
    fn write_json(&self, w: &mut Writer) {
        w.begin_object();
        w.field("format", self.format);
        w.field("scenario", self.scenario);
        w.field("seed", &self.seed);
        w.field("max_steps", &self.max_steps);
        w.field("params", &self.params);
        w.field("tick_ms", &self.tick_ms);
        w.field("steps", &self.steps);
        w.field("step_cap_reached", &self.step_cap_reached);
        w.field("end_ms", &self.end_ms);
        w.field("ticks", &self.ticks);
        w.field("events", &self.events);
        w.field("events_dropped", &self.events_dropped);
        w.field("summary", &self.summary);
        if let Some(journal) = &self.journal {
            w.field("journal", journal);
        }
        w.end_object();
    }
}

/// A bounded list of events: the first [`MAX_EVENTS`] are kept, the rest counted.
#[derive(Debug)]
pub struct EventLog<E> {
    events: Vec<E>,
    dropped: u64,
}

impl<E> Default for EventLog<E> {
    fn default() -> Self {
        EventLog {
            events: Vec::new(),
            dropped: 0,
        }
    }
}

impl<E> EventLog<E> {
    /// Keeps `event`, or counts it once the log is full.
    pub fn push(&mut self, event: E) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        } else {
            self.dropped += 1;
        }
    }

    /// The events kept so far.
    pub fn events(&self) -> &[E] {
        &self.events
    }

    /// The events kept and the number dropped.
    pub fn into_parts(self) -> (Vec<E>, u64) {
        (self.events, self.dropped)
    }
}

/// Checks the run length and tick width shared by every scenario.
pub fn check_timeline(duration_ms: u64, tick_ms: u64) -> Result<(), SimError> {
    check_range("duration_ms", duration_ms, 1, MAX_DURATION_MS)?;
    check_range("tick_ms", tick_ms, 1, duration_ms)?;
    let ticks = duration_ms.div_ceil(tick_ms);
    if ticks > MAX_TICKS {
        return Err(SimError::param(
            "tick_ms",
            format!(
                "{duration_ms} ms in ticks of {tick_ms} ms is {ticks} ticks, more than {MAX_TICKS}"
            ),
        ));
    }
    Ok(())
}

/// Tick boundaries of a run: `[start, end)` of the tick being filled.
#[derive(Clone, Copy, Debug)]
pub struct Ticker {
    tick: Duration,
    end: Instant,
    start: Instant,
}

impl Ticker {
    /// Ticks of `tick_ms` up to `duration_ms`.
    pub fn new(duration_ms: u64, tick_ms: u64) -> Ticker {
        Ticker {
            tick: Duration::from_millis(tick_ms),
            end: Instant::from_millis(duration_ms),
            start: Instant::ZERO,
        }
    }

    /// Start of the current tick, in ms (the `t_ms` of its record).
    pub fn start_ms(&self) -> u64 {
        self.start.as_micros() / 1_000
    }

    /// When the current tick closes (the run's end for the last one).
    pub fn boundary(&self) -> Instant {
        self.start.saturating_add(self.tick).min(self.end)
    }

    /// Moves on to the next tick; `false` when the run is over.
    pub fn advance(&mut self) -> bool {
        self.start = self.boundary();
        self.start < self.end
    }

    /// The run's end.
    pub fn end(&self) -> Instant {
        self.end
    }
}

/// `num / den` in thousandths (`None` when `den` is 0): means without floats.
pub fn milli_ratio(num: u64, den: u64) -> Option<u64> {
    (den > 0).then(|| u64::try_from(u128::from(num) * 1_000 / u128::from(den)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_log_keeps_the_first_events_and_counts_the_rest() {
        let mut log = EventLog::default();
        for i in 0..MAX_EVENTS + 5 {
            log.push(i);
        }
        assert_eq!(log.events().len(), MAX_EVENTS);
        assert_eq!(log.dropped, 5);
        assert_eq!(log.events()[MAX_EVENTS - 1], MAX_EVENTS - 1);
    }

    #[test]
    fn timeline_limits() {
        assert!(check_timeline(10_000, 100).is_ok());
        assert!(check_timeline(MAX_DURATION_MS, MAX_DURATION_MS / MAX_TICKS).is_ok());
        let e = check_timeline(10_000, 0).unwrap_err();
        assert!(e.message.starts_with("tick_ms"), "{e}");
        assert!(check_timeline(0, 1).is_err());
        assert!(check_timeline(MAX_DURATION_MS + 1, MAX_DURATION_MS).is_err());
        let e = check_timeline(MAX_TICKS + 1, 1).unwrap_err();
        assert!(e.message.contains("ticks"), "{e}");
        assert!(check_timeline(100, 101).is_err());
    }

    #[test]
    fn ticker_walks_the_boundaries_and_clips_the_last_tick() {
        let mut t = Ticker::new(250, 100);
        assert_eq!(t.boundary(), Instant::from_millis(100));
        assert!(t.advance());
        assert_eq!(t.start_ms(), 100);
        assert!(t.advance());
        assert_eq!(t.boundary(), Instant::from_millis(250));
        assert!(!t.advance());
    }

    #[test]
    fn milli_ratio_is_integer() {
        assert_eq!(milli_ratio(7, 2), Some(3_500));
        assert_eq!(milli_ratio(1, 3), Some(333));
        assert_eq!(milli_ratio(1, 0), None);
    }
}
