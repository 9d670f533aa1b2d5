//! PEM private keys: header, body and footer.

use super::rules::{Expect, Hit, Tail};
use super::window::Window;

/// Longest label read between `BEGIN `/`END ` and the closing dashes.
const LABEL_MAX: usize = 40;

/// Length of a `-----BEGIN …PRIVATE KEY…-----` or `-----END …-----` line at `at` (`opener`
/// is `-----begin ` or `-----end `): a label of printable ASCII other than `-` (`X9.42 DH`),
/// up to [`LABEL_MAX`] bytes, that contains `private key`.
fn boundary_line(win: &mut Window<'_>, at: usize, opener: &[u8]) -> Option<usize> {
    if !win.starts_with_ci(at, opener) {
        return None;
    }
    let start = at + opener.len();
    let mut label = [0u8; LABEL_MAX];
    let mut n = 0;
    while let Some(b) = win
        .peek(start + n)
        .filter(|&b| (b' '..=b'~').contains(&b) && b != b'-')
    {
        *label.get_mut(n)? = b.to_ascii_lowercase();
        n += 1;
    }
    let closed = win.starts_with_ci(start + n, b"-----");
    let private = label[..n].windows(11).any(|w| w == b"private key");
    (closed && private).then_some(start + n + 5 - at)
}

/// A PEM private key whose header starts at `at`.
pub(super) fn block(win: &mut Window<'_>, at: usize) -> Option<Hit> {
    let header = boundary_line(win, at, b"-----begin ")?;
    Some(Hit {
        keep: at,
        drop: header,
        tail: Tail::Pem,
        placeholder: "[PRIVATE_KEY]",
        next: Expect::Nothing,
    })
}

/// Consumes a PEM body through its END line, or to the end of the input when there is none.
pub(super) fn consume_body(win: &mut Window<'_>) {
    while let Some(b) = win.peek(0) {
        if b == b'-' {
            if let Some(footer) = boundary_line(win, 0, b"-----end ") {
                for _ in 0..footer {
                    win.bump();
                }
                return;
            }
        }
        win.bump();
    }
}
