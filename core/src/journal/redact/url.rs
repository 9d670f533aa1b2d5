//! Credentials in URLs: `scheme://user:password@host`.

use super::rules::{Expect, Hit, Tail, is_quote, is_word};
use super::token;
use super::window::Window;

/// Whether `b` ends a URL's authority (`user:password@host:port`).
fn ends_authority(b: u8) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || is_quote(b)
        || matches!(b, b'/' | b'?' | b'#' | b'\\' | b'<' | b'>')
}

/// At the `:` of `scheme://`: a userinfo with a password (`user:password@`) has the password
/// replaced and the user kept; when the user part holds a token, the whole userinfo goes.
/// Without a `:` in it the userinfo is left to the token rules (`https://ghp_…@github.com`).
pub(super) fn credentials(win: &mut Window<'_>) -> Option<Hit> {
    if !is_word(win.last()) || win.peek(1) != Some(b'/') || win.peek(2) != Some(b'/') {
        return None;
    }
    let start = 3;
    let (mut colon, mut at) = (None, None);
    let mut i = start;
    while let Some(b) = win.peek(i).filter(|&b| !ends_authority(b)) {
        match b {
            b'@' => at = Some(i),
            b':' if colon.is_none() => colon = Some(i),
            _ => {}
        }
        i += 1;
    }
    let at = at?;
    let colon = colon.filter(|&c| c < at)?;
    if colon + 1 == at {
        return None;
    }
    let user_holds_token = (start..colon).any(|j| token::any_at(win, j, j == start));
    let keep = if user_holds_token { start } else { colon + 1 };
    Some(Hit {
        keep,
        drop: at - keep,
        tail: Tail::None,
        placeholder: "[REDACTED]",
        next: Expect::Nothing,
    })
}
