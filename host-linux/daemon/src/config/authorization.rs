//! `[authorization]`: which socket peers (uid/gid from `SO_PEERCRED`) may call which class of
//! methods. Empty lists, the default, leave access to the socket's file mode.

use super::{ConfigError, err};
use heidi_core::proto::{Access, AllowList, check_ids};
use serde::Deserialize;

/// Most ids one list takes (the core's bound).
pub use heidi_core::proto::ALLOW_LIST_MAX_IDS as IDS_MAX;

/// `[authorization]` in the file; every list defaults to empty.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationSection {
    /// Users that may call read-only methods.
    pub read_uids: Option<Vec<u32>>,
    /// Groups that may call read-only methods.
    pub read_gids: Option<Vec<u32>>,
    /// Users that may call mutating kernel methods (and read-only ones).
    pub mutate_uids: Option<Vec<u32>>,
    /// Groups that may call mutating kernel methods (and read-only ones).
    pub mutate_gids: Option<Vec<u32>>,
    /// Users that may call admin methods (and every other).
    pub admin_uids: Option<Vec<u32>>,
    /// Groups that may call admin methods (and every other).
    pub admin_gids: Option<Vec<u32>>,
}

/// The validated lists (docs/DAEMON.md, "Authorization"; the rule is
/// [`heidi_core::proto::access`]'s).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorization {
    /// `read_uids`, `read_gids`.
    pub read: (Vec<u32>, Vec<u32>),
    /// `mutate_uids`, `mutate_gids`.
    pub mutate: (Vec<u32>, Vec<u32>),
    /// `admin_uids`, `admin_gids`.
    pub admin: (Vec<u32>, Vec<u32>),
}

impl Authorization {
    /// The lists as the core's decision takes them.
    pub fn access(&self) -> Access<'_> {
        fn list((uids, gids): &(Vec<u32>, Vec<u32>)) -> AllowList<'_> {
            AllowList { uids, gids }
        }
        Access {
            read: list(&self.read),
            mutate: list(&self.mutate),
            admin: list(&self.admin),
        }
    }
}

/// Validates `[authorization]`. Restricting any class while HTTP serves without a bearer
/// token is refused: an HTTP caller has no uid, so it would pass every restriction.
pub(super) fn resolve(
    section: &AuthorizationSection,
    http_without_token: bool,
) -> Result<Authorization, ConfigError> {
    let list = |name: &str, ids: &Option<Vec<u32>>| -> Result<Vec<u32>, ConfigError> {
        let ids = ids.clone().unwrap_or_default();
        let field = format!("authorization.{name}");
        check_ids(&ids).map_err(|e| err(&field, e.to_string()))?;
        Ok(ids)
    };
    let s = section;
    let auth = Authorization {
        read: (
            list("read_uids", &s.read_uids)?,
            list("read_gids", &s.read_gids)?,
        ),
        mutate: (
            list("mutate_uids", &s.mutate_uids)?,
            list("mutate_gids", &s.mutate_gids)?,
        ),
        admin: (
            list("admin_uids", &s.admin_uids)?,
            list("admin_gids", &s.admin_gids)?,
        ),
    };
    if http_without_token && !auth.access().is_open() {
        return Err(err(
            "authorization",
            "restricting a class needs http.token (or http.enabled = false): \
             HTTP callers have no uid or gid",
        ));
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> AuthorizationSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn empty_is_open_and_lists_are_read() {
        let open = resolve(&AuthorizationSection::default(), true).unwrap();
        assert!(open.access().is_open());
        let a = resolve(&section("admin_uids = [0]\nmutate_gids = [10, 11]"), false).unwrap();
        assert_eq!(a.admin, (vec![0], vec![]));
        assert_eq!(a.mutate, (vec![], vec![10, 11]));
        assert!(!a.access().is_open());
    }

    #[test]
    fn errors_name_the_field() {
        let many = format!("read_gids = [{}]", vec!["1"; IDS_MAX + 1].join(","));
        let e = resolve(&section(&many), false).unwrap_err();
        assert_eq!(e.field, "authorization.read_gids");
        let at_limit = format!("read_gids = [{}]", vec!["1"; IDS_MAX].join(","));
        assert!(resolve(&section(&at_limit), false).is_ok());
        let e = resolve(&section("admin_uids = [4294967295]"), false).unwrap_err();
        assert_eq!(e.field, "authorization.admin_uids");
        let e = resolve(&section("admin_uids = [0]"), true).unwrap_err();
        assert_eq!(e.field, "authorization");
        assert!(e.reason.contains("http.token"), "{e}");
        assert!(toml::from_str::<AuthorizationSection>("admins = [0]").is_err());
        assert!(toml::from_str::<AuthorizationSection>("admin_uids = [-1]").is_err());
    }
}
