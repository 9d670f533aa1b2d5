//! Seals: HMAC-SHA256 checkpoints over (run id, line count, last line hash), one JSON line
//! each in a file of their own (`events.seals`).
//!
//! Record: `{"seal_version":"1","run_id":"…","lines":N,"last_hash":"<64 hex>","mac":"<64 hex>"}`
//! and `\n`. The MAC is HMAC-SHA256 keyed by the host's secret over the bytes
//! `heidi-journal-seal/1\n<run_id>\n<lines in decimal>\n<last_hash hex>`.

use core::fmt;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::chain::{BadRunId, RunId, run_id_from};
use super::hash::LineHash;
use super::line::EncodeError;
use crate::json::writer::Writer;

/// The `seal_version` written and accepted.
pub const SEAL_VERSION: &str = "1";

/// Longest seal record, in bytes, including its `\n`.
pub const SEAL_MAX_BYTES: usize = 384;

/// The keyed MAC used for seals.
pub(crate) type SealMac = Hmac<Sha256>;

/// The shortest seal key accepted, in bytes (the HMAC-SHA256 output size).
pub const SEAL_KEY_MIN_BYTES: usize = 32;

/// The host's secret seal key, checked for length and held as a keyed HMAC state (the key
/// bytes themselves are not kept; `Debug` shows nothing of it).
#[derive(Clone)]
pub struct SealKey {
    mac: SealMac,
}

/// A seal key shorter than [`SEAL_KEY_MIN_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WeakSealKey {
    /// Length of the refused key.
    pub len_bytes: usize,
}

impl fmt::Display for WeakSealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seal key has {} bytes, at least {SEAL_KEY_MIN_BYTES} are needed",
            self.len_bytes
        )
    }
}

impl core::error::Error for WeakSealKey {}

impl SealKey {
    /// A seal key from the host's secret, which must be at least [`SEAL_KEY_MIN_BYTES`]
    /// bytes (e.g. 32 random bytes kept outside the journal directory).
    pub fn new(secret: &[u8]) -> Result<SealKey, WeakSealKey> {
        if secret.len() < SEAL_KEY_MIN_BYTES {
            return Err(WeakSealKey {
                len_bytes: secret.len(),
            });
        }
        // HMAC takes keys of any length, so this never fails.
        let mac = SealMac::new_from_slice(secret).map_err(|_| WeakSealKey {
            len_bytes: secret.len(),
        })?;
        Ok(SealKey { mac })
    }

    /// A fresh MAC state keyed by this key.
    pub(crate) fn mac(&self) -> SealMac {
        self.mac.clone()
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// A checkpoint: the journal of `run_id` had `lines` lines, the last with hash `last_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    run_id: RunId,
    lines: u64,
    last_hash: LineHash,
    mac: [u8; 32],
}

/// A seal record that is not well-formed: not byte for byte the layout above (compact, keys
/// in that order, no other keys, `lines` without leading zeros), a bad run id, a hash or MAC
/// that is not 64 lowercase hex digits, a wrong version, or `lines == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BadSeal;

impl fmt::Display for BadSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed seal record")
    }
}

impl core::error::Error for BadSeal {}

#[derive(Deserialize)]
struct Record<'a> {
    seal_version: &'a str,
    run_id: &'a str,
    lines: u64,
    last_hash: &'a str,
    mac: &'a str,
}

/// The MAC input's first line for a seal record.
const SEAL_DOMAIN: &[u8] = b"heidi-journal-seal/1\n";

/// Feeds `domain` then `<run_id>\n<lines in decimal>\n<last_hash hex>` to `mac`: the input of
/// a seal's MAC (`domain` = `heidi-journal-seal/1\n`) and of an anchor's.
pub(crate) fn mac_input_for(
    mac: &mut SealMac,
    domain: &[u8],
    run_id: &str,
    lines: u64,
    last_hash: &LineHash,
) {
    let mut num = [0u8; 20];
    let mut out = Writer::new(&mut num);
    out.u64(lines);
    let n = out.finish().unwrap_or(0); // 20 digits hold any u64
    mac.update(domain);
    mac.update(run_id.as_bytes());
    mac.update(b"\n");
    mac.update(&num[..n]);
    mac.update(b"\n");
    mac.update(last_hash.hex().as_bytes());
}

