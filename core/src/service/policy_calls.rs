//! The params and replies of `APPLY_POLICY` and `GET_POLICY`, and the rule a new policy must
//! keep with the running state. Putting a policy in force (journaling it first, the version
//! sequence) is the host's: see `docs/PROTOCOL.md`.

use core::fmt::{self, Write};

use super::fields::{self, FieldError, Schema};
use crate::idempotency::IdempotencyConfig;
use crate::policy::{InvalidPolicy, RatePolicy, Reason, Sections, write_document};
use crate::proto::ErrorCode;
use crate::proto::params::Members;

/// Why the params of a policy method were refused; shown as `params.<field>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParamsError<'a>(FieldError<'a>);

impl PolicyParamsError<'_> {
    /// The error code of params that are not `APPLY_POLICY`'s or `GET_POLICY`'s (the
    /// document itself is judged apart, [`InvalidPolicy::CODE`]): `BAD_REQUEST`.
    pub const CODE: ErrorCode = ErrorCode::BadRequest;
}

impl fmt::Display for PolicyParamsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

static APPLY: Schema<1> = Schema {
    names: ["policy"],
    expected: "policy",
};
static NONE: Schema<0> = Schema {
    names: [],
    expected: "",
};

/// `APPLY_POLICY`'s params: the policy document's text (`params.policy`, required).
pub fn read_apply_policy(params: &str) -> Result<&str, PolicyParamsError<'_>> {
    let found = fields::collect(Members::new(params), &APPLY).map_err(PolicyParamsError)?;
    let doc = found
        .raw(0)
        .ok_or(PolicyParamsError(FieldError::Required("policy")))?;
    found.finish().map_err(PolicyParamsError)?;
    Ok(doc)
}

/// `GET_POLICY`'s params: none.
pub fn read_get_policy(params: &str) -> Result<(), PolicyParamsError<'_>> {
    let found = fields::collect(Members::new(params), &NONE).map_err(PolicyParamsError)?;
    found.finish().map_err(PolicyParamsError)
}

/// `GET_POLICY`'s reply: `{"ok":true,"policy":<the canonical document>,"version":N}`.
pub fn write_policy_reply<W: Write, const C: usize, const T: usize>(
    version: u64,
    rate: &RatePolicy<C, T>,
    sections: &Sections,
    w: &mut W,
) -> fmt::Result {
    w.write_str("{\"ok\":true,\"policy\":")?;
    write_document(rate, sections, w)?;
    write!(w, ",\"version\":{version}}}")
}

/// `APPLY_POLICY`'s reply once the policy is in force: `{"ok":true,"version":N}`.
pub fn write_applied_reply<W: Write>(version: u64, w: &mut W) -> fmt::Result {
    write!(w, "{{\"ok\":true,\"version\":{version}}}")
}

/// Whether a new policy keeps what cannot change while the service runs: the idempotency
/// TTLs, which the records hold (`running`).
// The error names its field by a path held inline, like every policy error (no allocation).
#[allow(clippy::result_large_err)]
pub fn check_compatible(new: &Sections, running: &IdempotencyConfig) -> Result<(), InvalidPolicy> {
    if new.idempotency() == running {
        Ok(())
    } else {
        Err(InvalidPolicy::at(
            &["idempotency"],
            Reason::IdempotencyFixed,
        ))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::{String, ToString};

    use super::*;

    #[test]
    fn params_are_read_and_refused_by_name() {
        assert_eq!(
            read_apply_policy(r#"{"policy":{"limits":{}}}"#),
            Ok(r#"{"limits":{}}"#)
        );
        let err = |p| read_apply_policy(p).unwrap_err().to_string();
        assert_eq!(err("{}"), "params.policy: is required");
        assert_eq!(err(r#"{"policy":null}"#), "params.policy: is required");
        assert_eq!(
            err(r#"{"policy":{},"x":1}"#),
            "params.x: unknown field (expected one of: policy)"
        );
        assert_eq!(
            err(r#"{"policy":{},"policy":{}}"#),
            "params.policy: duplicate field"
        );
        assert_eq!(read_get_policy("{}"), Ok(()));
        assert_eq!(
            read_get_policy(r#"{"v":1}"#).unwrap_err().to_string(),
            "params.v: unknown field (this object takes no fields)"
        );
    }

    #[test]
    fn replies_and_the_idempotency_rule() {
        let rate = RatePolicy::<0, 0>::new();
        let sections = Sections::default();
        let mut text = String::new();
        write_policy_reply(7, &rate, &sections, &mut text).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (v["ok"].clone(), v["version"].clone()),
            (true.into(), 7.into())
        );
        assert_eq!(serde_json::to_string(&v).unwrap(), text, "canonical");
        let mut text = String::new();
        write_applied_reply(8, &mut text).unwrap();
        assert_eq!(text, r#"{"ok":true,"version":8}"#);

        assert!(check_compatible(&sections, &IdempotencyConfig::DEFAULT).is_ok());
        let changed = Sections::parse(r#"{"idempotency":{"ttl_ms":1000}}"#).unwrap();
        let e = check_compatible(&changed, &IdempotencyConfig::DEFAULT).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("idempotency: is fixed at start-up"),
            "{e}"
        );
    }
}
