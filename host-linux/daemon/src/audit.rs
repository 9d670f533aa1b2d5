//! The audit log (target `heidid::audit`). No client can make it grow faster than a bounded
//! rate (docs/DAEMON.md, "Security"):
//!
//! - an admin call that was carried out (a policy applied, a pipeline command accepted) gets
//!   a line of its own (`admin call`) once its outcome is known, within the core's
//!   [`LineBudget`]: [`ADMIN_LINES_PER_SOURCE`] per peer and [`ADMIN_LINES_ALL`] for all
//!   peers together. A carried-out call beyond them is counted instead (`suppressed admin
//!   lines`); it is journaled either way;
//! - an admin call that was not carried out (refused by the pipeline, bad params,
//!   `FORBIDDEN`, `OVERLOADED`, a failed policy change) is counted (`refused admin calls`);
//! - a mutating call is counted (`mutating calls`);
//! - a read-only call is not audited.
//!
//! Counts are kept per peer and per method, and logged one line per peer and kind every
//! `log.audit_interval_ms` (60 s) and at shutdown. The table holds at most [`PEERS_MAX`]
//! peers between two flushes; calls from further peers go to one overflow bucket per kind,
//! logged as lines of their own. So between two flushes the audit log gains at most
//! `3 × (PEERS_MAX + 1)` count lines plus the `admin call` lines the buckets let through.

use super::state::Peer;
use heidi_core::Instant;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::lines::LineBudget;
pub use heidi_core::limit::lines::{ADMIN_LINES_ALL, ADMIN_LINES_PER_SOURCE};
use heidi_core::proto::{Method, MethodClass};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most peers counted between two flushes.
pub const PEERS_MAX: usize = 1024;

/// Peers whose line buckets are held at once; a peer that finds no slot (every slot holds a
/// bucket that has not refilled) has its carried-out calls counted, not logged.
const LINE_BUCKETS: usize = 1024;

/// Calls per method, indexed like [`Method::ALL`].
type Counts = [u64; Method::ALL.len()];

/// What a count line counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Mutating calls (`mutating calls`).
    Mutating,
    /// Admin calls that were not carried out (`refused admin calls`).
    Refused,
    /// Admin calls carried out beyond the line buckets (`suppressed admin lines`).
    Suppressed,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Mutating, Kind::Refused, Kind::Suppressed];

    /// The message of its lines.
    pub fn message(self) -> &'static str {
        match self {
            Kind::Mutating => "mutating calls",
            Kind::Refused => "refused admin calls",
            Kind::Suppressed => "suppressed admin lines",
        }
    }
}

/// The counts of one peer, indexed like [`Kind::ALL`].
type PeerCounts = [Counts; Kind::ALL.len()];

const NO_COUNTS: PeerCounts = [[0; Method::ALL.len()]; Kind::ALL.len()];

/// A peer as the counts tell peers apart: a socket peer by uid, gid and pid; an HTTP peer by
/// its address without the port (a new port per connection).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum PeerKey {
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    },
    Http(IpAddr),
}

impl PeerKey {
    fn of(peer: &Peer) -> PeerKey {
        match *peer {
            Peer::Unix { uid, gid, pid } => PeerKey::Unix { uid, gid, pid },
            Peer::Http(addr) => PeerKey::Http(addr.ip()),
        }
    }

    /// The key of the peer's line bucket.
    fn hash(&self, hasher: &KeyHasher) -> KeyHash {
        match *self {
            PeerKey::Unix { uid, gid, pid } => {
                let pid = pid.map_or(-1, i64::from);
                hasher.hash_parts(&[
                    b"unix",
                    &uid.to_le_bytes(),
                    &gid.to_le_bytes(),
                    &pid.to_le_bytes(),
                ])
            }
            PeerKey::Http(IpAddr::V4(ip)) => hasher.hash_parts(&[b"http", &ip.octets()]),
            PeerKey::Http(IpAddr::V6(ip)) => hasher.hash_parts(&[b"http", &ip.octets()]),
        }
    }
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PeerKey::Unix { uid, gid, pid } => Peer::Unix { uid, gid, pid }.fmt(f),
            PeerKey::Http(ip) => write!(f, "http {ip}"),
        }
    }
}

