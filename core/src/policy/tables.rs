//! The dense tables under a [`RatePolicy`](super::RatePolicy): one limit per operation (the
//! top level and each tier), and per tier the flags of the entries it sets itself.

use super::name::Name;
use super::{BUILTIN_OPERATIONS, OpId};
use crate::limit::{LimitPolicy, Operation, PolicyTable};

/// One limit per operation: the built-in ones, then the custom ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OpLimits<const C: usize> {
    pub(super) builtin: PolicyTable,
    pub(super) custom: [LimitPolicy; C],
}

impl<const C: usize> OpLimits<C> {
    pub(super) const fn new(builtin: PolicyTable) -> OpLimits<C> {
        OpLimits {
            builtin,
            custom: [Operation::Other.default_policy(); C],
        }
    }

    pub(super) fn get(&self, op: OpId) -> &LimitPolicy {
        match op.builtin() {
            Some(b) => self.builtin.get(b),
            None => &self.custom[op.index() - BUILTIN_OPERATIONS],
        }
    }

    pub(super) fn set(&mut self, op: OpId, limit: LimitPolicy) {
        match op.builtin() {
            Some(b) => self.builtin.set(b, limit),
            None => self.custom[op.index() - BUILTIN_OPERATIONS] = limit,
        }
    }
}

/// A tier: its name, the limit of every operation under it, and which of them it sets itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tier<const C: usize> {
    pub(super) name: Name,
    pub(super) limits: OpLimits<C>,
    /// The entries the document gives for this tier (the others copy the top level).
    pub(super) own: OwnFlags<C>,
}

/// One flag per operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OwnFlags<const C: usize> {
    builtin: [bool; BUILTIN_OPERATIONS],
    custom: [bool; C],
}

impl<const C: usize> OwnFlags<C> {
    pub(super) const NONE: OwnFlags<C> = OwnFlags {
        builtin: [false; BUILTIN_OPERATIONS],
        custom: [false; C],
    };

    pub(super) fn get(&self, op: OpId) -> bool {
        match op.builtin() {
            Some(b) => self.builtin[b as usize],
            None => self.custom[op.index() - BUILTIN_OPERATIONS],
        }
    }

    pub(super) fn set(&mut self, op: OpId) {
        match op.builtin() {
            Some(b) => self.builtin[b as usize] = true,
            None => self.custom[op.index() - BUILTIN_OPERATIONS] = true,
        }
    }
}

impl<const C: usize> Tier<C> {
    pub(super) const EMPTY: Tier<C> = Tier {
        name: Name::EMPTY,
        limits: OpLimits::new(PolicyTable::DEFAULT),
        own: OwnFlags::NONE,
    };
}
