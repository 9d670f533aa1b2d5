use super::*;
use crate::id::IdMinter;
use crate::key::KeyHasher;
use crate::time::Duration;

type Storage = [Slot<Record>; 16];

const T0: Instant = Instant::from_secs(1_000);
const DIGEST: [u8; 32] = [7; 32];
const TIMEOUT: Duration = IdempotencyConfig::DEFAULT_IN_PROGRESS_TIMEOUT;
const TTL: Duration = IdempotencyConfig::DEFAULT_TTL;

const SEED: [u8; 16] = [0x5e; 16];

fn table(config: IdempotencyConfig) -> IdempotencyTable<Storage> {
    IdempotencyTable::new(config, [Slot::empty(); 16], SEED).unwrap()
}

fn key(name: &str) -> KeyHash {
    KeyHasher::new([4; 16]).hash(name.as_bytes())
}

fn started(answer: Begin) -> Token {
    match answer {
        Begin::Started { token, .. } => token,
        other => panic!("expected Started, got {other:?}"),
    }
}

#[test]
fn defaults_are_24h_5min_successes_only() {
    let c = IdempotencyConfig::default();
    assert_eq!(c.ttl, Duration::from_secs(86_400));
    assert_eq!(c.in_progress_timeout, Duration::from_secs(300));
    assert!(!c.remember_failures);
}

#[test]
fn new_key_starts_and_a_duplicate_is_told_it_is_in_progress() {
    let mut t = table(IdempotencyConfig::default());
    let answer = t.begin(T0, key("a")).unwrap();
    let mut minter = IdMinter::new(SEED);
    assert_eq!(
        answer,
        Begin::Started {
            token: Token::from_raw(minter.next_id()),
            expires_at: T0 + TIMEOUT
        }
    );
    let later = T0 + Duration::from_secs(10);
    assert_eq!(
        t.begin(later, key("a")).unwrap(),
        Begin::InProgress {
            since: T0,
            expires_at: T0 + TIMEOUT
        }
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn success_is_remembered_with_its_digest_until_the_ttl() {
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("a")).unwrap());
    let done_at = T0 + Duration::from_secs(3);
    let answer = t.complete(done_at, key("a"), token, Outcome::Success(DIGEST));
    assert_eq!(
        answer,
        Ok(Completed::Remembered {
            expires_at: done_at + TTL
        })
    );
    let done = Begin::Done {
        digest: DIGEST,
        completed_at: done_at,
        expires_at: done_at + TTL,
    };
    let just_before = done_at + TTL - Duration::from_micros(1);
    assert_eq!(t.begin(just_before, key("a")).unwrap(), done);
    // At the TTL the key is new again, under a fresh token.
    let token2 = started(t.begin(done_at + TTL, key("a")).unwrap());
    assert_ne!(token, token2);
}

#[test]
fn failure_frees_the_key_by_default() {
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("a")).unwrap());
    assert_eq!(
        t.complete(T0, key("a"), token, Outcome::Failure),
        Ok(Completed::Released)
    );
    assert_eq!(t.peek(T0, key("a")), None);
    assert!(t.is_empty());
    let _ = started(t.begin(T0, key("a")).unwrap());
}

#[test]
fn failure_is_remembered_when_configured() {
    let config = IdempotencyConfig {
        remember_failures: true,
        ..IdempotencyConfig::default()
    };
    let mut t = table(config);
    let token = started(t.begin(T0, key("a")).unwrap());
    assert_eq!(
        t.complete(T0, key("a"), token, Outcome::Failure),
        Ok(Completed::Remembered {
            expires_at: T0 + TTL
        })
    );
    let failed = Begin::Failed {
        completed_at: T0,
        expires_at: T0 + TTL,
    };
    assert_eq!(t.begin(T0, key("a")).unwrap(), failed);
    let _ = started(t.begin(T0 + TTL, key("a")).unwrap());
}

