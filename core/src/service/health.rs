//! `HEALTH_REPORT` and `HEALTH_AGGREGATE` over a [`Health`] set: a check is registered by its
//! first report. The aggregate lists every check, so its reply can be longer than a
//! [`ReplyBuf`]: the service answers it through [`Service::handle_large`](super::Service).

use core::fmt;

use super::fields::{self, FieldError, Schema};
use super::reply::{Refusal, encode_refusal, ms_until, refuse};
use super::{Outcome, Reply, ReplyBuf};
use crate::Instant;
use crate::health::{
    AggregateStatus, CheckStatus, Health, HealthConfig, HealthConfigError, NAME_MAX_BYTES,
    RegisterError,
};
use crate::journal::is_valid_name;
use crate::json::escape::quoted;
use crate::json::writer::Writer;
use crate::proto::ErrorCode;
use crate::proto::params::{Member, NotAnObject};

/// The longest `HEALTH_AGGREGATE` reply for a set of `checks` checks: each entry at most
/// 420 bytes (a name of 64 bytes, every byte escaped), and the counts.
#[must_use]
pub const fn aggregate_reply_max_bytes(checks: usize) -> usize {
    128 + checks * 420
}

/// Most health checks a host's set holds (checks are never removed; a report of a new check
/// beyond them is refused `OVERLOADED`).
pub const HEALTH_CHECKS_MAX: usize = 256;

/// What a [`Service`](super::Service) holds for health: a [`Health`] set or [`NoHealth`].
pub trait MaybeHealth {
    /// Serves `HEALTH_REPORT`; `None` without a set.
    #[doc(hidden)]
    fn report<'a>(
        &mut self,
        now: Instant,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Option<Reply>;
    /// Serves `HEALTH_AGGREGATE` into `out`; `None` without a set.
    #[doc(hidden)]
    fn aggregate<'a>(
        &self,
        now: Instant,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Option<Reply>;
    /// The longest `HEALTH_AGGREGATE` reply (0 without a set).
    fn aggregate_max_bytes(&self) -> usize;
    /// The set under `config`, the checks carried over
    /// ([`Health::reconfigured`]); `None` when nothing changes (no set, or the same
    /// configuration).
    fn reconfigured(&self, config: HealthConfig) -> Result<Option<Self>, HealthConfigError>
    where
        Self: Sized;
}

/// A service without health checks: the health methods are not covered.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHealth;

impl MaybeHealth for NoHealth {
    fn report<'a>(
        &mut self,
        _: Instant,
        _: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        _: &mut ReplyBuf,
    ) -> Option<Reply> {
        None
    }
    fn aggregate<'a>(
        &self,
        _: Instant,
        _: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        _: &mut [u8],
    ) -> Option<Reply> {
        None
    }
    fn aggregate_max_bytes(&self) -> usize {
        0
    }
    fn reconfigured(&self, _: HealthConfig) -> Result<Option<NoHealth>, HealthConfigError> {
        Ok(None)
    }
}

static REPORT: Schema<2> = Schema {
    names: ["name", "pass"],
    expected: "name, pass",
};
static AGGREGATE: Schema<0> = Schema {
    names: [],
    expected: "",
};

/// `params.name`: 1 to 64 bytes, then the journal's name set; `params.pass`: a boolean.
fn report_params<'a, 's>(
    members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
    buf: &'s mut [u8; NAME_MAX_BYTES],
) -> Result<(&'s str, bool), FieldError<'a>>
where
    'a: 's,
{
    let found = fields::collect(members, &REPORT)?;
    let name = found.text(0, buf)?;
    if !is_valid_name(name.as_bytes()) {
        return Err(FieldError::Invalid(
            "name",
            "names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ));
    }
    let pass = found.boolean(1)?;
    found.finish()?;
    Ok((name, pass))
}

/// "the set is full (N checks)".
struct Full<'e>(&'e RegisterError, usize);

impl fmt::Display for Full<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} checks)", self.0, self.1)
    }
}

