//! Which transactions of a refused call the refusal is about: the upstream may name one by
//! its position ([`REFUSED_INDEX_METADATA`]); that transaction (and any other copy of its key
//! in the call) fails, and the others, never judged, are sent again without it.

/// The response metadata key in which an upstream names the transaction a refusal is about:
/// its zero-based position in the `TransactionBatch` of the refused call. Absent when the
/// refusal is about the call as a whole or the upstream does not say.
pub const REFUSED_INDEX_METADATA: &str = "heidi-refused-index";

/// The most transactions a call may hold for [`split_refusal`] to split it (a batch holds
/// at most [`MAX_BATCH_ITEMS`](crate::batcher::MAX_BATCH_ITEMS)); a larger call fails whole.
pub const MAX_SPLIT: usize = 32;

/// Positions in a call: bit `i` stands for the transaction at position `i`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Positions(u32);

impl Positions {
    /// No position.
    pub const EMPTY: Positions = Positions(0);

    /// Whether position `i` is in the set.
    pub const fn contains(self, i: usize) -> bool {
        i < MAX_SPLIT && self.0 & (1 << i) != 0
    }

    /// How many positions are in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    const fn with(self, i: usize) -> Positions {
        Positions(self.0 | (1 << i))
    }
}

/// What to do with the transactions of a refused call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Split {
    /// Every transaction of the call fails with the refusal: it held one transaction, or
    /// every transaction carries the refused key, or it is too large to split.
    FailAll,
    /// The transactions at `fail` (the named one and any other copy of its key) fail with the
    /// refusal; the others are sent again, in their order, as a new call that is neither a
    /// retry nor a failure (they were never judged).
    Resubmit {
        /// The positions that fail.
        fail: Positions,
    },
    /// The upstream did not name the transaction (or named a position the call does not
    /// have): send each transaction of the call alone, once, so that only the refused ones
    /// fail.
    OneByOne,
}

impl Split {
    /// Whether the transaction at position `i` of a call that carried `sent` fails with the
    /// refusal (the others wait for the next call).
    #[must_use]
    pub const fn fails(self, i: usize, sent: usize) -> bool {
        match self {
            Split::FailAll => i < sent,
            Split::Resubmit { fail } => fail.contains(i),
            Split::OneByOne => false,
        }
    }

    /// How many of the `sent` transactions fail with the refusal.
    #[must_use]
    pub const fn failing(self, sent: usize) -> usize {
        match self {
            Split::FailAll => sent,
            Split::Resubmit { fail } => fail.len(),
            Split::OneByOne => 0,
        }
    }
}

/// The position named by a [`REFUSED_INDEX_METADATA`] value (`None` when absent or not a
/// decimal number).
pub fn parse_refused_index(value: Option<&str>) -> Option<usize> {
    value?.trim().parse().ok()
}

