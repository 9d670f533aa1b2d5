//! The main loop every scenario shares: ticks, events, the step cap and the trace's assembly.
//!
//! A scenario implements [`World`]; [`drive`] schedules the tick boundaries, hands every
//! event to [`World::handle`], closes each tick at its boundary, lets the world wind down at
//! the run's end (batching answers its last batches there), records the step cap when it is
//! hit, and builds the [`Trace`].

use crate::engine::{Engine, Next};
use crate::error::SimError;
use crate::trace::{EventLog, TRACE_FORMAT, Ticker, Trace};
use heidi_core::Instant;

/// What a scenario's world produced: the [`Trace`] parts a scenario fills in.
pub struct Parts<T, E, S> {
    /// Per-tick records.
    pub ticks: Vec<T>,
    /// Notable events.
    pub events: EventLog<E>,
    /// Totals.
    pub summary: S,
    /// The journal lines (pipeline only).
    pub journal: Option<Vec<String>>,
}

/// A scenario's simulated world.
pub trait World {
    /// The engine's events.
    type Ev;
    /// A tick record.
    type Tick;
    /// A trace event.
    type Event;
    /// The summary.
    type Summary;

    /// Schedules the first events.
    fn start(&mut self, engine: &mut Engine<Self::Ev>);
    /// Handles one event at `engine.now()`.
    ///
    /// # Errors
    /// An internal error (`internal`): core refused something the simulator guarantees.
    fn handle(&mut self, engine: &mut Engine<Self::Ev>, ev: Self::Ev) -> Result<(), SimError>;
    /// Closes the tick `ticker` is on, at its boundary `now`.
    fn close_tick(&mut self, now: Instant, ticker: &Ticker);
    /// Whether the run is over before its duration (the pipeline finished).
    fn done(&self) -> bool {
        false
    }
    /// Called once after the last tick closed; returns whether the events still queued must
    /// be processed (without ticks) rather than dropped.
    fn wind_down(&mut self, _engine: &mut Engine<Self::Ev>) -> bool {
        false
    }
    /// The `step_cap` trace event at `t_us`.
    fn step_cap_event(t_us: u64) -> Self::Event;
    /// The world's event log.
    fn events(&mut self) -> &mut EventLog<Self::Event>;
    /// Takes the world apart once the run ended at `end`.
    fn finish(self, end: Instant) -> Parts<Self::Tick, Self::Event, Self::Summary>;
}

/// The identity of a run, echoed in its trace.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The seed.
    pub seed: u64,
    /// The step cap.
    pub max_steps: u64,
    /// The run's length, ms.
    pub duration_ms: u64,
    /// Width of a tick, ms.
    pub tick_ms: u64,
}

/// The trace of world `W` run with parameters `P`.
pub type TraceOf<W, P> = Trace<P, <W as World>::Tick, <W as World>::Event, <W as World>::Summary>;

/// Runs `world` to its end and assembles the trace.
///
/// # Errors
/// Whatever [`World::handle`] returns.
pub fn drive<W: World, P>(run: Run, params: P, mut world: W) -> Result<TraceOf<W, P>, SimError> {
    let mut engine = Engine::new(run.max_steps);
    let mut ticker = Ticker::new(run.duration_ms, run.tick_ms);
    engine.set_boundary(Some(ticker.boundary()));
    world.start(&mut engine);
    while let Some(next) = engine.step() {
        match next {
            Next::Event(ev) => world.handle(&mut engine, ev)?,
            Next::Boundary => {
                world.close_tick(engine.now(), &ticker);
                if !world.done() && ticker.advance() {
                    engine.set_boundary(Some(ticker.boundary()));
                } else if !world.wind_down(&mut engine) {
                    break;
                }
            }
        }
    }
    if engine.cap_reached() {
        let event = W::step_cap_event(engine.now().as_micros());
        world.events().push(event);
    }
    let (steps, step_cap_reached, end) = (engine.steps(), engine.cap_reached(), engine.now());
    drop(engine);
    let parts = world.finish(end);
    let (events, events_dropped) = parts.events.into_parts();
    Ok(Trace {
        format: TRACE_FORMAT,
        scenario: run.scenario,
        seed: run.seed,
        max_steps: run.max_steps,
        params,
        tick_ms: run.tick_ms,
        steps,
        step_cap_reached,
        end_ms: end.as_micros() / 1_000,
        ticks: parts.ticks,
        events,
        events_dropped,
        summary: parts.summary,
        journal: parts.journal,
    })
}
