//! A small JSON writer for traces: compact, members in the order written, integers only.

/// Writes one JSON document into a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    /// Whether the next member or element needs a `,` first.
    comma: bool,
}

/// A value that writes itself as JSON.
pub trait ToJson {
    /// Appends `self` to `w`.
    fn write_json(&self, w: &mut Writer);
}

impl Writer {
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
        self.comma = true;
    }

    /// `{`, members via [`Writer::field`], then [`Writer::end_object`].
    pub fn begin_object(&mut self) {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
    }

    /// `}`.
    pub fn end_object(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    /// One member `"name":value`.
    pub fn field<T: ToJson + ?Sized>(&mut self, name: &str, value: &T) {
        self.key(name);
        value.write_json(self);
    }

    /// `"name":`, the start of a member. Not inlined: traces have hundreds of fields, and a
    /// copy of this per field was kilobytes of the wasm module.
    #[inline(never)]
    fn key(&mut self, name: &str) {
        self.sep();
        self.quoted(name);
        self.buf.push(b':');
        self.comma = false;
    }

    /// An array of `items`.
    pub fn array<T: ToJson>(&mut self, items: &[T]) {
        self.sep();
        self.buf.push(b'[');
        self.comma = false;
        for item in items {
            item.write_json(self);
        }
        self.buf.push(b']');
        self.comma = true;
    }

    /// Raw text of a value (a number or literal).
    fn raw(&mut self, text: &str) {
        self.sep();
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// An unsigned integer.
    #[inline(never)]
    pub fn uint(&mut self, n: u64) {
        self.sep();
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }

    /// A string, escaped: `"` and `\`, control characters as `\n \r \t` or `\u00xx`.
    pub fn string(&mut self, s: &str) {
        self.sep();
        self.quoted(s);
    }

    fn quoted(&mut self, s: &str) {
        self.buf.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' => self.buf.extend_from_slice(b"\\\""),
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let esc = [
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ];
                    self.buf.extend_from_slice(&esc);
                }
                _ => self.buf.push(b),
            }
        }
        self.buf.push(b'"');
    }
}

impl ToJson for u64 {
    fn write_json(&self, w: &mut Writer) {
        w.uint(*self);
    }
}

impl ToJson for u32 {
    fn write_json(&self, w: &mut Writer) {
        w.uint(u64::from(*self));
    }
}

impl ToJson for usize {
    fn write_json(&self, w: &mut Writer) {
        w.uint(*self as u64);
    }
}

impl ToJson for bool {
    fn write_json(&self, w: &mut Writer) {
        w.raw(if *self { "true" } else { "false" });
    }
}

impl ToJson for str {
    fn write_json(&self, w: &mut Writer) {
        w.string(self);
    }
}

impl ToJson for &str {
    fn write_json(&self, w: &mut Writer) {
        w.string(self);
    }
}

impl ToJson for String {
    fn write_json(&self, w: &mut Writer) {
        w.string(self);
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, w: &mut Writer) {
        match self {
            Some(v) => v.write_json(w),
            None => w.raw("null"),
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, w: &mut Writer) {
        w.array(self);
    }
}

/// `value` as JSON bytes.
pub fn to_vec<T: ToJson + ?Sized>(value: &T) -> Vec<u8> {
    let mut w = Writer::default();
    value.write_json(&mut w);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compact_json_in_order() {
        let mut w = Writer::default();
        w.begin_object();
        w.field("n", &0u64);
        w.field("max", &u64::MAX);
        w.field("s", "a\"b\\c\n\u{1}é");
        w.field("none", &None::<u64>);
        w.field("v", &vec![1u32, 2, 3]);
        w.field("empty", &Vec::<u64>::new());
        w.field("t", &true);
        w.end_object();
        let text = String::from_utf8(w.into_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"n":0,"max":18446744073709551615,"s":"a\"b\\c\n\u0001é","none":null,"v":[1,2,3],"empty":[],"t":true}"#
        );
        assert_eq!(to_vec(&vec![Some(1u64), None]), b"[1,null]");
    }
}
