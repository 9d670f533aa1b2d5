//! The excerpt of a failed process's output that goes to the journal: its last lines, each
//! redacted and then cut, within a fixed number of characters.
//!
//! Each line is redacted before it is cut, so a cut never leaves half a secret unrecognised;
//! a long line keeps its start and ends with `…`, so one long line does not push the lines
//! before it out of the excerpt. When the output was cut before the text given (its first
//! line starts mid-line), that first line is kept from its first whitespace on, or left out.

use super::redact::{REDACTED_MAX_BYTES, redact};

/// The most characters of an excerpt (the journal caps a message at 500 characters, keeping
/// its start; an excerpt keeps the end).
pub const OUTPUT_EXCERPT_CHARS: usize = 480;

/// The most characters kept of one line.
pub const OUTPUT_LINE_CHARS: usize = 160;

/// The most bytes of an excerpt (four per character).
pub const OUTPUT_EXCERPT_MAX_BYTES: usize = OUTPUT_EXCERPT_CHARS * 4;

/// An excerpt ([`Excerpt::of`]), held in a fixed buffer.
#[derive(Clone, Debug)]
pub struct Excerpt {
    buf: [u8; OUTPUT_EXCERPT_MAX_BYTES],
    /// The excerpt is `buf[start..]` (written from the end).
    start: usize,
    cut_bytes: u64,
}

impl Excerpt {
    /// The excerpt of `text`; `cut_before`: the output was cut before `text` begins.
    #[must_use]
    pub fn of(text: &str, cut_before: bool) -> Excerpt {
        let mut e = Excerpt {
            buf: [0; OUTPUT_EXCERPT_MAX_BYTES],
            start: OUTPUT_EXCERPT_MAX_BYTES,
            cut_bytes: 0,
        };
        let skip = if cut_before {
            partial_first_line(text)
        } else {
            0
        };
        let rest = &text[skip..];
        let mut cut = skip;
        let mut budget = OUTPUT_EXCERPT_CHARS;
        let mut scratch = [0u8; REDACTED_MAX_BYTES];
        let mut end = rest.len();
        let mut taking = true;
        while end > 0 {
            let start = rest[..end - 1].rfind('\n').map_or(0, |i| i + 1);
            let line = &rest[start..end];
            end = start;
            if !taking {
                cut += line.len();
                continue;
            }
            let (body, newline) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let redacted = redact(body, &mut scratch);
            let long = redacted.char_indices().nth(OUTPUT_LINE_CHARS).is_some();
            let (head, ellipsis, chars) = if long {
                let head_end = redacted
                    .char_indices()
                    .nth(OUTPUT_LINE_CHARS - 1)
                    .map_or(redacted.len(), |(i, _)| i);
                (&redacted[..head_end], "…", OUTPUT_LINE_CHARS)
            } else {
                (redacted, "", redacted.chars().count())
            };
            let chars = chars + newline.len();
            if chars > budget {
                taking = false;
                cut += line.len();
                continue;
            }
            if long {
                cut += body.len().saturating_sub(head.len());
            }
            budget -= chars;
            e.prepend(newline);
            e.prepend(ellipsis);
            e.prepend(head);
        }
        e.cut_bytes = u64::try_from(cut).unwrap_or(u64::MAX);
        e
    }

    /// The excerpt's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Whole UTF-8 pieces, written one after another.
        core::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }

    /// Bytes of the text left out: whole lines, and the cut ends of long lines (about: a
    /// line's redaction may change its length).
    #[must_use]
    pub fn cut_bytes(&self) -> u64 {
        self.cut_bytes
    }

    fn prepend(&mut self, piece: &str) {
        // Within the budget every character takes at most four bytes.
        let start = self.start.saturating_sub(piece.len());
        let len = self.start - start;
        self.buf[start..self.start].copy_from_slice(&piece.as_bytes()[piece.len() - len..]);
        self.start = start;
    }
}

/// Bytes to skip of a first line that starts mid-line: up to its first whitespace and the
/// whitespace after it (the whole line if it has none but its newline).
fn partial_first_line(text: &str) -> usize {
    let first_end = text.find('\n').map_or(text.len(), |i| i + 1);
    let first = &text[..first_end];
    let from = first.find(char::is_whitespace).unwrap_or(first.len());
    first.len() - first[from..].trim_start().len()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::String;

    use super::*;

    #[test]
    fn keeps_the_last_lines_that_fit_and_cuts_long_ones() {
        let e = Excerpt::of("boom\n", false);
        assert_eq!((e.as_str(), e.cut_bytes()), ("boom\n", 0));
        let text = std::format!("first\n{}", "q".repeat(1000));
        let e = Excerpt::of(&text, false);
        let long: String = "q".repeat(OUTPUT_LINE_CHARS - 1) + "…";
        assert_eq!(e.as_str(), std::format!("first\n{long}"));
        assert_eq!(e.cut_bytes() as usize, 1000 - (OUTPUT_LINE_CHARS - 1));
        let many: String = (0..200).map(|i| std::format!("line {i:03}\n")).collect();
        let e = Excerpt::of(&many, false);
        assert!(e.as_str().chars().count() <= OUTPUT_EXCERPT_CHARS);
        assert!(e.as_str().ends_with("line 199\n"));
        assert_eq!(
            e.cut_bytes() as usize + e.as_str().len(),
            many.len(),
            "every byte is kept or counted"
        );
    }

    #[test]
    fn a_first_line_cut_mid_line_is_kept_from_its_first_space() {
        let e = Excerpt::of("ail end\nnext\n", true);
        assert_eq!((e.as_str(), e.cut_bytes()), ("end\nnext\n", 4));
        let e = Excerpt::of("nospace\nnext\n", true);
        assert_eq!((e.as_str(), e.cut_bytes()), ("next\n", 8));
        assert_eq!(Excerpt::of("k_abc123 rest", true).as_str(), "rest");
        assert_eq!(Excerpt::of("k_abc123", true).as_str(), "");
    }

    #[test]
    fn lines_are_redacted_before_they_are_cut() {
        let secret = std::format!("token=hf_{}", "a".repeat(34));
        let line = std::format!("{}{secret}\n", "x ".repeat(70));
        let e = Excerpt::of(&line, false);
        assert!(!e.as_str().contains("hf_aaaa"), "{}", e.as_str());
        // A secret at the start of a long line is redacted before the line is cut.
        let line = std::format!("hf_FakeTokenForTestsOnlyAbcdefghijklm9 {}", "x".repeat(400));
        let e = Excerpt::of(&line, false);
        assert!(
            e.as_str().starts_with("[HUGGINGFACE_TOKEN] xxx") && !e.as_str().contains("Fake"),
            "{}",
            e.as_str()
        );
        // A secret the line cap would cut is not half shown.
        let line = std::format!(
            "{} sk-ant-api03-FAKEabc123def456ghi789jkl012",
            "y".repeat(140)
        );
        let e = Excerpt::of(&line, false);
        assert!(!e.as_str().contains("FAKE") && !e.as_str().contains("sk-ant"));
        // Wide characters fill the buffer to its bound and no further.
        let wide: String = "😀".repeat(OUTPUT_LINE_CHARS - 1) + "\n";
        let e = Excerpt::of(&wide.repeat(5), false);
        assert_eq!(e.as_str(), wide.repeat(3));
    }
}
