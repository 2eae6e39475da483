//! A strict JSON reader and a deterministic writer for the dataset files.
//!
//! The dataset's schema, manifest and complete marks are JSON so that any
//! tool can read them. Their formats are fixed and small (objects, arrays,
//! strings, non-negative integers, booleans), so this module implements
//! exactly RFC 8259 for those values and is stricter than most JSON
//! libraries where leniency would hide damage:
//!
//! - the text must be UTF-8, with nothing but whitespace after the value;
//! - a key may appear only once in an object (a second `"rows"` is an error,
//!   not "the last one wins");
//! - numbers must be non-negative integers that fit a `u64` (fractions,
//!   exponents and negative numbers are valid JSON but never appear in these
//!   files, so they are refused rather than rounded);
//! - strings take every JSON escape, `\u` surrogate pairs included; a lone
//!   surrogate or a raw control character is an error;
//! - containers nest at most [`MAX_DEPTH`] deep.
//!
//! [`Json::render`] writes a value the same way every time (two-space
//! indentation, keys in the order given, flat arrays and objects on one
//! line), so
//! two renderings of one value are byte for byte equal.

use std::fmt::Write as _;

use super::FormatError;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;

/// A JSON value of the kinds the dataset files use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: keys in their order, each once.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::UInt(_) => "a number",
            Self::Str(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }

    /// The JSON text: two-space indentation, keys in order, arrays of
    /// scalars and objects of scalars and such arrays on one line, a final
    /// newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Self::Array(_) | Self::Object(_))
    }

    /// A scalar, or an array of scalars: written on one line.
    fn is_flat(&self) -> bool {
        match self {
            Self::Array(items) => items.iter().all(Self::is_scalar),
            Self::Object(_) => false,
            _ => true,
        }
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Str(s) => write_str(out, s),
            Self::Array(items) if items.is_empty() => out.push_str("[]"),
            Self::Array(items) if items.iter().all(Self::is_scalar) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(']');
            }
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent + 1);
                    item.write(out, indent + 1);
                }
                newline(out, indent);
                out.push(']');
            }
            Self::Object(entries) if entries.is_empty() => out.push_str("{}"),
            Self::Object(entries) if entries.iter().all(|(_, v)| v.is_flat()) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out, indent);
                }
                out.push('}');
            }
            Self::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent + 1);
                    write_str(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                }
                newline(out, indent);
                out.push('}');
            }
        }
    }
}

fn newline(out: &mut String, indent: usize) {
    out.push('\n');
    for _ in 0..indent {
        out.push_str("  ");
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses `bytes` as one JSON value (see the module documentation for the
/// rules).
///
/// # Errors
///
/// [`FormatError::Malformed`] with the byte offset of the first problem.
pub fn parse(bytes: &[u8]) -> Result<Json, FormatError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        FormatError::malformed(Some(e.valid_up_to() as u64), "the text is not valid UTF-8")
    })?;
    let mut p = Parser {
        bytes: text.as_bytes(),
        at: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.at < p.bytes.len() {
        return Err(p.error("text after the JSON value"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: impl Into<String>) -> FormatError {
        FormatError::malformed(Some(self.at as u64), what)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), FormatError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {:?}", char::from(byte))))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, FormatError> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("not a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, FormatError> {
        match self.peek() {
            None => Err(self.error("the text ends where a value should be")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'0'..=b'9' | b'-') => self.number(),
            Some(_) => Err(self.error("not a JSON value")),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), FormatError> {
        if depth > MAX_DEPTH {
            Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")))
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, FormatError> {
        self.check_depth(depth)?;
        self.expect(b'{')?;
        let mut entries: Vec<(String, Json)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(entries));
        }
        loop {
            self.skip_ws();
            let key_at = self.at;
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(FormatError::malformed(
                    Some(key_at as u64),
                    format!("the key {key:?} appears twice in one object"),
                ));
            }
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(entries));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, FormatError> {
        self.check_depth(depth)?;
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn number(&mut self) -> Result<Json, FormatError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            return Err(self.error("a negative number (these files hold counts only)"));
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = self.bytes.get(start..self.at).unwrap_or_default();
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.error("a fraction or exponent (these files hold counts only)"));
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(FormatError::malformed(
                Some(start as u64),
                "a number with a leading zero",
            ));
        }
        let mut n: u64 = 0;
        for &d in digits {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| {
                    FormatError::malformed(Some(start as u64), "a number larger than 2^64 - 1")
                })?;
        }
        Ok(Json::UInt(n))
    }

    fn hex4(&mut self) -> Result<u32, FormatError> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("a \\u escape needs four hex digits"))?;
        let mut v = 0;
        for &d in digits {
            let x = char::from(d)
                .to_digit(16)
                .ok_or_else(|| self.error("a \\u escape needs four hex digits"))?;
            v = v * 16 + x;
        }
        self.at += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, FormatError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let run_start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The run is valid UTF-8: the whole text was checked, and the
            // run ends at an ASCII byte or the end of the text.
            let run = std::str::from_utf8(self.bytes.get(run_start..self.at).unwrap_or_default())
                .map_err(|_| self.error("invalid UTF-8 in a string"))?;
            out.push_str(run);
            match self.peek() {
                None => return Err(self.error("a string is not closed")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let esc = self
                        .peek()
                        .ok_or_else(|| self.error("a string is not closed"))?;
                    self.at += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("an unknown escape in a string")),
                    }
                }
                Some(_) => return Err(self.error("a raw control character in a string")),
            }
        }
    }

    /// The character of a `\u` escape (the `\u` already read), joining a
    /// surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, FormatError> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err(self.error("a lone high surrogate in a string"));
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err(self.error("a high surrogate without its low surrogate"));
                }
                0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("a lone low surrogate in a string")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.error("an invalid \\u escape"))
    }
}

