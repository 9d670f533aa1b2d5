//! Reading a policy document into a [`RatePolicy`], member by member with the core's scanner.
//!
//! Order: the document's syntax and its top-level fields first (a syntax error anywhere wins,
//! then the first duplicate or unknown top-level field), then `limits`, `tiers`,
//! `default_tier`. Inside each object the first bad member in document order is reported.
//! JSON `null` counts as absent, as in every other section of the document.

use super::error::{InvalidPolicy, Reason};
use super::name::Name;
use super::tables::{OpLimits, OwnFlags, Tier};
use super::{
    BUILTIN_OPERATIONS, CUSTOM_OPERATIONS_MAX, OpId, RatePolicy, TIERS_MAX, TierId, WINDOW_MAX_MS,
};
use crate::Duration;
use crate::json::unescape::{FixedStr, unescape};
use crate::limit::{LimitPolicy, Operation};
use crate::proto::params::{Member, Members};

type Result<T> = core::result::Result<T, InvalidPolicy>;

/// The top-level sections the host reads itself (skipped here, their syntax checked).
const HOST_SECTIONS: [&str; 6] = [
    "retry",
    "breakers",
    "leases",
    "health",
    "idempotency",
    "readiness",
];

const TOP_FIELDS: &str =
    "breakers, default_tier, health, idempotency, leases, limits, readiness, retry, tiers";
const ENTRY_FIELDS: &str = "capacity_tokens, window_ms";
const TIER_FIELDS: &str = "limits";

/// Longest member name unescaped for an error (a valid name has at most 64 bytes).
const NAME_TEXT_MAX: usize = 128;

/// A member's name, unescaped (or as written when it cannot be).
pub(super) enum NameText<'a> {
    Plain(&'a str),
    Unescaped(FixedStr<NAME_TEXT_MAX>),
}

impl NameText<'_> {
    pub(super) fn of<'a>(m: &Member<'a>) -> NameText<'a> {
        if let Some(plain) = m.name() {
            return NameText::Plain(plain);
        }
        let raw = m.name_raw();
        let mut quoted = [0u8; NAME_TEXT_MAX + 2];
        let unescaped = if raw.len() <= NAME_TEXT_MAX {
            quoted[1..=raw.len()].copy_from_slice(raw.as_bytes());
            quoted[0] = b'"';
            quoted[raw.len() + 1] = b'"';
            unescape(&quoted[..raw.len() + 2])
        } else {
            None
        };
        match unescaped {
            Some(s) => NameText::Unescaped(s),
            None => NameText::Plain(raw),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            NameText::Plain(s) => s,
            NameText::Unescaped(s) => s.as_str(),
        }
    }
}

/// The members of `raw`, which must be an object (syntax already checked by the top-level
/// scan); `path` names it.
fn object<'a>(raw: &'a str, path: &[&str]) -> Result<Members<'a>> {
    if raw.starts_with('{') {
        Ok(Members::new(raw))
    } else {
        Err(InvalidPolicy::at(path, Reason::NotAnObject))
    }
}

/// The next member of an object whose syntax was checked.
fn next<'a>(members: &mut Members<'a>) -> Option<Member<'a>> {
    members.find_map(core::result::Result::ok)
}

/// The top-level members this parser reads (`null` values included: they count as absent
/// but still as given, for duplicates).
#[derive(Default)]
struct Top<'a> {
    limits: Option<Member<'a>>,
    tiers: Option<Member<'a>>,
    default_tier: Option<Member<'a>>,
}

/// Reads `doc` into `p` (which holds the built-in defaults).
pub(super) fn document<const C: usize, const T: usize>(
    p: &mut RatePolicy<C, T>,
    doc: &str,
) -> Result<()> {
    let top = top(doc)?;
    if let Some(m) = given(top.limits) {
        limits(p, m.raw())?;
    }
    if let Some(m) = given(top.tiers) {
        tiers(p, m.raw())?;
    }
    if let Some(m) = given(top.default_tier) {
        p.default_tier = default_tier(p, &m)?;
    }
    Ok(())
}

