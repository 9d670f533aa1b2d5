//! IDEMPOTENCY_BEGIN and IDEMPOTENCY_COMPLETE.

use heidi_core::proto::Method::{IdempotencyBegin as Begin, IdempotencyComplete as Complete};

use super::{SEEDS, SMALL, at, err, kernel, ok};
use crate::kernel::{Kernel, KernelCapacity, Policy};

const DIGEST: &str = "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00fF";

fn complete(key: &str, token: &str, outcome: &str, digest: Option<&str>) -> String {
    match digest {
        Some(d) => {
            format!(r#"{{"key":"{key}","token":"{token}","outcome":"{outcome}","digest":"{d}"}}"#)
        }
        None => format!(r#"{{"key":"{key}","token":"{token}","outcome":"{outcome}"}}"#),
    }
}

fn begin(k: &mut Kernel, secs: u64, key: &str) -> String {
    let v = ok(k, at(secs), Begin, &format!(r#"{{"key":"{key}"}}"#));
    assert_eq!(v["status"], "started");
    assert_eq!(v["expires_in_ms"], 300_000);
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(token.parse::<u64>().unwrap().to_string(), token);
    token
}

#[test]
fn begin_in_progress_done() {
    let mut k = kernel();
    let token = begin(&mut k, 1, "job");
    let v = err(&mut k, at(3), Begin, r#"{"key":"job"}"#, "IN_PROGRESS");
    assert_eq!(
        (v["since_ms"].clone(), v["expires_in_ms"].clone()),
        (2_000.into(), 298_000.into())
    );
    let v = ok(
        &mut k,
        at(4),
        Complete,
        &complete("job", &token, "success", Some(DIGEST)),
    );
    assert_eq!(v["status"], "remembered");
    assert_eq!(v["expires_in_ms"], 86_400_000);
    let v = ok(&mut k, at(5), Begin, r#"{"key":"job"}"#);
    assert_eq!(v["status"], "done");
    assert_eq!(v["digest"], DIGEST.to_lowercase());
    assert_eq!(v["completed_ago_ms"], 1_000);
    // Completing twice is refused with a reason.
    let v = err(
        &mut k,
        at(6),
        Complete,
        &complete("job", &token, "success", Some(DIGEST)),
        "REFUSED",
    );
    assert_eq!(v["reason"], "already_completed");
}

#[test]
fn failure_frees_the_key_and_stale_tokens_are_refused() {
    let mut k = kernel();
    let token = begin(&mut k, 1, "job");
    let v = ok(
        &mut k,
        at(2),
        Complete,
        &complete("job", &token, "failure", None),
    );
    assert_eq!(v["status"], "released");
    let t2 = begin(&mut k, 3, "job");
    let v = err(
        &mut k,
        at(4),
        Complete,
        &complete("job", &token, "failure", None),
        "REFUSED",
    );
    assert_eq!(v["reason"], "not_owner");
    // The owner times out after 5 min.
    let v = err(
        &mut k,
        at(304),
        Complete,
        &complete("job", &t2, "failure", None),
        "REFUSED",
    );
    assert_eq!(v["reason"], "expired");
    let v = err(
        &mut k,
        at(5),
        Complete,
        &complete("never", &t2, "failure", None),
        "REFUSED",
    );
    assert_eq!(v["reason"], "unknown");
}

#[test]
fn bad_params() {
    let mut k = kernel();
    let t = begin(&mut k, 1, "job");
    for params in [
        complete("job", &t, "success", None),
        complete("job", &t, "success", Some("abc")),
        complete("job", &t, "success", Some(&"zz".repeat(32))),
        complete("job", &t, "failure", Some(DIGEST)),
        complete("job", &t, "done", None),
        complete("job", "x", "failure", None),
        r#"{"token":"1","outcome":"failure"}"#.to_owned(),
    ] {
        let v = err(&mut k, at(2), Complete, &params, "BAD_REQUEST");
        assert!(v["message"].as_str().unwrap().starts_with("params."), "{v}");
    }
    err(&mut k, at(2), Begin, r#"{"key":""}"#, "BAD_REQUEST");
    // Nothing was completed by the refusals.
    err(&mut k, at(2), Begin, r#"{"key":"job"}"#, "IN_PROGRESS");
}

#[test]
fn a_full_table_is_overloaded() {
    let small = KernelCapacity {
        idempotency_slots: 8,
        ..SMALL
    };
    let mut k = Kernel::with_capacity(SEEDS, Policy::default(), small);
    for i in 0..8 {
        begin(&mut k, 1, &format!("k{i}"));
    }
    let v = err(&mut k, at(1), Begin, r#"{"key":"k8"}"#, "OVERLOADED");
    assert_eq!(v["retry_after_ms"], 300_000);
}
