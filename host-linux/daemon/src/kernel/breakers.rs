//! What is left of breakers on the host side: the breakers' states for `/metrics`. `BREAKER_ACQUIRE` and `BREAKER_RECORD`, the permits, the timers and
//! the state changes are the core service's (`heidi_core::service`).

use heidi_core::service::{Breakers, PermitSlot};

type Held = Breakers<Box<[PermitSlot]>>;

/// Every breaker's name and state.
pub(crate) fn states(breakers: &Held) -> Vec<(String, &'static str)> {
    let registry = breakers.registry().iter();
    registry
        .map(|(_, n, b)| (n.to_owned(), b.state().as_str()))
        .collect()
}