#[test]
fn a_crashed_owner_blocks_the_key_only_until_the_in_progress_timeout() {
    let mut t = table(IdempotencyConfig::default());
    let stale = started(t.begin(T0, key("a")).unwrap());
    let before = T0 + TIMEOUT - Duration::from_micros(1);
    assert!(matches!(
        t.begin(before, key("a")).unwrap(),
        Begin::InProgress { .. }
    ));
    let fresh = started(t.begin(T0 + TIMEOUT, key("a")).unwrap());
    assert_ne!(stale, fresh);
    // The stale worker cannot complete the new owner's run.
    let now = T0 + TIMEOUT + Duration::from_secs(1);
    let stale_done = t.complete(now, key("a"), stale, Outcome::Success([1; 32]));
    assert_eq!(stale_done, Err(CompleteError::NotOwner));
    assert!(matches!(
        t.peek(now, key("a")),
        Some(Begin::InProgress { .. })
    ));
    let ok = t.complete(now, key("a"), fresh, Outcome::Success(DIGEST));
    assert!(ok.is_ok());
}

#[test]
fn completing_after_the_in_progress_timeout_is_refused() {
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("a")).unwrap());
    let late = t.complete(T0 + TIMEOUT, key("a"), token, Outcome::Success(DIGEST));
    assert_eq!(
        late,
        Err(CompleteError::Expired {
            expired_at: T0 + TIMEOUT
        })
    );
    assert_eq!(t.peek(T0 + TIMEOUT, key("a")), None);
    // Just before the timeout it would have been accepted.
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("a")).unwrap());
    let in_time = T0 + TIMEOUT - Duration::from_micros(1);
    assert!(
        t.complete(in_time, key("a"), token, Outcome::Failure)
            .is_ok()
    );
}

#[test]
fn completing_an_unknown_key_or_twice_is_refused() {
    let mut t = table(IdempotencyConfig::default());
    let token = Token::from_raw(1);
    let unknown = t.complete(T0, key("nope"), token, Outcome::Failure);
    assert_eq!(unknown, Err(CompleteError::Unknown));
    let token = started(t.begin(T0, key("a")).unwrap());
    let _ = t.complete(T0, key("a"), token, Outcome::Success(DIGEST));
    let again = t.complete(T0, key("a"), token, Outcome::Success([9; 32]));
    assert_eq!(
        again,
        Err(CompleteError::AlreadyCompleted { completed_at: T0 })
    );
    // The first result stands.
    assert!(matches!(
        t.peek(T0, key("a")),
        Some(Begin::Done { digest: DIGEST, .. })
    ));
}

#[test]
fn a_wrong_token_cannot_complete_or_reopen_a_key() {
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("a")).unwrap());
    let wrong = Token::from_raw(token.get() + 100);
    let answer = t.complete(T0, key("a"), wrong, Outcome::Success(DIGEST));
    assert_eq!(answer, Err(CompleteError::NotOwner));
    let _ = t.complete(T0, key("a"), token, Outcome::Success(DIGEST));
    let answer = t.complete(T0, key("a"), wrong, Outcome::Failure);
    assert_eq!(answer, Err(CompleteError::NotOwner));
    // A released key's old token finds nothing.
    let mut t = table(IdempotencyConfig::default());
    let token = started(t.begin(T0, key("b")).unwrap());
    let _ = t.complete(T0, key("b"), token, Outcome::Failure);
    let answer = t.complete(T0, key("b"), token, Outcome::Failure);
    assert_eq!(answer, Err(CompleteError::Unknown));
}

#[test]
fn full_table_says_when_a_slot_frees_and_keeps_live_records() {
    let mut t =
        IdempotencyTable::new(IdempotencyConfig::default(), [Slot::empty(); 8], [1; 16]).unwrap();
    for i in 0..8u64 {
        let at = T0 + Duration::from_secs(i);
        let _ = started(t.begin(at, KeyHash::from_raw(i + 10)).unwrap());
    }
    let full = t.begin(T0 + Duration::from_secs(8), key("new"));
    assert_eq!(
        full,
        Err(BeginError::TableFull {
            retry_at: T0 + TIMEOUT
        })
    );
    for i in 0..8u64 {
        let state = t.peek(T0 + Duration::from_secs(8), KeyHash::from_raw(i + 10));
        assert!(matches!(state, Some(Begin::InProgress { .. })));
    }
    // At the hinted instant the first expired record's slot is reused.
    let _ = started(t.begin(T0 + TIMEOUT, key("new")).unwrap());
    assert_eq!(t.len(), 8);
}

