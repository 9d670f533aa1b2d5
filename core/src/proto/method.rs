//! The methods of the framed-JSON protocol (docs/PROTOCOL.md). Names are upper case.

use core::fmt;
use core::str::FromStr;

macro_rules! methods {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal,)*) => {
        /// A request's `method`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum Method {
            $($(#[doc = $doc])* #[doc = concat!("\n\nWire name: `", $wire, "`.")] $variant,)*
        }

        impl Method {
            /// Every method, in declaration order.
            pub const ALL: &'static [Method] = &[$(Method::$variant),*];

            /// The wire name, e.g. `"APPLY_POLICY"`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Method::$variant => $wire,)*
                }
            }
        }

        impl FromStr for Method {
            type Err = UnknownMethod;

            /// Exact, case-sensitive match of the wire name.
            fn from_str(s: &str) -> Result<Method, UnknownMethod> {
                match s {
                    $($wire => Ok(Method::$variant),)*
                    _ => Err(UnknownMethod),
                }
            }
        }
    };
}

methods! {
    /// Liveness check; replies `{"ok":true,…}`.
    Ping = "PING",
    /// Daemon status.
    Status = "STATUS",
    /// Validate and atomically apply a whole policy document (`{"policy":{…}}`).
    ApplyPolicy = "APPLY_POLICY",
    /// The policy in force and its version.
    GetPolicy = "GET_POLICY",
    /// Would a rate-limited call of (key, operation, cost) be granted? Takes no tokens.
    RateLimitCheck = "RATE_LIMIT_CHECK",
    /// Take tokens for (key, operation, cost), or learn when to retry.
    RateLimitConsume = "RATE_LIMIT_CONSUME",
    /// Ask a named circuit breaker for a permit.
    BreakerAcquire = "BREAKER_ACQUIRE",
    /// Record the outcome of a call made under a breaker permit.
    BreakerRecord = "BREAKER_RECORD",
    /// Acquire a concurrency lease for a key.
    LeaseAcquire = "LEASE_ACQUIRE",
    /// Extend a lease's TTL.
    LeaseRefresh = "LEASE_REFRESH",
    /// Release a lease.
    LeaseRelease = "LEASE_RELEASE",
    /// Start work under an idempotency key (new / in progress / done).
    IdempotencyBegin = "IDEMPOTENCY_BEGIN",
    /// Mark an idempotency key's work done, with a digest of its result.
    IdempotencyComplete = "IDEMPOTENCY_COMPLETE",
    /// Report a named health check's pass or fail.
    HealthReport = "HEALTH_REPORT",
    /// The aggregate health of every check.
    HealthAggregate = "HEALTH_AGGREGATE",
    /// Append a client event to the journal.
    JournalAppend = "JOURNAL_APPEND",
    /// The last lines of the journal.
    JournalTail = "JOURNAL_TAIL",
    /// Start a pipeline run (`mode`: `collect` or `full`).
    PipelineStart = "PIPELINE_START",
    /// Stop the pipeline.
    PipelineStop = "PIPELINE_STOP",
    /// Pause the pipeline.
    PipelinePause = "PIPELINE_PAUSE",
    /// Resume a paused pipeline.
    PipelineResume = "PIPELINE_RESUME",
    /// Leave the ERROR state.
    PipelineReset = "PIPELINE_RESET",
    /// Train now (collect mode, idle between rounds).
    PipelineTrainNow = "PIPELINE_TRAIN_NOW",
}

impl Method {
    /// The longest wire name, in bytes.
    pub const MAX_LEN_BYTES: usize = 20;

    /// What a call of this method may do: read, change kernel state, or administer the
    /// daemon. The one place that answers "read-only? mutating? admin?" for every host.
    #[must_use]
    pub const fn class(self) -> MethodClass {
        match self {
            Method::Ping
            | Method::Status
            | Method::GetPolicy
            | Method::RateLimitCheck
            | Method::HealthAggregate
            | Method::JournalTail => MethodClass::Read,
            Method::RateLimitConsume
            | Method::BreakerAcquire
            | Method::BreakerRecord
            | Method::LeaseAcquire
            | Method::LeaseRefresh
            | Method::LeaseRelease
            | Method::IdempotencyBegin
            | Method::IdempotencyComplete
            | Method::HealthReport
            | Method::JournalAppend => MethodClass::Mutate,
            Method::ApplyPolicy
            | Method::PipelineStart
            | Method::PipelineStop
            | Method::PipelinePause
            | Method::PipelineResume
            | Method::PipelineReset
            | Method::PipelineTrainNow => MethodClass::Admin,
        }
    }

