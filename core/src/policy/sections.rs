//! The sections of a policy document besides the rate limits: `retry`, `breakers`, `leases`,
//! `health`, `idempotency` and `readiness`, read into [`Sections`] with the rules of
//! `docs/PROTOCOL.md` ("The policy document").
//!
//! A missing section, entry or field takes its built-in default (a named breaker's missing
//! fields come from `breakers.default`); unknown fields, duplicates and values out of range
//! are refused with the field's path. Inside each object the first bad member in document
//! order is reported (`breakers.default` is read before the named breakers, since they
//! inherit from it). The top-level members (their syntax, duplicates, unknown names) are the
//! business of [`RatePolicy::parse`](super::RatePolicy::parse), which reads the document
//! first.

use heapless::Vec;

use super::error::{InvalidPolicy, Reason};
use super::name::Name;
use super::parse::NameText;
use crate::Duration;
use crate::breaker::{BreakerConfig, MAX_LAST_CALLS, MAX_PROBES, RateTrip, RateWindow};
use crate::health::HealthConfig;
use crate::idempotency::IdempotencyConfig;
use crate::json::scan::Scanner;
use crate::json::unescape::unescape;
use crate::lease::LeaseConfig;
use crate::proto::params::{Member, Members};
use crate::retry::{Jitter, RetryPolicy};
use crate::service::DURATION_MAX_MS;

/// Most named retry policies (the five built-in ones included).
pub const RETRY_POLICIES_MAX: usize = 32;
/// Most entries of `breakers` (`default` included): the breaker configurations a service
/// holds.
pub const BREAKER_ENTRIES_MAX: usize = crate::service::BREAKER_POLICIES_MAX;
/// Most checks `readiness.checks` may name.
pub const READINESS_CHECKS_MAX: usize = 32;
/// Largest `max_attempts` and `multiplier` of a retry policy.
pub const RETRY_ATTEMPTS_MAX: u32 = 100;
/// Largest `health.failure_threshold`.
pub const HEALTH_FAILURE_THRESHOLD_MAX: u32 = 100;
/// Largest `leases.limit_per_key`: the lease slots each key has.
pub const LEASE_LIMIT_MAX: u16 = 16;

type Result<T> = core::result::Result<T, InvalidPolicy>;

/// The sections of a policy document besides the rate limits (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sections {
    retry: Vec<(Name, RetryPolicy), RETRY_POLICIES_MAX>,
    breaker_default: BreakerConfig,
    breakers: Vec<(Name, BreakerConfig), BREAKER_ENTRIES_MAX>,
    leases: LeaseConfig,
    health: HealthConfig,
    idempotency: IdempotencyConfig,
    readiness: Vec<Name, READINESS_CHECKS_MAX>,
}

impl Default for Sections {
    /// The built-in defaults: the five named retry policies, `BreakerConfig::DEFAULT`, 5
    /// leases per key for 180 s, health every 30 s with threshold 3, idempotency records for
    /// 24 h (5 min in progress, successes only), no readiness checks.
    fn default() -> Sections {
        let mut retry = Vec::new();
        for (name, policy) in RetryPolicy::NAMED {
            if let Some(name) = Name::new(name) {
                let _ = retry.push((name, policy));
            }
        }
        retry.sort_unstable_by_key(|a| a.0);
        Sections {
            retry,
            breaker_default: BreakerConfig::DEFAULT,
            breakers: Vec::new(),
            leases: LeaseConfig::DEFAULT,
            health: HealthConfig::DEFAULT,
            idempotency: IdempotencyConfig::DEFAULT,
            readiness: Vec::new(),
        }
    }
}