#[derive(Default)]
struct Table {
    peers: HashMap<PeerKey, PeerCounts>,
    /// Calls of peers that found the table full.
    overflow: Option<PeerCounts>,
}

/// The budget that bounds the `admin call` lines, keyed by peer.
struct LineBuckets {
    hasher: KeyHasher,
    budget: LineBudget<LINE_BUCKETS>,
}

/// The audit log: per-peer counts since the last flush, and the buckets of the per-call
/// lines.
pub struct AuditCounts {
    table: Mutex<Table>,
    lines: Mutex<LineBuckets>,
}

impl std::fmt::Debug for AuditCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditCounts")
    }
}

/// One line of a flush: who (`None`: the overflow bucket), what, how many calls in all, and
/// the calls per method as `NAME=n` separated by spaces.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The peer, or `None` for the peers that found the table full.
    pub peer: Option<String>,
    /// What the line counts.
    pub kind: Kind,
    /// Calls in all.
    pub calls: u64,
    /// `RATE_LIMIT_CONSUME=998 LEASE_ACQUIRE=2`.
    pub methods: String,
}

/// Whether an admin call was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The policy was applied (journaled) or the pipeline accepted the command.
    CarriedOut,
    /// Refused, failed, forbidden or overloaded: nothing changed.
    Refused,
}

impl AuditCounts {
    /// Empty counts; `seed` keys the hash of the line buckets' peers.
    pub fn new(seed: [u8; 16]) -> AuditCounts {
        AuditCounts {
            table: Mutex::default(),
            lines: Mutex::new(LineBuckets {
                hasher: KeyHasher::new(seed),
                budget: LineBudget::new(ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL),
            }),
        }
    }

    /// Audits a call as it starts: a mutating one is counted; admin calls are audited by
    /// [`AuditCounts::admin`] once their outcome is known; read-only ones are not audited.
    pub fn call(&self, method: Method, peer: &Peer) {
        if method.class() == MethodClass::Mutate {
            self.count(Kind::Mutating, method, peer);
        }
    }

    /// Audits an admin call once its outcome is known (other methods are ignored): one
    /// `admin call` line if it was carried out and the line buckets allow it at `now`, else
    /// a count.
    pub fn admin(&self, now: Instant, method: Method, peer: &Peer, outcome: Outcome) {
        if method.class() != MethodClass::Admin {
            return;
        }
        match outcome {
            Outcome::Refused => self.count(Kind::Refused, method, peer),
            Outcome::CarriedOut if self.line_allowed(now, PeerKey::of(peer)) => {
                tracing::info!(target: "heidid::audit", method = method.as_str(), %peer, "admin call");
            }
            Outcome::CarriedOut => self.count(Kind::Suppressed, method, peer),
        }
    }

    /// Whether the peer's line budget lets one more `admin call` line through at `now`.
    fn line_allowed(&self, now: Instant, key: PeerKey) -> bool {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let hash = key.hash(&lines.hasher);
        lines.budget.allow(now, hash)
    }

    /// Counts a call of `method` by `peer`.
    fn count(&self, kind: Kind, method: Method, peer: &Peer) {
        let key = PeerKey::of(peer);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let full = table.peers.len() >= PEERS_MAX;
        let counts = match table.peers.get_mut(&key) {
            Some(counts) => counts,
            None if full => table.overflow.get_or_insert(NO_COUNTS),
            None => table.peers.entry(key).or_insert(NO_COUNTS),
        };
        counts[kind as usize][method as usize] += 1;
    }

    /// Empties the table, returning one line per peer and kind with calls (by peer, then
    /// kind; the overflow bucket last).
    pub fn take(&self) -> Vec<Line> {
        let table = std::mem::take(&mut *self.table.lock().unwrap_or_else(|p| p.into_inner()));
        let mut peers: Vec<(String, PeerCounts)> = table
            .peers
            .into_iter()
            .map(|(key, counts)| (key.to_string(), counts))
            .collect();
        peers.sort_by(|a, b| a.0.cmp(&b.0));
        let peers = peers.into_iter().map(|(peer, counts)| (Some(peer), counts));
        peers
            .chain(table.overflow.map(|counts| (None, counts)))
            .flat_map(|(peer, counts)| {
                Kind::ALL
                    .into_iter()
                    .filter(move |&kind| counts[kind as usize].iter().any(|&n| n > 0))
                    .map(move |kind| line(peer.clone(), kind, &counts[kind as usize]))
            })
            .collect()
    }

