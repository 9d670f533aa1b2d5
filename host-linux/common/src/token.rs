//! [`Token`]: the HTTP bearer token, which no `Debug`, `Display` or error ever shows.

use std::fmt;
use std::io::Read;
use std::path::Path;

pub use heidi_core::proto::http_answers::TOKEN_MAX_BYTES;
use heidi_core::proto::http_answers::{BadToken, check_token};

/// A bearer token for the daemon's HTTP listener (`Authorization: Bearer …`).
///
/// Printable ASCII without spaces, 1 to [`TOKEN_MAX_BYTES`] bytes (the core's `check_token`;
/// a listener's own token must also be at least 16 bytes, `check_listener_token`). `Debug` prints `Token(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from its text; the error says what is wrong without repeating the text.
    pub fn new(text: impl Into<String>) -> Result<Token, BadToken> {
        let text = text.into();
        check_token(text.as_bytes())?;
        Ok(Token(text))
    }

    /// Reads a token file: the whole file, one trailing line break removed. A file that
    /// group or others may read is refused, as is one above [`TOKEN_MAX_BYTES`].
    pub fn from_file(path: &Path) -> Result<Token, String> {
        use std::os::unix::fs::PermissionsExt;
        let name = path.display();
        let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let mode = file
            .metadata()
            .map_err(|e| format!("{name}: {e}"))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{name}: mode {:04o} lets group or others read the token; chmod 600 it",
                mode & 0o7777
            ));
        }
        let mut text = String::new();
        file.take(TOKEN_MAX_BYTES as u64 + 3)
            .read_to_string(&mut text)
            .map_err(|e| format!("{name}: {e}"))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        Token::new(text).map_err(|expected| format!("{name}: expected {expected}"))
    }

    /// The token's text, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn debug_hides_the_text() {
        let t = Token::new("s3cret-s3cret-s3cret").unwrap();
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert!(!format!("{:?}", Some(&t)).contains("s3cret"));
    }

    #[test]
    fn the_text_follows_the_core_rule() {
        assert!(Token::new("a").is_ok());
        assert_eq!(Token::new("two words"), Err(BadToken::NotPrintable));
    }

    #[test]
    fn files_are_read_with_their_line_break_removed_and_mode_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let write = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("abcdefghijklmnopq\n", 0o600);
        assert_eq!(
            Token::from_file(&path).unwrap().expose(),
            "abcdefghijklmnopq"
        );
        write("abcdefghijklmnopq\r\n", 0o400);
        assert_eq!(
            Token::from_file(&path).unwrap().expose(),
            "abcdefghijklmnopq"
        );
        write("abcdefghijklmnopq\n", 0o640);
        let e = Token::from_file(&path).unwrap_err();
        assert!(e.contains("0640") && !e.contains("abcdef"), "{e}");
        write("abcdefghijklmnopq\n\n", 0o600);
        let e = Token::from_file(&path).unwrap_err();
        assert!(e.contains("printable") && !e.contains("abcdef"), "{e}");
        write(&"x".repeat(TOKEN_MAX_BYTES + 1), 0o600);
        assert!(Token::from_file(&path).unwrap_err().contains("4096"));
        write(&format!("{}\n", "x".repeat(TOKEN_MAX_BYTES)), 0o600);
        assert!(Token::from_file(&path).is_ok());
        assert!(Token::from_file(&dir.path().join("missing")).is_err());
    }
}
