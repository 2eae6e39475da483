//! A small parser for the subset of Python literal syntax that NPY headers use.
//!
//! numpy writes its header as `repr()` of a dict and reads it back with
//! `ast.literal_eval`. This module accepts the part of that grammar a header
//! can contain — dicts, lists, tuples, strings, decimal integers, `True`,
//! `False` and `None` — with Python's rules for each, and rejects everything
//! else with a [`FormatError::Malformed`] that carries the byte offset (in the
//! parsed text) where the problem was found.
//!
//! It never panics, never recurses deeper than [`MAX_DEPTH`] containers, and
//! never allocates more than a small multiple of the input length.
//!
//! [`repr_str`] and [`repr_tuple`] go the other way: they render values
//! exactly as Python's `repr()` does, for building headers.

use super::FormatError;

/// Deepest nesting of containers (dicts, lists, tuples, parentheses) accepted.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed Python literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PyValue {
    /// `{k: v, ...}`, in source order (duplicate keys are kept: the caller
    /// decides whether they are an error).
    Dict(Vec<(PyValue, PyValue)>),
    /// `[a, b, ...]`.
    List(Vec<PyValue>),
    /// `()`, `(a,)`, `(a, b)`, ...
    Tuple(Vec<PyValue>),
    /// A string literal (quotes and escapes resolved; adjacent literals joined).
    Str(String),
    /// A decimal integer literal with an optional sign.
    Int(i128),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
}

impl PyValue {
    /// The Python type name of this value, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Dict(_) => "dict",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Str(_) => "str",
            Self::Int(_) => "int",
            Self::Bool(_) => "bool",
            Self::None => "NoneType",
        }
    }
}

impl std::fmt::Display for PyValue {
    /// Renders the value as Python's `repr()` would.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn seq(f: &mut std::fmt::Formatter<'_>, items: &[PyValue]) -> std::fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Self::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Self::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Self::Tuple(items) => {
                f.write_str("(")?;
                seq(f, items)?;
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Self::Str(s) => f.write_str(&repr_str(s)),
            Self::Int(i) => write!(f, "{i}"),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
            Self::None => f.write_str("None"),
        }
    }
}

/// Parses `text` as one Python literal, allowing whitespace around it.
pub(crate) fn parse(text: &str) -> Result<PyValue, FormatError> {
    parse_inner(text, false)
}

/// Like [`parse`], but also accepts Python 2's `L` suffix on integers
/// (`(3L, 4L)`), which numpy strips from version 1.0 and 2.0 headers written
/// by Python 2 before evaluating them.
pub(crate) fn parse_py2_compat(text: &str) -> Result<PyValue, FormatError> {
    parse_inner(text, true)
}

fn parse_inner(text: &str, long_suffix: bool) -> Result<PyValue, FormatError> {
    let mut p = Parser {
        text,
        pos: 0,
        long_suffix,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.err_at(p.pos, "unexpected text after the literal"));
    }
    Ok(value)
}

fn offset(pos: usize) -> Option<u64> {
    u64::try_from(pos).ok()
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    long_suffix: bool,
}

