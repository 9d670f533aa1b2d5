//! Unit tests of the kernel, one file per component; every reply is parsed as JSON.

mod apply;
mod breakers;
mod health;
mod idempotency;
mod journal_append;
mod leases;
mod rate_limit;

use heidi_core::Instant;
use heidi_core::proto::Method;
use serde_json::Value;

use super::{Handled, Kernel, KernelCapacity, KernelSeeds, Policy, Said};

pub(super) const SEEDS: KernelSeeds = KernelSeeds {
    key_hasher: [1; 16],
    lease_ids: [2; 16],
    idempotency_tokens: [3; 16],
};

pub(super) const SMALL: KernelCapacity = KernelCapacity {
    limiter_slots: 64,
    lease_slots: 64,
    idempotency_slots: 64,
    held_permits: 64,
};

pub(super) fn kernel() -> Kernel {
    Kernel::with_capacity(SEEDS, Policy::default(), SMALL)
}

pub(super) fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// What a call asked of the host, as the tests carry it out.
#[derive(Debug)]
pub(super) enum Called {
    /// Anything but a policy change.
    Handled(Handled),
    /// A policy change, committed as the daemon does once this entry is durable.
    Applied(heidi_common::JournalEntry),
}

/// Calls `method`; the reply must be one valid JSON object.
pub(super) fn call(k: &mut Kernel, now: Instant, method: Method, params: &str) -> (Value, Called) {
    let mut out = b"stale".to_vec();
    let called = match k.handle(now, method, params, &mut out) {
        Handled::ApplyPolicy(pending) => {
            let entry = pending.entry.clone();
            let version = pending.version();
            assert_eq!(k.commit_policy(now, *pending).unwrap(), version);
            Called::Applied(entry)
        }
        other => Called::Handled(other),
    };
    let v: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{method} reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&out)
        )
    });
    assert!(v.is_object(), "{method}: {v}");
    (v, called)
}

/// A success reply.
pub(super) fn ok(k: &mut Kernel, now: Instant, method: Method, params: &str) -> Value {
    let (v, called) = call(k, now, method, params);
    assert!(v.get("error").is_none(), "{method} {params}: {v}");
    match called {
        Called::Handled(Handled::Reply(said) | Handled::Idempotency(_, said)) => {
            assert_eq!(said, Said::Success, "{method} {params}: {v}")
        }
        Called::Handled(Handled::Decided(reply)) => assert_eq!(reply.error, None),
        Called::Applied(_) => {}
        Called::Handled(other) => panic!("{method} {params}: {other:?}"),
    }
    v
}

/// An error reply with `code`, in exactly the error shape plus extra fields.
pub(super) fn err(k: &mut Kernel, now: Instant, method: Method, params: &str, code: &str) -> Value {
    let (v, called) = call(k, now, method, params);
    let said = match called {
        Called::Handled(Handled::Reply(said) | Handled::Idempotency(_, said)) => said,
        Called::Handled(Handled::Decided(reply)) => Said::from(&reply),
        other => panic!("{method} {params}: {other:?}"),
    };
    assert_eq!(v["error"], true, "{method} {params}: {v}");
    assert_eq!(v["code"], code, "{method} {params}: {v}");
    let Said::Error(said) = said else {
        panic!("{method} {params}: an error reply said success")
    };
    assert_eq!(said.as_str(), code);
    assert!(v["message"].is_string());
    v
}

#[test]
fn host_methods_are_not_the_kernels_and_leave_out_alone() {
    let mut k = kernel();
    for method in [
        Method::Ping,
        Method::Status,
        Method::JournalAppend,
        Method::JournalTail,
        Method::PipelineStart,
        Method::PipelineStop,
        Method::PipelinePause,
        Method::PipelineResume,
        Method::PipelineReset,
        Method::PipelineTrainNow,
    ] {
        let mut out = b"untouched".to_vec();
        assert!(matches!(
            k.handle(at(1), method, "{}", &mut out),
            Handled::NotKernel
        ));
        assert_eq!(out, b"untouched");
    }
}

#[test]
fn every_kernel_method_refuses_unknown_params_and_bad_json() {
    let mut k = kernel();
    let kernel_method = |m: Method| {
        use heidi_core::proto::{HostCall, Server};
        matches!(
            m.server(),
            Server::Service | Server::Host(HostCall::ApplyPolicy | HostCall::GetPolicy)
        )
    };
    for &method in Method::ALL.iter().filter(|&&m| kernel_method(m)) {
        let v = err(&mut k, at(1), method, r#"{"bogus":1}"#, "BAD_REQUEST");
        assert!(v["message"].as_str().unwrap().starts_with("params."), "{v}");
        err(&mut k, at(1), method, "{", "BAD_REQUEST");
    }
}

#[test]
fn production_sizes_build() {
    let k = Kernel::new(SEEDS, Policy::default());
    let s = k.stats();
    assert_eq!(
        (s.limiter_keys, s.lease_keys, s.idempotency_keys),
        (0, 0, 0)
    );
    assert_eq!(k.policy_version(), 1);
    assert_eq!(k.poll_timeout(), None);
}