impl Sections {
    /// Reads the sections of the policy document `doc` (whose syntax and top-level members
    /// [`RatePolicy::parse`](super::RatePolicy::parse) has checked).
    pub fn parse(doc: &str) -> Result<Sections> {
        let mut s = Sections::default();
        for member in Members::new(doc) {
            let member = member
                .map_err(|e| InvalidPolicy::at(&[], Reason::NotJson { at_byte: e.at_byte }))?;
            let Some(raw) = given(&member) else {
                continue;
            };
            let name = text(&member);
            match name.as_str() {
                "retry" => s.retry(raw)?,
                "breakers" => s.breakers(raw)?,
                "leases" => s.leases = leases(raw)?,
                "health" => s.health = health(raw)?,
                "idempotency" => s.idempotency = idempotency(raw)?,
                "readiness" => s.readiness = readiness(raw)?,
                _ => {}
            }
        }
        Ok(s)
    }

    /// Every retry policy with its name, in name order.
    pub fn retry_policies(&self) -> impl Iterator<Item = (&str, &RetryPolicy)> {
        self.retry.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The retry policy called `name`.
    pub fn retry_policy(&self, name: &str) -> Option<&RetryPolicy> {
        self.retry
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, p)| p)
    }

    /// `breakers.default`.
    pub fn breaker_default(&self) -> &BreakerConfig {
        &self.breaker_default
    }

    /// The breakers with an entry of their own, in name order.
    pub fn named_breakers(&self) -> impl Iterator<Item = (&str, &BreakerConfig)> {
        self.breakers.iter().map(|(n, c)| (n.as_str(), c))
    }

    /// Lease limit and TTL.
    pub fn leases(&self) -> &LeaseConfig {
        &self.leases
    }

    /// Health interval and failure threshold.
    pub fn health(&self) -> &HealthConfig {
        &self.health
    }

    /// Idempotency TTLs.
    pub fn idempotency(&self) -> &IdempotencyConfig {
        &self.idempotency
    }

    /// The health checks that gate readiness, in the document's order.
    pub fn readiness_checks(&self) -> impl Iterator<Item = &str> {
        self.readiness.iter().map(Name::as_str)
    }

    fn retry(&mut self, raw: &str) -> Result<()> {
        let path = "retry";
        for (name, member) in entries(raw, path)? {
            let base = RetryPolicy::named(name.as_str()).unwrap_or(RetryPolicy::DEFAULT);
            let policy = retry_policy(given(&member), &[path, name.as_str()], base)?;
            match self.retry.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = policy,
                None => {
                    let max = RETRY_POLICIES_MAX as u16;
                    let full = InvalidPolicy::at(&[path], Reason::TooManyRetryPolicies { max });
                    self.retry.push((name, policy)).map_err(|_| full)?;
                }
            }
        }
        self.retry.sort_unstable_by_key(|a| a.0);
        Ok(())
    }

    fn breakers(&mut self, raw: &str) -> Result<()> {
        let path = "breakers";
        let count = object(raw, &[path])?.filter(|m| m.is_ok()).count();
        if count > BREAKER_ENTRIES_MAX {
            let max = BREAKER_ENTRIES_MAX as u16;
            return Err(InvalidPolicy::at(&[path], Reason::TooManyBreakers { max }));
        }
        let mut members = object(raw, &[path])?.filter_map(core::result::Result::ok);
        if let Some(default) = members.find(|m| text(m).as_str() == "default") {
            let base = BreakerConfig::DEFAULT;
            self.breaker_default = breaker(given(&default), &[path, "default"], base)?;
        }
        let mut seen_default = false;
        for member in object(raw, &[path])?.filter_map(core::result::Result::ok) {
            if text(&member).as_str() == "default" {
                if core::mem::replace(&mut seen_default, true) {
                    return Err(InvalidPolicy::at(&[path, "default"], Reason::Duplicate));
                }
                continue;
            }
            let name = valid_name(&member, path)?;
            if self.breakers.iter().any(|(n, _)| *n == name) {
                return Err(InvalidPolicy::at(&[path, name.as_str()], Reason::Duplicate));
            }
            let base = self.breaker_default;
            let config = breaker(given(&member), &[path, name.as_str()], base)?;
            let max = BREAKER_ENTRIES_MAX as u16;
            let full = InvalidPolicy::at(&[path], Reason::TooManyBreakers { max });
            self.breakers.push((name, config)).map_err(|_| full)?;
        }
        self.breakers.sort_unstable_by_key(|a| a.0);
        Ok(())
    }
}

