//! Who may call which [`MethodClass`]: allow-lists of user and group ids, per class.
//!
//! The rule, which hosts document for their operators:
//!
//! - A caller listed for a class (its uid in the `uids`, or its gid in the `gids`) may call
//!   that class **and every class below it** (`Admin` > `Mutate` > `Read`).
//! - A class whose lists are both empty restricts no more than the class below it; `Read`'s
//!   empty lists admit anyone (for a socket: whoever can open it). With every list empty,
//!   which is the default, everyone may call everything.
//!
//! So the callers admitted to `Admin` are always a subset of those admitted to `Mutate`, and
//! those of `Mutate` a subset of those of `Read`. A caller without credentials (`None`) is
//! admitted exactly where the lists are empty all the way down.

use super::method::MethodClass;

/// A caller's credentials: user id and (primary) group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Credentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Most ids one allow-list may hold.
pub const ALLOW_LIST_MAX_IDS: usize = 256;

/// Why a list of ids cannot be an allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BadIds {
    /// More than [`ALLOW_LIST_MAX_IDS`] ids.
    TooMany(usize),
    /// `4294967295`, which the kernel uses for "no id".
    NoId,
}

impl core::fmt::Display for BadIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BadIds::TooMany(n) => write!(f, "{n} ids; at most {ALLOW_LIST_MAX_IDS}"),
            BadIds::NoId => f.write_str("4294967295 is not a user or group id"),
        }
    }
}

/// Checks a configured list of user or group ids.
pub fn check_ids(ids: &[u32]) -> Result<(), BadIds> {
    if ids.len() > ALLOW_LIST_MAX_IDS {
        return Err(BadIds::TooMany(ids.len()));
    }
    if ids.contains(&u32::MAX) {
        return Err(BadIds::NoId);
    }
    Ok(())
}

/// The user and group ids listed for one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowList<'a> {
    /// User ids.
    pub uids: &'a [u32],
    /// Group ids.
    pub gids: &'a [u32],
}

impl AllowList<'_> {
    /// Whether both lists are empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    /// Whether `caller` is listed by uid or gid.
    #[must_use]
    pub fn lists(&self, caller: Option<Credentials>) -> bool {
        caller.is_some_and(|c| self.uids.contains(&c.uid) || self.gids.contains(&c.gid))
    }
}

/// The allow-lists of the three classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access<'a> {
    /// Listed for read-only methods.
    pub read: AllowList<'a>,
    /// Listed for mutating kernel methods (and read-only ones).
    pub mutate: AllowList<'a>,
    /// Listed for admin methods (and every other).
    pub admin: AllowList<'a>,
}

impl<'a> Access<'a> {
    /// The lists, lowest class first (indexed like [`MethodClass::ALL`]).
    const fn lists(&self) -> [AllowList<'a>; 3] {
        [self.read, self.mutate, self.admin]
    }

    /// Whether every list is empty: everyone may call everything.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.lists().iter().all(AllowList::is_empty)
    }

    /// Whether `caller` (`None`: no credentials) may call a method of `class`.
    #[must_use]
    pub fn admits(&self, class: MethodClass, caller: Option<Credentials>) -> bool {
        let lists = self.lists();
        let at = class as usize;
        // Walk down from the class: a caller listed at or above the level is in; a level
        // with a list of its own decides; an empty level defers to the one below.
        for level in (0..=at).rev() {
            if lists[level..].iter().any(|l| l.lists(caller)) {
                return true;
            }
            if !lists[level].is_empty() {
                return false;
            }
        }
        true
    }

    /// Every class `caller` may call, decided once: a host that serves many requests of one
    /// caller (a socket connection) asks [`Admitted::admits`] per request instead of walking
    /// the lists again.
    #[must_use]
    pub fn admitted(&self, caller: Option<Credentials>) -> Admitted {
        let mut classes = 0u8;
        for class in MethodClass::ALL {
            if self.admits(class, caller) {
                classes |= Admitted::bit(class);
            }
        }
        Admitted { classes }
    }

    /// What an HTTP caller may call: everything when a bearer token guards the listener
    /// (`token_guarded`: the caller proved it holds the token), else what the lists admit a
    /// caller without credentials. (A host refuses restrictions it could not apply over HTTP:
    /// lists that are not all empty need a token, [`Access::is_open`].)
    #[must_use]
    pub fn admitted_over_http(&self, token_guarded: bool) -> Admitted {
        match token_guarded {
            true => Admitted::ALL,
            false => self.admitted(None),
        }
    }
}

/// The classes one caller may call, from [`Access::admitted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Admitted {
    /// One bit per class, at its index in [`MethodClass::ALL`].
    classes: u8,
}

impl Admitted {
    /// Every class: a caller no list restricts.
    pub const ALL: Admitted = Admitted { classes: 0b111 };

    const fn bit(class: MethodClass) -> u8 {
        1 << class as u8
    }

