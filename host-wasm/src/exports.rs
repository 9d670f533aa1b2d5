//! The wasm module's exports: plain `extern "C"` functions over two static buffers.
//!
//! The page writes a JSON config into the input buffer and calls `sim_run`; the trace (or an
//! error object) is then in the output buffer:
//!
//! ```js
//! const ptr = exports.sim_input_ptr(bytes.length);   // 0: too large
//! new Uint8Array(exports.memory.buffer, ptr, bytes.length).set(bytes);
//! const n = exports.sim_run(bytes.length);            // > 0 trace, < 0 error JSON
//! const out = new Uint8Array(exports.memory.buffer, exports.sim_output_ptr(), Math.abs(n));
//! ```
//!
//! The only unsafe-lint exception of the crate lives here: `#[unsafe(no_mangle)]`, which a
//! wasm export requires. No `unsafe` block exists; the buffers are ordinary `Vec`s behind a
//! `Mutex` and the page reaches them through the pointers returned as plain integers.
//! Built for wasm32 only, so native builds export no symbols.
//!
//! **After a trap the instance is dead: re-instantiate the module.** The module is built with
//! `panic = "abort"`, so a panic or an allocation failure traps (`unreachable`) and leaves
//! the instance mid-call, possibly with the buffers' lock held; later calls on it may fail or
//! trap too. Nothing in a run is meant to trap: bad input is an error object, and a run's
//! memory is bounded by construction (at most `MAX_IN_FLIGHT` requests in flight, latency
//! histograms of fixed size, at most 10 000 ticks and 1000 events; see the README), but a
//! page must still treat a trap as the end of that instance.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Version of this interface; bumped on any incompatible change.
const ABI_VERSION: u32 = 1;

struct Buffers {
    input: Vec<u8>,
    output: Vec<u8>,
}

static BUFFERS: Mutex<Buffers> = Mutex::new(Buffers {
    input: Vec::new(),
    output: Vec::new(),
});

fn buffers() -> MutexGuard<'static, Buffers> {
    // Under panic = "abort" a panic never unwinds, so the lock cannot be poisoned; take the
    // data either way rather than panic.
    BUFFERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The interface version (1).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sim_abi_version() -> u32 {
    ABI_VERSION
}

/// Makes the input buffer `len` bytes long (zeroed) and returns its address; 0 when `len`
/// exceeds [`crate::MAX_INPUT_BYTES`]. Write the config there, then call [`sim_run`].
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sim_input_ptr(len: u32) -> u32 {
    let len = len as usize;
    if len > crate::MAX_INPUT_BYTES {
        return 0;
    }
    let mut b = buffers();
    b.input.clear();
    b.input.resize(len.max(1), 0);
    b.input.as_mut_ptr() as usize as u32
}

/// Runs the config in the first `len` bytes of the input buffer. Returns the length of the
/// trace in the output buffer, or minus the length of an error object
/// (`{"error":{"code","message"}}`) there.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sim_run(len: u32) -> i32 {
    let mut b = buffers();
    let len = (len as usize).min(b.input.len());
    let (output, ok) = match crate::run_json(&b.input[..len]) {
        Ok(trace) => (trace, true),
        Err(e) => (e.to_json(), false),
    };
    b.output = output;
    // Memory of a wasm32 module is at most 4 GiB, but an i32 holds only 2 GiB.
    let n = i32::try_from(b.output.len()).unwrap_or_else(|_| {
        b.output =
            crate::SimError::new("output_too_large", "the trace exceeds 2 GiB".into()).to_json();
        -1
    });
    match (ok, n) {
        (true, n) if n > 0 => n,
        _ => -(b.output.len() as i32),
    }
}

/// Address of the output buffer (valid until the next [`sim_run`]).
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sim_output_ptr() -> u32 {
    buffers().output.as_ptr() as usize as u32
}

/// Length of the output buffer in bytes.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sim_output_len() -> u32 {
    buffers().output.len() as u32
}
