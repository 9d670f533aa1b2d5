//! IDEMPOTENCY_BEGIN and IDEMPOTENCY_COMPLETE.

use heidi_core::proto::Method::{IdempotencyBegin as Begin, IdempotencyComplete as Complete};

use heidi_core::proto::Method;
use serde_json::{Value, json};

use super::{Called, SEEDS, SMALL, at, call, err, kernel, ok};
use crate::kernel::{
    Handled, IDEMPOTENCY_RESPONSE_MAX_BYTES, IdemPersist, Kernel, KernelCapacity, KernelSeeds,
    Policy,
};
use heidi_core::service::{LineScratch, WallAnchor};
use heidi_store::IdemEntry;

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

/// A call's reply and what it asks to persist.
fn persisted(
    k: &mut Kernel,
    secs: u64,
    method: Method,
    params: &str,
) -> (Value, Option<IdemPersist>) {
    let (v, handled) = call(k, at(secs), method, params);
    match handled {
        Called::Handled(Handled::Idempotency(p, said)) => {
            assert_eq!(said.is_success(), v.get("error").is_none(), "{v}");
            (v, Some(p))
        }
        Called::Handled(Handled::Reply(_) | Handled::Decided(_)) => (v, None),
        other => panic!("unexpected {other:?}"),
    }
}

/// The line a record change becomes, with the core's `at(0)` at Unix time `WALL0`.
fn line_of(p: Option<IdemPersist>, secs: u64) -> IdemEntry {
    let anchor = WallAnchor {
        now: at(secs),
        wall_ms: WALL0 + secs * 1000,
    };
    match p {
        Some(IdemPersist::Record(change)) => change.entry(anchor),
        other => panic!("expected a record, got {other:?}"),
    }
}

/// A line as the record file holds it.
fn read(line: &str) -> IdemEntry {
    IdemEntry::read(line, &mut LineScratch::new()).unwrap()
}

const WALL0: u64 = 1_800_000_000_000;

fn complete_with_response(key: &str, token: &str, response: &str) -> String {
    json!({"key": key, "token": token, "outcome": "success", "digest": DIGEST, "response": response})
        .to_string()
}

