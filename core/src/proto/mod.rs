//! The wire protocol codec (docs/PROTOCOL.md): framed JSON and line commands, without I/O.
//!
//! The host owns the socket; these types turn the bytes it reads into requests and the answers
//! it decides into bytes to write. Every buffer is fixed and every call does bounded work, so
//! the same code runs in the daemon, under the fuzzers and in the property tests.
//!
//! | file | idea |
//! |---|---|
//! | [`sniff`](mod@sniff) | the first byte of a connection picks [`Mode::Line`] or [`Mode::Framed`] |
//! | [`frame`](mod@frame) | [`FrameDecoder`]: 4-byte big-endian length + UTF-8 body, any split; [`encode_frame`] |
//! | [`request`](mod@request) | [`Request::parse`]: method, raw `params` span, `timestamp` in integer ms |
//! | [`method`](mod@method) | [`Method`]: every upper-case method name, and its [`MethodClass`] |
//! | [`access`](mod@access) | [`Access`]: which callers' uids and gids may call which class, [`Admitted`] for one caller |
//! | [`reply`](mod@reply) | [`ErrorReply`]: `{"error":true,"code":"…","message":"…"}` |
//! | [`error`](mod@error) | [`ErrorCode`]: the fixed set of error codes |
//! | [`line`](mod@line) | [`LineDecoder`]: `\n`-terminated, length-limited lines, `\r` stripped |
//! | [`command`](mod@command) | [`Command`] and [`LineReply`]: `ping`, `version`, `status` |
//! | [`http_guard`](mod@http_guard) | [`HttpGuard`](http_guard::HttpGuard): which HTTP requests a listener serves (`Host`, `Origin`, `Content-Type`) |
//!
//! # A framed connection
//!
//! ```
//! use heidi_core::proto::{
//!     encode_frame, format_message, sniff, ErrorReply, Method, Mode, Request, RequestDecoder,
//!     ERROR_MESSAGE_MAX_BYTES, ERROR_REPLY_MAX_BYTES, RESPONSE_MAX_BYTES,
//! };
//!
//! // Two requests arrive in one read; the second names no method we know.
//! let mut wire = [0u8; 128];
//! let mut n = encode_frame(br#"{"method":"PING","params":{}}"#, 8192, &mut wire).unwrap();
//! n += encode_frame(br#"{"method":"NOPE","params":{}}"#, 8192, &mut wire[n..]).unwrap();
//!
//! assert_eq!(sniff(wire[0]), Mode::Framed);
//! let mut decoder = RequestDecoder::new();
//! let mut input = &wire[..n];
//! let mut replies = 0;
//! while !input.is_empty() {
//!     let step = decoder.feed(input);
//!     input = &input[step.consumed..];
//!     let Some(frame) = step.frame else { continue };
//!     let frame = frame.expect("well-formed frames"); // else: error reply (close if fatal)
//!     let mut body = [0u8; ERROR_REPLY_MAX_BYTES];
//!     let len = match Request::parse(frame) {
//!         Ok(req) => {
//!             assert_eq!(req.method, Method::Ping);
//!             body[..11].copy_from_slice(br#"{"ok":true}"#);
//!             11
//!         }
//!         Err(e) => {
//!             let mut text = [0u8; ERROR_MESSAGE_MAX_BYTES];
//!             let message = format_message(&e, &mut text); // or `e.to_string()` with std
//!             assert_eq!(message, "unknown method \"NOPE\"");
//!             ErrorReply::new(e.code(), message).encode(&mut body).unwrap()
//!         }
//!     };
//!     let mut out = [0u8; 4 + ERROR_REPLY_MAX_BYTES];
//!     let _frame_len = encode_frame(&body[..len], RESPONSE_MAX_BYTES, &mut out).unwrap();
//!     replies += 1; // a real host writes `out[.._frame_len]` here
//! }
//! assert_eq!(replies, 2);
//! ```

pub mod access;
mod buffer;
pub mod command;
pub mod error;
pub mod frame;
mod host_refusal;
pub mod http_answers;
pub mod http_guard;
pub mod line;
pub mod method;
pub mod params;
pub mod reply;
pub mod request;
pub mod sniff;
mod timestamp;

pub use crate::json::scan::JSON_MAX_DEPTH;
pub use access::{ALLOW_LIST_MAX_IDS, Access, Admitted, AllowList, BadIds, Credentials, check_ids};
pub use buffer::BufferTooSmall;
pub use command::{Command, DaemonStatus, LINE_REPLY_MAX_BYTES, LineReply, PROTOCOL_VERSION};
pub use error::ErrorCode;
pub use frame::{
    EncodeError, FrameDecoder, FrameError, FrameLimitError, FrameStep, REQUEST_LIMIT_MAX_BYTES,
    REQUEST_MAX_BYTES, RESPONSE_LIMIT_MAX_BYTES, RESPONSE_MAX_BYTES, RequestDecoder, encode_frame,
    frame_prefix,
};
pub use host_refusal::{HostRefusal, Queue};
pub use line::{LINE_MAX_BYTES, LineDecoder, LineStep, LineTooLong};
pub use method::{HostCall, Method, MethodClass, Server, UnknownMethod};
pub use reply::{
    ERROR_MESSAGE_MAX_BYTES, ERROR_REPLY_MAX_BYTES, ErrorReply, TOO_MANY_CONNECTIONS,
    format_message,
};
pub use request::{MethodName, Request, RequestError, write_request};
pub use sniff::{Mode, sniff};
