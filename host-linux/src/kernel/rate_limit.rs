//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: the core's keyed limiter, one bucket per
//! (operation, client key), under the policy's limit of the operation.

use heidi_core::Instant;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{
    Acquire, KeyedAcquire, KeyedLimiter, LimitPolicy, Operation, PolicyTable, Tat,
};
use heidi_core::proto::ErrorCode;
use heidi_core::proto::params::{Member, NotAnObject};
use heidi_core::table::Slot;
use serde_json::Value;

use super::config::{KEY_MAX_BYTES, OPERATION_MAX_BYTES};
use super::fields::Fields;
use super::reply::{self, Fail, ms_until};

/// The limiter and its denial counters.
pub(crate) struct RateLimits {
    limiter: KeyedLimiter<Box<[Slot<Tat>]>>,
    denials: [u64; Operation::ALL.len()],
}

/// One parsed request: the bucket's key, the operation, its limit and the cost.
pub(crate) struct Call {
    key: KeyHash,
    op: Operation,
    limit: LimitPolicy,
    cost: u32,
}

impl Call {
    /// The hot path: the params read member by member (the core's `Members`, or the members
    /// `Request::parse` recorded; no `Value` tree, nothing allocated). `None` for anything
    /// but a plainly written valid request (unknown, repeated or escaped names, escaped
    /// strings, bad values), which [`Call::parse`] then accepts or explains.
    pub(crate) fn parse_members<'a>(
        hasher: &KeyHasher,
        table: &PolicyTable,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
    ) -> Option<Call> {
        let (mut key, mut operation, mut cost) = (None, None, None);
        for member in members {
            let member = member.ok()?;
            match member.name()? {
                "key" if key.is_none() => key = Some(member.as_plain_str()?),
                "operation" if operation.is_none() => operation = Some(member.as_plain_str()?),
                "cost" if cost.is_none() => {
                    cost = Some(match member.raw() {
                        "null" => None, // as if absent
                        _ => Some(u32::try_from(member.as_u64()?).ok()?),
                    });
                }
                _ => return None, // unknown or repeated
            }
        }
        Call::build(hasher, table, key?, operation?, cost.flatten().unwrap_or(1)).ok()
    }

    /// Parses params already read as a `Value`; the error names the bad field.
    pub(crate) fn parse(
        hasher: &KeyHasher,
        table: &PolicyTable,
        params: &Value,
    ) -> Result<Call, Fail> {
        let mut f = Fields::new(params, "params")?;
        let key = f.str_req("key", KEY_MAX_BYTES)?;
        let operation = f.str_req("operation", OPERATION_MAX_BYTES)?;
        let cost = f.u32_in("cost", 1, u32::MAX)?.unwrap_or(1);
        f.finish()?;
        Call::build(hasher, table, key, operation, cost)
    }

    /// The one place the values are checked and the bucket key is derived, for both parses.
    fn build(
        hasher: &KeyHasher,
        table: &PolicyTable,
        key: &str,
        operation: &str,
        cost: u32,
    ) -> Result<Call, Fail> {
        if !(1..=KEY_MAX_BYTES).contains(&key.len()) {
            return Err(f_error(
                "key",
                format!("must be 1 to {KEY_MAX_BYTES} bytes"),
            ));
        }
        if !(1..=OPERATION_MAX_BYTES).contains(&operation.len()) {
            let reason = format!("must be 1 to {OPERATION_MAX_BYTES} bytes");
            return Err(f_error("operation", reason));
        }
        if cost == 0 {
            return Err(f_error("cost", "must be at least 1".to_owned()));
        }
        let op = Operation::from_name(operation);
        let limit = *table.get(op);
        if cost > limit.capacity_tokens() {
            let reason = format!(
                "{cost} is above the capacity of operation `{}` ({} tokens), so it can never be granted",
                op.as_str(),
                limit.capacity_tokens()
            );
            return Err(f_error("cost", reason));
        }
        Ok(Call {
            key: op.key(hasher, key.as_bytes()),
            op,
            limit,
            cost,
        })
    }
}

fn f_error(param: &str, reason: String) -> Fail {
    Fail::new(ErrorCode::BadRequest, format!("params.{param}: {reason}"))
}

impl RateLimits {
    /// A limiter over `slots` slots (a non-zero multiple of 8).
    pub(crate) fn new(slots: usize) -> RateLimits {
        RateLimits {
            limiter: KeyedLimiter::new(vec![Slot::empty(); slots].into_boxed_slice()),
            denials: [0; Operation::ALL.len()],
        }
    }

    /// `RATE_LIMIT_CHECK` (`consume` false) or `RATE_LIMIT_CONSUME`: writes the reply into
    /// `out`. Success replies are written directly (keys in the same sorted order
    /// `serde_json` gives every other reply); refusals go through [`Fail`].
    pub(crate) fn respond(&mut self, now: Instant, call: &Call, consume: bool, out: &mut Vec<u8>) {
        let result = if consume {
            self.consume(now, call, out)
        } else {
            self.check(now, call, out)
        };
        if let Err(fail) = result {
            reply::write(&Err(fail), out);
        }
    }

