//! The anchor: the latest seal a writer wrote, kept where the journal's writer cannot reach
//! (beside the seal key), so that losing the latest seals together with the matching tail is
//! detected.
//!
//! Record (one line): `{"anchor_version":"1","run_id":"…","lines":N,"last_hash":"<64 hex>",
//! "mac":"<64 hex>"}` and `\n`. The MAC is HMAC-SHA256 keyed by the seal key over the bytes
//! `heidi-journal-anchor/1\n<run_id>\n<lines in decimal>\n<last_hash hex>` (a seal's MAC has
//! another first line, so a seal record's MAC is never a valid anchor MAC and back).
//!
//! A writer replaces the anchor only after the seal it names is durable, so without tampering
//! the seal file always holds a record equal to the anchor (run id, line count, last hash).
//! [`AnchorCheck`] compares the seal records with the anchor: none equal to it means the seal
//! file lost its latest records (and the journal, which must match its last seal, its tail).

use core::fmt;

use hmac::Mac;
use serde::Deserialize;

use super::chain::{RunId, run_id_from};
use super::hash::LineHash;
use super::line::EncodeError;
use super::seal::{Seal, SealKey, encode_record, mac_input_for};

/// The `anchor_version` written and accepted.
pub const ANCHOR_VERSION: &str = "1";

/// Longest anchor record, in bytes, including its `\n`.
pub const ANCHOR_MAX_BYTES: usize = 384;

const ANCHOR_DOMAIN: &[u8] = b"heidi-journal-anchor/1\n";

/// The latest seal of a journal, MACed with the seal key under the anchor's own domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    run_id: RunId,
    lines: u64,
    last_hash: LineHash,
    mac: [u8; 32],
}

#[derive(Deserialize)]
struct Record<'a> {
    anchor_version: &'a str,
    run_id: &'a str,
    lines: u64,
    last_hash: &'a str,
    mac: &'a str,
}

impl Anchor {
    /// The anchor naming `seal` (its run id, line count and last hash), MACed with `key`.
    pub fn of_seal(key: &SealKey, seal: &Seal) -> Anchor {
        let run_id = run_id_from(seal.run_id()).unwrap_or_default(); // a seal's run id is valid
        let mut mac = key.mac();
        mac_input_for(
            &mut mac,
            ANCHOR_DOMAIN,
            &run_id,
            seal.lines(),
            &seal.last_hash(),
        );
        Anchor {
            run_id,
            lines: seal.lines(),
            last_hash: seal.last_hash(),
            mac: mac.finalize().into_bytes().into(),
        }
    }

    /// Parses one record (a trailing `\n` is allowed), exactly as [`encode`](Anchor::encode)
    /// writes it; does not check the MAC.
    pub fn parse(record: &[u8]) -> Result<Anchor, AnchorFault> {
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let (r, _) = serde_json_core::from_slice::<Record<'_>>(record)
            .map_err(|_| AnchorFault::BadRecord)?;
        if r.anchor_version != ANCHOR_VERSION || r.lines == 0 {
            return Err(AnchorFault::BadRecord);
        }
        let hex = |s: &str| LineHash::from_hex(s.as_bytes()).ok_or(AnchorFault::BadRecord);
        let anchor = Anchor {
            run_id: run_id_from(r.run_id).map_err(|_| AnchorFault::BadRecord)?,
            lines: r.lines,
            last_hash: hex(r.last_hash)?,
            mac: hex(r.mac)?.0,
        };
        let mut canonical = [0u8; ANCHOR_MAX_BYTES];
        let n = anchor
            .encode(&mut canonical)
            .map_err(|_| AnchorFault::BadRecord)?;
        if canonical[..n - 1] != *record {
            return Err(AnchorFault::BadRecord);
        }
        Ok(anchor)
    }

    /// Writes the record, with its `\n`, into `buf` and returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_record(
            buf,
            b"{\"anchor_version\":\"1\"",
            &self.run_id,
            self.lines,
            &self.last_hash,
            &self.mac,
        )
    }

    /// Whether the MAC is right for `key`, compared in constant time.
    #[must_use]
    pub fn is_authentic(&self, key: &SealKey) -> bool {
        let mut mac = key.mac();
        mac_input_for(
            &mut mac,
            ANCHOR_DOMAIN,
            &self.run_id,
            self.lines,
            &self.last_hash,
        );
        mac.verify_slice(&self.mac).is_ok()
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Lines the anchored seal covers.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Hash of line [`lines`](Anchor::lines).
    pub fn last_hash(&self) -> LineHash {
        self.last_hash
    }

    fn names(&self, seal: &Seal) -> bool {
        seal.run_id() == self.run_id.as_str()
            && seal.lines() == self.lines
            && seal.last_hash() == self.last_hash
    }
}

