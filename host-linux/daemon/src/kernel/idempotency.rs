//! `IDEMPOTENCY_BEGIN` and `IDEMPOTENCY_COMPLETE`: the core's idempotency table, the stored
//! responses, and the records the host must make durable before it replies ([`IdemPersist`]).

use std::collections::HashMap;

use heidi_core::Instant;
use heidi_core::idempotency::{
    Begin, BeginError, CompleteError, Completed, IdempotencyConfig, IdempotencyTable, Outcome,
    Record, Token,
};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::proto::ErrorCode;
use heidi_core::table::Slot;
use serde_json::{Value, json};

mod persist;

use persist::{Change, saved_of};
pub use persist::{IdemChange, IdemPersist, IdemRestored};

use super::config::{IDEMPOTENCY_RESPONSE_MAX_BYTES, KEY_MAX_BYTES};
use super::fields::Fields;
use super::reply::{Answer, Fail, ms_until};
use heidi_common::IdemLine;

/// The idempotency table, allocated at the first idempotency call (or the first restored
/// record) so that a daemon that never uses it does not keep the table resident.
pub(crate) struct Idempotency {
    table: Option<IdempotencyTable<Box<[Slot<Record>]>>>,
    slots: usize,
    config: IdempotencyConfig,
    token_key: [u8; 16],
    /// Responses stored with done records, until the record's expiry.
    responses: HashMap<KeyHash, (Instant, String)>,
}

fn key_text<'a>(f: &mut Fields<'a>) -> Result<&'a str, Fail> {
    Ok(f.str_req("key", KEY_MAX_BYTES)?)
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
        // The policy validated `config`; the defaults are valid too.
        let config = match config.validate() {
            Ok(()) => config,
            Err(_) => IdempotencyConfig::DEFAULT,
        };
        Idempotency {
            table: None,
            slots,
            config,
            token_key,
            responses: HashMap::new(),
        }
    }

    /// The table, allocated on first use.
    fn table(&mut self) -> &mut IdempotencyTable<Box<[Slot<Record>]>> {
        let (slots, config, token_key) = (self.slots, self.config, self.token_key);
        self.table.get_or_insert_with(|| {
            let storage = vec![Slot::empty(); slots].into_boxed_slice();
            IdempotencyTable::new(config, storage, token_key).expect("config validated in `new`")
        })
    }

    /// `IDEMPOTENCY_BEGIN`: the answer, and what must be durable before it is sent.
    pub(crate) fn begin(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        params: &Value,
    ) -> (Answer, Option<IdemPersist>) {
        let parsed = (|| -> Result<&str, Fail> {
            let mut f = Fields::new(params, "params")?;
            let text = key_text(&mut f)?;
            f.finish()?;
            Ok(text)
        })();
        let text = match parsed {
            Ok(text) => text,
            Err(fail) => return (Err(fail), None),
        };
        let key = hasher.hash(text.as_bytes());
        let answer = self.table().begin(now, key);
        let persist = match &answer {
            Ok(Begin::Started { token, expires_at }) => {
                self.responses.remove(&key);
                Some(IdemPersist::Record(IdemChange {
                    key: text.to_owned(),
                    change: Change::Begun {
                        token: *token,
                        since: now,
                        expires_at: *expires_at,
                    },
                }))
            }
            Ok(Begin::Done { .. } | Begin::Failed { .. }) => Some(IdemPersist::Barrier),
            _ => None,
        };
        (self.begin_answer(now, key, answer), persist)
    }

    fn begin_answer(
        &self,
        now: Instant,
        key: KeyHash,
        answer: Result<Begin, BeginError>,
    ) -> Answer {
        let age = |at: Instant| now.saturating_duration_since(at).as_millis();
        let response = || self.responses.get(&key).map(|(_, r)| r.as_str());
        match answer {
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
            }) => Ok(with_response(
                json!({
                    "status": "done",
                    "digest": hex(&digest),
                    "completed_ago_ms": age(completed_at),
                    "expires_in_ms": ms_until(now, expires_at),
                }),
                response(),
            )),
            Ok(Begin::Failed {
                completed_at,
                expires_at,
            }) => Ok(with_response(
                json!({
                    "status": "failed",
                    "completed_ago_ms": age(completed_at),
                    "expires_in_ms": ms_until(now, expires_at),
                }),
                response(),
            )),
            Err(e @ BeginError::TableFull { retry_at }) => {
                Err(Fail::new(ErrorCode::Overloaded, e.to_string()).retry_at(now, retry_at))
            }
            Err(e @ BeginError::ExpiryOverflow) => {
                Err(Fail::new(ErrorCode::Overloaded, e.to_string()))
            }
        }
    }

    /// `IDEMPOTENCY_COMPLETE`: the answer, and what must be durable before it is sent.
    pub(crate) fn complete(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        params: &Value,
    ) -> (Answer, Option<IdemPersist>) {
        let call = match parse_complete(params) {
            Ok(call) => call,
            Err(fail) => return (Err(fail), None),
        };
        let key = hasher.hash(call.key.as_bytes());
        let result = self.table().complete(now, key, call.token, call.outcome);
        let change = match result {
            Ok(Completed::Remembered { expires_at }) => {
                self.store_response(now, key, expires_at, call.response.clone());
                Change::Done {
                    token: call.token,
                    digest: match call.outcome {
                        Outcome::Success(d) => Some(d),
                        Outcome::Failure => None,
                    },
                    response: call.response,
                    completed_at: now,
                    expires_at,
                }
            }
            Ok(Completed::Released) => Change::Released,
            Err(e) => return (Err(complete_error(e)), None),
        };
        let persist = IdemPersist::Record(IdemChange {
            key: call.key,
            change,
        });
        (complete_answer(now, result), Some(persist))
    }

    /// Keeps `response` (if any) for `key` until `expires_at`. Expired responses are dropped
    /// when the map reaches the table's size, so it holds no more than the table's live done
    /// records (each at most [`IDEMPOTENCY_RESPONSE_MAX_BYTES`]).
    fn store_response(
        &mut self,
        now: Instant,
        key: KeyHash,
        expires_at: Instant,
        response: Option<String>,
    ) {
        let Some(response) = response else {
            self.responses.remove(&key);
            return;
        };
        if self.responses.len() >= self.slots {
            self.responses.retain(|_, (e, _)| *e > now);
        }
        self.responses.insert(key, (expires_at, response));
    }

    /// Puts back the records saved before a restart (oldest first, as read), newest first so
    /// that the oldest are the ones dropped when the table has no room.
    pub(crate) fn restore(
        &mut self,
        now: Instant,
        now_wall_ms: u64,
        hasher: &KeyHasher,
        lines: &[IdemLine],
    ) -> IdemRestored {
        let mut report = IdemRestored::default();
        for line in lines.iter().rev() {
            let Some((saved, response)) = saved_of(now, now_wall_ms, line) else {
                report.invalid += usize::from(!matches!(line, IdemLine::Released { .. }));
                continue;
            };
            let key = hasher.hash(line.key().as_bytes());
            match self.table().restore(now, key, saved) {
                Ok(true) => {
                    report.restored += 1;
                    if let Some(r) = response {
                        self.responses.insert(key, (saved.expires_at(), r));
                    }
                }
                Ok(false) => {}
                Err(_) => report.no_room += 1,
            }
        }
        report
    }

    /// The configuration in force (fixed for the table's life).
    pub(crate) fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.len())
    }

    /// Frees expired records from `cursor` on; returns the next cursor.
    pub(crate) fn sweep(&mut self, now: Instant, cursor: usize, budget: usize) -> usize {
        match &mut self.table {
            Some(table) => table.sweep(now, cursor, budget),
            None => 0,
        }
    }
}