/// How to go on after the upstream refused a call carrying `sent` (the keys of its
/// transactions, in order) and named the transaction at position `named`, if it did.
///
/// Each [`Split::Resubmit`] removes at least one transaction, and a call of one transaction
/// always fails whole, so a host that sends each transaction alone after
/// [`Split::OneByOne`] makes at most as many extra calls as the batch has transactions.
pub fn split_refusal<'a>(
    sent: impl ExactSizeIterator<Item = &'a str> + Clone,
    named: Option<usize>,
) -> Split {
    let n = sent.len();
    if n <= 1 || n > MAX_SPLIT {
        return Split::FailAll;
    }
    let Some(key) = named.and_then(|i| sent.clone().nth(i)) else {
        return Split::OneByOne;
    };
    let fail = sent
        .enumerate()
        .filter(|&(_, k)| k == key)
        .fold(Positions::EMPTY, |set, (i, _)| set.with(i));
    match fail.len() == n {
        true => Split::FailAll,
        false => Split::Resubmit { fail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn split(keys: &[&'static str], named: Option<usize>) -> Split {
        split_refusal(keys.iter().copied(), named)
    }

    fn positions(p: &[usize]) -> Positions {
        p.iter().fold(Positions::EMPTY, |s, &i| s.with(i))
    }

    #[test]
    fn a_named_transaction_fails_alone_and_the_rest_is_resubmitted() {
        let keys = ["applied", "fits", "c", "d"];
        assert_eq!(
            split(&keys, Some(2)),
            Split::Resubmit {
                fail: positions(&[2])
            }
        );
        let Split::Resubmit { fail } = split(&keys, Some(0)) else {
            panic!("not a resubmission");
        };
        assert!(fail.contains(0) && !fail.contains(1) && fail.len() == 1);
    }

    #[test]
    fn every_copy_of_the_named_key_fails() {
        assert_eq!(
            split(&["a", "b", "a"], Some(2)),
            Split::Resubmit {
                fail: positions(&[0, 2])
            }
        );
        assert_eq!(split(&["a", "a"], Some(1)), Split::FailAll);
    }

    #[test]
    fn fails_and_failing_agree() {
        let keys = ["a", "b", "a", "c"];
        for split in [
            split(&keys, Some(2)),
            split(&keys, None),
            split(&["a"], None),
        ] {
            let sent = if split == Split::FailAll {
                1
            } else {
                keys.len()
            };
            let counted = (0..MAX_SPLIT).filter(|&i| split.fails(i, sent)).count();
            assert_eq!(counted, split.failing(sent), "{split:?}");
        }
        assert_eq!(Split::FailAll.failing(5), 5);
        assert!(!Split::OneByOne.fails(0, 5));
    }

    #[test]
    fn a_call_of_one_fails_whole() {
        assert_eq!(split(&["a"], Some(0)), Split::FailAll);
        assert_eq!(split(&["a"], None), Split::FailAll);
        assert_eq!(split(&[], None), Split::FailAll);
    }

    #[test]
    fn an_unnamed_or_unknown_position_sends_each_alone() {
        assert_eq!(split(&["a", "b"], None), Split::OneByOne);
        assert_eq!(split(&["a", "b"], Some(2)), Split::OneByOne);
        assert_eq!(split(&["a", "b"], Some(usize::MAX)), Split::OneByOne);
    }

    #[test]
    fn the_split_limit_is_reached() {
        let keys = [
            "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13",
            "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25",
            "k26", "k27", "k28", "k29", "k30", "k31", "k32",
        ];
        let at_limit = split(&keys[..MAX_SPLIT], Some(MAX_SPLIT - 1));
        let Split::Resubmit { fail } = at_limit else {
            panic!("{at_limit:?}");
        };
        assert!(fail.contains(MAX_SPLIT - 1) && fail.len() == 1);
        assert!(!fail.contains(MAX_SPLIT));
        assert_eq!(split(&keys, Some(0)), Split::FailAll);
    }

    #[test]
    fn resubmissions_are_bounded_by_the_batch() {
        // An upstream that names the last position every time: each call loses one
        // transaction, and the last one fails whole.
        let mut keys = Vec::from(["a", "b", "c", "d", "e", "f", "g", "h"]);
        let mut calls = 1;
        while let Split::Resubmit { fail } = split(&keys, Some(keys.len() - 1)) {
            let mut i = 0;
            keys.retain(|_| {
                i += 1;
                !fail.contains(i - 1)
            });
            calls += 1;
        }
        assert_eq!((calls, keys.len()), (8, 1));
    }

    #[test]
    fn the_index_metadata_parses() {
        assert_eq!(parse_refused_index(Some("3")), Some(3));
        assert_eq!(parse_refused_index(Some(" 0 ")), Some(0));
        assert_eq!(parse_refused_index(Some("-1")), None);
        assert_eq!(parse_refused_index(Some("x")), None);
        assert_eq!(parse_refused_index(None), None);
    }
}
