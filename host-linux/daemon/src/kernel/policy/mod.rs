//! [`Policy`]: the whole policy document (limits, tiers, retry, breakers, leases, health,
//! idempotency, readiness), validated as one.
//!
//! The document layout, its defaults and its bounds are specified in `docs/PROTOCOL.md`
//! ("The policy document"). In short: a missing section, entry or field takes its built-in
//! default (a named breaker's missing fields come from `breakers.default`), so a document
//! always means the same policy whatever was in force before; unknown fields are errors.
//!
//! The core reads and validates it all: the rate-limit part (`limits`, `tiers`,
//! `default_tier`: built-in and custom operations, tiers) into a [`RatePolicy`], the other
//! sections into [`Sections`], and writes the canonical document back
//! ([`write_document`](heidi_core::policy::write_document)). This module holds the two
//! together.

#[cfg(test)]
mod tests;

use std::fmt;

use heidi_core::breaker::BreakerConfig;
use heidi_core::health::HealthConfig;
use heidi_core::idempotency::IdempotencyConfig;
use heidi_core::journal::{PolicyMark, PolicyMessage};
use heidi_core::lease::LeaseConfig;
use heidi_core::limit::PolicyTable;
use heidi_core::policy::{CUSTOM_OPERATIONS_MAX, InvalidPolicy, RatePolicy, Sections, TIERS_MAX};
use heidi_core::retry::RetryPolicy;

/// The daemon's rate-limit policy: room for every custom operation and tier the protocol
/// allows (250 and 16), about 160 KB, so it is kept boxed.
pub type DaemonRatePolicy = RatePolicy<CUSTOM_OPERATIONS_MAX, TIERS_MAX>;

/// A validated policy document. Build it with [`Policy::from_json`] or [`Default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    rate: Box<DaemonRatePolicy>,
    sections: Sections,
}

/// Why a policy document was refused: the field's dotted path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The field, e.g. `"limits.llm_call.capacity_tokens"` or `"breakers.default.rate"`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for PolicyError {}

impl From<InvalidPolicy> for PolicyError {
    fn from(e: InvalidPolicy) -> PolicyError {
        let field = match e.path() {
            "" => "(document)",
            path => path,
        };
        PolicyError {
            field: field.to_owned(),
            reason: e.reason.to_string(),
        }
    }
}

impl Default for Policy {
    /// The core's named defaults: default limits, the five named retry policies,
    /// `BreakerConfig::DEFAULT`, 5 leases per key for 180 s, health every 30 s with threshold
    /// 3, idempotency records for 24 h (5 min in progress, successes only).
    fn default() -> Policy {
        Policy {
            rate: Box::default(),
            sections: Sections::default(),
        }
    }
}

impl Policy {
    /// Validates a whole document (see the module docs); the error names the first bad field.
    pub fn from_json(doc: &serde_json::Value) -> Result<Policy, PolicyError> {
        Policy::parse(&serde_json::to_string(doc).expect("a Value always serializes"))
    }

    /// [`Policy::from_json`] of the document's JSON text.
    pub fn parse(doc: &str) -> Result<Policy, PolicyError> {
        let mut p = Policy::default();
        p.rate.parse_into(doc)?;
        p.sections = Sections::parse(doc)?;
        Ok(p)
    }

    /// The sections besides the rate limits.
    pub fn sections(&self) -> &Sections {
        &self.sections
    }

    /// The canonical document: [`Policy::to_json`] written compactly with sorted keys. Its
    /// SHA-256 is [`Policy::digest`]; a policy file's MAC covers these bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        // Writing into a `String` cannot fail.
        let _ = heidi_core::policy::write_document(&self.rate, &self.sections, &mut text);
        text.into_bytes()
    }

    /// The message of a policy journal event naming this policy at `version`: the core's
    /// [`PolicyMessage`], `policy version <version> <what> (sha256 <digest>)`.
    pub fn event_message(&self, version: u64, what: &str) -> String {
        let digest = self.digest();
        PolicyMessage {
            mark: PolicyMark { version, digest },
            what,
        }
        .to_string()
    }

    /// SHA-256 of [`Policy::canonical_bytes`].
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.canonical_bytes()).into()
    }

    /// [`Policy::digest`] in lowercase hex. Journaled with every change, so the journal
    /// names exactly which document was in force.
    pub fn digest_hex(&self) -> String {
        self.digest().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The complete document, every section and field written out; `from_json` of it gives
    /// this policy back.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.canonical_bytes()).expect("the core writes JSON")
    }

    /// The top-level limits of the six built-in operations.
    pub fn limits(&self) -> &PolicyTable {
        self.rate.builtin_limits()
    }

    /// The rate-limit part: operations (built-in and custom), their limits, tiers.
    pub fn rate(&self) -> &DaemonRatePolicy {
        &self.rate
    }

    /// The retry policy called `name`, if any.
    pub fn retry(&self, name: &str) -> Option<&RetryPolicy> {
        self.sections.retry_policy(name)
    }

    /// Every retry policy with its name, in name order.
    pub fn retry_policies(&self) -> impl Iterator<Item = (&str, &RetryPolicy)> {
        self.sections.retry_policies()
    }

    /// The configuration of the breaker called `name`: its own entry, else `breakers.default`.
    pub fn breaker(&self, name: &str) -> &BreakerConfig {
        let mut named = self.sections.named_breakers();
        named
            .find(|(n, _)| *n == name)
            .map_or(self.breaker_default(), |(_, c)| c)
    }

    /// `breakers.default`.
    pub fn breaker_default(&self) -> &BreakerConfig {
        self.sections.breaker_default()
    }

    /// The breakers with an entry of their own, in name order.
    pub fn named_breakers(&self) -> impl Iterator<Item = (&str, &BreakerConfig)> {
        self.sections.named_breakers()
    }

    /// Lease limit and TTL.
    pub fn leases(&self) -> &LeaseConfig {
        self.sections.leases()
    }

    /// Health interval and failure threshold.
    pub fn health(&self) -> &HealthConfig {
        self.sections.health()
    }

    /// The health checks that gate readiness (`readiness.checks`: `/readyz` answers 503 while
    /// one of them is not healthy), in the document's order; empty by default.
    pub fn readiness_checks(&self) -> Vec<&str> {
        self.sections.readiness_checks().collect()
    }

    /// Idempotency TTLs (fixed for the daemon's life; see `docs/PROTOCOL.md`).
    pub fn idempotency(&self) -> &IdempotencyConfig {
        self.sections.idempotency()
    }
}
