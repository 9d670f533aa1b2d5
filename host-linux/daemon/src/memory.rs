//! Open connections, and giving a connection storm's memory back to the system.
//!
//! glibc's allocator keeps freed memory in its arenas: after 2,000 simultaneous HTTP
//! connections closed, the daemon's RSS stayed 45 MB above idle although nothing used it.
//! [`Connections`] follows the open count and its peak; once a storm has passed (the peak
//! reached [`STORM_CONNECTIONS`] and the open count fell to a quarter of it), the daemon asks
//! the allocator to return its free pages (`malloc_trim`), at most once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::state::Shared;

/// Simultaneous connections that make a storm worth cleaning up after.
pub const STORM_CONNECTIONS: u32 = 256;
/// How often the daemon looks for a storm that has passed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The connections open on both listeners, and the most open at once since the last storm.
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicU32,
    peak: AtomicU32,
}

impl Connections {
    /// Counts a connection that opened.
    pub fn opened(&self) {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(open, Ordering::Relaxed);
    }

    /// Counts a connection that closed.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether a storm has passed since the last time this answered `true`: the peak reached
    /// [`STORM_CONNECTIONS`] and at most a quarter of it is still open. Answering `true`
    /// starts a new peak from the connections open now.
    pub fn storm_passed(&self) -> bool {
        let open = self.open();
        let peak = self.peak.load(Ordering::Relaxed);
        if peak < STORM_CONNECTIONS || open > peak / 4 {
            return false;
        }
        self.peak.store(open, Ordering::Relaxed);
        true
    }
}

/// Returns free memory to the system after each connection storm, until `stop` changes.
pub(super) async fn trim_after_storms(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        if shared.connections.storm_passed() {
            let released = tokio::task::spawn_blocking(release_free_memory).await;
            tracing::debug!(?released, "connection storm over; free memory returned");
        }
    }
}

/// Asks glibc's allocator to return the free pages of every arena; whether it gave any back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and touches only the allocator's own free lists,
    // under the allocator's locks; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Gives the whole pages inside `slots` back to the system: they read as zero bytes again,
/// and take no memory until written. For a large table just built empty, whose empty slots
/// are all zero bytes, so that an idle daemon does not keep megabytes of empty slots
/// resident. Only page-sized runs strictly inside `slots` are released.
///
/// The caller promises that every byte of `slots` is zero ([`all_zero_slots`] checks the
/// slot type's empty value in a test).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn release_zeroed<T>(slots: &mut [T]) {
    let page = rustix::param::page_size();
    let start = slots.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(slots);
    let (first, last) = (start.next_multiple_of(page), end / page * page);
    if first >= last {
        return;
    }
    // SAFETY: [first, last) lies inside `slots`, which we borrow mutably, so nothing else
    // reads or writes it during the call. The memory is private and anonymous (a heap block
    // of whole pages); MADV_DONTNEED makes its pages read as zero bytes from now on, which is
    // what they hold (the caller's promise), so no value changes.
    let released = unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_DONTNEED,
        )
    };
    if released != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "madvise(MADV_DONTNEED) refused");
    }
}

/// Elsewhere the pages stay as they are.
#[cfg(not(target_os = "linux"))]
pub(crate) fn release_zeroed<T>(_slots: &mut [T]) {}

/// Other C libraries (musl) return large free blocks themselves and have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_passes_once_three_quarters_of_its_peak_have_closed() {
        let c = Connections::default();
        for _ in 0..STORM_CONNECTIONS {
            c.opened();
        }
        assert!(!c.storm_passed(), "still open");
        let quarter = STORM_CONNECTIONS / 4;
        while c.open() > quarter + 1 {
            c.closed();
        }
        assert!(!c.storm_passed(), "one above a quarter still open");
        c.closed();
        assert!(c.storm_passed());
        assert!(!c.storm_passed(), "answered once per storm");
    }

    #[test]
    fn steady_traffic_below_the_storm_size_never_trims() {
        let c = Connections::default();
        for _ in 0..10_000 {
            for _ in 0..STORM_CONNECTIONS - 1 {
                c.opened();
            }
            for _ in 0..STORM_CONNECTIONS - 1 {
                c.closed();
            }
        }
        assert!(!c.storm_passed());
    }

    /// The promise `release_zeroed` relies on: an empty limiter slot and a free permit slot
    /// are zero bytes, so the released pages read back as empty slots.
    #[test]
    fn released_empty_slots_read_back_empty() {
        use heidi_core::limit::Tat;
        use heidi_core::service::PermitSlot;
        use heidi_core::table::Slot;
        let mut slots = vec![Slot::<Tat>::empty(); 64 * 1024].into_boxed_slice();
        release_zeroed(&mut slots);
        let empty = format!("{:?}", Slot::<Tat>::empty());
        assert!(slots.iter().all(|s| format!("{s:?}") == empty));
        let mut permits = vec![PermitSlot::EMPTY; 16 * 1024].into_boxed_slice();
        release_zeroed(&mut permits);
        let empty = format!("{:?}", PermitSlot::EMPTY);
        assert!(permits.iter().all(|s| format!("{s:?}") == empty));
    }

    #[test]
    fn releasing_free_memory_is_callable() {
        // Whether anything comes back depends on the heap; the call must not fail.
        let _ = release_free_memory();
    }
}