#[test]
fn tokens_are_seeded_and_not_a_counter() {
    let config = IdempotencyConfig::default();
    let mut t = table(config);
    let a = started(t.begin(T0, key("a")).unwrap());
    let b = started(t.begin(T0, key("b")).unwrap());
    assert!(a.get() != 1 && b.get() != a.get().wrapping_add(1));
    // A client holding token `a` does not complete key "b" by counting near it.
    for delta in 1..=64u64 {
        for guess in [a.get().wrapping_add(delta), a.get().wrapping_sub(delta)] {
            let forged = t.complete(
                T0,
                key("b"),
                Token::from_raw(guess),
                Outcome::Success([0; 32]),
            );
            assert_eq!(forged, Err(CompleteError::NotOwner));
        }
    }
    // Another start (another seed) issues other tokens: old workers' tokens do not match.
    let mut restarted = IdempotencyTable::new(config, [Slot::empty(); 16], [0x5f; 16]).unwrap();
    let a2 = started(restarted.begin(T0, key("a")).unwrap());
    assert_ne!(a, a2);
    let stale = restarted.complete(T0, key("a"), a, Outcome::Success(DIGEST));
    assert_eq!(stale, Err(CompleteError::NotOwner));
}

#[test]
fn sweep_and_accessors() {
    let config = IdempotencyConfig::default();
    let mut t = table(config);
    let _ = started(t.begin(T0, key("a")).unwrap());
    let _ = started(t.begin(T0, key("b")).unwrap());
    assert_eq!(t.len(), 2);
    let _ = t.sweep(T0 + TIMEOUT, 0, 16);
    assert!(t.is_empty());
    assert_eq!(t.capacity(), 16);
    assert_eq!(t.config(), &config);
}

#[test]
fn config_validation_names_the_field() {
    let zero_ttl = IdempotencyConfig {
        ttl: Duration::ZERO,
        ..IdempotencyConfig::default()
    };
    let err = IdempotencyTable::new(zero_ttl, [Slot::empty(); 8], [0; 16]).unwrap_err();
    assert_eq!(err, IdempotencyConfigError::Ttl);
    let zero_timeout = IdempotencyConfig {
        in_progress_timeout: Duration::ZERO,
        ..IdempotencyConfig::default()
    };
    let err = zero_timeout.validate().unwrap_err();
    assert_eq!(err, IdempotencyConfigError::InProgressTimeout);
    let mut s: heapless::String<96> = heapless::String::new();
    core::fmt::write(&mut s, format_args!("{err}")).unwrap();
    assert!(s.starts_with("in_progress_timeout"));
}

#[test]
fn errors_display() {
    let mut s: heapless::String<512> = heapless::String::new();
    let full = BeginError::TableFull { retry_at: T0 };
    core::fmt::write(
        &mut s,
        format_args!("{full};{};", BeginError::ExpiryOverflow),
    )
    .unwrap();
    assert!(s.contains("table full; retry at T+1000000ms"));
    assert!(s.contains("past the end of the clock"));
    let errors = [
        CompleteError::Unknown,
        CompleteError::NotOwner,
        CompleteError::Expired { expired_at: T0 },
        CompleteError::AlreadyCompleted { completed_at: T0 },
    ];
    for e in errors {
        core::fmt::write(&mut s, format_args!("{e};")).unwrap();
    }
    assert!(s.contains("no record"));
    assert!(s.contains("stale"));
    assert!(s.contains("expired at T+1000000ms"));
    assert!(s.contains("already completed"));
}

