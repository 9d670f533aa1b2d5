//! A seeded simulation of the service end to end: clients send `RATE_LIMIT_CHECK` and
//! `RATE_LIMIT_CONSUME` frames over a network with random latency (so requests overtake each
//! other), the service parses and serves them on a virtual clock, and the replies travel back.
//!
//! Greedy clients share a few keys and never wait for their replies; patient clients each own
//! a key, keep one request outstanding and, when told `RATE_LIMITED`, wait `retry_after_ms`
//! after the reply arrives and send the same call again. Some frames are malformed. Checked:
//!
//! - every reply is exactly the reply of the reference model
//!   (`tests/tests/support/service_model.rs`) for the call the service saw, at the time it saw
//!   it, bytes and typed outcome; `RATE_LIMITED` counts agree;
//! - per (key, operation), the cost granted over every interval `[t1, t2]` of the run is at
//!   most `capacity + (t2 − t1) / T` (`T` the time per token);
//! - a patient client that waited `retry_after_ms` is granted;
//! - every request gets exactly one reply, also those in flight at the end;
//! - an 8-slot table (one group) answers `OVERLOADED` exactly when the model says, with its
//!   `retry_after_ms`;
//! - the same seed gives the same trace hash, another seed another.
//!
//! Each run prints its seed; `HEIDI_SIM_SEED=n` replays one.

#[path = "support/service_model.rs"]
mod service_model;

use std::collections::{BTreeMap, HashMap};