impl<const N: usize> MaybeHealth for Health<N> {
    /// `{"consecutive_failures":…,"name":"…","ok":true,"status":"…","unknown_in_ms":…}`.
    fn report<'a>(
        &mut self,
        now: Instant,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Option<Reply> {
        let mut buf = [0u8; NAME_MAX_BYTES];
        let (name, pass) = match report_params(members, &mut buf) {
            Ok(params) => params,
            Err(e) => {
                return Some(encode_refusal(
                    out,
                    &Refusal::new(ErrorCode::BadRequest, &e),
                ));
            }
        };
        if self.check(now, name).is_err() {
            if let Err(e) = self.register(now, name) {
                let message = Full(&e, N);
                return Some(encode_refusal(
                    out,
                    &Refusal::new(ErrorCode::Overloaded, &message),
                ));
            }
        }
        let _ = self.report(now, name, pass);
        let Ok(info) = self.check(now, name) else {
            let message = "a reported check is gone";
            return Some(encode_refusal(
                out,
                &Refusal::new(ErrorCode::Internal, &message),
            ));
        };
        let mut w = Writer::new(out);
        w.bytes(b"{\"consecutive_failures\":");
        w.u64(u64::from(info.consecutive_failures));
        w.bytes(b",\"name\":");
        quoted(&mut w, name);
        w.bytes(b",\"ok\":true,\"status\":\"");
        w.bytes(check_str(info.status).as_bytes());
        w.bytes(b"\",\"unknown_in_ms\":");
        match ms_until(now, info.unknown_at) {
            Some(ms) => w.u64(ms),
            None => w.bytes(b"null"),
        }
        w.byte(b'}');
        Some(written(&w))
    }

    /// `{"checks":[{"name":"…","status":"…"},…],"healthy":…,"status":"…","unhealthy":…,
    /// "unknown":…}`, the checks in name order.
    fn aggregate<'a>(
        &self,
        now: Instant,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Option<Reply> {
        if out.len() < aggregate_reply_max_bytes(N) {
            let message = "the reply buffer is shorter than aggregate_reply_max_bytes";
            return Some(refuse(out, &Refusal::new(ErrorCode::Internal, &message)));
        }
        if let Err(e) = fields::collect(members, &AGGREGATE).and_then(|f| f.finish()) {
            return Some(refuse(out, &Refusal::new(ErrorCode::BadRequest, &e)));
        }
        let mut order = [0u16; N];
        let mut names = [""; N];
        let mut statuses = [CheckStatus::Healthy; N];
        let mut n = 0;
        for (i, (name, status)) in self.iter(now).enumerate().take(N) {
            names[i] = name;
            statuses[i] = status;
            order[i] = i as u16;
            n = i + 1;
        }
        order[..n].sort_unstable_by_key(|&i| names[usize::from(i)]);
        let summary = Health::aggregate(self, now);
        let mut w = Writer::new(out);
        w.bytes(b"{\"checks\":[");
        for (k, &i) in order[..n].iter().enumerate() {
            if k > 0 {
                w.byte(b',');
            }
            w.bytes(b"{\"name\":");
            quoted(&mut w, names[usize::from(i)]);
            w.bytes(b",\"status\":\"");
            w.bytes(check_str(statuses[usize::from(i)]).as_bytes());
            w.bytes(b"\"}");
        }
        w.bytes(b"],\"healthy\":");
        w.u64(summary.healthy as u64);
        w.bytes(b",\"status\":\"");
        w.bytes(aggregate_str(summary.status).as_bytes());
        w.bytes(b"\",\"unhealthy\":");
        w.u64(summary.unhealthy as u64);
        w.bytes(b",\"unknown\":");
        w.u64(summary.unknown as u64);
        w.byte(b'}');
        Some(written(&w))
    }

    fn aggregate_max_bytes(&self) -> usize {
        aggregate_reply_max_bytes(N)
    }
    fn reconfigured(&self, config: HealthConfig) -> Result<Option<Health<N>>, HealthConfigError> {
        if *self.config() == config {
            return Ok(None);
        }
        Health::reconfigured(self, config).map(Some)
    }
}

fn written(w: &Writer<'_>) -> Reply {
    Reply {
        len: w.finish().map_or(0, |n| n),
        outcome: Outcome::Allowed,
        error: None,
    }
}

fn check_str(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Healthy => "healthy",
        CheckStatus::Unhealthy => "unhealthy",
        CheckStatus::Unknown => "unknown",
    }
}

fn aggregate_str(s: AggregateStatus) -> &'static str {
    match s {
        AggregateStatus::Healthy => "healthy",
        AggregateStatus::Degraded => "degraded",
        AggregateStatus::Unhealthy => "unhealthy",
    }
}
