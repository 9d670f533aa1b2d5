//! A small, strict JSON reader for configs: integers only (no fractions or exponents, so no
//! float parsing), bounded depth, errors that say where.

use crate::error::SimError;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 16;

/// A parsed JSON value. Objects keep their members in order (duplicates are an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer in `i64::MIN..=u64::MAX`.
    Int(i128),
    /// A string, unescaped.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object.
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// The JSON type's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Str(_) => "a string",
            Value::Arr(_) => "an array",
            Value::Obj(_) => "an object",
        }
    }
}

/// Parses one JSON document (surrounding whitespace allowed).
///
/// # Errors
/// `bad_json`, naming what and where (byte offset).
pub fn parse(text: &[u8]) -> Result<Value, SimError> {
    let mut p = Parser { s: text, i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> SimError {
        SimError::new("bad_json", format!("config: {what} at byte {}", self.i))
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self
            .s
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(lit))
        {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SimError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(_) if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(_) if self.eat(b"null") => Ok(Value::Null),
            Some(_) => Err(self.err("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SimError> {
        self.i += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a member name"));
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(self.err(&format!("duplicate field `{key}`")));
            }
            if self.peek() != Some(b':') {
                return Err(self.err("expected `:`"));
            }
            self.i += 1;
            let v = self.value(depth + 1)?;
            members.push((key, v));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Obj(members));
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SimError> {
        self.i += 1;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Arr(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Arr(items));
                }
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, SimError> {
        let start = self.i;
        self.eat(b"-");
        let rest = self.s.get(self.i..).unwrap_or_default();
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let digits = rest.get(..len).unwrap_or_default();
        self.i += len;
        if digits.is_empty() {
            return Err(self.err("expected digits"));
        }
        if let Some(b'.' | b'e' | b'E') = self.s.get(self.i) {
            return Err(self.err("numbers must be integers (use permille, ms or µs fields)"));
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(self.err("leading zero in a number"));
        }
        // By hand rather than `str::parse::<i128>`, whose code is kilobytes of the wasm module.
        let negative = self.s.get(start) == Some(&b'-');
        let magnitude = digits.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        match magnitude {
            Some(m) if !negative => Ok(Value::Int(i128::from(m))),
            Some(m) if m <= 1 << 63 => Ok(Value::Int(-i128::from(m))),
            _ => Err(self.err("integer out of range")),
        }
    }

    fn string(&mut self) -> Result<String, SimError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0..=0x1f => return Err(self.err("control character in a string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8 in a string"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SimError> {
        let Some(&e) = self.s.get(self.i) else {
            return Err(self.err("unterminated string"));
        };
        self.i += 1;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode()?,
            _ => return Err(self.err("bad escape in a string")),
        };
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, SimError> {
        let hex = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let text = core::str::from_utf8(hex).map_err(|_| self.err("bad \\u escape"))?;
        let n = u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(n)
    }

    fn unicode(&mut self) -> Result<char, SimError> {
        let hi = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&hi) {
            if !self.eat(b"\\u") {
                return Err(self.err("unpaired surrogate"));
            }
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return Err(self.err("unpaired surrogate"));
            }
            0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err("unpaired surrogate"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_configs_use() {
        let v =
            parse(br#" {"a": [1, -2, true, null], "b": {"c": "x\"\u00e9\ud83d\ude00"}} "#).unwrap();
        let Value::Obj(m) = v else { panic!() };
        assert_eq!(
            m[0].1,
            Value::Arr(vec![
                Value::Int(1),
                Value::Int(-2),
                Value::Bool(true),
                Value::Null
            ])
        );
        assert_eq!(
            m[1].1,
            Value::Obj(vec![("c".into(), Value::Str("x\"é😀".into()))])
        );
        assert_eq!(
            parse(b"18446744073709551615").unwrap(),
            Value::Int(u64::MAX.into())
        );
        assert_eq!(parse(b"[]").unwrap(), Value::Arr(vec![]));
        assert_eq!(parse(b"{}").unwrap(), Value::Obj(vec![]));
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases: [(&[u8], &str); 14] = [
            (b"", "end of input"),
            (b"{", "member name"),
            (b"{\"a\" 1}", "`:`"),
            (b"{\"a\":1,\"a\":2}", "duplicate field `a`"),
            (b"[1 2]", "`,` or `]`"),
            (b"1.5", "integers"),
            (b"1e3", "integers"),
            (b"012", "leading zero"),
            (b"18446744073709551616", "out of range"),
            (b"-", "digits"),
            (b"\"abc", "unterminated"),
            (b"\"\\x\"", "bad escape"),
            (b"\"\\ud800\"", "surrogate"),
            (b"1 2", "trailing"),
        ];
        for (input, needle) in cases {
            let e = parse(input).unwrap_err();
            assert_eq!(e.code, "bad_json");
            assert!(
                e.message.contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_depth_limit_is_enforced() {
        let ok = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .message
                .contains("too deep")
        );
    }
}