#[test]
fn nothing_starts_when_the_timeout_would_pass_the_end_of_the_clock() {
    let mut t = table(IdempotencyConfig::default());
    // At Instant::MAX a record would be expired at birth: two owners. Refused instead.
    for _ in 0..2 {
        let answer = t.begin(Instant::MAX, key("a"));
        assert_eq!(answer, Err(BeginError::ExpiryOverflow));
        assert_eq!(answer.unwrap_err().retry_at(), Instant::MAX);
    }
    assert!(t.is_empty(), "a refused begin takes no slot");
    // The last instant whose timeout fits still starts, and a duplicate is told so.
    let last = Instant::MAX - TIMEOUT;
    let token = started(t.begin(last, key("b")).unwrap());
    assert_eq!(
        t.begin(last + Duration::from_secs(1), key("b")),
        Ok(Begin::InProgress {
            since: last,
            expires_at: Instant::MAX
        })
    );
    let past = last + Duration::from_micros(1);
    assert_eq!(t.begin(past, key("c")), Err(BeginError::ExpiryOverflow));
    // A completion near the end is kept until Instant::MAX rather than lost.
    let done_at = Instant::MAX - Duration::from_secs(1);
    let done = t.complete(done_at, key("b"), token, Outcome::Success(DIGEST));
    assert_eq!(
        done,
        Ok(Completed::Remembered {
            expires_at: Instant::MAX
        })
    );
    assert!(matches!(t.begin(done_at, key("b")), Ok(Begin::Done { .. })));
    assert_eq!(
        t.begin(Instant::MAX, key("b")),
        Err(BeginError::ExpiryOverflow)
    );
}

#[test]
fn restored_records_answer_as_before_and_expired_ones_are_skipped() {
    let mut t = table(IdempotencyConfig::default());
    let token = Token::from_raw(42);
    let done = Saved::Done {
        token,
        outcome: Outcome::Success(DIGEST),
        completed_at: T0,
        expires_at: T0 + TTL,
    };
    assert_eq!(t.restore(T0, key("done"), done), Ok(true));
    assert_eq!(
        t.begin(T0 + Duration::from_secs(1), key("done")).unwrap(),
        Begin::Done {
            digest: DIGEST,
            completed_at: T0,
            expires_at: T0 + TTL
        }
    );
    // An in-progress record keeps its token: its owner completes it after the restart.
    let busy = Saved::InProgress {
        token,
        since: T0,
        expires_at: T0 + TIMEOUT,
    };
    assert_eq!(t.restore(T0, key("busy"), busy), Ok(true));
    assert!(matches!(
        t.begin(T0, key("busy")).unwrap(),
        Begin::InProgress { .. }
    ));
    let completed = t.complete(T0, key("busy"), token, Outcome::Failure);
    assert_eq!(completed, Ok(Completed::Released));
    // Past its expiry a saved record is not restored.
    let late = T0 + TTL;
    assert_eq!(t.restore(late, key("late"), done), Ok(false));
    assert!(t.peek(late, key("late")).is_none());
}

#[test]
fn restore_into_a_full_table_fails_and_changes_nothing() {
    let mut t = table(IdempotencyConfig::default());
    let saved = |i: u64| Saved::Done {
        token: Token::from_raw(i + 1),
        outcome: Outcome::Success(DIGEST),
        completed_at: T0,
        expires_at: T0 + TTL,
    };
    let mut restored = 0;
    let mut refused = 0;
    for i in 0..64u64 {
        let k = KeyHasher::new([4; 16]).hash(&i.to_le_bytes());
        match t.restore(T0, k, saved(i)) {
            Ok(true) => restored += 1,
            Ok(false) => unreachable!("not expired"),
            Err(full) => {
                assert_eq!(full.retry_at, T0 + TTL);
                refused += 1;
            }
        }
    }
    assert_eq!(restored, t.len());
    assert!(restored <= 16 && refused >= 48, "{restored} {refused}");
}