impl Parser<'_> {
    fn err_at(&self, pos: usize, what: impl Into<String>) -> FormatError {
        let _ = self;
        FormatError::malformed(offset(pos), what)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.text
            .as_bytes()
            .get(self.pos.checked_add(ahead)?)
            .copied()
    }

    /// Advances by `n` bytes; only ever called after peeking ASCII bytes.
    fn bump(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.text.len());
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.bump(1);
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, FormatError> {
        self.skip_ws();
        let start = self.pos;
        let Some(b) = self.peek() else {
            return Err(self.err_at(start, "unexpected end of text, expected a value"));
        };
        match b {
            b'{' | b'[' | b'(' => {
                if depth >= MAX_DEPTH {
                    return Err(self.err_at(
                        start,
                        format!("literal nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let depth = depth.saturating_add(1);
                match b {
                    b'{' => self.dict(depth),
                    b'[' => self.list(depth),
                    _ => self.tuple(depth),
                }
            }
            b'\'' | b'"' => self.strings(),
            b'0'..=b'9' | b'-' | b'+' | b'.' => self.int(),
            b if b.is_ascii_alphabetic() || b == b'_' => {
                if self.string_prefix_len().is_some() {
                    self.strings()
                } else {
                    self.name()
                }
            }
            _ => {
                let shown = self.text.get(start..).and_then(|s| s.chars().next());
                Err(self.err_at(
                    start,
                    match shown {
                        Some(c) => format!("unexpected character {c:?}"),
                        None => "unexpected character".to_owned(),
                    },
                ))
            }
        }
    }

    /// Parses comma-separated values up to `close`, after the opening bracket
    /// has been consumed. Returns the values and whether a comma was seen.
    fn seq(&mut self, close: u8, depth: usize) -> Result<(Vec<PyValue>, bool), FormatError> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.bump(1);
                return Ok((items, comma));
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump(1);
                    comma = true;
                }
                Some(c) if c == close => {
                    self.bump(1);
                    return Ok((items, comma));
                }
                Some(_) => {
                    return Err(
                        self.err_at(self.pos, format!("expected ',' or '{}'", char::from(close)))
                    );
                }
                None => {
                    return Err(self.err_at(
                        self.pos,
                        format!(
                            "unexpected end of text, expected ',' or '{}'",
                            char::from(close)
                        ),
                    ));
                }
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<PyValue, FormatError> {
        self.bump(1);
        let (items, _) = self.seq(b']', depth)?;
        Ok(PyValue::List(items))
    }

    fn tuple(&mut self, depth: usize) -> Result<PyValue, FormatError> {
        self.bump(1);
        let (mut items, comma) = self.seq(b')', depth)?;
        if !comma && items.len() == 1 {
            // `(x)` is just a parenthesised `x`.
            if let Some(inner) = items.pop() {
                return Ok(inner);
            }
        }
        Ok(PyValue::Tuple(items))
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, FormatError> {
        self.bump(1);
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.bump(1);
                return Ok(PyValue::Dict(items));
            }
            let key = self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b':') => self.bump(1),
                Some(b',' | b'}') => {
                    return Err(self.err_at(self.pos, "set literals are not supported"));
                }
                Some(_) => return Err(self.err_at(self.pos, "expected ':' after a dict key")),
                None => {
                    return Err(self.err_at(
                        self.pos,
                        "unexpected end of text, expected ':' after a dict key",
                    ));
                }
            }
            let value = self.value(depth)?;
            items.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.bump(1),
                Some(b'}') => {
                    self.bump(1);
                    return Ok(PyValue::Dict(items));
                }
                Some(_) => return Err(self.err_at(self.pos, "expected ',' or '}'")),
                None => {
                    return Err(
                        self.err_at(self.pos, "unexpected end of text, expected ',' or '}'")
                    );
                }
            }
        }
    }

    fn name(&mut self) -> Result<PyValue, FormatError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                self.bump(1);
            } else {
                break;
            }
        }
        let word = self.text.get(start..self.pos).unwrap_or_default();
        match word {
            "True" => Ok(PyValue::Bool(true)),
            "False" => Ok(PyValue::Bool(false)),
            "None" => Ok(PyValue::None),
            _ => Err(self.err_at(
                start,
                format!("unknown name {word:?} (only literals are allowed)"),
            )),
        }
    }

    fn int(&mut self) -> Result<PyValue, FormatError> {
        let start = self.pos;
        let negative = match self.peek() {
            Some(b'-') => {
                self.bump(1);
                true
            }
            Some(b'+') => {
                self.bump(1);
                false
            }
            _ => false,
        };
        if negative || start != self.pos {
            self.skip_ws();
        }
        let digits_start = self.pos;
        let mut value: i128 = 0;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            let digit = i128::from(b - b'0');
            let next = value.checked_mul(10).and_then(|v| {
                if negative {
                    v.checked_sub(digit)
                } else {
                    v.checked_add(digit)
                }
            });
            match next {
                Some(v) => value = v,
                None => return Err(self.err_at(start, "integer literal too large")),
            }
            self.bump(1);
        }
        let digits = self.text.get(digits_start..self.pos).unwrap_or_default();
        match self.peek() {
            Some(b'.' | b'e' | b'E' | b'j' | b'J') => {
                return Err(self.err_at(start, "float and complex literals are not supported"));
            }
            Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B') if digits == "0" => {
                return Err(self.err_at(start, "only decimal integer literals are supported"));
            }
            Some(b'_') => {
                return Err(self.err_at(start, "underscores in integer literals are not supported"));
            }
            Some(b'L' | b'l') if self.long_suffix && !digits.is_empty() => self.bump(1),
            _ => {}
        }
        if digits.is_empty() {
            return Err(self.err_at(self.pos, "expected a decimal integer"));
        }
        if digits.len() > 1 && digits.starts_with('0') && digits.bytes().any(|b| b != b'0') {
            return Err(self.err_at(
                digits_start,
                "leading zeros in decimal integer literals are not permitted",
            ));
        }
        if let Some(b) = self.peek()
            && (b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(self.err_at(self.pos, "invalid decimal literal"));
        }
        Ok(PyValue::Int(value))
    }

    /// If a string literal (with an optional `u`/`r` prefix) starts here,
    /// returns the length of its prefix.
    fn string_prefix_len(&self) -> Option<usize> {
        let mut n = 0usize;
        while let Some(b) = self.peek_at(n) {
            match b {
                b'\'' | b'"' => return Some(n),
                b'u' | b'U' | b'r' | b'R' | b'b' | b'B' | b'f' | b'F' if n < 2 => {
                    n = n.saturating_add(1);
                }
                _ => return None,
            }
        }
        None
    }

    /// Parses one or more adjacent string literals and joins them.
    fn strings(&mut self) -> Result<PyValue, FormatError> {
        let mut out = String::new();
        loop {
            self.string(&mut out)?;
            let save = self.pos;
            self.skip_ws();
            if self.string_prefix_len().is_none() {
                self.pos = save;
                return Ok(PyValue::Str(out));
            }
        }
    }

    /// Parses one string literal at `self.pos`, appending its value to `out`.
    fn string(&mut self, out: &mut String) -> Result<(), FormatError> {
        let start = self.pos;
        let prefix_len = self.string_prefix_len().unwrap_or(0);
        let prefix = self
            .text
            .get(start..start.saturating_add(prefix_len))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let raw = match prefix.as_str() {
            "" | "u" => false,
            "r" => true,
            p if p.contains('b') => {
                return Err(self.err_at(start, "bytes literals are not supported"));
            }
            p if p.contains('f') => {
                return Err(self.err_at(start, "f-strings are not supported"));
            }
            _ => return Err(self.err_at(start, format!("invalid string prefix {prefix:?}"))),
        };
        self.bump(prefix_len);
        let Some(quote) = self.peek() else {
            return Err(self.err_at(start, "unterminated string literal"));
        };
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.bump(if triple { 3 } else { 1 });

        let body = self.text.get(self.pos..).unwrap_or_default();
        let base = self.pos;
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let at = base.saturating_add(i);
            if c == char::from(quote) {
                if !triple {
                    self.pos = at.saturating_add(1);
                    return Ok(());
                }
                if body.as_bytes().get(i.saturating_add(1)) == Some(&quote)
                    && body.as_bytes().get(i.saturating_add(2)) == Some(&quote)
                {
                    self.pos = at.saturating_add(3);
                    return Ok(());
                }
                out.push(c);
            } else if c == '\n' && !triple {
                return Err(self.err_at(start, "unterminated string literal"));
            } else if c == '\\' {
                let Some((at_escaped, escaped)) = chars.next() else {
                    break;
                };
                if raw {
                    // Raw strings keep the backslash; it only stops the next
                    // character from ending the string.
                    out.push('\\');
                    out.push(escaped);
                    continue;
                }
                self.escape(escaped, base.saturating_add(at_escaped), &mut chars, out)?;
            } else {
                out.push(c);
            }
        }
        Err(self.err_at(start, "unterminated string literal"))
    }

    /// Resolves the escape `\\escaped` (the backslash is at `at - 1`) in a
    /// non-raw string, reading any further digits from `chars`.
    fn escape(
        &self,
        escaped: char,
        at: usize,
        chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
        out: &mut String,
    ) -> Result<(), FormatError> {
        let backslash_at = at.saturating_sub(1);
        match escaped {
            '\n' => {}
            '\r' => {
                if let Some((_, '\n')) = chars.peek() {
                    chars.next();
                }
            }
            '\\' | '\'' | '"' => out.push(escaped),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut value = escaped.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|&(_, digit)| digit.to_digit(8)) {
                        Some(digit) => {
                            value = value.saturating_mul(8).saturating_add(digit);
                            chars.next();
                        }
                        None => break,
                    }
                }
                // At most 0o777, always a valid scalar value.
                out.push(char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            'x' | 'u' | 'U' => {
                let len = match escaped {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut value: u32 = 0;
                for _ in 0..len {
                    match chars.peek().and_then(|&(_, digit)| digit.to_digit(16)) {
                        Some(digit) => {
                            value = value.saturating_mul(16).saturating_add(digit);
                            chars.next();
                        }
                        None => {
                            return Err(self.err_at(
                                backslash_at,
                                format!("truncated \\{escaped} escape in string literal"),
                            ));
                        }
                    }
                }
                let ch = char::from_u32(value).ok_or_else(|| {
                    self.err_at(
                        backslash_at,
                        format!(
                            "escape \\{escaped} does not encode a Unicode scalar value \
                             (U+{value:04X})"
                        ),
                    )
                })?;
                out.push(ch);
            }
            'N' => {
                return Err(self.err_at(backslash_at, "\\N{...} escapes are not supported"));
            }
            other => {
                // Python keeps unknown escapes as they are.
                out.push('\\');
                out.push(other);
            }
        }
        Ok(())
    }
}