    /// Logs the counts since the last flush, one line per peer and kind, and empties the
    /// table.
    pub fn flush(&self) {
        for Line {
            peer,
            kind,
            calls,
            methods,
        } in self.take()
        {
            let message = kind.message();
            match peer {
                Some(peer) => tracing::info!(
                    target: "heidid::audit", %peer, calls, %methods, "{message}"
                ),
                None => tracing::info!(
                    target: "heidid::audit", peer = "overflow", calls, %methods,
                    "{message} of peers beyond the {PEERS_MAX}-peer table"
                ),
            }
        }
    }
}

fn line(peer: Option<String>, kind: Kind, counts: &Counts) -> Line {
    let mut methods = String::new();
    for (&method, &n) in Method::ALL.iter().zip(counts).filter(|(_, n)| **n > 0) {
        let gap = if methods.is_empty() { "" } else { " " };
        let _ = write!(methods, "{gap}{method}={n}");
    }
    Line {
        peer,
        kind,
        calls: counts.iter().sum(),
        methods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(pid: i32) -> Peer {
        Peer::Unix {
            uid: 1000,
            gid: 100,
            pid: Some(pid),
        }
    }

    fn audit() -> AuditCounts {
        AuditCounts::new([9; 16])
    }

    fn mutating(peer: &str, calls: u64, methods: &str) -> Line {
        Line {
            peer: Some(peer.into()),
            kind: Kind::Mutating,
            calls,
            methods: methods.into(),
        }
    }

    #[test]
    fn counts_per_peer_and_method_then_empties() {
        let audit = audit();
        for _ in 0..1000 {
            audit.call(Method::RateLimitConsume, &unix(7));
        }
        audit.call(Method::LeaseAcquire, &unix(7));
        audit.call(Method::Ping, &unix(7));
        audit.call(Method::ApplyPolicy, &unix(7));
        audit.call(
            Method::HealthReport,
            &Peer::Http("127.0.0.1:5000".parse().unwrap()),
        );
        audit.call(
            Method::HealthReport,
            &Peer::Http("127.0.0.1:5001".parse().unwrap()),
        );
        let lines = audit.take();
        assert_eq!(
            lines,
            [
                mutating("http 127.0.0.1", 2, "HEALTH_REPORT=2"),
                mutating(
                    "uid=1000 gid=100 pid=7",
                    1001,
                    "RATE_LIMIT_CONSUME=1000 LEASE_ACQUIRE=1"
                ),
            ]
        );
        assert!(audit.take().is_empty());
    }

    #[test]
    fn peers_beyond_the_table_share_the_overflow_bucket() {
        let audit = audit();
        for pid in 0..PEERS_MAX as i32 + 10 {
            audit.call(Method::BreakerAcquire, &unix(pid));
        }
        // A peer already in the table is still counted in its own line.
        audit.call(Method::BreakerAcquire, &unix(0));
        // Refused admin calls of a peer beyond the table: the overflow's own line.
        audit.admin(
            Instant::ZERO,
            Method::PipelineStop,
            &unix(99_999),
            Outcome::Refused,
        );
        let lines = audit.take();
        assert_eq!(lines.len(), PEERS_MAX + 2);
        let overflow = &lines[PEERS_MAX..];
        assert_eq!(overflow[0].peer, None);
        assert_eq!(overflow[0].kind, Kind::Mutating);
        assert_eq!(overflow[0].calls, 10);
        assert_eq!(overflow[1].peer, None);
        assert_eq!(overflow[1].kind, Kind::Refused);
        assert_eq!(overflow[1].methods, "PIPELINE_STOP=1");
        let first = lines
            .iter()
            .find(|l| l.peer.as_deref() == Some("uid=1000 gid=100 pid=0"));
        assert_eq!(first.unwrap().calls, 2);
        // After a flush the table has room again.
        audit.call(Method::BreakerAcquire, &unix(5000));
        assert_eq!(
            audit.take()[0].peer.as_deref(),
            Some("uid=1000 gid=100 pid=5000")
        );
    }

    #[test]
    fn refused_admin_calls_are_counted_not_logged() {
        let audit = audit();
        let now = Instant::from_secs(1);
        for _ in 0..2000 {
            audit.admin(now, Method::PipelineStop, &unix(7), Outcome::Refused);
        }
        audit.admin(now, Method::ApplyPolicy, &unix(7), Outcome::Refused);
        // Not admin: ignored here (counted by `call` if mutating).
        audit.admin(now, Method::HealthReport, &unix(7), Outcome::Refused);
        assert_eq!(
            audit.take(),
            [Line {
                peer: Some("uid=1000 gid=100 pid=7".into()),
                kind: Kind::Refused,
                calls: 2001,
                methods: "APPLY_POLICY=1 PIPELINE_STOP=2000".into(),
            }]
        );
        // Refusals take no line tokens: the peer's carried-out calls still get their lines.
        let logged = (0..20)
            .filter(|_| audit.line_allowed(now, PeerKey::of(&unix(7))))
            .count();
        assert_eq!(logged, ADMIN_LINES_PER_SOURCE.capacity_tokens() as usize);
    }

    #[test]
    fn carried_out_admin_lines_are_bounded_per_peer_and_the_rest_counted() {
        let audit = audit();
        let now = Instant::from_secs(1);
        let burst = ADMIN_LINES_PER_SOURCE.capacity_tokens() as u64;
        for i in 0..2000 {
            let method = [Method::PipelinePause, Method::PipelineResume][i % 2];
            audit.admin(now, method, &unix(7), Outcome::CarriedOut);
        }
        let lines = audit.take();
        assert_eq!(
            lines,
            [Line {
                peer: Some("uid=1000 gid=100 pid=7".into()),
                kind: Kind::Suppressed,
                calls: 2000 - burst,
                methods: "PIPELINE_PAUSE=995 PIPELINE_RESUME=995".into(),
            }]
        );
        // Another peer has a bucket of its own.
        assert!(audit.line_allowed(now, PeerKey::of(&unix(8))));
        // The bucket refills at its rate: one more line per emission interval.
        assert!(!audit.line_allowed(now, PeerKey::of(&unix(7))));
        let now = now + ADMIN_LINES_PER_SOURCE.emission_interval();
        assert!(audit.line_allowed(now, PeerKey::of(&unix(7))));
        assert!(!audit.line_allowed(now, PeerKey::of(&unix(7))));
    }

    #[test]
    fn all_peers_together_share_one_line_bucket() {
        let audit = audit();
        let now = Instant::from_secs(1);
        // Many peers (say, a new process each) with a full bucket each.
        let logged = (0..1000)
            .filter(|&pid| audit.line_allowed(now, PeerKey::of(&unix(pid))))
            .count();
        assert_eq!(logged, ADMIN_LINES_ALL.capacity_tokens() as usize);
        for pid in 0..1000 {
            audit.admin(now, Method::ApplyPolicy, &unix(pid), Outcome::CarriedOut);
        }
        let suppressed: u64 = audit
            .take()
            .iter()
            .inspect(|l| assert_eq!(l.kind, Kind::Suppressed))
            .map(|l| l.calls)
            .sum();
        assert_eq!(suppressed, 1000);
    }

    #[test]
    fn a_peer_without_a_line_bucket_slot_is_counted() {
        let audit = audit();
        let now = Instant::from_secs(1);
        // Fill every slot with a bucket that has not refilled.
        let mut pid = 0;
        while audit.lines.lock().unwrap().budget.sources() < LINE_BUCKETS {
            assert!(pid < 1_000_000, "the table never filled");
            let _ = audit.line_allowed(now, PeerKey::of(&unix(pid)));
            pid += 1;
        }
        let newcomer = unix(-1);
        assert!(!audit.line_allowed(now, PeerKey::of(&newcomer)));
        audit.admin(now, Method::PipelineReset, &newcomer, Outcome::CarriedOut);
        assert_eq!(audit.take()[0].kind, Kind::Suppressed);
        // Once the buckets have refilled, their slots are reused.
        let later = now + ADMIN_LINES_PER_SOURCE.refill_time();
        assert!(audit.line_allowed(later, PeerKey::of(&newcomer)));
    }
}