/// Why seals do not reach their anchor, or the anchor is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AnchorFault {
    /// The anchor record is malformed.
    BadRecord,
    /// The anchor has a wrong MAC: forged, altered, or made with another key.
    BadMac,
    /// The seals are of another run than the anchor.
    OtherRun,
    /// The last seal covers `sealed_lines` (0: no seal at all) but the anchor records a seal
    /// over `anchored_lines`: the latest seals were removed, and the journal cut back to an
    /// older seal (or removed).
    Behind {
        /// Lines covered by the last valid seal record.
        sealed_lines: u64,
        /// Lines covered by the anchored seal.
        anchored_lines: u64,
    },
    /// The seals reach line `line` but no seal record over it equals the anchor: the seals
    /// (and the journal) are not the ones the anchor was written for.
    Diverged {
        /// The anchored line.
        line: u64,
    },
}

impl fmt::Display for AnchorFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorFault::BadRecord => f.write_str("the anchor record is malformed"),
            AnchorFault::BadMac => f.write_str("the anchor has a wrong MAC"),
            AnchorFault::OtherRun => f.write_str("the seals are of another run than the anchor"),
            AnchorFault::Behind {
                sealed_lines,
                anchored_lines,
            } => write!(
                f,
                "the seals cover {sealed_lines} lines but the anchor records a seal over \
                 {anchored_lines}: the latest seals and the journal's tail were removed"
            ),
            AnchorFault::Diverged { line } => write!(
                f,
                "no seal record over line {line} matches the anchor: seals or journal replaced"
            ),
        }
    }
}

impl core::error::Error for AnchorFault {}

/// Compares a run's seal records with its anchor.
///
/// Make it from the anchor record ([`new`](AnchorCheck::new) checks the MAC), show it every
/// valid seal record in file order ([`observe`](AnchorCheck::observe), e.g. after each
/// successful [`SealCheck::add_record`](super::SealCheck::add_record), with
/// [`SealCheck::latest`](super::SealCheck::latest)), then ask [`finish`](AnchorCheck::finish)
/// with the last valid seal. The journal itself is compared with the last seal by
/// [`SealCheck`](super::SealCheck); the chain ties the anchored line to it.
#[derive(Clone, Debug)]
pub struct AnchorCheck {
    anchor: Anchor,
    matched: bool,
}

impl AnchorCheck {
    /// A check against the anchor `record`, whose MAC must be right for `key`.
    pub fn new(key: &SealKey, record: &[u8]) -> Result<AnchorCheck, AnchorFault> {
        let anchor = Anchor::parse(record)?;
        if !anchor.is_authentic(key) {
            return Err(AnchorFault::BadMac);
        }
        Ok(AnchorCheck {
            anchor,
            matched: false,
        })
    }

    /// The anchor.
    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// Notes a valid seal record.
    pub fn observe(&mut self, seal: &Seal) {
        self.matched |= self.anchor.names(seal);
    }

