//! The crate's JSON helpers, shared by the journal and the wire protocol: one bounded writer,
//! one string escaping rule, one strict non-recursive scanner and one unescaper.
//!
//! | file | holds |
//! |---|---|
//! | `writer` | [`Writer`](writer::Writer): appends to a caller's buffer, counting past its end |
//! | `escape` | [`quoted`](escape::quoted): the one JSON string escaping rule |
//! | `scan` | [`Scanner`](scan::Scanner): RFC 8259 syntax, value spans, a depth limit, no recursion |
//! | `unescape` | [`unescape`](unescape::unescape): a JSON string into a fixed buffer |

pub(crate) mod escape;
pub(crate) mod scan;
pub(crate) mod unescape;
pub(crate) mod writer;