    /// Whether a call changes nothing ([`MethodClass::Read`]).
    #[must_use]
    pub const fn is_read_only(self) -> bool {
        self.class().is_read_only()
    }

    /// Whether a call may change state: the kernel's ([`MethodClass::Mutate`]) or the
    /// daemon's ([`MethodClass::Admin`]).
    #[must_use]
    pub const fn is_mutating(self) -> bool {
        !self.is_read_only()
    }

    /// Whether a client may send the call again after losing its reply (a timeout, a broken
    /// connection): only when it changes nothing. A mutating call may have been applied, and
    /// none of them is idempotent on the wire (a second `RATE_LIMIT_CONSUME` takes tokens
    /// again; `IDEMPOTENCY_BEGIN` is how a caller makes its own work safe to repeat).
    #[must_use]
    pub const fn is_retry_safe(self) -> bool {
        self.is_read_only()
    }

    /// Whether this is one of the pipeline's control methods (`PIPELINE_*`), which a host
    /// carries out with its pipeline runner.
    #[must_use]
    pub const fn is_pipeline_control(self) -> bool {
        matches!(self.server(), Server::Host(HostCall::Pipeline))
    }

    /// Who answers the method.
    #[must_use]
    pub const fn server(self) -> Server {
        let host = match self {
            Method::Ping => HostCall::Ping,
            Method::Status => HostCall::Status,
            Method::JournalTail => HostCall::JournalTail,
            Method::JournalAppend => HostCall::JournalAppend,
            Method::GetPolicy => HostCall::GetPolicy,
            Method::ApplyPolicy => HostCall::ApplyPolicy,
            Method::PipelineStart
            | Method::PipelineStop
            | Method::PipelinePause
            | Method::PipelineResume
            | Method::PipelineReset
            | Method::PipelineTrainNow => HostCall::Pipeline,
            Method::RateLimitCheck
            | Method::RateLimitConsume
            | Method::BreakerAcquire
            | Method::BreakerRecord
            | Method::LeaseAcquire
            | Method::LeaseRefresh
            | Method::LeaseRelease
            | Method::HealthReport
            | Method::HealthAggregate
            | Method::IdempotencyBegin
            | Method::IdempotencyComplete => return Server::Service,
        };
        Server::Host(host)
    }
}

/// Who answers a [`Method`] ([`Method::server`]): the core's service machine, or the host
/// with something only it holds. The params, rules and replies of every method are the core's
/// either way (`service`); a host-served method is one whose *state* the host keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Server {
    /// The service machine decides the call (`service::Service::handle`).
    Service,
    /// The host answers it.
    Host(HostCall),
}

/// A method the host answers, by what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostCall {
    /// `PING`: the host's version.
    Ping,
    /// `STATUS`: the process, its connections, the journal and the pipeline.
    Status,
    /// `JOURNAL_TAIL`: the journal's last lines.
    JournalTail,
    /// `JOURNAL_APPEND`: waits until the line is durable.
    JournalAppend,
    /// `PIPELINE_*`: waits for the pipeline's runner to carry the command out.
    Pipeline,
    /// `GET_POLICY`: the policy in force and its version.
    GetPolicy,
    /// `APPLY_POLICY`: waits until the change is journaled; changes are serialized end to end
    /// (validate, journal, commit, persist), so the version a change is journaled under is
    /// the version it gets.
    ApplyPolicy,
}

impl HostCall {
    /// Whether the answer waits for the disk or the pipeline's runner (else the host answers
    /// at once, from what it holds).
    #[must_use]
    pub const fn waits(self) -> bool {
        matches!(
            self,
            HostCall::JournalAppend | HostCall::Pipeline | HostCall::ApplyPolicy
        )
    }
}

/// The class of a [`Method`], ordered: `Read < Mutate < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MethodClass {
    /// Changes nothing: a call may be repeated safely (`PING`, `STATUS`, `GET_POLICY`,
    /// `RATE_LIMIT_CHECK`, `HEALTH_AGGREGATE`, `JOURNAL_TAIL`).
    Read,
    /// Changes the kernel's state or appends to the journal (rate-limit consumption,
    /// breakers, leases, idempotency, health reports, `JOURNAL_APPEND`).
    Mutate,
    /// Administers the daemon: `APPLY_POLICY` and pipeline control (`PIPELINE_*`).
    Admin,
}