#[test]
fn every_change_is_a_record_to_persist_and_done_answers_wait_for_the_disk() {
    let mut k = kernel();
    let (v, p) = persisted(&mut k, 1, Begin, r#"{"key":"job"}"#);
    let token = v["token"].as_str().unwrap().to_owned();
    let begun = format!(
        r#"{{"state":"in_progress","key":"job","token":"{token}","since_ms":{},"expires_at_ms":{}}}"#,
        WALL0 + 1000,
        WALL0 + 301_000
    );
    assert_eq!(line_of(p, 1).line(), begun + "\n");
    // A duplicate in progress is an error reply: nothing to wait for.
    let (_, p) = persisted(&mut k, 2, Begin, r#"{"key":"job"}"#);
    assert!(p.is_none());
    let params = complete_with_response("job", &token, "{\"order\":42}");
    let (v, p) = persisted(&mut k, 3, Complete, &params);
    assert_eq!(v["status"], "remembered");
    let done = format!(
        r#"{{"state":"done","key":"job","token":"{token}","digest":"{}","response":"{{\"order\":42}}","completed_at_ms":{},"expires_at_ms":{}}}"#,
        DIGEST.to_lowercase(),
        WALL0 + 3000,
        WALL0 + 3000 + 86_400_000
    );
    assert_eq!(line_of(p, 3).line(), done + "\n");
    let (v, p) = persisted(&mut k, 4, Begin, r#"{"key":"job"}"#);
    assert_eq!(
        (&v["status"], &v["response"]),
        (&"done".into(), &"{\"order\":42}".into())
    );
    assert!(matches!(p, Some(IdemPersist::Barrier)));
    // A failure that frees its key is a release.
    let (v, _) = persisted(&mut k, 5, Begin, r#"{"key":"other"}"#);
    let t = v["token"].as_str().unwrap().to_owned();
    let (_, p) = persisted(&mut k, 6, Complete, &complete("other", &t, "failure", None));
    assert_eq!(
        line_of(p, 6).line(),
        "{\"state\":\"released\",\"key\":\"other\"}\n"
    );
}

#[test]
fn a_response_of_4096_bytes_is_stored_and_4097_is_refused_naming_the_field() {
    let mut k = kernel();
    let token = begin(&mut k, 1, "big");
    let too_long = "r".repeat(IDEMPOTENCY_RESPONSE_MAX_BYTES + 1);
    let v = err(
        &mut k,
        at(2),
        Complete,
        &complete_with_response("big", &token, &too_long),
        "BAD_REQUEST",
    );
    assert_eq!(
        v["message"],
        "params.response: is 4097 bytes; at most 4096 are stored"
    );
    let fits = "r".repeat(IDEMPOTENCY_RESPONSE_MAX_BYTES);
    ok(
        &mut k,
        at(2),
        Complete,
        &complete_with_response("big", &token, &fits),
    );
    let v = ok(&mut k, at(3), Begin, r#"{"key":"big"}"#);
    assert_eq!(v["response"].as_str().unwrap().len(), 4096);
    // A new begin after expiry forgets the old response.
    let v = ok(&mut k, at(2 + 86_400), Begin, r#"{"key":"big"}"#);
    assert_eq!(v["status"], "started");
    assert!(v.get("response").is_none());
}

#[test]
fn restored_records_answer_after_a_restart_with_new_seeds() {
    let mut k = kernel();
    let token = begin(&mut k, 1, "done");
    let (_, p) = persisted(
        &mut k,
        2,
        Complete,
        &complete_with_response("done", &token, "ok"),
    );
    let done = line_of(p, 2);
    let (v, p) = persisted(&mut k, 3, Begin, r#"{"key":"busy"}"#);
    let busy_token = v["token"].as_str().unwrap().to_owned();
    let busy = line_of(p, 3);
    let expired = read(&format!(
        r#"{{"state":"done","key":"old","token":"7","digest":"{}","completed_at_ms":{},"expires_at_ms":{}}}"#,
        DIGEST.to_lowercase(),
        WALL0 - 90_000_000,
        WALL0 - 3_600_000
    ));
    // The restarted daemon: other seeds, its clock starts again at zero, 10 s later.
    let seeds = KernelSeeds {
        key_hasher: [9; 16],
        idempotency_tokens: [8; 16],
        ..SEEDS
    };
    let mut k = Kernel::with_capacity(seeds, Policy::default(), SMALL);
    let anchor = WallAnchor {
        now: at(0),
        wall_ms: WALL0 + 13_000,
    };
    let restored = k.restore_idempotency(anchor, &[expired, done, busy]);
    assert_eq!(restored.restored, 2);
    let v = ok(&mut k, at(1), Begin, r#"{"key":"done"}"#);
    assert_eq!(
        (&v["status"], &v["digest"], &v["response"]),
        (&"done".into(), &DIGEST.to_lowercase().into(), &"ok".into())
    );
    assert_eq!(v["expires_in_ms"], 86_400_000 - 12_000);
    assert_eq!(
        ok(&mut k, at(1), Begin, r#"{"key":"old"}"#)["status"],
        "started"
    );
    // The owner of the in-progress key completes it with its old token.
    err(&mut k, at(1), Begin, r#"{"key":"busy"}"#, "IN_PROGRESS");
    let v = ok(
        &mut k,
        at(2),
        Complete,
        &complete("busy", &busy_token, "success", Some(DIGEST)),
    );
    assert_eq!(v["status"], "remembered");
}

#[test]
fn more_saved_records_than_slots_load_keeping_the_newest() {
    let small = KernelCapacity {
        idempotency_slots: 8,
        ..SMALL
    };
    let lines: Vec<IdemEntry> = (0..100u64)
        .map(|i| {
            read(&format!(
                r#"{{"state":"done","key":"k{i}","token":"{}","digest":"{}","completed_at_ms":{},"expires_at_ms":{}}}"#,
                i + 1,
                DIGEST.to_lowercase(),
                WALL0 + i,
                WALL0 + 86_400_000
            ))
        })
        .collect();
    let mut k = Kernel::with_capacity(SEEDS, Policy::default(), small);
    let anchor = WallAnchor {
        now: at(0),
        wall_ms: WALL0 + 100,
    };
    let restored = k.restore_idempotency(anchor, &lines);
    assert_eq!(restored.restored + restored.no_room, 100);
    assert!(
        restored.restored <= 8 && restored.restored > 0,
        "{restored:?}"
    );
    assert_eq!(
        ok(&mut k, at(1), Begin, r#"{"key":"k99"}"#)["status"],
        "done"
    );
}