    /// What a consume would answer now, taking nothing.
    fn check(&self, now: Instant, call: &Call, out: &mut Vec<u8>) -> Result<(), Fail> {
        // One table lookup for both questions.
        let tat = self.limiter.bucket(call.key);
        let peek = |cost| tat.check(now, &call.limit, cost);
        let available = match peek(0) {
            Ok(Acquire::Granted { remaining }) => remaining,
            _ => 0,
        };
        let (allowed, retry_after_ms) = match peek(call.cost) {
            Ok(Acquire::Granted { .. }) => (true, Some(0)),
            Ok(Acquire::Denied { retry_at }) => (false, ms_until(now, retry_at)),
            Err(e) => return Err(Fail::new(ErrorCode::BadRequest, e.to_string())),
        };
        out.clear();
        out.extend_from_slice(b"{\"allowed\":");
        out.extend_from_slice(if allowed { b"true" } else { b"false" });
        out.extend_from_slice(b",\"limit\":");
        push_u64(out, u64::from(call.limit.capacity_tokens()));
        out.extend_from_slice(b",\"operation\":\"");
        out.extend_from_slice(call.op.as_str().as_bytes());
        out.extend_from_slice(b"\",\"remaining\":");
        push_u64(out, u64::from(available));
        out.extend_from_slice(b",\"retry_after_ms\":");
        match retry_after_ms {
            Some(ms) => push_u64(out, ms),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"window_ms\":");
        push_u64(out, call.limit.window().as_millis());
        out.push(b'}');
        Ok(())
    }

    /// Takes `cost` tokens, or says when to retry.
    fn consume(&mut self, now: Instant, call: &Call, out: &mut Vec<u8>) -> Result<(), Fail> {
        let capacity = call.limit.capacity_tokens();
        let answer = self
            .limiter
            .acquire(now, call.key, &call.limit, call.cost)
            .map_err(|e| Fail::new(ErrorCode::BadRequest, e.to_string()))?;
        match answer {
            KeyedAcquire::Granted { remaining } => {
                let full_at = self.limiter.get(call.key).map_or(now, Tat::full_at);
                out.clear();
                out.extend_from_slice(b"{\"allowed\":true,\"limit\":");
                push_u64(out, u64::from(capacity));
                out.extend_from_slice(b",\"operation\":\"");
                out.extend_from_slice(call.op.as_str().as_bytes());
                out.extend_from_slice(b"\",\"remaining\":");
                push_u64(out, u64::from(remaining));
                out.extend_from_slice(b",\"reset_after_ms\":");
                push_u64(out, ms_until(now, full_at).unwrap_or(0));
                out.extend_from_slice(b",\"window_ms\":");
                push_u64(out, call.limit.window().as_millis());
                out.push(b'}');
                Ok(())
            }
            KeyedAcquire::Denied { retry_at } => {
                self.denials[index(call.op)] += 1;
                let message = format!(
                    "rate limit of operation `{}` reached for this key ({capacity} per {} ms)",
                    call.op.as_str(),
                    call.limit.window().as_millis()
                );
                Err(Fail::new(ErrorCode::RateLimited, message)
                    .retry_at(now, retry_at)
                    .with("remaining", 0)
                    .with("limit", capacity)
                    .with("operation", call.op.as_str()))
            }
            KeyedAcquire::TableFull { retry_at } => {
                let message = "the rate-limit table is full of keys that have not refilled";
                Err(Fail::new(ErrorCode::Overloaded, message).retry_at(now, retry_at))
            }
        }
    }

    /// Denials per operation since start.
    pub(crate) fn denials(&self) -> Vec<(&'static str, u64)> {
        Operation::ALL
            .iter()
            .map(|&op| (op.as_str(), self.denials[index(op)]))
            .collect()
    }

    /// Buckets held.
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Frees refilled buckets from `cursor` on; returns the next cursor.
    pub(crate) fn sweep(&mut self, now: Instant, cursor: usize, budget: usize) -> usize {
        self.limiter.sweep(now, cursor, budget)
    }
}

fn index(op: Operation) -> usize {
    Operation::ALL.iter().position(|&o| o == op).unwrap_or(0)
}