/// A member's value unless it is `null` (absent).
fn given<'a>(m: &Member<'a>) -> Option<&'a str> {
    Some(m.raw()).filter(|raw| *raw != "null")
}

/// A member's name unescaped (or as written when it cannot be).
fn text<'a>(m: &Member<'a>) -> NameText<'a> {
    NameText::of(m)
}

/// The members of `raw`, which must be an object.
fn object<'a>(raw: &'a str, path: &[&str]) -> Result<Members<'a>> {
    if raw.starts_with('{') {
        Ok(Members::new(raw))
    } else {
        Err(InvalidPolicy::at(path, Reason::NotAnObject))
    }
}

/// A member's name as a valid name, else `BadName` at `<path>.<name>`.
fn valid_name(m: &Member<'_>, path: &str) -> Result<Name> {
    let name = text(m);
    Name::new(name.as_str())
        .ok_or_else(|| InvalidPolicy::at(&[path, name.as_str()], Reason::BadName))
}

/// The entries of an object whose keys are names chosen by the user, each named once.
fn entries<'a>(
    raw: &'a str,
    path: &'static str,
) -> Result<impl Iterator<Item = (Name, Member<'a>)> + 'a> {
    let members = object(raw, &[path])?;
    // Names checked up front, so that the iterator below cannot fail.
    let mut seen: Vec<Name, RETRY_POLICIES_MAX> = Vec::new();
    for member in object(raw, &[path])?.filter_map(core::result::Result::ok) {
        let name = valid_name(&member, path)?;
        if seen.contains(&name) {
            return Err(InvalidPolicy::at(&[path, name.as_str()], Reason::Duplicate));
        }
        if seen.push(name).is_err() {
            let max = RETRY_POLICIES_MAX as u16;
            return Err(InvalidPolicy::at(
                &[path],
                Reason::TooManyRetryPolicies { max },
            ));
        }
    }
    Ok(members
        .filter_map(core::result::Result::ok)
        .filter_map(|m| Name::new(text(&m).as_str()).map(|name| (name, m))))
}

/// The fields of one object: each read at most once, then the unknown ones refused.
struct Fields<'a, 'p, const N: usize> {
    path: &'p [&'p str],
    names: [&'static str; N],
    values: [Option<Member<'a>>; N],
}

impl<'a, 'p, const N: usize> Fields<'a, 'p, N> {
    /// Reads `raw` (absent: no fields), refusing duplicates and unknown names.
    fn read(
        raw: Option<&'a str>,
        path: &'p [&'p str],
        names: [&'static str; N],
        expected: &'static str,
    ) -> Result<Fields<'a, 'p, N>> {
        let mut f = Fields {
            path,
            names,
            values: [None; N],
        };
        let Some(raw) = raw else {
            return Ok(f);
        };
        for member in object(raw, path)?.filter_map(core::result::Result::ok) {
            let name = text(&member);
            let Some(i) = names.iter().position(|n| *n == name.as_str()) else {
                let reason = Reason::UnknownField { expected };
                return Err(f.at(name.as_str(), reason));
            };
            if f.values[i].replace(member).is_some() {
                return Err(f.at(names[i], Reason::Duplicate));
            }
        }
        Ok(f)
    }

    fn at(&self, field: &str, reason: Reason) -> InvalidPolicy {
        let mut segments: Vec<&str, 8> = Vec::new();
        for s in self.path.iter().chain(core::iter::once(&field)) {
            let _ = segments.push(s);
        }
        InvalidPolicy::at(&segments, reason)
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| *n == name).unwrap_or(0)
    }

    /// The member `name`, unless absent or `null`.
    fn get(&self, name: &str) -> Option<Member<'a>> {
        self.values[self.index(name)].filter(|m| m.raw() != "null")
    }

    /// Whether `name` is given as `null`.
    fn is_null(&self, name: &str) -> bool {
        self.values[self.index(name)].is_some_and(|m| m.raw() == "null")
    }

    fn u64_in(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>> {
        let Some(m) = self.get(name) else {
            return Ok(None);
        };
        match m.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.at(name, Reason::Integer { min, max })),
        }
    }

    fn u32_in(&self, name: &str, min: u32, max: u32) -> Result<Option<u32>> {
        let n = self.u64_in(name, u64::from(min), u64::from(max))?;
        Ok(n.map(|n| u32::try_from(n).unwrap_or(max)))
    }

    fn ms_in(&self, name: &str, min: u64, max: u64) -> Result<Option<Duration>> {
        Ok(self.u64_in(name, min, max)?.map(Duration::from_millis))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name).map(|m| m.raw()) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(self.at(name, Reason::NotABool)),
        }
    }
}