impl MethodClass {
    /// Every class, lowest first.
    pub const ALL: [MethodClass; 3] = [MethodClass::Read, MethodClass::Mutate, MethodClass::Admin];

    /// `read`, `mutate` or `admin` (metric labels, configuration keys).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            MethodClass::Read => "read",
            MethodClass::Mutate => "mutate",
            MethodClass::Admin => "admin",
        }
    }

    /// Whether a call of this class may be repeated without applying anything twice.
    #[must_use]
    pub const fn is_read_only(self) -> bool {
        matches!(self, MethodClass::Read)
    }
}

impl fmt::Display for MethodClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method name that is not one of [`Method::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownMethod;

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown method")
    }
}

impl core::error::Error for UnknownMethod {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_answers_what_only_it_holds_and_waits_for_disk_and_runner() {
        let host: [(Method, bool); 12] = [
            (Method::Ping, false),
            (Method::Status, false),
            (Method::JournalTail, false),
            (Method::GetPolicy, false),
            (Method::JournalAppend, true),
            (Method::ApplyPolicy, true),
            (Method::PipelineStart, true),
            (Method::PipelineStop, true),
            (Method::PipelinePause, true),
            (Method::PipelineResume, true),
            (Method::PipelineReset, true),
            (Method::PipelineTrainNow, true),
        ];
        for m in Method::ALL {
            let listed = host.iter().find(|(h, _)| h == m);
            match (m.server(), listed) {
                (Server::Host(call), Some(&(_, waits))) => {
                    assert_eq!(call.waits(), waits, "{m}");
                    assert_eq!(call == HostCall::Pipeline, m.is_pipeline_control(), "{m}");
                }
                (Server::Service, None) => assert!(!m.is_pipeline_control()),
                (server, _) => panic!("{m}: {server:?}"),
            }
        }
    }

    #[test]
    fn every_name_round_trips_and_is_upper_case() {
        assert_eq!(Method::ALL.len(), 23);
        for &m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
            assert!(m.as_str().len() <= Method::MAX_LEN_BYTES);
            assert!(
                m.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_')
            );
        }
        assert!(
            Method::ALL
                .iter()
                .any(|m| m.as_str().len() == Method::MAX_LEN_BYTES)
        );
    }

    #[test]
    fn classes() {
        use MethodClass::*;
        let read = [
            "PING",
            "STATUS",
            "GET_POLICY",
            "RATE_LIMIT_CHECK",
            "HEALTH_AGGREGATE",
            "JOURNAL_TAIL",
        ];
        let admin = [
            "APPLY_POLICY",
            "PIPELINE_START",
            "PIPELINE_STOP",
            "PIPELINE_PAUSE",
            "PIPELINE_RESUME",
            "PIPELINE_RESET",
            "PIPELINE_TRAIN_NOW",
        ];
        for &m in Method::ALL {
            let expected = if read.contains(&m.as_str()) {
                Read
            } else if admin.contains(&m.as_str()) {
                Admin
            } else {
                Mutate
            };
            assert_eq!(m.class(), expected, "{m}");
            let read_only = expected == Read;
            assert_eq!(
                (m.is_read_only(), m.is_mutating(), m.is_retry_safe()),
                (read_only, !read_only, read_only),
                "{m}"
            );
            assert_eq!(
                m.is_pipeline_control(),
                m.as_str().starts_with("PIPELINE_"),
                "{m}"
            );
        }
        let mutating = Method::ALL.iter().filter(|m| m.class() == Mutate).count();
        assert_eq!(mutating, 10);
        assert!(Read < Mutate && Mutate < Admin);
        assert!(Read.is_read_only() && !Mutate.is_read_only() && !Admin.is_read_only());
    }

    #[test]
    fn matching_is_exact() {
        for s in [
            "ping",
            "Ping",
            " PING",
            "PING ",
            "",
            "PINGS",
            "APPLY-POLICY",
        ] {
            assert_eq!(s.parse::<Method>(), Err(UnknownMethod), "{s:?}");
        }
    }
}