/// Renders `s` exactly as Python 3's `repr(s)` does, with one approximation.
///
/// Quotes: single quotes unless `s` contains `'` and no `"`. Escaped: `\\`,
/// the chosen quote, `\t`, `\n`, `\r`, other characters below U+0020 and
/// U+007F as `\xNN`. Non-ASCII characters are kept as they are when Python's
/// `str.isprintable()` is true for them and escaped (`\xNN`, `\uNNNN`,
/// `\UNNNNNNNN`) otherwise.
///
/// The approximation: `isprintable()` needs the Unicode category table. This
/// function treats as non-printable U+0080..=U+009F (controls), the separators
/// (categories Zs except the space, Zl, Zp), the format characters (Cf) and
/// private-use characters (Co) listed in [`non_printable`], and the
/// noncharacters; it treats every other character — including code points
/// unassigned in the current Unicode version (category Cn), which Python
/// escapes — as printable. Names that use such characters are vanishingly
/// rare in dtypes, and a difference only changes how a header is spelled,
/// never what it means.
pub(crate) fn repr_str(s: &str) -> String {
    use std::fmt::Write as _;
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if u32::from(c) < 0x20 || u32::from(c) == 0x7f => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_ascii() => out.push(c),
            c if non_printable(c) => {
                let v = u32::from(c);
                let _ = if v <= 0xff {
                    write!(out, "\\x{v:02x}")
                } else if v <= 0xffff {
                    write!(out, "\\u{v:04x}")
                } else {
                    write!(out, "\\U{v:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Whether Python's `str.isprintable()` is false for the non-ASCII `c`, as far
/// as a small table can tell (see [`repr_str`]).
fn non_printable(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x0080, 0x00a0), // C1 controls, no-break space
        (0x00ad, 0x00ad), // soft hyphen
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x0890, 0x0891),
        (0x08e2, 0x08e2),
        (0x1680, 0x1680),
        (0x180e, 0x180e),
        (0x2000, 0x200f), // spaces, zero-width and direction marks
        (0x2028, 0x202f), // line/paragraph separators, embeddings, narrow nbsp
        (0x205f, 0x2064),
        (0x2066, 0x206f),
        (0x3000, 0x3000),
        (0xe000, 0xf8ff), // private use
        (0xfdd0, 0xfdef), // noncharacters
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x1_10bd, 0x1_10bd),
        (0x1_10cd, 0x1_10cd),
        (0x1_3430, 0x1_343f),
        (0x1_bca0, 0x1_bca3),
        (0x1_d173, 0x1_d17a),
        (0xe_0001, 0xe_0001),
        (0xe_0020, 0xe_007f),
        (0xf_0000, 0x10_ffff), // private use planes (and their noncharacters)
    ];
    let v = u32::from(c);
    // U+xxFFFE and U+xxFFFF are noncharacters in every plane.
    if v & 0xfffe == 0xfffe {
        return true;
    }
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&v))
}