const RETRY_FIELDS: [&str; 5] = [
    "max_attempts",
    "base_delay_ms",
    "max_delay_ms",
    "multiplier",
    "jitter",
];

fn retry_policy(raw: Option<&str>, path: &[&str], base: RetryPolicy) -> Result<RetryPolicy> {
    let expected = "base_delay_ms, jitter, max_attempts, max_delay_ms, multiplier";
    let f = Fields::read(raw, path, RETRY_FIELDS, expected)?;
    let mut p = base;
    if let Some(n) = f.u32_in("max_attempts", 1, RETRY_ATTEMPTS_MAX)? {
        p.max_attempts = n;
    }
    if let Some(d) = f.ms_in("base_delay_ms", 0, DURATION_MAX_MS)? {
        p.base_delay = d;
    }
    if let Some(d) = f.ms_in("max_delay_ms", 0, DURATION_MAX_MS)? {
        p.max_delay = d;
    }
    if let Some(n) = f.u32_in("multiplier", 1, RETRY_ATTEMPTS_MAX)? {
        p.multiplier = n;
    }
    if let Some(m) = f.get("jitter") {
        p.jitter = match m.as_plain_str() {
            Some("none") => Jitter::None,
            Some("equal") => Jitter::Equal,
            Some("full") => Jitter::Full,
            _ => return Err(f.at("jitter", Reason::Jitter)),
        };
    }
    if let Err(e) = p.validate() {
        let field = match e.field() {
            "max_delay" => "max_delay_ms",
            other => other,
        };
        return Err(f.at(field, Reason::Retry(e)));
    }
    Ok(p)
}

const BREAKER_FIELDS: [&str; 9] = [
    "failure_threshold",
    "rate",
    "slow_call_threshold_ms",
    "reset_timeout_ms",
    "reset_backoff",
    "reset_timeout_max_ms",
    "half_open_max_probes",
    "success_threshold",
    "probe_timeout_ms",
];

fn breaker(raw: Option<&str>, path: &[&str], base: BreakerConfig) -> Result<BreakerConfig> {
    let expected = "failure_threshold, half_open_max_probes, probe_timeout_ms, rate, \
                    reset_backoff, reset_timeout_max_ms, reset_timeout_ms, \
                    slow_call_threshold_ms, success_threshold";
    let f = Fields::read(raw, path, BREAKER_FIELDS, expected)?;
    let mut c = base;
    if let Some(n) = f.u32_in("failure_threshold", 0, u32::MAX)? {
        c.failure_threshold = n;
    }
    if f.is_null("rate") {
        c.rate = None;
    } else if let Some(m) = f.get("rate") {
        c.rate = match m.raw() {
            "false" => None,
            raw => {
                let mut rate_path: Vec<&str, 8> = Vec::new();
                for s in path.iter().chain(core::iter::once(&"rate")) {
                    let _ = rate_path.push(s);
                }
                Some(rate(raw, &rate_path)?)
            }
        };
    }
    if f.is_null("slow_call_threshold_ms") {
        c.slow_call_threshold = None;
    } else if let Some(d) = f.ms_in("slow_call_threshold_ms", 0, DURATION_MAX_MS)? {
        c.slow_call_threshold = (!d.is_zero()).then_some(d);
    }
    if let Some(d) = f.ms_in("reset_timeout_ms", 1, DURATION_MAX_MS)? {
        c.reset_timeout = d;
    }
    if let Some(n) = f.u32_in("reset_backoff", 1, 1_000)? {
        c.reset_backoff = n;
    }
    if let Some(d) = f.ms_in("reset_timeout_max_ms", 1, DURATION_MAX_MS)? {
        c.reset_timeout_max = d;
    }
    if let Some(n) = f.u32_in("half_open_max_probes", 1, u32::from(MAX_PROBES))? {
        c.half_open_max_probes = narrow(n);
    }
    if let Some(n) = f.u32_in("success_threshold", 1, u32::from(u8::MAX))? {
        c.success_threshold = narrow(n);
    }
    if let Some(d) = f.ms_in("probe_timeout_ms", 1, DURATION_MAX_MS)? {
        c.probe_timeout = d;
    }
    if let Err(e) = c.validate() {
        let field = match e.field() {
            "reset_timeout" => "reset_timeout_ms",
            "reset_timeout_max" => "reset_timeout_max_ms",
            "probe_timeout" => "probe_timeout_ms",
            "rate.window" => "rate",
            other => other,
        };
        return Err(f.at(field, Reason::Breaker(e)));
    }
    Ok(c)
}