/// The params of `IDEMPOTENCY_COMPLETE`.
struct CompleteCall {
    key: String,
    token: Token,
    outcome: Outcome,
    response: Option<String>,
}

fn parse_complete(params: &Value) -> Result<CompleteCall, Fail> {
    let mut f = Fields::new(params, "params")?;
    let key = key_text(&mut f)?.to_owned();
    let token = Token::from_raw(f.id("token")?);
    let outcome = f.str_req("outcome", 16)?;
    let digest = f.str("digest", 64)?;
    let response = response_param(&mut f)?;
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
    Ok(CompleteCall {
        key,
        token,
        outcome,
        response,
    })
}

/// The optional `response`: a string of at most [`IDEMPOTENCY_RESPONSE_MAX_BYTES`] bytes
/// (UTF-8), possibly empty.
fn response_param(f: &mut Fields<'_>) -> Result<Option<String>, Fail> {
    match f.raw("response") {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= IDEMPOTENCY_RESPONSE_MAX_BYTES => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(f
            .error(
                "response",
                format!(
                    "is {} bytes; at most {IDEMPOTENCY_RESPONSE_MAX_BYTES} are stored",
                    s.len()
                ),
            )
            .into()),
        Some(_) => Err(f.error("response", "must be a string").into()),
    }
}

fn complete_answer(now: Instant, result: Result<Completed, CompleteError>) -> Answer {
    match result {
        Ok(Completed::Remembered { expires_at }) => Ok(json!({
            "ok": true,
            "status": "remembered",
            "expires_in_ms": ms_until(now, expires_at),
        })),
        Ok(Completed::Released) => Ok(json!({"ok": true, "status": "released"})),
        Err(e) => Err(complete_error(e)),
    }
}

fn complete_error(e: CompleteError) -> Fail {
    let reason = match e {
        CompleteError::Unknown => "unknown",
        CompleteError::NotOwner => "not_owner",
        CompleteError::Expired { .. } => "expired",
        CompleteError::AlreadyCompleted { .. } => "already_completed",
    };
    Fail::new(ErrorCode::Refused, e.to_string()).with("reason", reason)
}

fn with_response(mut reply: Value, response: Option<&str>) -> Value {
    if let Some(r) = response {
        reply["response"] = r.into();
    }
    reply
}