/// A member that is given and not `null`.
fn given(m: Option<Member<'_>>) -> Option<Member<'_>> {
    m.filter(|m| m.raw() != "null")
}

/// Scans the whole document (a syntax error anywhere is reported first) and sorts out its
/// top-level members; the first duplicate or unknown one is refused.
fn top(doc: &str) -> Result<Top<'_>> {
    let mut top = Top::default();
    let mut first_error = None;
    let mut seen_host = [false; HOST_SECTIONS.len()];
    for member in Members::new(doc) {
        let member =
            member.map_err(|e| InvalidPolicy::at(&[], Reason::NotJson { at_byte: e.at_byte }))?;
        if first_error.is_some() {
            continue;
        }
        let name = NameText::of(&member);
        let name = name.as_str();
        let slot = match name {
            "limits" => &mut top.limits,
            "tiers" => &mut top.tiers,
            "default_tier" => &mut top.default_tier,
            _ => {
                let reason = match HOST_SECTIONS.iter().position(|s| *s == name) {
                    Some(i) if !core::mem::replace(&mut seen_host[i], true) => continue,
                    Some(_) => Reason::Duplicate,
                    None => Reason::UnknownField {
                        expected: TOP_FIELDS,
                    },
                };
                first_error = Some(InvalidPolicy::at(&[name], reason));
                continue;
            }
        };
        if slot.replace(member).is_some() {
            first_error = Some(InvalidPolicy::at(&[name], Reason::Duplicate));
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(top),
    }
}

/// `limits`: the built-in operations' limits and the custom operations.
fn limits<const C: usize, const T: usize>(p: &mut RatePolicy<C, T>, raw: &str) -> Result<()> {
    let mut members = object(raw, &["limits"])?;
    let mut builtin_seen = [false; BUILTIN_OPERATIONS];
    let max_custom = C.min(CUSTOM_OPERATIONS_MAX);
    while let Some(m) = next(&mut members) {
        let name = NameText::of(&m);
        let name = name.as_str();
        let path = ["limits", name];
        let op = match Operation::ALL.iter().find(|op| op.as_str() == name) {
            Some(&b) => {
                if core::mem::replace(&mut builtin_seen[b as usize], true) {
                    return Err(InvalidPolicy::at(&path, Reason::Duplicate));
                }
                OpId::from(b)
            }
            None => {
                let Some(valid) = Name::new(name) else {
                    return Err(InvalidPolicy::at(&path, Reason::BadName));
                };
                if p.custom_operation(name).is_some() {
                    return Err(InvalidPolicy::at(&path, Reason::Duplicate));
                }
                if usize::from(p.custom_len) >= max_custom {
                    // Below 256 by `SIZES_FIT`.
                    let max = (BUILTIN_OPERATIONS + max_custom) as u16;
                    return Err(InvalidPolicy::at(&path, Reason::TooManyOperations { max }));
                }
                insert_custom(p, valid)
            }
        };
        let default = match op.builtin() {
            Some(b) => b.default_policy(),
            None => Operation::Other.default_policy(),
        };
        let limit = entry(m.raw(), &path, default)?;
        p.base.set(op, limit);
    }
    Ok(())
}

/// Puts a new custom operation in its sorted place (room checked by the caller); tiers are
/// not read yet, so only the names and the top level move.
fn insert_custom<const C: usize, const T: usize>(p: &mut RatePolicy<C, T>, name: Name) -> OpId {
    let len = usize::from(p.custom_len);
    let at = p.custom_names[..len].partition_point(|n| *n < name);
    p.custom_names.copy_within(at..len, at + 1);
    p.custom_names[at] = name;
    p.base.custom.copy_within(at..len, at + 1);
    p.custom_len += 1;
    // Below 256 by `SIZES_FIT`.
    OpId((BUILTIN_OPERATIONS + at) as u16)
}

/// One operation's limit (`{"capacity_tokens":…,"window_ms":…}`), its missing fields from
/// `default`.
fn entry(raw: &str, path: &[&str], default: LimitPolicy) -> Result<LimitPolicy> {
    let mut members = object(raw, path)?;
    let mut capacity: Option<Option<u64>> = None;
    let mut window: Option<Option<u64>> = None;
    while let Some(m) = next(&mut members) {
        let name = NameText::of(&m);
        let name = name.as_str();
        let (slot, min, max) = match name {
            "capacity_tokens" => (&mut capacity, 1, u64::from(u32::MAX)),
            "window_ms" => (&mut window, 1, WINDOW_MAX_MS),
            _ => {
                let reason = Reason::UnknownField {
                    expected: ENTRY_FIELDS,
                };
                return Err(field_error(path, name, reason));
            }
        };
        if slot.is_some() {
            return Err(field_error(path, name, Reason::Duplicate));
        }
        let value = if m.raw() == "null" {
            None
        } else {
            let n = m.as_u64().filter(|n| (min..=max).contains(n));
            Some(n.ok_or_else(|| field_error(path, name, Reason::Integer { min, max }))?)
        };
        *slot = Some(value);
    }
    let capacity = capacity
        .flatten()
        // In range of a u32 by the bounds just checked.
        .map_or(default.capacity_tokens(), |n| n as u32);
    let window = window
        .flatten()
        .map_or(default.window(), Duration::from_millis);
    LimitPolicy::new(capacity, window).map_err(|e| field_error(path, "window_ms", Reason::Limit(e)))
}

/// An error at `path` + `name`.
fn field_error(path: &[&str], name: &str, reason: Reason) -> InvalidPolicy {
    let mut full = [""; 5];
    let n = path.len().min(full.len() - 1);
    full[..n].copy_from_slice(&path[..n]);
    full[n] = name;
    InvalidPolicy::at(&full[..=n], reason)
}

/// `tiers`: each tier's own limits over the top level.
fn tiers<const C: usize, const T: usize>(p: &mut RatePolicy<C, T>, raw: &str) -> Result<()> {
    let mut members = object(raw, &["tiers"])?;
    let max = T.min(TIERS_MAX);
    while let Some(m) = next(&mut members) {
        let name = NameText::of(&m);
        let name = name.as_str();
        let path = ["tiers", name];
        let Some(valid) = Name::new(name) else {
            return Err(InvalidPolicy::at(&path, Reason::BadName));
        };
        if p.tier(name).is_some() {
            return Err(InvalidPolicy::at(&path, Reason::Duplicate));
        }
        if usize::from(p.tiers_len) >= max {
            // At most 16 by `SIZES_FIT`.
            let reason = Reason::TooManyTiers { max: max as u8 };
            return Err(InvalidPolicy::at(&path, reason));
        }
        let at = insert_tier(p, valid);
        tier(p, at, m.raw(), &path)?;
    }
    Ok(())
}

/// Puts a new tier, following the top level, in its sorted place (room checked by the
/// caller).
fn insert_tier<const C: usize, const T: usize>(p: &mut RatePolicy<C, T>, name: Name) -> usize {
    let len = usize::from(p.tiers_len);
    let at = p.tiers[..len].partition_point(|t| t.name < name);
    p.tiers[at..=len].rotate_right(1);
    p.tiers[at] = Tier {
        name,
        limits: OpLimits {
            builtin: p.base.builtin,
            custom: p.base.custom,
        },
        own: OwnFlags::NONE,
    };
    p.tiers_len += 1;
    at
}

/// One tier's body: `{"limits":{…}}`.
fn tier<const C: usize, const T: usize>(
    p: &mut RatePolicy<C, T>,
    at: usize,
    raw: &str,
    path: &[&str; 2],
) -> Result<()> {
    let mut members = object(raw, path)?;
    let mut limits_raw: Option<&str> = None;
    while let Some(m) = next(&mut members) {
        let name = NameText::of(&m);
        let name = name.as_str();
        if name != "limits" {
            let reason = Reason::UnknownField {
                expected: TIER_FIELDS,
            };
            return Err(field_error(path, name, reason));
        }
        if limits_raw.replace(m.raw()).is_some() {
            return Err(field_error(path, name, Reason::Duplicate));
        }
    }
    let Some(raw) = limits_raw.filter(|r| *r != "null") else {
        return Ok(());
    };
    let limits_path = [path[0], path[1], "limits"];
    let mut members = object(raw, &limits_path)?;
    while let Some(m) = next(&mut members) {
        let name = NameText::of(&m);
        let name = name.as_str();
        let op_path = [path[0], path[1], "limits", name];
        let op = match Operation::ALL.iter().find(|op| op.as_str() == name) {
            Some(&b) => OpId::from(b),
            None => p
                .custom_operation(name)
                .ok_or_else(|| InvalidPolicy::at(&op_path, Reason::UnknownOperation))?,
        };
        let t = &mut p.tiers[at];
        if t.own.get(op) {
            return Err(InvalidPolicy::at(&op_path, Reason::Duplicate));
        }
        let limit = entry(m.raw(), &op_path, *p.base.get(op))?;
        let t = &mut p.tiers[at];
        t.limits.set(op, limit);
        t.own.set(op);
    }
    Ok(())
}

/// `default_tier`: the name of a tier.
fn default_tier<const C: usize, const T: usize>(
    p: &RatePolicy<C, T>,
    m: &Member<'_>,
) -> Result<Option<TierId>> {
    let path = ["default_tier"];
    let text = match m.as_plain_str() {
        Some(plain) => NameText::Plain(plain),
        None if m.raw().starts_with('"') => match unescape::<NAME_TEXT_MAX>(m.raw().as_bytes()) {
            Some(s) => NameText::Unescaped(s),
            None => return Err(InvalidPolicy::at(&path, Reason::UnknownTier)),
        },
        None => return Err(InvalidPolicy::at(&path, Reason::NotAString)),
    };
    p.tier(text.as_str())
        .map(Some)
        .ok_or_else(|| InvalidPolicy::at(&path, Reason::UnknownTier))
}
