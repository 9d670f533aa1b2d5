//! What the heidi-kernel host crates on Linux share: the values that cross between the client,
//! the daemon, the CLI and the gRPC products, and nothing that opens a socket or a file of the
//! journal.
//!
//! | module | what it holds |
//! |---|---|
//! | [`clock`] | the monotonic clock as a core `Instant`, the wall clock as a `WallTime` |
//! | [`endpoint`] | socket-path precedence and strict loopback checks for HTTP endpoints |
//! | [`token`] | the HTTP bearer token (read by the client and the daemon, never printed) |
//! | [`journal_entry`] | [`JournalEntry`]: a journal event on its way to the writer |

pub mod clock;
pub mod endpoint;
pub mod journal_entry;
pub mod token;

pub use journal_entry::JournalEntry;
pub use token::{TOKEN_MAX_BYTES, Token};
