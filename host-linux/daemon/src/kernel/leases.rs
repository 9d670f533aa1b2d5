//! `LEASE_ACQUIRE`, `LEASE_REFRESH` and `LEASE_RELEASE`: the core's per-key concurrency
//! leases.

use heidi_core::Instant;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::lease::{AcquireError, LeaseConfig, LeaseId, LeaseSet, Leases, RefreshError};
use heidi_core::proto::ErrorCode;
use heidi_core::table::Slot;
use serde_json::{Value, json};

use super::config::{KEY_MAX_BYTES, LEASE_SLOTS_PER_KEY};
use super::fields::Fields;
use super::reply::{Answer, Fail, ms_until};

type Storage = Box<[Slot<LeaseSet<LEASE_SLOTS_PER_KEY>>]>;

/// The lease table, allocated at the first lease call so that a daemon that never hands out
/// leases does not keep their table resident.
pub(crate) struct LeaseTable {
    leases: Option<Leases<Storage, LEASE_SLOTS_PER_KEY>>,
    slots: usize,
    config: LeaseConfig,
    id_key: [u8; 16],
}

/// `params.key` (and `params.lease_id` when `with_id`), hashed.
fn parse(hasher: &KeyHasher, params: &Value, with_id: bool) -> Result<(KeyHash, LeaseId), Fail> {
    let mut f = Fields::new(params, "params")?;
    let key = f.str_req("key", KEY_MAX_BYTES)?;
    let id = if with_id { f.id("lease_id")? } else { 0 };
    f.finish()?;
    Ok((hasher.hash(key.as_bytes()), LeaseId::from_raw(id)))
}

fn not_found() -> Fail {
    Fail::new(
        ErrorCode::LeaseNotFound,
        "no live lease with this id for this key: released, expired or never issued",
    )
}

fn overflow() -> Fail {
    Fail::new(
        ErrorCode::LeaseUnavailable,
        "now + ttl_ms is past the end of the clock",
    )
}

impl LeaseTable {
    /// A table of `slots` keys under `config` (validated by the policy), ids keyed by `id_key`.
    pub(crate) fn new(slots: usize, config: LeaseConfig, id_key: [u8; 16]) -> LeaseTable {
        // The policy validated `config` against the same slots per key.
        let config = match config.validate(LEASE_SLOTS_PER_KEY) {
            Ok(()) => config,
            Err(_) => LeaseConfig::DEFAULT,
        };
        LeaseTable {
            leases: None,
            slots,
            config,
            id_key,
        }
    }

    /// The table, allocated on first use.
    fn leases(&mut self) -> &mut Leases<Storage, LEASE_SLOTS_PER_KEY> {
        let (slots, config, id_key) = (self.slots, self.config, self.id_key);
        self.leases.get_or_insert_with(|| {
            let storage = vec![Slot::empty(); slots].into_boxed_slice();
            Leases::new(storage, config, id_key).expect("config validated in `new`/`set_config`")
        })
    }

    /// `LEASE_ACQUIRE`.
    pub(crate) fn acquire(&mut self, now: Instant, hasher: &KeyHasher, params: &Value) -> Answer {
        let (key, _) = parse(hasher, params, false)?;
        let leases = self.leases();
        let config = leases.config();
        match leases.acquire(now, key) {
            Ok(lease) => Ok(json!({
                "ok": true,
                "lease_id": lease.id.get().to_string(),
                "expires_in_ms": ms_until(now, lease.expires_at),
                "active": leases.active(now, key),
                "limit": config.limit_per_key,
            })),
            Err(AcquireError::AtLimit { retry_at }) => {
                let message = format!(
                    "this key holds its limit of {} live leases",
                    config.limit_per_key
                );
                Err(Fail::new(ErrorCode::LeaseUnavailable, message)
                    .retry_at(now, retry_at)
                    .with("limit", config.limit_per_key))
            }
            Err(AcquireError::TableFull { retry_at }) => {
                let message = "the lease table is full of keys with live leases";
                Err(Fail::new(ErrorCode::Overloaded, message).retry_at(now, retry_at))
            }
            Err(AcquireError::ExpiryOverflow) => Err(overflow()),
        }
    }

    /// `LEASE_REFRESH`.
    pub(crate) fn refresh(&mut self, now: Instant, hasher: &KeyHasher, params: &Value) -> Answer {
        let (key, id) = parse(hasher, params, true)?;
        match self.leases().refresh(now, key, id) {
            Ok(expires_at) => Ok(json!({
                "ok": true,
                "lease_id": id.get().to_string(),
                "expires_in_ms": ms_until(now, expires_at),
            })),
            Err(RefreshError::Unknown) => Err(not_found()),
            Err(RefreshError::ExpiryOverflow) => Err(overflow()),
        }
    }

    /// `LEASE_RELEASE`.
    pub(crate) fn release(&mut self, now: Instant, hasher: &KeyHasher, params: &Value) -> Answer {
        let (key, id) = parse(hasher, params, true)?;
        let leases = self.leases();
        match leases.release(now, key, id) {
            Ok(()) => Ok(json!({
                "ok": true,
                "released": true,
                "active": leases.active(now, key),
            })),
            Err(_) => Err(not_found()),
        }
    }

    /// Applies a new limit and TTL (validated by the policy) to every key.
    pub(crate) fn set_config(&mut self, config: LeaseConfig) {
        debug_assert!(
            config.validate(LEASE_SLOTS_PER_KEY).is_ok(),
            "validated by the policy"
        );
        self.config = config;
        if let Some(leases) = &mut self.leases {
            let applied = leases.set_config(config);
            debug_assert!(applied.is_ok(), "the policy validated the lease config");
        }
    }

    /// Keys holding a slot.
    pub(crate) fn keys(&self) -> usize {
        self.leases.as_ref().map_or(0, |l| l.keys())
    }

    /// Frees keys whose leases all expired, from `cursor` on; returns the next cursor.
    pub(crate) fn sweep(&mut self, now: Instant, cursor: usize, budget: usize) -> usize {
        match &mut self.leases {
            Some(leases) => leases.sweep(now, cursor, budget),
            None => 0,
        }
    }
}