/// Writes a seal-shaped record: `head` (`{"…_version":"1"`), then `run_id`, `lines`,
/// `last_hash` and `mac`, and `}\n`; returns its length. Seals and anchors share it.
pub(crate) fn encode_record(
    buf: &mut [u8],
    head: &[u8],
    run_id: &str,
    lines: u64,
    last_hash: &LineHash,
    mac: &[u8; 32],
) -> Result<usize, EncodeError> {
    let capacity_bytes = buf.len();
    let mut out = Writer::new(buf);
    out.bytes(head);
    out.bytes(b",\"run_id\":\"");
    out.bytes(run_id.as_bytes());
    out.bytes(b"\",\"lines\":");
    out.u64(lines);
    out.bytes(b",\"last_hash\":\"");
    out.bytes(last_hash.hex().as_bytes());
    out.bytes(b"\",\"mac\":\"");
    out.bytes(LineHash(*mac).hex().as_bytes());
    out.bytes(b"\"}\n");
    out.finish().map_err(|o| EncodeError::LineTooLong {
        needed_bytes: o.needed_bytes,
        capacity_bytes,
    })
}

fn mac_input(mac: &mut SealMac, run_id: &str, lines: u64, last_hash: &LineHash) {
    mac_input_for(mac, SEAL_DOMAIN, run_id, lines, last_hash);
}

impl Seal {
    /// Seals (`run_id`, `lines`, `last_hash`) with `key`; `run_id` must be valid (as for a
    /// [`ChainWriter`](super::ChainWriter)).
    pub fn new(
        key: &SealKey,
        run_id: &str,
        lines: u64,
        last_hash: LineHash,
    ) -> Result<Seal, BadRunId> {
        Ok(Seal::from_parts(
            key,
            run_id_from(run_id)?,
            lines,
            last_hash,
        ))
    }

    /// Seals a run id already checked.
    pub(crate) fn from_parts(
        key: &SealKey,
        run_id: RunId,
        lines: u64,
        last_hash: LineHash,
    ) -> Seal {
        let mut mac = key.mac();
        mac_input(&mut mac, &run_id, lines, &last_hash);
        Seal {
            run_id,
            lines,
            last_hash,
            mac: mac.finalize().into_bytes().into(),
        }
    }

    /// Parses one record (a trailing `\n` is allowed). Does not check the MAC. The record
    /// must be exactly what [`encode`](Seal::encode) writes: it is parsed, encoded again and
    /// compared byte for byte.
    pub fn parse(record: &[u8]) -> Result<Seal, BadSeal> {
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let (r, _) = serde_json_core::from_slice::<Record<'_>>(record).map_err(|_| BadSeal)?;
        if r.seal_version != SEAL_VERSION || r.lines == 0 {
            return Err(BadSeal);
        }
        let last_hash = LineHash::from_hex(r.last_hash.as_bytes()).ok_or(BadSeal)?;
        let mac = LineHash::from_hex(r.mac.as_bytes()).ok_or(BadSeal)?.0;
        let seal = Seal {
            run_id: run_id_from(r.run_id).map_err(|_| BadSeal)?,
            lines: r.lines,
            last_hash,
            mac,
        };
        let mut canonical = [0u8; SEAL_MAX_BYTES];
        let n = seal.encode(&mut canonical).map_err(|_| BadSeal)?;
        if canonical[..n - 1] != *record {
            return Err(BadSeal);
        }
        Ok(seal)
    }

    /// Writes the record, with its `\n`, into `buf` and returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_record(
            buf,
            b"{\"seal_version\":\"1\"",
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
        mac_input(&mut mac, &self.run_id, self.lines, &self.last_hash);
        mac.verify_slice(&self.mac).is_ok()
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Number of journal lines covered (lines 1 to `lines`).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Hash of line `lines`.
    pub fn last_hash(&self) -> LineHash {
        self.last_hash
    }