/// Renders a tuple of non-negative integers as Python's `repr()` does:
/// `()`, `(3,)`, `(2, 3)`.
pub(crate) fn repr_tuple(items: &[u64]) -> String {
    let mut out = String::from("(");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item.to_string());
    }
    if items.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> PyValue {
        PyValue::Str(v.to_owned())
    }

    fn ok(text: &str) -> PyValue {
        match parse(text) {
            Ok(v) => v,
            Err(e) => panic!("{text:?} failed: {e}"),
        }
    }

    fn err_offset(text: &str) -> Option<u64> {
        match parse(text) {
            Err(FormatError::Malformed { offset, .. }) => offset,
            other => panic!("{text:?} should be malformed, got {other:?}"),
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(ok("True"), PyValue::Bool(true));
        assert_eq!(ok("False"), PyValue::Bool(false));
        assert_eq!(ok("None"), PyValue::None);
        assert_eq!(ok("0"), PyValue::Int(0));
        assert_eq!(ok("000"), PyValue::Int(0));
        assert_eq!(ok("42"), PyValue::Int(42));
        assert_eq!(ok("-42"), PyValue::Int(-42));
        assert_eq!(ok("+42"), PyValue::Int(42));
        assert_eq!(ok("- 42"), PyValue::Int(-42));
        assert_eq!(ok("  \t\n7 \n"), PyValue::Int(7));
        assert_eq!(
            ok("170141183460469231731687303715884105727"),
            PyValue::Int(i128::MAX)
        );
        assert_eq!(
            ok("-170141183460469231731687303715884105728"),
            PyValue::Int(i128::MIN)
        );
        assert!(parse("170141183460469231731687303715884105728").is_err());
        assert!(parse("99999999999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn bad_ints() {
        for text in [
            "01", "1.0", "1e3", "1j", ".5", "0x10", "0o7", "0b1", "1_000", "12ab", "-", "+", "--1",
            "- -1", "-True", "3L", "1 2",
        ] {
            assert!(parse(text).is_err(), "{text:?} should fail");
        }
        assert_eq!(
            parse_py2_compat("(3L, 4l)").unwrap(),
            PyValue::Tuple(vec![PyValue::Int(3), PyValue::Int(4)])
        );
        assert!(parse_py2_compat("L").is_err());
        assert!(parse_py2_compat("3LL").is_err());
    }

    #[test]
    fn containers() {
        assert_eq!(ok("()"), PyValue::Tuple(vec![]));
        assert_eq!(ok("( )"), PyValue::Tuple(vec![]));
        assert_eq!(ok("(3)"), PyValue::Int(3));
        assert_eq!(ok("((3))"), PyValue::Int(3));
        assert_eq!(ok("(3,)"), PyValue::Tuple(vec![PyValue::Int(3)]));
        assert_eq!(
            ok("(3, 4)"),
            PyValue::Tuple(vec![PyValue::Int(3), PyValue::Int(4)])
        );
        assert_eq!(
            ok("(3,4,)"),
            PyValue::Tuple(vec![PyValue::Int(3), PyValue::Int(4)])
        );
        assert_eq!(ok("[]"), PyValue::List(vec![]));
        assert_eq!(ok("[1,]"), PyValue::List(vec![PyValue::Int(1)]));
        assert_eq!(ok("[(1)]"), PyValue::List(vec![PyValue::Int(1)]));
        assert_eq!(ok("{}"), PyValue::Dict(vec![]));
        assert_eq!(
            ok("{'a': 1, \"b\": [True, None],}"),
            PyValue::Dict(vec![
                (s("a"), PyValue::Int(1)),
                (
                    s("b"),
                    PyValue::List(vec![PyValue::Bool(true), PyValue::None])
                ),
            ])
        );
        assert_eq!(
            ok("{'a':1,'a':2}"),
            PyValue::Dict(vec![(s("a"), PyValue::Int(1)), (s("a"), PyValue::Int(2))])
        );
        assert_eq!(
            ok("{\n 'x' :\t( 1 ,\n 2 ) ,\n}\n"),
            PyValue::Dict(vec![(
                s("x"),
                PyValue::Tuple(vec![PyValue::Int(1), PyValue::Int(2)])
            )])
        );
    }

    #[test]
    fn bad_containers() {
        for text in [
            "",
            " ",
            "(",
            ")",
            "(,)",
            "[,]",
            "{,}",
            "(1,,)",
            "[1 2]",
            "{1}",
            "{1, 2}",
            "{1:}",
            "{:1}",
            "{1:2",
            "[1",
            "(1",
            "{'a' 1}",
            "[1]]",
            "{} {}",
            "true",
            "none",
            "nan",
            "x",
            "\0",
            "#",
            "{'a': 1} # c",
            "[1;]",
            "é",
            "(1 2)",
            "{1: 2 3}",
        ] {
            assert!(parse(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn strings() {
        assert_eq!(ok("'abc'"), s("abc"));
        assert_eq!(ok("\"abc\""), s("abc"));
        assert_eq!(ok("''"), s(""));
        assert_eq!(ok("'a' \"b\"  'c'"), s("abc"));
        assert_eq!(ok("u'x'"), s("x"));
        assert_eq!(ok("U'x'"), s("x"));
        assert_eq!(ok("r'\\q\\''"), s("\\q\\'"));
        assert_eq!(ok("'it\\'s'"), s("it's"));
        assert_eq!(ok("\"it's\""), s("it's"));
        assert_eq!(
            ok(r#"'\\ \' \" \n \r \t \a \b \f \v \0 \101 \777 \x41 \u00e9 \U0001F600 \q'"#),
            s("\\ ' \" \n \r \t \x07 \x08 \x0c \x0b \0 A \u{1ff} A é 😀 \\q")
        );
        assert_eq!(ok("'a\\\nb'"), s("ab"));
        assert_eq!(ok("'''a\nb''c'''"), s("a\nb''c"));
        assert_eq!(ok("\"\"\"x\"\"\""), s("x"));
        assert_eq!(ok("'é漢字'"), s("é漢字"));
        assert_eq!(ok("'\\1234'"), s("S4"));
    }

    #[test]
    fn bad_strings() {
        for text in [
            "'",
            "'abc",
            "\"abc'",
            "'a\nb'",
            "'''abc''",
            "'\\'",
            "'\\x4'",
            "'\\xzz'",
            "'\\u12'",
            "'\\U0011ffff'",
            "'\\ud800'",
            "'\\N{DASH}'",
            "b'x'",
            "f'x'",
            "rb'x'",
            "ur'x'",
            "'a' b'c'",
            "r'\\'",
            "'a' 1",
        ] {
            assert!(parse(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn error_offsets() {
        assert_eq!(err_offset("{'a': x}"), Some(6));
        assert_eq!(err_offset("[1, 2"), Some(5));
        assert_eq!(err_offset("   'abc"), Some(3));
        assert_eq!(err_offset("(1,) 2"), Some(5));
        assert_eq!(err_offset("'é' x"), Some(5));
    }

    #[test]
    fn depth_is_bounded() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert!(parse(&nested(MAX_DEPTH + 1)).is_err());
        assert!(parse(&nested(100_000)).is_err());
        assert!(parse(&"(".repeat(100_000)).is_err());
        assert!(parse(&"{1:".repeat(100_000)).is_err());
        let parens = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&parens).is_err());
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(repr_str(""), "''");
        assert_eq!(repr_str("abc"), "'abc'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a\"b"), "'a\"b'");
        assert_eq!(repr_str("'\""), "'\\'\"'");
        assert_eq!(repr_str("a\\b"), "'a\\\\b'");
        assert_eq!(repr_str("\t\n\r\0\x1f\x7f"), "'\\t\\n\\r\\x00\\x1f\\x7f'");
        assert_eq!(repr_str("é\u{85}\u{a0}\u{ad}"), "'é\\x85\\xa0\\xad'");
        assert_eq!(repr_str("α\u{2028}\u{feff}"), "'α\\u2028\\ufeff'");
        assert_eq!(repr_str("😀\u{f0000}"), "'😀\\U000f0000'");
        assert_eq!(repr_tuple(&[]), "()");
        assert_eq!(repr_tuple(&[3]), "(3,)");
        assert_eq!(repr_tuple(&[2, 3]), "(2, 3)");
        assert_eq!(repr_tuple(&[u64::MAX]), "(18446744073709551615,)");
    }

    #[test]
    fn repr_round_trips() {
        let samples = [
            "",
            "a",
            "it's",
            "\"",
            "'\"",
            "\\",
            "\\'",
            "\t\n\r\0",
            "é",
            "α",
            "😀",
            "\u{7f}\u{80}",
            "\u{2028}",
            "mixed 'q' \"d\" \\ \u{1}",
        ];
        for sample in samples {
            assert_eq!(parse(&repr_str(sample)).unwrap(), s(sample), "{sample:?}");
        }
        let v = ok("{'a': [(1, 2), (3,), ()], 'b': (True, None, 'x')}");
        assert_eq!(ok(&v.to_string()), v);
        assert_eq!(
            v.to_string(),
            "{'a': [(1, 2), (3,), ()], 'b': (True, None, 'x')}"
        );
    }
}