/// Appends `n` in decimal (what `{n}` formats, without the formatting machinery: this is
/// the hottest reply).
fn push_u64(out: &mut Vec<u8>, n: u64) {
    match n {
        // One digit (a zero `retry_after_ms`, a small `remaining`): no buffer at all.
        0..=9 => out.push(b'0' + n as u8),
        _ => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::proto::Request;
    use heidi_core::proto::params::Members;

    /// The direct writer gives exactly what `serde_json` gives the same object (sorted keys,
    /// compact), for granted and refused checks and granted consumes.
    #[test]
    fn replies_are_canonical_json() {
        let hasher = KeyHasher::new([7; 16]);
        let table = PolicyTable::default();
        let mut limits = RateLimits::new(8);
        let p = r#"{"key":"k","operation":"transform","cost":4}"#;
        let call = Call::parse_members(&hasher, &table, Members::new(p)).expect("valid");
        let mut out = Vec::new();
        let now = Instant::from_secs(5);
        for consume in [false, true, true, true, false] {
            limits.respond(now, &call, consume, &mut out);
            let v: Value = serde_json::from_slice(&out).expect("JSON");
            if v.get("error").is_none() {
                assert_eq!(out, serde_json::to_vec(&v).unwrap(), "{v}");
            }
        }
        assert!(String::from_utf8_lossy(&out).starts_with(r#"{"allowed":false,"#));
    }

    /// The hot path and the explaining `Value` path read every request the same way; the hot
    /// path leaves only escaped text to the `Value` path, and refuses nothing it accepts.
    #[test]
    fn both_parses_agree() {
        let hasher = KeyHasher::new([7; 16]);
        let table = PolicyTable::DEFAULT;
        let cases = [
            r#"{"key":"u1","operation":"transform","cost":1}"#,
            r#" { "operation" : "search" ,"key":"k" } "#,
            "{\"key\":\"k\",\n\t\"operation\":\"x\",\r\"cost\":4294967295}",
            r#"{"cost":7,"key":"k","operation":"op"}"#,
            r#"{"key":"ü ✓","operation":"x"}"#,
            r#"{"key":"","operation":""}"#,
            r#"{"key":"k","operation":"x","cost":0}"#,
            r#"{"key":"k","operation":"x","cost":4294967296}"#,
            r#"{"key":"k","operation":"x","cost":01}"#,
            r#"{"key":"k","operation":"x","cost":1.0}"#,
            r#"{"key":"k","operation":"x","cost":1e2}"#,
            r#"{"key":"k","operation":"x","cost":-1}"#,
            r#"{"key":"k","operation":"x","cost":null}"#,
            r#"{"key":"k","operation":"x","cost":1,"cost":1}"#,
            r#"{"key":"k","key":"k","operation":"x"}"#,
            r#"{"key":"k\"q","operation":"x"}"#,
            r#"{"key":"k\u0041","operation":"x"}"#,
            "{\"key\":\"k\tq\",\"operation\":\"x\"}",
            r#"{"key":"k","operation":"x","extra":1}"#,
            r#"{"key":"k","operation":"x"} x"#,
            r#"{"key":"k","operation":"x",}"#,
            r#"{"key":"k"}"#,
            r#"{"key":"k","operation":"x""#,
            r#"{"key":"k","operation":"x","cost":"#,
            r#"{"key":"k","operation":"x","cost""#,
            r#"{"key":"k","operation":7}"#,
            r#"{"key":"k" "operation":"x"}"#,
            r#"{}"#,
            r#"{"#,
            r#"[]"#,
            "",
        ];
        let (mut accepted, mut escaped) = (0, 0);
        for text in cases {
            let fast = Call::parse_members(&hasher, &table, Members::new(text));
            // The members a request's parse recorded read the same as a second scan.
            let frame = format!(r#"{{"method":"RATE_LIMIT_CHECK","params":{text}}}"#);
            if let Ok(request) = Request::parse(&frame) {
                let recorded = Call::parse_members(&hasher, &table, request.members());
                let key = |c: &Option<Call>| c.as_ref().map(|c| (c.key, c.op, c.cost));
                assert_eq!(key(&recorded), key(&fast), "{text}");
            }
            let slow = crate::kernel::fields::parse_params(text)
                .and_then(|v| Call::parse(&hasher, &table, &v));
            match (fast, slow) {
                (Some(f), Ok(s)) => {
                    accepted += 1;
                    assert_eq!((f.key, f.op, f.cost), (s.key, s.op, s.cost), "{text}");
                }
                (None, Ok(_)) => {
                    assert!(
                        text.contains('\\'),
                        "{text}: only escaped text may fall back"
                    );
                    escaped += 1;
                }
                (None, Err(fail)) => assert!(
                    fail.message.starts_with("params"),
                    "{text}: {}",
                    fail.message
                ),
                (f, s) => panic!("{text}: fast {} / slow {}", f.is_some(), s.is_ok()),
            }
        }
        assert_eq!(
            accepted, 5,
            "the plainly written requests are accepted by both"
        );
        assert_eq!(
            escaped, 2,
            "the escaped ones are accepted by the `Value` path"
        );
    }

    #[test]
    fn digits_match_display() {
        for n in [0, 1, 9, 10, 99, 100, 4_294_967_295, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