    /// The MAC bytes (tests only).
    #[cfg(test)]
    pub(crate) fn mac_bytes(&self) -> [u8; 32] {
        self.mac
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The tests' seal key.
    pub(crate) fn key() -> SealKey {
        SealKey::new(b"host secret of at least 32 bytes").unwrap()
    }

    fn other_key() -> SealKey {
        SealKey::new(&[7; SEAL_KEY_MIN_BYTES]).unwrap()
    }

    #[test]
    fn encode_parse_round_trip() {
        let seal = Seal::new(&key(), "run-1", 42, LineHash([0xab; 32])).unwrap();
        let mut buf = [0u8; SEAL_MAX_BYTES];
        let n = seal.encode(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with(
            "{\"seal_version\":\"1\",\"run_id\":\"run-1\",\"lines\":42,\"last_hash\":\"abab"
        ));
        assert!(text.ends_with("\"}\n"));
        let back = Seal::parse(&buf[..n]).unwrap();
        assert_eq!(back, seal);
        assert!(back.is_authentic(&key()));
        assert!(!back.is_authentic(&other_key()));
    }

    #[test]
    fn mac_covers_every_field() {
        let seal = Seal::new(&key(), "run-1", 42, LineHash([1; 32])).unwrap();
        let forged = [
            Seal {
                lines: 41,
                ..seal.clone()
            },
            Seal {
                last_hash: LineHash([2; 32]),
                ..seal.clone()
            },
            Seal {
                run_id: run_id_from("run-2").unwrap(),
                ..seal.clone()
            },
        ];
        for f in forged {
            assert!(!f.is_authentic(&key()), "{f:?}");
        }
    }

    #[test]
    fn malformed_records() {
        let good = Seal::new(&key(), "r", 1, LineHash([0; 32])).unwrap();
        let mut buf = [0u8; SEAL_MAX_BYTES];
        let n = good.encode(&mut buf).unwrap();
        let text = core::str::from_utf8(&buf[..n]).unwrap();
        for (from, to) in [
            ("\"seal_version\":\"1\"", "\"seal_version\":\"2\""),
            ("\"lines\":1", "\"lines\":0"),
            ("\"lines\":1", "\"lines\":-1"),
            ("\"run_id\":\"r\"", "\"run_id\":\"a b\""),
            ("\"last_hash\":\"0", "\"last_hash\":\"A"),
            ("\"mac\":\"", "\"mac\":\"0"),
            ("}", ""),
            // Not the fixed layout: whitespace, other key order, unknown keys, leading zeros.
            ("\"lines\":1", "\"lines\": 1"),
            ("{", "{ "),
            ("}", "} "),
            ("\"lines\":1", "\"lines\":01"),
            ("\"lines\":1", "\"lines\":1,\"extra\":0"),
            (
                "{\"seal_version\":\"1\",\"run_id\":\"r\"",
                "{\"run_id\":\"r\",\"seal_version\":\"1\"",
            ),
        ] {
            let at = text.find(from).unwrap();
            let mut bad: heapless::String<512> = heapless::String::new();
            for part in [&text[..at], to, &text[at + from.len()..]] {
                bad.push_str(part).unwrap();
            }
            assert_eq!(Seal::parse(bad.as_bytes()), Err(BadSeal), "{bad}");
        }
        assert_eq!(Seal::parse(b""), Err(BadSeal));
        let mut small = [0u8; 10];
        assert_eq!(
            good.encode(&mut small),
            Err(EncodeError::LineTooLong {
                needed_bytes: n,
                capacity_bytes: 10
            })
        );
    }

    #[test]
    fn weak_keys_and_bad_run_ids_are_errors() {
        assert_eq!(SealKey::new(b"").unwrap_err(), WeakSealKey { len_bytes: 0 });
        let short = [1u8; SEAL_KEY_MIN_BYTES - 1];
        assert_eq!(
            SealKey::new(&short).unwrap_err(),
            WeakSealKey {
                len_bytes: SEAL_KEY_MIN_BYTES - 1
            }
        );
        assert_eq!(
            Seal::new(&key(), "a b", 1, LineHash([0; 32])),
            Err(BadRunId)
        );
    }
}
