//! Operation sequences against the lease table. Invariants: a grant never leaves a key above
//! the limit in force, a key never holds more than K live leases, refusals say a future
//! instant, and a released lease can never be refreshed or released again.
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::key::KeyHash;
use heidi_core::lease::{AcquireError, Lease, LeaseConfig, Leases};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u32),
    Acquire(u8),
    Refresh { which: u8 },
    Release { which: u8 },
    Config { limit: u8, ttl_ms: u32 },
}

const K: usize = 5;

fuzz_target!(|input: ([u8; 16], Vec<Op>)| {
    let (key, ops) = input;
    let mut leases: Leases<_, K> =
        Leases::new([Slot::empty(); 16], LeaseConfig::default(), key).expect("default config");
    let mut now = Instant::from_secs(1);
    let mut held: Vec<(KeyHash, Lease)> = Vec::new();
    let mut released: Vec<(KeyHash, Lease)> = Vec::new();
    for op in ops.iter().take(3_000) {
        match *op {
            Op::Advance(ms) => now += Duration::from_millis(u64::from(ms % 400_000)),
            Op::Acquire(k) => {
                let k = KeyHash::from_raw(u64::from(k % 24) + 1);
                match leases.acquire(now, k) {
                    Ok(lease) => {
                        let limit = usize::from(leases.config().limit_per_key);
                        assert!(leases.active(now, k) <= limit, "a grant exceeded the limit");
                        held.push((k, lease));
                    }
                    Err(
                        AcquireError::AtLimit { retry_at } | AcquireError::TableFull { retry_at },
                    ) => {
                        assert!(retry_at > now)
                    }
                    Err(_) => {}
                }
            }
            Op::Refresh { which } if !held.is_empty() => {
                let (k, lease) = held[usize::from(which) % held.len()];
                let _ = leases.refresh(now, k, lease.id);
            }
            Op::Release { which } if !held.is_empty() => {
                let (k, lease) = held.remove(usize::from(which) % held.len());
                if leases.release(now, k, lease.id).is_ok() {
                    released.push((k, lease));
                }
            }
            Op::Config { limit, ttl_ms } => {
                let config = LeaseConfig {
                    limit_per_key: u16::from(limit % 8),
                    ttl: Duration::from_millis(u64::from(ttl_ms)),
                };
                let _ = leases.set_config(config);
            }
            _ => {}
        }
        for &(k, lease) in released.iter().rev().take(8) {
            assert!(
                leases.refresh(now, k, lease.id).is_err(),
                "a released lease came back"
            );
            assert!(leases.release(now, k, lease.id).is_err());
        }
        for k in 1..=24u64 {
            assert!(leases.active(now, KeyHash::from_raw(k)) <= K);
        }
    }
});
