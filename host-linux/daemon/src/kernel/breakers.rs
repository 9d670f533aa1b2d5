//! `BREAKER_ACQUIRE` and `BREAKER_RECORD`: the core's breaker registry, plus the permits
//! handed to clients and not yet recorded.
//!
//! A core [`Permit`] cannot travel over the wire, so the kernel keeps it and gives the client
//! a 64-bit permit id from a keyed [`IdMinter`] (unpredictable, never reused). A permit not
//! recorded within [`PERMIT_TTL_MS`] is abandoned by `tick` (it counts for nothing; a lost
//! half-open probe has already failed at `probe_timeout` in the core).

use std::collections::{BTreeSet, HashMap, VecDeque};

use heidi_core::breaker::{
    BreakerConfig, BreakerId, BreakerRegistry, Outcome, Permit, Recorded, RegistryError, State,
};
use heidi_core::id::IdMinter;
use heidi_core::journal::{Level, NAME_MAX_BYTES, is_valid_name};
use heidi_core::proto::ErrorCode;
use heidi_core::{Duration, Instant};
use serde_json::{Value, json};

use super::config::{BREAKERS_MAX, DURATION_MAX_MS, JOURNAL_QUEUE_MAX, PERMIT_TTL_MS};
use super::fields::Fields;
use super::policy::{Policy, PolicyError};
use super::reply::{Answer, Fail, ms_until};
use heidi_common::JournalEntry;

/// A permit held for a client.
struct Held {
    breaker: BreakerId,
    permit: Permit,
    issued_at: Instant,
    expires_at: Instant,
}

/// The registry and the held permits.
pub(crate) struct Breakers {
    registry: Box<BreakerRegistry<BREAKERS_MAX, NAME_MAX_BYTES>>,
    held: HashMap<u64, Held>,
    expiry: BTreeSet<(Instant, u64)>,
    capacity: usize,
    ids: IdMinter,
}

/// A breaker name parameter: a journal name (1–64 of `A-Za-z0-9_.:-`).
fn name<'a>(f: &mut Fields<'a>) -> Result<&'a str, Fail> {
    let name = f.str_req("name", NAME_MAX_BYTES)?;
    if !is_valid_name(name.as_bytes()) {
        return Err(f
            .error("name", "names are 1 to 64 of A-Z a-z 0-9 _ . : -")
            .into());
    }
    Ok(name)
}

impl Breakers {
    /// An empty registry holding at most `capacity` permits, with permit ids keyed by `key`.
    pub(crate) fn new(capacity: usize, key: [u8; 16]) -> Breakers {
        Breakers {
            registry: Box::default(),
            held: HashMap::new(),
            expiry: BTreeSet::new(),
            capacity: capacity.max(1),
            ids: IdMinter::new(key),
        }
    }

    /// `BREAKER_ACQUIRE`.
    pub(crate) fn acquire(&mut self, now: Instant, policy: &Policy, params: &Value) -> Answer {
        let mut f = Fields::new(params, "params")?;
        let name = name(&mut f)?;
        f.finish()?;
        if self.held.len() >= self.capacity {
            let first = self.expiry.first().map_or(Instant::MAX, |e| e.0);
            let message = "too many breaker permits are outstanding; record them first";
            return Err(Fail::new(ErrorCode::Overloaded, message).retry_at(now, first));
        }
        let id = match self.registry.get_or_insert(name, policy.breaker(name)) {
            Ok(id) => id,
            Err(e @ RegistryError::Full { .. }) => {
                return Err(Fail::new(ErrorCode::Overloaded, e.to_string()));
            }
            Err(e) => return Err(Fail::new(ErrorCode::Internal, e.to_string())),
        };
        let Some(breaker) = self.registry.get_mut(id) else {
            return Err(Fail::new(ErrorCode::Internal, "breaker vanished"));
        };
        match breaker.acquire(now) {
            Ok(permit) => {
                let probe = permit.is_probe();
                let state = breaker.state().as_str();
                let permit_id = self.ids.next_id();
                let expires_at = now.saturating_add(Duration::from_millis(PERMIT_TTL_MS));
                self.expiry.insert((expires_at, permit_id));
                let held = Held {
                    breaker: id,
                    permit,
                    issued_at: now,
                    expires_at,
                };
                self.held.insert(permit_id, held);
                Ok(json!({
                    "allowed": true,
                    "permit": permit_id.to_string(),
                    "probe": probe,
                    "state": state,
                }))
            }
            Err(rejected) => {
                let state = breaker.state().as_str();
                let message = format!("circuit breaker `{name}` is {state}");
                Err(Fail::new(ErrorCode::CircuitOpen, message)
                    .retry_at(now, rejected.until)
                    .with("state", state))
            }
        }
    }

