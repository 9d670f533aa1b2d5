//! The audit log (target `heidid::audit`): one line per admin call, and for mutating calls
//! per-peer counts, logged one line per peer every `log.audit_interval_ms` (60 s) and at
//! shutdown, so a client calling a million times cannot fill the disk with a million lines.
//!
//! The table holds at most [`PEERS_MAX`] peers between two flushes; calls from further peers
//! go to one overflow bucket, logged as a line of its own.

use super::state::Peer;
use heidi_core::proto::{Method, MethodClass};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most peers counted between two flushes.
pub const PEERS_MAX: usize = 1024;

/// Calls per method, indexed like [`Method::ALL`].
type Counts = [u64; Method::ALL.len()];

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
    peers: HashMap<PeerKey, Counts>,
    /// Calls of peers that found the table full.
    overflow: Option<Counts>,
}

/// Per-peer counts of mutating calls since the last flush.
#[derive(Default)]
pub struct AuditCounts {
    table: Mutex<Table>,
}

impl std::fmt::Debug for AuditCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditCounts")
    }
}

/// One line of a flush: who (`None`: the overflow bucket), how many calls in all, and the
/// calls per method as `NAME=n` separated by spaces.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// The peer, or `None` for the peers that found the table full.
    pub peer: Option<String>,
    /// Calls in all.
    pub calls: u64,
    /// `RATE_LIMIT_CONSUME=998 LEASE_ACQUIRE=2`.
    pub methods: String,
}

impl AuditCounts {
    /// Audits one call: admin methods get a line now, mutating ones are counted, read-only
    /// ones are not audited.
    pub fn call(&self, method: Method, peer: &Peer) {
        match method.class() {
            MethodClass::Read => {}
            MethodClass::Mutate => self.count(method, peer),
            MethodClass::Admin => {
                tracing::info!(target: "heidid::audit", method = method.as_str(), %peer, "admin call");
            }
        }
    }

    /// Counts a call of `method` by `peer`.
    fn count(&self, method: Method, peer: &Peer) {
        let key = PeerKey::of(peer);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let full = table.peers.len() >= PEERS_MAX;
        let counts = match table.peers.get_mut(&key) {
            Some(counts) => counts,
            None if full => table.overflow.get_or_insert([0; Method::ALL.len()]),
            None => table.peers.entry(key).or_insert([0; Method::ALL.len()]),
        };
        counts[method as usize] += 1;
    }

    /// Empties the table, returning one line per peer (the overflow bucket last).
    pub fn take(&self) -> Vec<Line> {
        let table = std::mem::take(&mut *self.table.lock().unwrap_or_else(|p| p.into_inner()));
        let mut lines: Vec<Line> = table
            .peers
            .into_iter()
            .map(|(key, counts)| line(Some(key.to_string()), &counts))
            .collect();
        lines.sort_by(|a, b| a.peer.cmp(&b.peer));
        lines.extend(table.overflow.map(|counts| line(None, &counts)));
        lines
    }

    /// Logs the counts since the last flush, one line per peer, and empties the table.
    pub fn flush(&self) {
        for Line {
            peer,
            calls,
            methods,
        } in self.take()
        {
            match peer {
                Some(peer) => tracing::info!(
                    target: "heidid::audit", %peer, calls, %methods, "mutating calls"
                ),
                None => tracing::info!(
                    target: "heidid::audit", peer = "overflow", calls, %methods,
                    "mutating calls of peers beyond the {PEERS_MAX}-peer table"
                ),
            }
        }
    }
}

fn line(peer: Option<String>, counts: &Counts) -> Line {
    let mut methods = String::new();
    for (&method, &n) in Method::ALL.iter().zip(counts).filter(|(_, n)| **n > 0) {
        let gap = if methods.is_empty() { "" } else { " " };
        let _ = write!(methods, "{gap}{method}={n}");
    }
    Line {
        peer,
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

    #[test]
    fn counts_per_peer_and_method_then_empties() {
        let audit = AuditCounts::default();
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
                Line {
                    peer: Some("http 127.0.0.1".into()),
                    calls: 2,
                    methods: "HEALTH_REPORT=2".into()
                },
                Line {
                    peer: Some("uid=1000 gid=100 pid=7".into()),
                    calls: 1001,
                    methods: "RATE_LIMIT_CONSUME=1000 LEASE_ACQUIRE=1".into()
                },
            ]
        );
        assert!(audit.take().is_empty());
    }

    #[test]
    fn peers_beyond_the_table_share_the_overflow_bucket() {
        let audit = AuditCounts::default();
        for pid in 0..PEERS_MAX as i32 + 10 {
            audit.call(Method::BreakerAcquire, &unix(pid));
        }
        // A peer already in the table is still counted in its own line.
        audit.call(Method::BreakerAcquire, &unix(0));
        let lines = audit.take();
        assert_eq!(lines.len(), PEERS_MAX + 1);
        let overflow = lines.last().unwrap();
        assert_eq!(overflow.peer, None);
        assert_eq!(overflow.calls, 10);
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
}