use heidi_core::key::KeyHasher;
use heidi_core::limit::{LimitPolicy, Operation, PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Request};
use heidi_core::service::{Outcome, REPLY_MAX_BYTES, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use heidi_wasm::rng::Rng;
use serde_json::Value;
use service_model::{Decision, Limit, Model, OPERATIONS, operation_index, reply_body};

/// Limits in [`OPERATIONS`] order: short windows, one of them not a multiple of its capacity.
const LIMITS: [Limit; 6] = [
    Limit {
        capacity: 5,
        window_us: 1_000_000,
    },
    Limit {
        capacity: 3,
        window_us: 700_000,
    },
    Limit {
        capacity: 20,
        window_us: 2_000_000,
    },
    Limit {
        capacity: 1,
        window_us: 250_000,
    },
    Limit {
        capacity: 50,
        window_us: 500_000,
    },
    Limit {
        capacity: 7,
        window_us: 333_333,
    },
];
const OPS_SENT: [&str; 7] = [
    "search",
    "transform",
    "embed",
    "ai_generate",
    "health_check",
    "invented",
    "other",
];

/// One world's shape.
#[derive(Clone, Copy, Debug)]
struct Config {
    slots: usize,
    shared_keys: usize,
    greedy: usize,
    patient: usize,
    /// Mean requests per second of one greedy client.
    rate_per_sec: u64,
    duration_us: u64,
    latency_max_us: u64,
    malformed_permille: u32,
}

const BIG: Config = Config {
    slots: 1024,
    shared_keys: 4,
    greedy: 12,
    patient: 6,
    rate_per_sec: 40,
    duration_us: 20_000_000,
    latency_max_us: 80_000,
    malformed_permille: 30,
};

/// One group of 8 slots and more keys than it holds.
const SMALL_TABLE: Config = Config {
    slots: 8,
    shared_keys: 14,
    greedy: 10,
    patient: 0,
    rate_per_sec: 60,
    duration_us: 10_000_000,
    latency_max_us: 30_000,
    malformed_permille: 10,
};

#[derive(Clone, Debug)]
struct Call {
    consume: bool,
    key: String,
    op: &'static str,
    cost: u32,
    malformed: bool,
}

impl Call {
    fn frame(&self) -> String {
        let method = if self.consume {
            "RATE_LIMIT_CONSUME"
        } else {
            "RATE_LIMIT_CHECK"
        };
        let key = serde_json::to_string(&self.key).unwrap();
        let cost = if self.malformed {
            "-1".to_owned()
        } else {
            self.cost.to_string()
        };
        format!(
            r#"{{"method":"{method}","params":{{"key":{key},"operation":"{}","cost":{cost}}}}}"#,
            self.op
        )
    }
}

enum Ev {
    /// A greedy client sends its next request.
    Wake(usize),
    /// A request reaches the service.
    Arrive(u64),
    /// A reply reaches its client.
    Deliver(u64),
}

struct Sent {
    client: usize,
    call: Call,
    /// A patient client's retry after waiting `retry_after_ms`.
    after_wait: bool,
    reply: Option<Vec<u8>>,
    outcome: Option<Outcome>,
    delivered: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    sent: u64,
    granted: u64,
    rate_limited: u64,
    overloaded: u64,
    bad_request: u64,
    retries_granted: u64,
    hash: u64,
}

struct Sim {
    cfg: Config,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    service: Service<Box<[Slot<Tat>]>>,
    model: Model,
    sent: Vec<Sent>,
    /// Granted (time, cost) per (operation, key), in service order.
    grants: HashMap<(usize, String), Vec<(u64, u32)>>,
    totals: Totals,
}

impl Sim {
    fn new(cfg: Config, seed: u64) -> Sim {
        let mut table = PolicyTable::DEFAULT;
        for (op, l) in Operation::ALL.into_iter().zip(LIMITS) {
            let policy = LimitPolicy::new(l.capacity, Duration::from_micros(l.window_us));
            table.set(op, policy.unwrap());
        }
        let mut rng = Rng::new(seed);
        let mut key_seed = [0u8; 16];
        key_seed[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        key_seed[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let slots = vec![Slot::empty(); cfg.slots].into_boxed_slice();
        Sim {
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            service: Service::new(KeyHasher::new(key_seed), table, slots),
            model: Model::new(LIMITS, cfg.slots),
            sent: Vec::new(),
            grants: HashMap::new(),
            totals: Totals {
                hash: 0xcbf2_9ce4_8422_2325,
                ..Totals::default()
            },
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    fn latency(&mut self) -> u64 {
        self.rng.below(self.cfg.latency_max_us + 1)
    }

    /// `client` sends `call` at `t_us`; it reaches the service after the network's latency.
    fn send(&mut self, t_us: u64, client: usize, call: Call, after_wait: bool) {
        let id = self.sent.len() as u64;
        self.sent.push(Sent {
            client,
            call,
            after_wait,
            reply: None,
            outcome: None,
            delivered: false,
        });
        self.totals.sent += 1;
        let t = t_us + self.latency();
        self.at(t, Ev::Arrive(id));
    }

    fn run(mut self) -> Totals {
        for c in 0..self.cfg.greedy {
            let gap = self.rng.poisson_gap_us(self.cfg.rate_per_sec);
            self.at(gap, Ev::Wake(c));
        }
        for p in 0..self.cfg.patient {
            let call = self.patient_call(p);
            self.send(0, self.cfg.greedy + p, call, false);
        }
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            self.now = t;
            match ev {
                Ev::Wake(c) => self.wake(c),
                Ev::Arrive(id) => self.arrive(id),
                Ev::Deliver(id) => self.deliver(id),
            }
        }
        for (i, s) in self.sent.iter().enumerate() {
            assert!(s.delivered, "request {i} got no reply: {:?}", s.call);
        }
        for ((op, key), grants) in &self.grants {
            assert_within_gcra(grants, LIMITS[*op], &format!("{} {key}", OPERATIONS[*op]));
        }
        let denials = self.service.denials().map(|(_, n)| n);
        assert_eq!(denials, self.model.denials);
        self.totals
    }

    fn wake(&mut self, c: usize) {
        let key = format!("shared-{}", self.rng.below(self.cfg.shared_keys as u64));
        let op = OPS_SENT[self.rng.below(OPS_SENT.len() as u64) as usize];
        let capacity = LIMITS[operation_index(op)].capacity;
        // Mostly small costs; sometimes 0 (a peek) or one above the capacity.
        let cost = match self.rng.below(20) {
            0 => 0,
            1 => capacity + 1,
            _ => 1 + self.rng.below(u64::from(capacity.min(3))) as u32,
        };
        let call = Call {
            consume: self.rng.chance_permille(700),
            key,
            op,
            cost,
            malformed: self.rng.chance_permille(self.cfg.malformed_permille),
        };
        self.send(self.now, c, call, false);
        let next = self.now + self.rng.poisson_gap_us(self.cfg.rate_per_sec);
        if next < self.cfg.duration_us {
            self.at(next, Ev::Wake(c));
        }
    }

    fn patient_call(&mut self, p: usize) -> Call {
        let op = OPS_SENT[p % 3];
        let capacity = LIMITS[operation_index(op)].capacity;
        Call {
            consume: true,
            key: format!("patient-{p}"),
            op,
            cost: 1 + self.rng.below(u64::from(capacity)) as u32,
            malformed: false,
        }
    }

    /// The service serves a request, and the model says what it must have answered.
    fn arrive(&mut self, id: u64) {
        let now = Instant::from_micros(self.now);
        self.service.sweep(now, 4);
        let call = self.sent[id as usize].call.clone();
        let frame = call.frame();
        let request = Request::parse(&frame).expect("a well-formed frame");
        let mut out = [0u8; REPLY_MAX_BYTES];
        let Served::Reply(reply) = self.service.handle(now, &request, &mut out) else {
            panic!("rate-limit methods are covered");
        };
        let body = &out[..reply.len];
        if call.malformed {
            assert_eq!(reply.error, Some(ErrorCode::BadRequest));
            self.totals.bad_request += 1;
        } else {
            self.against_model(&call, body, reply.outcome, reply.error);
        }
        self.fnv(&self.now.to_le_bytes());
        self.fnv(body);
        let s = &mut self.sent[id as usize];
        s.reply = Some(body.to_vec());
        s.outcome = Some(reply.outcome);
        let t = self.now + self.latency();
        self.at(t, Ev::Deliver(id));
    }

    fn against_model(
        &mut self,
        call: &Call,
        body: &[u8],
        outcome: Outcome,
        error: Option<ErrorCode>,
    ) {
        let op = operation_index(call.op);
        let available = self.model.available(self.now, op, &call.key);
        let decision = if call.consume {
            self.model.consume(self.now, op, &call.key, call.cost)
        } else {
            self.model.check(self.now, op, &call.key, call.cost)
        };
        let expected = reply_body(
            call.consume,
            decision,
            LIMITS[op],
            op,
            call.cost,
            self.now,
            available,
        );
        let body = std::str::from_utf8(body).unwrap();
        assert_eq!(body, expected, "{call:?} at {} µs", self.now);
        match decision {
            Decision::Granted { .. } => {
                assert_eq!((outcome, error), (Outcome::Allowed, None));
                if call.consume {
                    self.totals.granted += 1;
                    let grants = self.grants.entry((op, call.key.clone())).or_default();
                    grants.push((self.now, call.cost));
                }
            }
            Decision::Denied { retry_at_us } => {
                let retry_at = Instant::from_micros(retry_at_us);
                assert_eq!(outcome, Outcome::Denied { retry_at });
                self.totals.rate_limited += u64::from(call.consume);
            }
            Decision::OverCapacity => {
                assert_eq!(error, Some(ErrorCode::BadRequest));
                self.totals.bad_request += 1;
            }
            Decision::TableFull { retry_at_us } => {
                let code = ErrorCode::Overloaded;
                let retry_at = Some(Instant::from_micros(retry_at_us));
                assert_eq!(outcome, Outcome::Refused { code, retry_at });
                self.totals.overloaded += 1;
            }
        }
    }

    /// A reply reaches its client; a patient client acts on it.
    fn deliver(&mut self, id: u64) {
        let s = &mut self.sent[id as usize];
        assert!(!s.delivered, "request {id} answered twice");
        s.delivered = true;
        let Some(p) = s.client.checked_sub(self.cfg.greedy) else {
            return;
        };
        let (outcome, call, after_wait) = (s.outcome.unwrap(), s.call.clone(), s.after_wait);
        let body: Value = serde_json::from_slice(s.reply.as_ref().unwrap()).unwrap();
        if after_wait {
            assert_eq!(outcome, Outcome::Allowed, "a patient retry: {body}");
            self.totals.retries_granted += 1;
        }
        if self.now >= self.cfg.duration_us {
            return;
        }
        match outcome {
            Outcome::Allowed => {
                let think_us = self.rng.below(300_000);
                let call = self.patient_call(p);
                self.send(self.now + think_us, self.cfg.greedy + p, call, false);
            }
            Outcome::Denied { .. } => {
                let wait_ms = body["retry_after_ms"].as_u64().expect("a retry hint");
                self.send(self.now + wait_ms * 1_000, self.cfg.greedy + p, call, true);
            }
            Outcome::Refused { .. } => panic!("a patient call was refused: {body}"),
        }
    }

    fn fnv(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.totals.hash = (self.totals.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Over every interval `[t_i, t_j]` between two grants, the cost granted within it is at most
/// `capacity + (t_j − t_i) / T`.
fn assert_within_gcra(grants: &[(u64, u32)], limit: Limit, what: &str) {
    let emission_us = limit.window_us.div_ceil(u64::from(limit.capacity));
    for (i, &(t_i, _)) in grants.iter().enumerate() {
        let mut sum = 0u64;
        for &(t_j, cost) in &grants[i..] {
            sum += u64::from(cost);
            let bound = u64::from(limit.capacity) + (t_j - t_i) / emission_us;
            assert!(
                sum <= bound,
                "{what}: {sum} tokens granted in [{t_i}, {t_j}] µs, at most {bound}"
            );
        }
    }
}

fn seeds(default: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    match std::env::var("HEIDI_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("HEIDI_SIM_SEED is a number")],
        Err(_) => default.collect(),
    }
}

fn run(cfg: Config, seed: u64) -> Totals {
    eprintln!("service sim {cfg:?} seed {seed} (replay: HEIDI_SIM_SEED={seed})");
    let totals = Sim::new(cfg, seed).run();
    eprintln!("{totals:?}");
    totals
}

#[test]
fn shared_keys_under_latency_match_the_model() {
    for seed in seeds(1..=4) {
        let t = run(BIG, seed);
        // The run reaches every answer: grants, denials, refusals, retries after a wait.
        assert!(t.granted > 1_000 && t.rate_limited > 1_000, "{t:?}");
        assert!(t.bad_request > 0 && t.retries_granted > 20, "{t:?}");
        assert_eq!(t.overloaded, 0, "a 1024-slot table never fills here");
    }
}

#[test]
fn a_full_table_answers_overloaded_when_the_model_says() {
    for seed in seeds(1..=4) {
        let t = run(SMALL_TABLE, seed);
        assert!(t.overloaded > 50 && t.granted > 500, "{t:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let a = run(BIG, 7);
    let b = run(BIG, 7);
    assert_eq!(a, b);
    let c = run(BIG, 8);
    assert_ne!(a.hash, c.hash);
}

/// A consume granted so that its bucket is full again exactly at the end of the clock
/// (`Instant::MAX`) once answered `"reset_after_ms":0`, "full now". The time until the
/// bucket's TAT is 1 µs, so 1 ms.
#[test]
fn reset_after_ms_at_the_end_of_the_clock() {
    let mut table = PolicyTable::DEFAULT;
    let one_per_us = LimitPolicy::new(1, Duration::from_micros(1)).unwrap();
    table.set(Operation::Search, one_per_us);
    let mut service = Service::new(KeyHasher::new([1; 16]), table, [Slot::empty(); 8]);
    let mut out = [0u8; REPLY_MAX_BYTES];
    let now = Instant::from_micros(u64::MAX - 1);
    let frame = r#"{"method":"RATE_LIMIT_CONSUME","params":{"key":"k","operation":"search"}}"#;
    let request = Request::parse(frame).unwrap();
    let Served::Reply(reply) = service.handle(now, &request, &mut out) else {
        panic!("covered");
    };
    assert_eq!(reply.outcome, Outcome::Allowed);
    let body: Value = serde_json::from_slice(&out[..reply.len]).unwrap();
    assert_eq!(body["reset_after_ms"], 1, "{body}");
}