    /// `BREAKER_RECORD`.
    pub(crate) fn record(&mut self, now: Instant, params: &Value) -> Answer {
        let mut f = Fields::new(params, "params")?;
        let name = name(&mut f)?;
        let permit_id = f.id("permit")?;
        let outcome = f.str_req("outcome", 16)?;
        let duration = f.ms_in("duration_ms", 0, DURATION_MAX_MS)?;
        if !matches!(outcome, "success" | "failure" | "abandoned") {
            let reason = "must be \"success\", \"failure\" or \"abandoned\"";
            return Err(f.error("outcome", reason).into());
        }
        f.finish()?;
        let named = self.registry.find(name);
        let state = |r: &Self| {
            named
                .and_then(|id| r.registry.get(id))
                .map(|b| b.state().as_str())
        };
        let Some(held) = self.held.get(&permit_id) else {
            return Ok(json!({"ok": true, "recorded": "unknown", "state": state(self)}));
        };
        if Some(held.breaker) != named {
            let owner = self.registry.name(held.breaker).unwrap_or("?");
            let reason = format!("was issued by breaker `{owner}`, not `{name}`");
            return Err(Fail::new(
                ErrorCode::BadRequest,
                format!("params.permit: {reason}"),
            ));
        }
        let held = self
            .take(permit_id)
            .ok_or_else(|| Fail::new(ErrorCode::Internal, "permit"))?;
        let Some(breaker) = self.registry.get_mut(held.breaker) else {
            return Err(Fail::new(ErrorCode::Internal, "breaker vanished"));
        };
        let took = duration.unwrap_or_else(|| now.saturating_duration_since(held.issued_at));
        let recorded = if now >= held.expires_at {
            breaker.abandon(now, held.permit);
            "expired"
        } else {
            match outcome {
                "success" => recorded_str(breaker.record(now, held.permit, Outcome::Success(took))),
                "failure" => recorded_str(breaker.record(now, held.permit, Outcome::Failure(took))),
                _ => {
                    breaker.abandon(now, held.permit);
                    "abandoned"
                }
            }
        };
        let mut reply =
            json!({"ok": true, "recorded": recorded, "state": breaker.state().as_str()});
        if let Some(ms) = breaker.open_until().and_then(|until| ms_until(now, until)) {
            // An open breaker says when it half-opens, so a caller never retries into it.
            reply["retry_after_ms"] = ms.into();
        }
        Ok(reply)
    }

    fn take(&mut self, permit_id: u64) -> Option<Held> {
        let held = self.held.remove(&permit_id)?;
        self.expiry.remove(&(held.expires_at, permit_id));
        Some(held)
    }

    /// Applies due breaker timeouts and abandons up to `budget` expired permits.
    pub(crate) fn tick(&mut self, now: Instant, budget: usize) {
        self.registry.handle_timeout(now);
        for _ in 0..budget {
            let Some(&(at, permit_id)) = self.expiry.first() else {
                break;
            };
            if at > now {
                break;
            }
            if let Some(held) = self.take(permit_id) {
                if let Some(b) = self.registry.get_mut(held.breaker) {
                    b.abandon(now, held.permit);
                }
            }
        }
    }

    /// The earliest breaker timeout or permit expiry.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let permits = self.expiry.first().map(|e| e.0);
        match (self.registry.poll_timeout(), permits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Breakers whose configuration `policy` changes, with the new configuration checked
    /// (nothing is changed yet).
    pub(crate) fn prepare(
        &self,
        policy: &Policy,
    ) -> Result<Vec<(BreakerId, BreakerConfig)>, PolicyError> {
        let mut out = Vec::new();
        for (id, name, b) in self.registry.iter() {
            let config = policy.breaker(name);
            if config != b.config() {
                config.validate().map_err(|e| PolicyError {
                    field: format!("breakers.{name}"),
                    reason: e.to_string(),
                })?;
                out.push((id, *config));
            }
        }
        Ok(out)
    }

    /// Puts configurations from [`Breakers::prepare`] in force at `now` with
    /// [`heidi_core::breaker::Breaker::reconfigure`]: each breaker keeps its state (an open one stays open, at most
    /// until its old deadline), no transition happens, and its outstanding permits turn stale
    /// in the core (recording one answers `"recorded":"stale"`; they expire as usual).
    pub(crate) fn install_at(&mut self, now: Instant, changes: Vec<(BreakerId, BreakerConfig)>) {
        for (id, config) in changes {
            if let Some(b) = self.registry.get_mut(id) {
                // Checked by `prepare`: a refusal would leave the breaker as it was.
                let checked = b.reconfigure(now, config);
                debug_assert!(checked.is_ok(), "prepare validated {config:?}");
            }
        }
    }

    /// Moves pending state changes into the journal queue (bounded; the oldest entry is
    /// dropped when it is full).
    pub(crate) fn drain_events(&mut self, queue: &mut VecDeque<JournalEntry>) {
        while let Some((id, t)) = self.registry.poll_event() {
            let name = self.registry.name(id).unwrap_or("?");
            let message = format!("breaker {name}: {} -> {}", t.from, t.to);
            let mut entry = JournalEntry::info("kernel", "breaker_transition", message);
            // Only entering open (or forced open) is a warning; open -> half_open is not.
            if matches!(t.to, State::Open | State::ForcedOpen) {
                entry.level = Level::Warning;
            }
            if queue.len() >= JOURNAL_QUEUE_MAX {
                queue.pop_front();
            }
            queue.push_back(entry);
        }
    }

    /// Every breaker's name and state.
    pub(crate) fn states(&self) -> Vec<(String, &'static str)> {
        self.registry
            .iter()
            .map(|(_, n, b)| (n.to_owned(), b.state().as_str()))
            .collect()
    }

    /// Permits outstanding.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

fn recorded_str(r: Recorded) -> &'static str {
    match r {
        Recorded::Counted => "counted",
        Recorded::Stale => "stale",
        Recorded::Ignored => "ignored",
        Recorded::Foreign => "foreign",
    }
}