/// A `u32` already checked to fit a `u8`.
fn narrow(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

const RATE_FIELDS: [&str; 4] = [
    "threshold_permille",
    "min_calls",
    "window_calls",
    "window_ms",
];

fn rate(raw: &str, path: &[&str]) -> Result<RateTrip> {
    let expected = "min_calls, threshold_permille, window_calls, window_ms";
    let f = Fields::read(Some(raw), path, RATE_FIELDS, expected)?;
    let threshold = f.u32_in("threshold_permille", 1, 1_000)?;
    let min_calls = f.u32_in("min_calls", 1, u32::MAX)?;
    let calls = f.u32_in("window_calls", 1, u32::from(MAX_LAST_CALLS))?;
    let window_ms = f.ms_in("window_ms", 1, DURATION_MAX_MS)?;
    let window = match (calls, window_ms) {
        (Some(_), Some(_)) => return Err(f.at("window_ms", Reason::WindowBoth)),
        (Some(n), None) => RateWindow::LastCalls(narrow(n)),
        (None, Some(d)) => RateWindow::Time(d),
        (None, None) => RateTrip::DEFAULT.window,
    };
    let trip = RateTrip {
        threshold_permille: threshold.map_or(RateTrip::DEFAULT.threshold_permille, |t| {
            u16::try_from(t).unwrap_or(1_000)
        }),
        min_calls: min_calls.unwrap_or(RateTrip::DEFAULT.min_calls),
        window,
    };
    if let Err(e) = trip.validate() {
        let field = e.field().trim_start_matches("rate.");
        return Err(f.at(field, Reason::Breaker(e)));
    }
    Ok(trip)
}

fn leases(raw: &str) -> Result<LeaseConfig> {
    let path = ["leases"];
    let f = Fields::read(
        Some(raw),
        &path,
        ["limit_per_key", "ttl_ms"],
        "limit_per_key, ttl_ms",
    )?;
    let mut c = LeaseConfig::DEFAULT;
    if let Some(n) = f.u32_in("limit_per_key", 1, u32::from(LEASE_LIMIT_MAX))? {
        c.limit_per_key = u16::try_from(n).unwrap_or(LEASE_LIMIT_MAX);
    }
    if let Some(d) = f.ms_in("ttl_ms", 1, DURATION_MAX_MS)? {
        c.ttl = d;
    }
    c.validate(usize::from(LEASE_LIMIT_MAX))
        .map_err(|e| f.at("limit_per_key", Reason::Leases(e)))?;
    Ok(c)
}

fn health(raw: &str) -> Result<HealthConfig> {
    let path = ["health"];
    let names = ["interval_ms", "failure_threshold"];
    let f = Fields::read(Some(raw), &path, names, "failure_threshold, interval_ms")?;
    let mut c = HealthConfig::DEFAULT;
    if let Some(d) = f.ms_in("interval_ms", 1, DURATION_MAX_MS)? {
        c.interval = d;
    }
    if let Some(n) = f.u32_in("failure_threshold", 1, HEALTH_FAILURE_THRESHOLD_MAX)? {
        c.failure_threshold = n;
    }
    c.validate()
        .map_err(|e| f.at("interval_ms", Reason::Health(e)))?;
    Ok(c)
}

fn idempotency(raw: &str) -> Result<IdempotencyConfig> {
    let path = ["idempotency"];
    let names = ["ttl_ms", "in_progress_timeout_ms", "remember_failures"];
    let expected = "in_progress_timeout_ms, remember_failures, ttl_ms";
    let f = Fields::read(Some(raw), &path, names, expected)?;
    let mut c = IdempotencyConfig::DEFAULT;
    if let Some(d) = f.ms_in("ttl_ms", 1, DURATION_MAX_MS)? {
        c.ttl = d;
    }
    if let Some(d) = f.ms_in("in_progress_timeout_ms", 1, DURATION_MAX_MS)? {
        c.in_progress_timeout = d;
    }
    if let Some(b) = f.boolean("remember_failures")? {
        c.remember_failures = b;
    }
    c.validate()
        .map_err(|e| f.at("ttl_ms", Reason::Idempotency(e)))?;
    Ok(c)
}

/// `readiness`: `checks`, the names of up to [`READINESS_CHECKS_MAX`] health checks, each
/// named once.
fn readiness(raw: &str) -> Result<Vec<Name, READINESS_CHECKS_MAX>> {
    let path = ["readiness"];
    let f = Fields::read(Some(raw), &path, ["checks"], "checks")?;
    let mut names = Vec::new();
    let Some(list) = f.get("checks") else {
        return Ok(names);
    };
    let list = list.raw();
    let not_a_list = || f.at("checks", Reason::NotACheckList);
    let count = items(list, |_, _| Ok(())).map_err(|()| not_a_list())?;
    if count > READINESS_CHECKS_MAX {
        let max = READINESS_CHECKS_MAX as u16;
        return Err(f.at("checks", Reason::TooManyChecks { max }));
    }
    let mut fault = None;
    let _ = items(list, |i, item| {
        let checked = check(i, item, &names);
        match checked {
            Ok(name) => {
                let _ = names.push(name);
                Ok(())
            }
            Err(e) => {
                fault = Some(e);
                Err(())
            }
        }
    });
    match fault {
        Some(e) => Err(e),
        None => Ok(names),
    }
}

/// Calls `each` with the index and text of every element of the JSON array `list`, until it
/// fails; the number of elements, or `Err` when `list` is not an array.
fn items(
    list: &str,
    mut each: impl FnMut(usize, &str) -> core::result::Result<(), ()>,
) -> core::result::Result<usize, ()> {
    let mut sc = Scanner::new(list.as_bytes());
    sc.expect(b'[').map_err(|_| ())?;
    sc.ws();
    if sc.eat(b']') {
        return Ok(0);
    }
    let mut n = 0;
    loop {
        let span = sc.value().map_err(|_| ())?;
        each(n, &list[span])?;
        n += 1;
        sc.ws();
        if sc.eat(b']') {
            return Ok(n);
        }
        sc.expect(b',').map_err(|_| ())?;
    }
}

/// The `i`-th readiness check: a name not named before.
fn check(i: usize, item: &str, names: &[Name]) -> Result<Name> {
    let at = |reason| {
        let mut segment: heapless::String<16> = heapless::String::new();
        let _ = core::fmt::Write::write_fmt(&mut segment, format_args!("checks[{i}]"));
        InvalidPolicy::at(&["readiness", segment.as_str()], reason)
    };
    {
        if !item.starts_with('"') {
            return Err(at(Reason::NotAString));
        }
        let name = unescape::<128>(item.as_bytes())
            .and_then(|s| Name::new(s.as_str()))
            .ok_or_else(|| at(Reason::BadName))?;
        if names.contains(&name) {
            return Err(at(Reason::NamedTwice(name)));
        }
        Ok(name)
    }
}
