//! `IDEMPOTENCY_BEGIN` and `IDEMPOTENCY_COMPLETE`: the core's idempotency table.

use heidi_core::Instant;
use heidi_core::idempotency::{
    Begin, BeginError, CompleteError, Completed, IdempotencyConfig, IdempotencyTable, Outcome,
    Record, Token,
};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::proto::ErrorCode;
use heidi_core::table::Slot;
use serde_json::{Value, json};

use super::config::KEY_MAX_BYTES;
use super::fields::Fields;
use super::reply::{Answer, Fail, ms_until};

/// The idempotency table.
pub(crate) struct Idempotency {
    table: IdempotencyTable<Box<[Slot<Record>]>>,
}

fn key(hasher: &KeyHasher, f: &mut Fields<'_>) -> Result<KeyHash, Fail> {
    Ok(hasher.hash(f.str_req("key", KEY_MAX_BYTES)?.as_bytes()))
}

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

impl Idempotency {
    /// A table of `slots` records under `config` (validated by the policy).
    pub(crate) fn new(slots: usize, config: IdempotencyConfig, token_key: [u8; 16]) -> Idempotency {
        let storage = || vec![Slot::empty(); slots].into_boxed_slice();
        let table = IdempotencyTable::new(config, storage(), token_key).unwrap_or_else(|_| {
            // The policy validated `config`; the defaults are valid too.
            IdempotencyTable::new(IdempotencyConfig::DEFAULT, storage(), token_key)
                .expect("defaults are valid")
        });
        Idempotency { table }
    }

    /// `IDEMPOTENCY_BEGIN`.
    pub(crate) fn begin(&mut self, now: Instant, hasher: &KeyHasher, params: &Value) -> Answer {
        let mut f = Fields::new(params, "params")?;
        let key = key(hasher, &mut f)?;
        f.finish()?;
        let age = |at: Instant| now.saturating_duration_since(at).as_millis();
        match self.table.begin(now, key) {
            Ok(Begin::Started { token, expires_at }) => Ok(json!({
                "status": "started",
                "token": token.get().to_string(),
                "expires_in_ms": ms_until(now, expires_at),
            })),
            Ok(Begin::InProgress { since, expires_at }) => {
                let message = "this idempotency key is already being processed by another call";
                Err(Fail::new(ErrorCode::InProgress, message)
                    .with("since_ms", age(since))
                    .with("expires_in_ms", ms_until(now, expires_at)))
            }
            Ok(Begin::Done {
                digest,
                completed_at,
                expires_at,
            }) => Ok(json!({
                "status": "done",
                "digest": hex(&digest),
                "completed_ago_ms": age(completed_at),
                "expires_in_ms": ms_until(now, expires_at),
            })),
            Ok(Begin::Failed {
                completed_at,
                expires_at,
            }) => Ok(json!({
                "status": "failed",
                "completed_ago_ms": age(completed_at),
                "expires_in_ms": ms_until(now, expires_at),
            })),
            Err(e @ BeginError::TableFull { retry_at }) => {
                Err(Fail::new(ErrorCode::Overloaded, e.to_string()).retry_at(now, retry_at))
            }
            Err(e @ BeginError::ExpiryOverflow) => {
                Err(Fail::new(ErrorCode::Overloaded, e.to_string()))
            }
        }
    }

    /// `IDEMPOTENCY_COMPLETE`.
    pub(crate) fn complete(&mut self, now: Instant, hasher: &KeyHasher, params: &Value) -> Answer {
        let mut f = Fields::new(params, "params")?;
        let key = key(hasher, &mut f)?;
        let token = Token::from_raw(f.id("token")?);
        let outcome = f.str_req("outcome", 16)?;
        let digest = f.str("digest", 64)?;
        let outcome = match (outcome, digest) {
            ("success", Some(d)) => Outcome::Success(
                parse_hex(d).ok_or_else(|| f.error("digest", "must be 64 hex digits"))?,
            ),
            ("success", None) => {
                return Err(f
                    .error("digest", "is required with outcome \"success\"")
                    .into());
            }
            ("failure", None) => Outcome::Failure,
            ("failure", Some(_)) => {
                return Err(f
                    .error("digest", "only goes with outcome \"success\"")
                    .into());
            }
            _ => {
                return Err(f
                    .error("outcome", "must be \"success\" or \"failure\"")
                    .into());
            }
        };
        f.finish()?;
        match self.table.complete(now, key, token, outcome) {
            Ok(Completed::Remembered { expires_at }) => Ok(json!({
                "ok": true,
                "status": "remembered",
                "expires_in_ms": ms_until(now, expires_at),
            })),
            Ok(Completed::Released) => Ok(json!({"ok": true, "status": "released"})),
            Err(e) => {
                let reason = match e {
                    CompleteError::Unknown => "unknown",
                    CompleteError::NotOwner => "not_owner",
                    CompleteError::Expired { .. } => "expired",
                    CompleteError::AlreadyCompleted { .. } => "already_completed",
                };
                Err(Fail::new(ErrorCode::Refused, e.to_string()).with("reason", reason))
            }
        }
    }

    /// The configuration in force (fixed for the table's life).
    pub(crate) fn config(&self) -> &IdempotencyConfig {
        self.table.config()
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Frees expired records from `cursor` on; returns the next cursor.
    pub(crate) fn sweep(&mut self, now: Instant, cursor: usize, budget: usize) -> usize {
        self.table.sweep(now, cursor, budget)
    }
}