    /// Ok with the anchored line count when a seal record observed equals the anchor;
    /// otherwise why not, judged from `latest` (the last valid seal, `None`: no seal).
    pub fn finish(&self, latest: Option<&Seal>) -> Result<u64, AnchorFault> {
        if self.matched {
            return Ok(self.anchor.lines);
        }
        let sealed_lines = latest.map_or(0, Seal::lines);
        if sealed_lines < self.anchor.lines {
            return Err(AnchorFault::Behind {
                sealed_lines,
                anchored_lines: self.anchor.lines,
            });
        }
        match latest {
            Some(seal) if seal.run_id() != self.anchor.run_id.as_str() => {
                Err(AnchorFault::OtherRun)
            }
            _ => Err(AnchorFault::Diverged {
                line: self.anchor.lines,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::seal::tests::key;

    fn seal(run: &str, lines: u64, h: u8) -> Seal {
        Seal::new(&key(), run, lines, LineHash([h; 32])).unwrap()
    }

    fn record(anchor: &Anchor) -> heapless::Vec<u8, ANCHOR_MAX_BYTES> {
        let mut buf = [0u8; ANCHOR_MAX_BYTES];
        let n = anchor.encode(&mut buf).unwrap();
        heapless::Vec::from_slice(&buf[..n]).unwrap()
    }

    fn check_of(s: &Seal) -> AnchorCheck {
        AnchorCheck::new(&key(), &record(&Anchor::of_seal(&key(), s))).unwrap()
    }

    #[test]
    fn round_trip_and_mac() {
        let a = Anchor::of_seal(&key(), &seal("run-1", 14, 3));
        let r = record(&a);
        let text = core::str::from_utf8(&r).unwrap();
        assert!(text.starts_with("{\"anchor_version\":\"1\",\"run_id\":\"run-1\",\"lines\":14,"));
        assert_eq!(Anchor::parse(&r).unwrap(), a);
        assert!(a.is_authentic(&key()));
        let other = SealKey::new(&[9; 32]).unwrap();
        assert!(!a.is_authentic(&other));
        assert_eq!(
            AnchorCheck::new(&other, &r).unwrap_err(),
            AnchorFault::BadMac
        );
        // A seal's MAC is not an anchor's: another domain.
        let s = seal("run-1", 14, 3);
        let forged = Anchor {
            mac: s.mac_bytes(),
            ..a.clone()
        };
        assert!(!forged.is_authentic(&key()));
        for f in [
            Anchor {
                lines: 13,
                ..a.clone()
            },
            Anchor {
                last_hash: LineHash([4; 32]),
                ..a.clone()
            },
        ] {
            assert!(!f.is_authentic(&key()));
        }
    }

    #[test]
    fn malformed_anchors() {
        let a = Anchor::of_seal(&key(), &seal("r", 1, 0));
        let r = record(&a);
        let text = core::str::from_utf8(&r).unwrap();
        for (from, to) in [
            ("\"anchor_version\":\"1\"", "\"anchor_version\":\"2\""),
            ("\"lines\":1", "\"lines\":0"),
            ("\"lines\":1", "\"lines\":01"),
            ("\"lines\":1", "\"lines\": 1"),
            ("\"mac\":\"", "\"mac\":\"0"),
            ("}", ""),
        ] {
            let at = text.find(from).unwrap();
            let mut bad: heapless::String<512> = heapless::String::new();
            for part in [&text[..at], to, &text[at + from.len()..]] {
                bad.push_str(part).unwrap();
            }
            assert_eq!(
                Anchor::parse(bad.as_bytes()),
                Err(AnchorFault::BadRecord),
                "{bad}"
            );
        }
        assert_eq!(Anchor::parse(b""), Err(AnchorFault::BadRecord));
        assert_eq!(
            AnchorCheck::new(&key(), b"garbage").unwrap_err(),
            AnchorFault::BadRecord
        );
    }

    #[test]
    fn seals_that_reach_the_anchor_pass() {
        let (s1, s14, s20) = (
            seal("run-1", 1, 1),
            seal("run-1", 14, 2),
            seal("run-1", 20, 3),
        );
        let mut c = check_of(&s14);
        for s in [&s1, &s14, &s20] {
            c.observe(s);
        }
        assert_eq!(c.finish(Some(&s20)), Ok(14));
        let mut exact = check_of(&s14);
        exact.observe(&s1);
        exact.observe(&s14);
        assert_eq!(exact.finish(Some(&s14)), Ok(14));
    }

    #[test]
    fn seals_behind_the_anchor_are_refused() {
        let (s1, s14) = (seal("run-1", 1, 1), seal("run-1", 14, 2));
        let mut c = check_of(&s14);
        c.observe(&s1);
        assert_eq!(
            c.finish(Some(&s1)),
            Err(AnchorFault::Behind {
                sealed_lines: 1,
                anchored_lines: 14
            })
        );
        let none = check_of(&s14);
        assert_eq!(
            none.finish(None),
            Err(AnchorFault::Behind {
                sealed_lines: 0,
                anchored_lines: 14
            })
        );
    }

    #[test]
    fn other_seals_at_or_past_the_anchor_are_refused() {
        let s14 = seal("run-1", 14, 2);
        // Same count, another hash: another journal of the same run.
        let twin = seal("run-1", 14, 7);
        let later = seal("run-1", 20, 8);
        let mut c = check_of(&s14);
        c.observe(&twin);
        c.observe(&later);
        assert_eq!(
            c.finish(Some(&later)),
            Err(AnchorFault::Diverged { line: 14 })
        );
        // Seals that skip the anchored count.
        let mut skip = check_of(&s14);
        skip.observe(&later);
        assert_eq!(
            skip.finish(Some(&later)),
            Err(AnchorFault::Diverged { line: 14 })
        );
        let other = seal("run-2", 30, 2);
        let mut o = check_of(&s14);
        o.observe(&other);
        assert_eq!(o.finish(Some(&other)), Err(AnchorFault::OtherRun));
    }
}
