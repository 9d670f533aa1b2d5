//! [`BreakerRegistry`]: one breaker per name, in fixed storage.

use super::config::{BreakerConfig, BreakerConfigError};
use super::machine::Breaker;
use super::state::Transition;
use crate::time::Instant;
use core::fmt;
use heapless::{String, Vec};

/// A breaker's place in a [`BreakerRegistry`]; valid for the registry's lifetime (entries are
/// never removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BreakerId(pub(crate) u16);

impl BreakerId {
    /// The index of the breaker in its registry (insertion order).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// [`BreakerRegistry::get_or_insert`] could not add a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegistryError {
    /// All `capacity` entries are taken (entries are never evicted).
    Full {
        /// The registry's capacity.
        capacity: usize,
    },
    /// The name is longer than `max_len` bytes.
    NameTooLong {
        /// The longest name the registry stores.
        max_len: usize,
    },
    /// The configuration of the new breaker is invalid.
    InvalidConfig(BreakerConfigError),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Full { capacity } => {
                write!(f, "breaker registry full ({capacity} breakers)")
            }
            RegistryError::NameTooLong { max_len } => {
                write!(f, "breaker name longer than {max_len} bytes")
            }
            RegistryError::InvalidConfig(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for RegistryError {}

/// Up to `N` breakers, each under a distinct name of at most `L` bytes.
///
/// Names are compared byte for byte, so `get_or_insert` never creates a second breaker for a
/// name it already holds (the original's bug: "a registry that handed out fresh breakers"). Lookups
/// scan the entries: O(N × L), meant for tens of upstreams, resolved once at start-up.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerRegistry<const N: usize, const L: usize = 32> {
    entries: Vec<(String<L>, Breaker), N>,
}

impl<const N: usize, const L: usize> Default for BreakerRegistry<N, L> {
    /// An empty registry.
    fn default() -> BreakerRegistry<N, L> {
        BreakerRegistry::new()
    }
}

impl<const N: usize, const L: usize> BreakerRegistry<N, L> {
    /// An empty registry.
    pub const fn new() -> BreakerRegistry<N, L> {
        const { assert!(N <= u16::MAX as usize, "at most 65535 breakers") };
        BreakerRegistry {
            entries: Vec::new(),
        }
    }

    /// The breaker named `name`, created with `config` if the name is new. For a known name
    /// the existing breaker is returned and `config` is ignored (the first configuration
    /// wins; compare [`Breaker::config`] to detect a mismatch). A new breaker gets the
    /// [tag](Breaker::tag) `id.index() + 1`, so a permit returned to the wrong breaker of
    /// this registry is refused ([`Recorded::Foreign`](super::Recorded::Foreign)).
    pub fn get_or_insert(
        &mut self,
        name: &str,
        config: &BreakerConfig,
    ) -> Result<BreakerId, RegistryError> {
        if let Some(id) = self.find(name) {
            return Ok(id);
        }
        let max_len = L;
        let name = String::try_from(name).map_err(|()| RegistryError::NameTooLong { max_len })?;
        let id = BreakerId(self.entries.len() as u16);
        let tag = id.0.wrapping_add(1); // wraps only when full, and then unused
        let breaker = Breaker::with_tag(*config, tag).map_err(RegistryError::InvalidConfig)?;
        let capacity = N;
        let full = RegistryError::Full { capacity };
        self.entries.push((name, breaker)).map_err(|_| full)?;
        Ok(id)
    }

    /// The id of the breaker named `name`, if any.
    pub fn find(&self, name: &str) -> Option<BreakerId> {
        let i = self.entries.iter().position(|(n, _)| n.as_str() == name)?;
        Some(BreakerId(i as u16))
    }

    /// The breaker `id`, or `None` if the registry holds no breaker at that index. Ids are
    /// plain indices: an id from another registry is not detected and may name another
    /// breaker here.
    pub fn get(&self, id: BreakerId) -> Option<&Breaker> {
        self.entries.get(id.index()).map(|(_, b)| b)
    }

    /// The breaker `id`, mutably.
    pub fn get_mut(&mut self, id: BreakerId) -> Option<&mut Breaker> {
        self.entries.get_mut(id.index()).map(|(_, b)| b)
    }

    /// The name of breaker `id`.
    pub fn name(&self, id: BreakerId) -> Option<&str> {
        self.entries.get(id.index()).map(|(n, _)| n.as_str())
    }

    /// Number of breakers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no breakers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most breakers the registry holds (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Every breaker with its id and name, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (BreakerId, &str, &Breaker)> {
        let id = |i: usize| BreakerId(i as u16);
        let entries = self.entries.iter().enumerate();
        entries.map(move |(i, (n, b))| (id(i), n.as_str(), b))
    }

    /// Every breaker with its name, mutably, in creation order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Breaker)> {
        self.entries.iter_mut().map(|(n, b)| (n.as_str(), b))
    }

    /// The earliest [`Breaker::poll_timeout`] of all breakers.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|(_, b)| b.poll_timeout())
            .min()
    }

    /// [`Breaker::handle_timeout`] on every breaker.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (_, b) in self.entries.iter_mut() {
            b.handle_timeout(now);
        }
    }

    /// The next pending transition of any breaker (lowest id first), with its breaker's id.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<(BreakerId, Transition)> {
        self.entries
            .iter_mut()
            .enumerate()
            .find_map(|(i, (_, b))| Some((BreakerId(i as u16), b.poll_event()?)))
    }
}