    /// Whether the caller may call methods of `class`: what [`Access::admits`] answered.
    #[must_use]
    pub const fn admits(self, class: MethodClass) -> bool {
        self.classes & Admitted::bit(class) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MethodClass::*;

    #[test]
    fn http_callers_and_id_lists() {
        let admins = [0u32];
        let closed = Access {
            read: AllowList::default(),
            mutate: AllowList::default(),
            admin: AllowList {
                uids: &admins,
                gids: &[],
            },
        };
        assert_eq!(closed.admitted_over_http(true), Admitted::ALL);
        let none = closed.admitted_over_http(false);
        assert!(none.admits(Mutate) && !none.admits(Admin));
        assert_eq!(none, closed.admitted(None));
        assert_eq!(check_ids(&[0; ALLOW_LIST_MAX_IDS]), Ok(()));
        assert_eq!(
            check_ids(&[0; ALLOW_LIST_MAX_IDS + 1]),
            Err(BadIds::TooMany(ALLOW_LIST_MAX_IDS + 1))
        );
        assert_eq!(check_ids(&[5, u32::MAX]), Err(BadIds::NoId));
    }

    fn who(uid: u32, gid: u32) -> Option<Credentials> {
        Some(Credentials { uid, gid })
    }

    fn list<'a>(uids: &'a [u32], gids: &'a [u32]) -> AllowList<'a> {
        AllowList { uids, gids }
    }

    #[test]
    fn empty_lists_admit_everyone() {
        let open = Access::default();
        assert!(open.is_open());
        assert_eq!(open.admitted(None), Admitted::ALL);
        for class in MethodClass::ALL {
            assert!(open.admits(class, who(1000, 1000)));
            assert!(open.admits(class, None));
        }
    }

    #[test]
    fn admin_only_restriction_leaves_the_rest_open() {
        let a = Access {
            admin: list(&[0], &[]),
            ..Access::default()
        };
        assert!(!a.is_open());
        assert!(a.admits(Admin, who(0, 5)));
        assert!(!a.admits(Admin, who(1000, 1000)));
        assert!(!a.admits(Admin, None));
        assert!(a.admits(Mutate, who(1000, 1000)) && a.admits(Read, None));
    }

    #[test]
    fn an_empty_class_inherits_the_restriction_below_it() {
        // Only mutate is restricted: admin is no wider than mutate, read is open.
        let a = Access {
            mutate: list(&[], &[50]),
            ..Access::default()
        };
        assert!(a.admits(Admin, who(7, 50)) && a.admits(Mutate, who(7, 50)));
        assert!(!a.admits(Admin, who(7, 51)) && !a.admits(Mutate, who(7, 51)));
        assert!(a.admits(Read, who(7, 51)) && a.admits(Read, None));
    }

    #[test]
    fn a_listed_caller_gets_every_class_below() {
        let a = Access {
            read: list(&[1], &[]),
            mutate: list(&[2], &[]),
            admin: list(&[3], &[30]),
        };
        let classes = |c| MethodClass::ALL.map(|class| a.admits(class, c));
        assert_eq!(classes(who(1, 9)), [true, false, false]);
        assert_eq!(classes(who(2, 9)), [true, true, false]);
        assert_eq!(classes(who(3, 9)), [true, true, true]);
        assert_eq!(classes(who(9, 30)), [true, true, true]);
        assert_eq!(classes(who(9, 9)), [false, false, false]);
        assert_eq!(classes(None), [false, false, false]);
    }

    #[test]
    fn classes_nest_for_arbitrary_lists_and_callers() {
        // Every combination of lists drawn from {}, {1}, {2} for uids and gids, and every
        // caller from a small id set: admitted(admin) ⊆ admitted(mutate) ⊆ admitted(read),
        // and being listed for a class always admits.
        let sets: [&[u32]; 3] = [&[], &[1], &[2]];
        let mut lists = [AllowList::default(); 9];
        for (i, l) in lists.iter_mut().enumerate() {
            *l = list(sets[i / 3], sets[i % 3]);
        }
        let callers = [None, who(1, 0), who(0, 1), who(2, 2), who(1, 2), who(3, 3)];
        for read in lists {
            for mutate in lists {
                for admin in lists {
                    let a = Access {
                        read,
                        mutate,
                        admin,
                    };
                    for c in callers {
                        let [r, m, ad] = MethodClass::ALL.map(|class| a.admits(class, c));
                        // Decided once for a caller, the same answers.
                        let admitted = a.admitted(c);
                        assert_eq!([r, m, ad], MethodClass::ALL.map(|k| admitted.admits(k)));
                        assert!(!ad || m, "{a:?} {c:?}");
                        assert!(!m || r, "{a:?} {c:?}");
                        assert!(!admin.lists(c) || ad, "{a:?} {c:?}");
                        assert!(!mutate.lists(c) || m, "{a:?} {c:?}");
                        assert!(!read.lists(c) || r, "{a:?} {c:?}");
                        if a.is_open() {
                            assert!(r && m && ad);
                        }
                    }
                }
            }
        }
    }
}
