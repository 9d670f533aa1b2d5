//! Withholding PEM private key bodies from a byte stream as it arrives, so that keeping only
//! the stream's tail cannot cut a key's header off and leave its body unrecognised.

/// The most bytes of a line remembered to recognise a `-----BEGIN …PRIVATE KEY-----` or
/// `-----END …PRIVATE KEY-----` marker: the marker, a label of up to 40 bytes, and the dashes.
const MARK_MAX: usize = 64;

/// A filter over a byte stream (a stage's output) that withholds the body of every PEM private
/// key: the bytes after a `-----BEGIN …PRIVATE KEY-----` marker, up to and including the
/// matching `-----END …PRIVATE KEY-----` marker, are not passed on; the END marker is passed
/// on in their place, so the kept text reads `-----BEGIN X PRIVATE KEY----------END X PRIVATE
/// KEY-----`, which [`redact`](super::redact) turns into `[PRIVATE_KEY]`. A stream that ends
/// inside a key withholds everything after the BEGIN marker. Markers are recognised within a
/// line, in any case, however the stream is split into chunks.
///
/// ```
/// use heidi_core::journal::redact::PemFilter;
///
/// let mut f = PemFilter::new();
/// let mut kept = Vec::new();
/// for chunk in [&b"ok\n-----BEGIN RSA PRIV"[..], b"ATE KEY-----\nMIIEsecret\nZZ==\n-----END RSA PRIVATE KEY-----\nbye"] {
///     f.feed(chunk, |run| kept.extend_from_slice(run));
/// }
/// assert_eq!(kept, b"ok\n-----BEGIN RSA PRIVATE KEY----------END RSA PRIVATE KEY-----\nbye");
/// ```
#[derive(Clone, Debug)]
pub struct PemFilter {
    /// The last bytes of the current line (at most [`MARK_MAX`]).
    line: [u8; MARK_MAX],
    len: usize,
    inside: bool,
    withheld: u64,
}

impl Default for PemFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl PemFilter {
    /// A filter at the start of a stream, outside any key.
    pub const fn new() -> Self {
        Self {
            line: [0; MARK_MAX],
            len: 0,
            inside: false,
            withheld: 0,
        }
    }

    /// Whether the stream is inside a key body now.
    pub fn inside(&self) -> bool {
        self.inside
    }

    /// Bytes withheld so far (key bodies and their END markers).
    pub fn withheld(&self) -> u64 {
        self.withheld
    }

    /// Feeds the next `data` of the stream; `keep` receives, in order, the runs of bytes that
    /// pass.
    pub fn feed(&mut self, data: &[u8], mut keep: impl FnMut(&[u8])) {
        let mut run_start = 0;
        for (i, &b) in data.iter().enumerate() {
            self.remember(b);
            if self.inside {
                self.withheld += 1;
                if b == b'-' && self.marker(b"-----end ") {
                    self.inside = false;
                    // The END marker, from the line, in place of the body.
                    let end = self.marker_start(b"-----end ").unwrap_or(self.len);
                    let (line, len) = (self.line, self.len);
                    keep(line.get(end..len).unwrap_or_default());
                    run_start = i + 1;
                }
            } else if b == b'-' && self.marker(b"-----begin ") {
                keep(data.get(run_start..=i).unwrap_or_default());
                self.inside = true;
                run_start = i + 1;
            }
        }
        if !self.inside {
            keep(data.get(run_start..).unwrap_or_default());
        }
    }

    fn remember(&mut self, b: u8) {
        if b == b'\n' || b == b'\r' {
            self.len = 0;
            return;
        }
        if self.len == MARK_MAX {
            self.line.copy_within(1.., 0);
            self.len -= 1;
        }
        if let Some(slot) = self.line.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Where the last `opener` (lowercase) starts in the remembered line.
    fn marker_start(&self, opener: &[u8]) -> Option<usize> {
        let line = self.line.get(..self.len)?;
        (0..line.len()).rev().find(|&i| {
            line.get(i..i + opener.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(opener))
        })
    }

    /// Whether the remembered line ends with `opener`, a label holding `private key`, and
    /// `-----` (the last of which was just remembered).
    fn marker(&self, opener: &[u8]) -> bool {
        let Some(line) = self.line.get(..self.len) else {
            return false;
        };
        if !line.ends_with(b"-----") {
            return false;
        }
        let Some(start) = self.marker_start(opener) else {
            return false;
        };
        let Some(label) = line.get(start + opener.len()..line.len() - 5) else {
            return false;
        };
        !label.contains(&b'-')
            && label.len() <= 40
            && label
                .windows(11)
                .any(|w| w.eq_ignore_ascii_case(b"private key"))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::PemFilter;

    fn filtered(chunks: &[&[u8]]) -> (Vec<u8>, bool, u64) {
        let mut f = PemFilter::new();
        let mut kept = Vec::new();
        for c in chunks {
            f.feed(c, |run| kept.extend_from_slice(run));
        }
        (kept, f.inside(), f.withheld())
    }

    const KEY: &[u8] = b"log\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\nAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\nafter\n";

    #[test]
    fn bodies_are_withheld_however_the_stream_is_split() {
        let want: &[u8] =
            b"log\n-----BEGIN OPENSSH PRIVATE KEY----------END OPENSSH PRIVATE KEY-----\nafter\n";
        let (whole, inside, withheld) = filtered(&[KEY]);
        assert_eq!(whole, want);
        assert!(!inside);
        assert_eq!(withheld as usize, KEY.len() - want.len() + 33);
        for cut in 0..KEY.len() {
            let (a, b) = KEY.split_at(cut);
            assert_eq!(filtered(&[a, b]).0, want, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = KEY.chunks(1).collect();
        assert_eq!(filtered(&bytes).0, want);
    }

    #[test]
    fn a_key_without_end_withholds_the_rest() {
        let (kept, inside, _) = filtered(&[
            b"x -----BEGIN PRIVATE KEY-----\nMIIEsecret\nmore\n",
            b"still",
        ]);
        assert_eq!(kept, b"x -----BEGIN PRIVATE KEY-----");
        assert!(inside);
    }

    #[test]
    fn other_blocks_and_near_misses_pass() {
        for text in [
            &b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"[..],
            b"-----BEGIN PUBLIC KEY-----\nMIIB\n",
            b"--- dashes ----- and -----BEGIN\n PRIVATE KEY-----\n",
            b"",
        ] {
            assert_eq!(filtered(&[text]).0, text);
        }
    }
}