/// The fields of one JSON object, taken one by one; [`Fields::finish`]
/// refuses keys nobody took, so a misspelt or unknown key is an error rather
/// than ignored.
pub struct Fields<'a> {
    what: &'a str,
    entries: Vec<(&'a str, &'a Json)>,
}

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object; `what` names it in
    /// errors ("the manifest", "shard 3 of the manifest").
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] when `value` is not an object.
    pub fn of(value: &'a Json, what: &'a str) -> Result<Self, FormatError> {
        match value {
            Json::Object(entries) => Ok(Self {
                what,
                entries: entries.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            }),
            other => Err(FormatError::malformed(
                None,
                format!("{what} must be an object, not {}", other.kind()),
            )),
        }
    }

    /// Takes the field `key`.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] when it is missing.
    pub fn take(&mut self, key: &str) -> Result<&'a Json, FormatError> {
        let at = self
            .entries
            .iter()
            .position(|(k, _)| *k == key)
            .ok_or_else(|| FormatError::malformed(None, format!("{} has no {key:?}", self.what)))?;
        Ok(self.entries.remove(at).1)
    }

    /// Takes the field `key`, which must be a string.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] when it is missing or not a string.
    pub fn string(&mut self, key: &str) -> Result<&'a str, FormatError> {
        match self.take(key)? {
            Json::Str(s) => Ok(s),
            other => Err(self.wrong(key, "a string", other)),
        }
    }

    /// Takes the field `key`, which must be a non-negative integer.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] when it is missing or not a number.
    pub fn uint(&mut self, key: &str) -> Result<u64, FormatError> {
        match self.take(key)? {
            Json::UInt(n) => Ok(*n),
            other => Err(self.wrong(key, "a number", other)),
        }
    }

    /// Takes the field `key`, which must be an array.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] when it is missing or not an array.
    pub fn array(&mut self, key: &str) -> Result<&'a [Json], FormatError> {
        match self.take(key)? {
            Json::Array(items) => Ok(items),
            other => Err(self.wrong(key, "an array", other)),
        }
    }

    fn wrong(&self, key: &str, want: &str, found: &Json) -> FormatError {
        FormatError::malformed(
            None,
            format!(
                "{}: {key:?} must be {want}, not {}",
                self.what,
                found.kind()
            ),
        )
    }

    /// Checks that every field was taken.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] naming the first field left.
    pub fn finish(self) -> Result<(), FormatError> {
        match self.entries.first() {
            None => Ok(()),
            Some((key, _)) => Err(FormatError::malformed(
                None,
                format!("{} has an unknown key {key:?}", self.what),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Json {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn bad(text: &[u8]) -> String {
        match parse(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn values() {
        assert_eq!(ok(" null "), Json::Null);
        assert_eq!(ok("true"), Json::Bool(true));
        assert_eq!(ok("false"), Json::Bool(false));
        assert_eq!(ok("0"), Json::UInt(0));
        assert_eq!(ok("18446744073709551615"), Json::UInt(u64::MAX));
        assert_eq!(ok("[]"), Json::Array(vec![]));
        assert_eq!(ok("{}"), Json::Object(vec![]));
        assert_eq!(
            ok(r#"{"a": [1, 2, {"b": "c"}], "d": null}"#),
            Json::Object(vec![
                (
                    "a".into(),
                    Json::Array(vec![
                        Json::UInt(1),
                        Json::UInt(2),
                        Json::Object(vec![("b".into(), Json::Str("c".into()))])
                    ])
                ),
                ("d".into(), Json::Null)
            ])
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            ok(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#),
            Json::Str("a\"b\\c/d\u{8}\u{c}\n\r\té😀".into())
        );
        assert_eq!(ok("\"héllo\""), Json::Str("héllo".into()));
        assert!(bad(br#""\ud83d""#).contains("lone high surrogate"));
        assert!(bad(br#""\ude00""#).contains("lone low surrogate"));
        assert!(bad(br#""\ud83dx""#).contains("lone high surrogate"));
        assert!(bad(br#""\ud83d\u0041""#).contains("without its low"));
        assert!(bad(br#""\x""#).contains("unknown escape"));
        assert!(bad(br#""\u12""#).contains("four hex digits"));
        assert!(bad(b"\"a\nb\"").contains("control character"));
        assert!(bad(b"\"abc").contains("not closed"));
        assert!(bad(b"\"\xff\"").contains("UTF-8"));
    }

    #[test]
    fn refuses_what_these_files_never_hold() {
        assert!(bad(b"-1").contains("negative"));
        assert!(bad(b"1.5").contains("fraction"));
        assert!(bad(b"1e3").contains("fraction"));
        assert!(bad(b"01").contains("leading zero"));
        assert!(bad(b"18446744073709551616").contains("2^64"));
        assert!(bad(br#"{"a": 1, "a": 2}"#).contains("appears twice"));
    }

    #[test]
    fn refuses_broken_text() {
        for text in [
            &b""[..],
            b" ",
            b"[1,]",
            b"[1 2]",
            b"{\"a\" 1}",
            b"{\"a\": 1,}",
            b"{1: 2}",
            b"nul",
            b"truex",
            b"[] []",
            b"{\"a\": }",
            b"'a'",
        ] {
            bad(text);
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        ok(&deep);
        let deeper = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(bad(deeper.as_bytes()).contains("nested deeper"));
        // Far deeper input fails the same way, without exhausting the stack.
        let huge = "[".repeat(1 << 20);
        assert!(bad(huge.as_bytes()).contains("nested deeper"));
    }

    #[test]
    fn render_round_trips_and_is_stable() {
        let value = Json::Object(vec![
            ("format".into(), Json::Str("x\"y\n\u{1}".into())),
            (
                "shape".into(),
                Json::Array(vec![Json::UInt(2), Json::UInt(3)]),
            ),
            ("empty".into(), Json::Array(vec![])),
            ("none".into(), Json::Object(vec![])),
            (
                "items".into(),
                Json::Array(vec![Json::Object(vec![
                    ("a".into(), Json::Bool(true)),
                    ("b".into(), Json::Null),
                ])]),
            ),
        ]);
        let text = value.render();
        assert_eq!(
            text,
            "{\n  \"format\": \"x\\\"y\\n\\u0001\",\n  \"shape\": [2, 3],\n  \"empty\": [],\n  \
             \"none\": {},\n  \"items\": [\n    {\"a\": true, \"b\": null}\n  ]\n}\n"
        );
        assert_eq!(ok(&text), value);
        assert_eq!(ok(&text).render(), text);
    }

    #[test]
    fn fields_take_each_key_once_and_refuse_unknown_ones() {
        let v = ok(r#"{"a": "x", "n": 3, "l": [1], "extra": 1}"#);
        let mut f = Fields::of(&v, "the test object").unwrap();
        assert_eq!(f.string("a").unwrap(), "x");
        assert_eq!(f.uint("n").unwrap(), 3);
        assert_eq!(f.array("l").unwrap().len(), 1);
        assert!(
            f.uint("a")
                .unwrap_err()
                .to_string()
                .contains("has no \"a\"")
        );
        assert!(
            f.finish()
                .unwrap_err()
                .to_string()
                .contains("unknown key \"extra\"")
        );
        let v = ok(r#"{"n": "3"}"#);
        let mut f = Fields::of(&v, "the test object").unwrap();
        assert!(
            f.uint("n")
                .unwrap_err()
                .to_string()
                .contains("must be a number, not a string")
        );
        assert!(Fields::of(&Json::Null, "x").is_err());
    }
}
