//! numpy dtype descriptors as they appear in the `'descr'` entry of an NPY
//! header: parsing, item sizes, and rendering exactly as numpy writes them.
//!
//! A descriptor is either a type string such as `'<f4'`, `'|S5'` or
//! `'<M8[ns]'`, or, for structured arrays, a list of fields such as
//! `[('a', '<i4'), ('b', '<f8', (3,))]`. Parsing normalizes the byte order the
//! way numpy does (`=` becomes the host order, one-byte and byte-string types
//! have no order), so `Dtype::parse_descr(&d.descr_repr()) == Ok(d)` for every
//! dtype this module produces.

use std::collections::HashSet;
use std::fmt;

use super::FormatError;
use super::pyliteral::{self, PyValue};

/// Byte order of a scalar type: the first character of a numpy type string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// `<`: least significant byte first.
    Little,
    /// `>`: most significant byte first.
    Big,
    /// `|`: the order does not matter (one-byte types, byte strings, void).
    NotApplicable,
}

impl ByteOrder {
    /// The byte order of the machine this code runs on.
    #[must_use]
    pub const fn host() -> Self {
        if cfg!(target_endian = "big") {
            Self::Big
        } else {
            Self::Little
        }
    }

    /// The character numpy uses for this order: `<`, `>` or `|`.
    #[must_use]
    pub const fn as_char(self) -> char {
        match self {
            Self::Little => '<',
            Self::Big => '>',
            Self::NotApplicable => '|',
        }
    }
}

/// The kind of a scalar type: the letter after the byte order in a type
/// string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `b1`: booleans.
    Bool,
    /// `i1`, `i2`, `i4`, `i8`: signed integers.
    Int,
    /// `u1`, `u2`, `u4`, `u8`: unsigned integers.
    UInt,
    /// `f2`, `f4`, `f8`, and `f12`/`f16` (long double): floating point.
    Float,
    /// `c8`, `c16`, and `c24`/`c32` (long double): complex numbers.
    Complex,
    /// `S<n>` (also spelled `a<n>`): fixed-length byte strings.
    Bytes,
    /// `U<n>`: fixed-length UCS-4 strings, 4 bytes per character.
    Unicode,
    /// `V<n>`: raw bytes.
    Void,
    /// `M8`, `M8[unit]`: `datetime64`.
    Datetime,
    /// `m8`, `m8[unit]`: `timedelta64`.
    Timedelta,
}

impl Kind {
    /// The character numpy uses for this kind in a type string.
    #[must_use]
    pub const fn as_char(self) -> char {
        match self {
            Self::Bool => 'b',
            Self::Int => 'i',
            Self::UInt => 'u',
            Self::Float => 'f',
            Self::Complex => 'c',
            Self::Bytes => 'S',
            Self::Unicode => 'U',
            Self::Void => 'V',
            Self::Datetime => 'M',
            Self::Timedelta => 'm',
        }
    }

    /// Whether numpy renders this kind with `|` at the given item size.
    const fn order_not_applicable(self, size: u64) -> bool {
        match self {
            Self::Bool | Self::Bytes | Self::Void => true,
            Self::Int | Self::UInt | Self::Float | Self::Complex => size <= 1,
            Self::Unicode | Self::Datetime | Self::Timedelta => false,
        }
    }
}

/// A non-structured numpy type such as `<f4`, `|S5` or `<M8[ns]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scalar {
    /// What the bytes mean.
    pub kind: Kind,
    /// The byte order. After parsing this is normalized as numpy does:
    /// [`ByteOrder::NotApplicable`] exactly for booleans, byte strings, void
    /// and one-byte numbers; `<` or `>` for everything else.
    pub order: ByteOrder,
    /// Bytes per item (`U5` has size 20).
    pub size: u64,
    /// For `M8`/`m8`: the unit inside the brackets, such as `"ns"` or
    /// `"10ms"` (a multiplier of 1 is dropped, as numpy does); `None` for the
    /// generic unit (`M8` with no brackets) and for every other kind.
    pub unit: Option<String>,
}

impl Scalar {
    /// The type string numpy writes for this type (`dtype.str`), such as
    /// `<f4`, `|u1`, `|S5`, `<U5`, `<M8[ns]`.
    ///
    /// The byte order is normalized: `|` for booleans, byte strings, void and
    /// one-byte numbers, `<`/`>` otherwise (a [`ByteOrder::NotApplicable`]
    /// on a multi-byte type renders as the host order). For
    /// [`Kind::Unicode`] the count is `size / 4`.
    #[must_use]
    pub fn type_str(&self) -> String {
        let order = normalize_order(self.kind, self.order, self.size).as_char();
        let kind = self.kind.as_char();
        match self.kind {
            Kind::Unicode => format!("{order}{kind}{}", self.size / 4),
            Kind::Datetime | Kind::Timedelta => match &self.unit {
                Some(unit) => format!("{order}{kind}8[{unit}]"),
                None => format!("{order}{kind}8"),
            },
            _ => format!("{order}{kind}{}", self.size),
        }
    }
}

/// One field of a structured dtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field name. An empty name marks padding, which numpy writes as
    /// `('', '|V4')`.
    pub name: String,
    /// The optional title (`(('title', 'name'), '<i4')`).
    pub title: Option<String>,
    /// The type of one element of the field.
    pub dtype: Dtype,
    /// The subarray shape of the field; empty for a plain field.
    pub shape: Vec<u64>,
}

/// A numpy dtype as it can appear in an NPY header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// A single type such as `<f4`.
    Scalar(Scalar),
    /// A structured type: fields in order, packed, with explicit padding
    /// fields (named `''`) where numpy leaves gaps.
    Structured(Vec<Field>),
}

/// The byte order numpy would report for `kind`/`size` given `order`.
fn normalize_order(kind: Kind, order: ByteOrder, size: u64) -> ByteOrder {
    if kind.order_not_applicable(size) {
        ByteOrder::NotApplicable
    } else if order == ByteOrder::NotApplicable {
        ByteOrder::host()
    } else {
        order
    }
}

impl Dtype {
    /// A scalar dtype with no datetime unit, with `order` normalized as
    /// parsing would (see [`Scalar::order`]).
    ///
    /// `size` is in bytes, so `U5` is `Dtype::scalar(Kind::Unicode, order, 20)`.
    #[must_use]
    pub fn scalar(kind: Kind, order: ByteOrder, size: u64) -> Self {
        Self::Scalar(Scalar {
            kind,
            order: normalize_order(kind, order, size),
            size,
            unit: None,
        })
    }

    /// Parses the text of a `'descr'` value: a quoted type string such as
    /// `'<f4'` or a field list such as `[('a', '<i4'), ('b', '<f8', (3,))]`.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] if the text is not a valid descriptor (the
    /// offset is within `text` when the literal itself is broken);
    /// [`FormatError::Unsupported`] for object dtypes and other descriptors
    /// numpy accepts but this crate cannot append to.
    pub fn parse_descr(text: &str) -> Result<Self, FormatError> {
        let value = pyliteral::parse(text)?;
        Self::from_literal(&value)
    }

    /// Parses a descriptor as a user writes it: a type string without quotes
    /// (`<f4`, `|u1`), or any literal [`parse_descr`](Self::parse_descr)
    /// takes (a quoted string or a field list).
    ///
    /// # Errors
    ///
    /// As [`parse_descr`](Self::parse_descr).
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let text = text.trim();
        if text.starts_with('[') || text.starts_with('\'') || text.starts_with('"') {
            Self::parse_descr(text)
        } else {
            Self::parse_descr(&format!("'{text}'"))
        }
    }

    /// Builds a dtype from an already parsed `'descr'` value.
    pub(crate) fn from_literal(value: &PyValue) -> Result<Self, FormatError> {
        match value {
            PyValue::Str(s) => parse_type_str(s).map(Self::Scalar),
            PyValue::List(fields) => parse_fields(fields),
            PyValue::Tuple(_) => Err(FormatError::unsupported(format!(
                "subarray dtype descriptor {value} at the top level"
            ))),
            other => Err(FormatError::malformed(
                None,
                format!(
                    "dtype descriptor must be a str or a list, not {}: {other}",
                    other.type_name()
                ),
            )),
        }
    }

    /// Bytes per item: the scalar size, or for a structured dtype the sum of
    /// its fields' sizes times their subarray shapes.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] if the size overflows `u64`.
    pub fn itemsize(&self) -> Result<u64, FormatError> {
        match self {
            Self::Scalar(s) => Ok(s.size),
            Self::Structured(fields) => {
                let mut total: u64 = 0;
                for field in fields {
                    let size = field
                        .shape
                        .iter()
                        .try_fold(field.dtype.itemsize()?, |acc, &d| acc.checked_mul(d))
                        .and_then(|s| total.checked_add(s));
                    total = size.ok_or_else(|| {
                        FormatError::malformed(None, "dtype item size overflows 64 bits")
                    })?;
                }
                Ok(total)
            }
        }
    }

    /// The exact text numpy writes as the `'descr'` value of an NPY header:
    /// `repr(dtype.str)` for a scalar (`'<f4'`), `repr(dtype.descr)` for a
    /// structured dtype (`[('a', '<i4'), ('b', '<f8', (3,))]`).
    #[must_use]
    pub fn descr_repr(&self) -> String {
        let mut out = String::new();
        self.write_descr(&mut out);
        out
    }

    fn write_descr(&self, out: &mut String) {
        match self {
            Self::Scalar(s) => out.push_str(&pyliteral::repr_str(&s.type_str())),
            Self::Structured(fields) => {
                out.push('[');
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push('(');
                    match &field.title {
                        Some(title) => {
                            out.push('(');
                            out.push_str(&pyliteral::repr_str(title));
                            out.push_str(", ");
                            out.push_str(&pyliteral::repr_str(&field.name));
                            out.push(')');
                        }
                        None => out.push_str(&pyliteral::repr_str(&field.name)),
                    }
                    out.push_str(", ");
                    field.dtype.write_descr(out);
                    if !field.shape.is_empty() {
                        out.push_str(", ");
                        out.push_str(&pyliteral::repr_tuple(&field.shape));
                    }
                    out.push(')');
                }
                out.push(']');
            }
        }
    }

    /// Whether this is a structured (record) dtype.
    #[must_use]
    pub fn is_structured(&self) -> bool {
        matches!(self, Self::Structured(_))
    }

    /// The scalar type, if this is not a structured dtype.
    #[must_use]
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Self::Scalar(s) => Some(s),
            Self::Structured(_) => None,
        }
    }

    /// The fields, if this is a structured dtype.
    #[must_use]
    pub fn fields(&self) -> Option<&[Field]> {
        match self {
            Self::Scalar(_) => None,
            Self::Structured(fields) => Some(fields),
        }
    }

    /// Whether any field name or title (at any depth) has a character above
    /// U+00FF, which cannot be written in a latin-1 (version 1.0 or 2.0)
    /// header, so the file must be NPY version 3.0.
    #[must_use]
    pub fn has_non_latin1(&self) -> bool {
        let non_latin1 = |s: &str| s.chars().any(|c| u32::from(c) > 0xff);
        match self {
            Self::Scalar(_) => false,
            Self::Structured(fields) => fields.iter().any(|f| {
                non_latin1(&f.name)
                    || f.title.as_deref().is_some_and(non_latin1)
                    || f.dtype.has_non_latin1()
            }),
        }
    }
}

impl fmt::Display for Dtype {
    /// The type string for a scalar (`<f4`, no quotes); the field list for a
    /// structured dtype (as [`Dtype::descr_repr`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scalar(s) => f.write_str(&s.type_str()),
            Self::Structured(_) => f.write_str(&self.descr_repr()),
        }
    }
}

fn bad_type(text: &str) -> FormatError {
    FormatError::malformed(
        None,
        format!("invalid dtype type string {}", pyliteral::repr_str(text)),
    )
}

/// Parses a decimal number with no sign and no superfluous leading zeros.
fn parse_decimal(digits: &str) -> Option<u64> {
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Parses and normalizes the text inside `M8[...]`: an optional positive
/// multiplier and a unit.
fn parse_time_unit(text: &str) -> Option<String> {
    const UNITS: [&str; 13] = [
        "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
    ];
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at_checked(split)?;
    if !UNITS.contains(&unit) {
        return None;
    }
    if digits.is_empty() {
        return Some(unit.to_owned());
    }
    match parse_decimal(digits)? {
        0 => None,
        1 => Some(unit.to_owned()),
        n => Some(format!("{n}{unit}")),
    }
}

/// Parses a type string such as `<f4`, `|S5`, `U3` or `<M8[ns]`.
fn parse_type_str(text: &str) -> Result<Scalar, FormatError> {
    let (order, rest) = match text.chars().next() {
        Some('<') => (ByteOrder::Little, text.get(1..)),
        Some('>') => (ByteOrder::Big, text.get(1..)),
        Some('|') => (ByteOrder::NotApplicable, text.get(1..)),
        Some('=') => (ByteOrder::host(), text.get(1..)),
        _ => (ByteOrder::NotApplicable, Some(text)),
    };
    let rest = rest.unwrap_or_default();
    let mut chars = rest.chars();
    let Some(code) = chars.next() else {
        return Err(bad_type(text));
    };
    let size_text = chars.as_str();
    let kind = match code {
        'b' => Kind::Bool,
        'i' => Kind::Int,
        'u' => Kind::UInt,
        'f' => Kind::Float,
        'c' => Kind::Complex,
        'S' | 'a' => Kind::Bytes,
        'U' => Kind::Unicode,
        'V' => Kind::Void,
        'M' => Kind::Datetime,
        'm' => Kind::Timedelta,
        'O' => {
            return Err(FormatError::unsupported(format!(
                "object dtype {}: object arrays hold Python object pointers, not data, \
                 and cannot be appended to",
                pyliteral::repr_str(text)
            )));
        }
        _ => return Err(bad_type(text)),
    };
    let mut unit = None;
    let size = match kind {
        Kind::Datetime | Kind::Timedelta => {
            let bracket = size_text.strip_prefix('8').ok_or_else(|| bad_type(text))?;
            if !bracket.is_empty() {
                let inner = bracket
                    .strip_prefix('[')
                    .and_then(|b| b.strip_suffix(']'))
                    .ok_or_else(|| bad_type(text))?;
                unit = Some(parse_time_unit(inner).ok_or_else(|| bad_type(text))?);
            }
            8
        }
        _ => {
            let n = parse_decimal(size_text).ok_or_else(|| bad_type(text))?;
            let valid: &[u64] = match kind {
                Kind::Bool => &[1],
                Kind::Int | Kind::UInt => &[1, 2, 4, 8],
                Kind::Float => &[2, 4, 8, 12, 16],
                Kind::Complex => &[8, 16, 24, 32],
                _ => &[],
            };
            match kind {
                Kind::Unicode => n.checked_mul(4).ok_or_else(|| bad_type(text))?,
                Kind::Bytes | Kind::Void => n,
                _ if valid.contains(&n) => n,
                _ => return Err(bad_type(text)),
            }
        }
    };
    Ok(Scalar {
        kind,
        order: normalize_order(kind, order, size),
        size,
        unit,
    })
}

fn bad_field(field: &PyValue, why: &str) -> FormatError {
    FormatError::malformed(None, format!("invalid dtype field {field}: {why}"))
}

/// Parses a subarray shape: a tuple of non-negative ints, or one int.
fn parse_shape(field: &PyValue, value: &PyValue) -> Result<Vec<u64>, FormatError> {
    let dim = |v: &PyValue| match v {
        PyValue::Int(n) => u64::try_from(*n)
            .map_err(|_| bad_field(field, "subarray dimensions must be between 0 and 2**64-1")),
        _ => Err(bad_field(field, "subarray dimensions must be ints")),
    };
    match value {
        PyValue::Tuple(items) => items.iter().map(dim).collect(),
        PyValue::Int(_) => Ok(vec![dim(value)?]),
        _ => Err(bad_field(
            field,
            "the subarray shape must be a tuple of ints",
        )),
    }
}

/// Parses a structured field list.
fn parse_fields(list: &[PyValue]) -> Result<Dtype, FormatError> {
    if list.is_empty() {
        return Err(FormatError::malformed(
            None,
            "structured dtype descriptor has no fields",
        ));
    }
    let mut fields = Vec::with_capacity(list.len());
    let mut seen: HashSet<&str> = HashSet::new();
    for item in list {
        let PyValue::Tuple(parts) = item else {
            return Err(bad_field(item, "a field must be a tuple"));
        };
        let (name_value, descr, shape) = match parts.as_slice() {
            [name, descr] => (name, descr, None),
            [name, descr, shape] => (name, descr, Some(shape)),
            _ => {
                return Err(bad_field(
                    item,
                    "a field must be (name, descr) or (name, descr, shape)",
                ));
            }
        };
        let (title, name) = match name_value {
            PyValue::Str(name) => (None, name),
            PyValue::Tuple(pair) => match pair.as_slice() {
                [PyValue::Str(title), PyValue::Str(name)] => (Some(title), name),
                _ => {
                    return Err(bad_field(
                        item,
                        "a titled field name must be a (title, name) pair of strs",
                    ));
                }
            },
            _ => return Err(bad_field(item, "the field name must be a str")),
        };
        let dtype = match descr {
            PyValue::Str(_) | PyValue::List(_) => Dtype::from_literal(descr)?,
            _ => {
                return Err(bad_field(
                    item,
                    "the field type must be a type string or a field list",
                ));
            }
        };
        let shape = match shape {
            Some(shape) => parse_shape(item, shape)?,
            None => Vec::new(),
        };
        for key in [Some(name), title].into_iter().flatten() {
            if !key.is_empty() && !seen.insert(key.as_str()) {
                return Err(FormatError::malformed(
                    None,
                    format!(
                        "structured dtype has more than one field named {}",
                        pyliteral::repr_str(key)
                    ),
                ));
            }
        }
        fields.push(Field {
            name: name.clone(),
            title: title.cloned(),
            dtype,
            shape,
        });
    }
    Ok(Dtype::Structured(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Dtype {
        match Dtype::parse_descr(text) {
            Ok(d) => d,
            Err(e) => panic!("{text:?} failed: {e}"),
        }
    }

    fn sc(kind: Kind, order: ByteOrder, size: u64) -> Dtype {
        Dtype::Scalar(Scalar {
            kind,
            order,
            size,
            unit: None,
        })
    }

    fn field(name: &str, dtype: Dtype) -> Field {
        Field {
            name: name.to_owned(),
            title: None,
            dtype,
            shape: Vec::new(),
        }
    }

    const HOST: ByteOrder = ByteOrder::host();
    const NA: ByteOrder = ByteOrder::NotApplicable;
    const LE: ByteOrder = ByteOrder::Little;
    const BE: ByteOrder = ByteOrder::Big;

    #[test]
    fn scalar_families() {
        let cases: &[(&str, Dtype, &str)] = &[
            ("'|b1'", sc(Kind::Bool, NA, 1), "'|b1'"),
            ("'<b1'", sc(Kind::Bool, NA, 1), "'|b1'"),
            ("'b1'", sc(Kind::Bool, NA, 1), "'|b1'"),
            ("'|i1'", sc(Kind::Int, NA, 1), "'|i1'"),
            ("'>i1'", sc(Kind::Int, NA, 1), "'|i1'"),
            ("'<i2'", sc(Kind::Int, LE, 2), "'<i2'"),
            ("'<i4'", sc(Kind::Int, LE, 4), "'<i4'"),
            ("'>i8'", sc(Kind::Int, BE, 8), "'>i8'"),
            ("'u1'", sc(Kind::UInt, NA, 1), "'|u1'"),
            ("'<u2'", sc(Kind::UInt, LE, 2), "'<u2'"),
            ("'>u4'", sc(Kind::UInt, BE, 4), "'>u4'"),
            ("'<u8'", sc(Kind::UInt, LE, 8), "'<u8'"),
            ("'<f2'", sc(Kind::Float, LE, 2), "'<f2'"),
            ("'<f4'", sc(Kind::Float, LE, 4), "'<f4'"),
            ("\"<f4\"", sc(Kind::Float, LE, 4), "'<f4'"),
            ("'>f8'", sc(Kind::Float, BE, 8), "'>f8'"),
            ("'<f12'", sc(Kind::Float, LE, 12), "'<f12'"),
            ("'<f16'", sc(Kind::Float, LE, 16), "'<f16'"),
            ("'<c8'", sc(Kind::Complex, LE, 8), "'<c8'"),
            ("'>c16'", sc(Kind::Complex, BE, 16), "'>c16'"),
            ("'<c32'", sc(Kind::Complex, LE, 32), "'<c32'"),
            ("'|S5'", sc(Kind::Bytes, NA, 5), "'|S5'"),
            ("'<S5'", sc(Kind::Bytes, NA, 5), "'|S5'"),
            ("'a5'", sc(Kind::Bytes, NA, 5), "'|S5'"),
            ("'|S0'", sc(Kind::Bytes, NA, 0), "'|S0'"),
            ("'<U5'", sc(Kind::Unicode, LE, 20), "'<U5'"),
            ("'>U1'", sc(Kind::Unicode, BE, 4), "'>U1'"),
            ("'|V16'", sc(Kind::Void, NA, 16), "'|V16'"),
            ("'V0'", sc(Kind::Void, NA, 0), "'|V0'"),
        ];
        for (text, want, repr) in cases {
            let got = parse(text);
            assert_eq!(&got, want, "{text}");
            assert_eq!(got.descr_repr(), *repr, "{text}");
            assert_eq!(parse(repr), got, "{repr}");
        }
    }

    #[test]
    fn native_order_is_host() {
        assert_eq!(parse("'=f8'"), sc(Kind::Float, HOST, 8));
        assert_eq!(parse("'f8'"), sc(Kind::Float, HOST, 8));
        assert_eq!(parse("'|f8'"), sc(Kind::Float, HOST, 8));
        assert_eq!(parse("'=U2'"), sc(Kind::Unicode, HOST, 8));
        assert_eq!(parse("'=u1'"), sc(Kind::UInt, NA, 1));
        let host = if cfg!(target_endian = "big") {
            '>'
        } else {
            '<'
        };
        assert_eq!(parse("'=f8'").descr_repr(), format!("'{host}f8'"));
        assert_eq!(
            Dtype::scalar(Kind::Int, ByteOrder::NotApplicable, 4),
            sc(Kind::Int, HOST, 4)
        );
        assert_eq!(Dtype::scalar(Kind::Int, LE, 1), sc(Kind::Int, NA, 1));
    }

    #[test]
    fn datetimes() {
        let dt = |kind, unit: Option<&str>| {
            Dtype::Scalar(Scalar {
                kind,
                order: LE,
                size: 8,
                unit: unit.map(str::to_owned),
            })
        };
        let cases = [
            ("'<M8'", dt(Kind::Datetime, None), "'<M8'"),
            ("'<M8[ns]'", dt(Kind::Datetime, Some("ns")), "'<M8[ns]'"),
            ("'<M8[D]'", dt(Kind::Datetime, Some("D")), "'<M8[D]'"),
            (
                "'<M8[10ms]'",
                dt(Kind::Datetime, Some("10ms")),
                "'<M8[10ms]'",
            ),
            ("'<M8[1ms]'", dt(Kind::Datetime, Some("ms")), "'<M8[ms]'"),
            ("'<m8'", dt(Kind::Timedelta, None), "'<m8'"),
            ("'<m8[Y]'", dt(Kind::Timedelta, Some("Y")), "'<m8[Y]'"),
            (
                "'<m8[25as]'",
                dt(Kind::Timedelta, Some("25as")),
                "'<m8[25as]'",
            ),
        ];
        for (text, want, repr) in cases {
            let got = parse(text);
            assert_eq!(got, want, "{text}");
            assert_eq!(got.descr_repr(), repr, "{text}");
            assert_eq!(got.itemsize().unwrap(), 8);
        }
        for unit in [
            "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
        ] {
            let d = parse(&format!("'>m8[{unit}]'"));
            assert_eq!(parse(&d.descr_repr()), d);
        }
    }

    #[test]
    fn bad_type_strings() {
        for text in [
            "''",
            "'<'",
            "'<f3'",
            "'x4'",
            "'<i16'",
            "'<i3'",
            "'<f'",
            "'f'",
            "'i'",
            "'b2'",
            "'<c4'",
            "'<f04'",
            "'S'",
            "'U'",
            "'<U-1'",
            "'<M4'",
            "'<M8[]'",
            "'<M8[xs]'",
            "'<M8[0s]'",
            "'<M8[01s]'",
            "'<M8[ns'",
            "'<M8ns'",
            "'<M8[ns]x'",
            "'<m'",
            "'<M'",
            "'<<f4'",
            "' <f4'",
            "'<f4 '",
            "'<U4611686018427387904'",
            "'<S99999999999999999999'",
            "'float32'",
            "'<F4'",
            "'?'",
            "3",
            "None",
            "True",
            "{}",
            "'<f4' 3",
        ] {
            match Dtype::parse_descr(text) {
                Err(FormatError::Malformed { .. }) => {}
                other => panic!("{text} should be malformed, got {other:?}"),
            }
        }
        assert!(
            Dtype::parse_descr("'<i16'")
                .unwrap_err()
                .to_string()
                .contains("'<i16'")
        );
    }

    #[test]
    fn object_is_unsupported() {
        for text in ["'O'", "'|O'", "'O8'", "'<O8'", "[('a', '|O')]"] {
            match Dtype::parse_descr(text) {
                Err(FormatError::Unsupported { what }) => {
                    assert!(what.contains("object"), "{what}");
                }
                other => panic!("{text} should be unsupported, got {other:?}"),
            }
        }
        assert!(matches!(
            Dtype::parse_descr("('<i4', (2,))"),
            Err(FormatError::Unsupported { .. })
        ));
    }

    #[test]
    fn structured() {
        let text = "[('a', '<i4'), ('b', '<f8', (3,)), ('', '|V4'), ('c', [('x', '|u1')])]";
        let d = parse(text);
        let want = Dtype::Structured(vec![
            field("a", sc(Kind::Int, LE, 4)),
            Field {
                shape: vec![3],
                ..field("b", sc(Kind::Float, LE, 8))
            },
            field("", sc(Kind::Void, NA, 4)),
            field(
                "c",
                Dtype::Structured(vec![field("x", sc(Kind::UInt, NA, 1))]),
            ),
        ]);
        assert_eq!(d, want);
        assert_eq!(d.descr_repr(), text);
        assert_eq!(d.itemsize().unwrap(), 4 + 24 + 4 + 1);
        assert!(d.is_structured());
        assert!(!d.has_non_latin1());
        assert_eq!(d.to_string(), text);
        assert_eq!(d.fields().map(<[Field]>::len), Some(4));
        assert!(d.as_scalar().is_none());
    }

    #[test]
    fn structured_variants() {
        let cases = [
            // (input, normalized repr, itemsize)
            ("[('a', '<i4', 3)]", "[('a', '<i4', (3,))]", 12),
            ("[('a', '<i4', ())]", "[('a', '<i4')]", 4),
            ("[('a', '<i4', (2, 3))]", "[('a', '<i4', (2, 3))]", 24),
            ("[('a', '<i4', (0,))]", "[('a', '<i4', (0,))]", 0),
            ("[('a', '<i4', (1,))]", "[('a', '<i4', (1,))]", 4),
            ("[(('T', 'a'), '<i4')]", "[(('T', 'a'), '<i4')]", 4),
            ("[(u'a', '<f8'),]", "[('a', '<f8')]", 8),
            (
                "[('', '|V4'), ('', '|V2')]",
                "[('', '|V4'), ('', '|V2')]",
                6,
            ),
            (
                "[('s', [('x', '<i2'), ('y', '<i2')], (2,))]",
                "[('s', [('x', '<i2'), ('y', '<i2')], (2,))]",
                8,
            ),
            ("[(\"it's\", '>f4')]", "[(\"it's\", '>f4')]", 4),
            ("[('é', '<U2')]", "[('é', '<U2')]", 8),
        ];
        for (text, repr, size) in cases {
            let d = parse(text);
            assert_eq!(d.descr_repr(), repr, "{text}");
            assert_eq!(d.itemsize().unwrap(), size, "{text}");
            assert_eq!(parse(repr), d, "{text}");
        }
        assert!(parse("[('α', '<i4')]").has_non_latin1());
        assert!(parse("[(('α', 'a'), '<i4')]").has_non_latin1());
        assert!(parse("[('s', [('ÿα', '<i4')])]").has_non_latin1());
        assert!(!parse("[('ÿ', '<i4')]").has_non_latin1());
    }

    #[test]
    fn bad_structured() {
        for text in [
            "[]",
            "[3]",
            "['a']",
            "[('a',)]",
            "[('a', '<i4', (3,), 1)]",
            "[(1, '<i4')]",
            "[(('T',), '<i4')]",
            "[(('T', 'a', 'b'), '<i4')]",
            "[((1, 'a'), '<i4')]",
            "[('a', 4)]",
            "[('a', ('<i4', (2,)))]",
            "[('a', '<i4'), ('a', '<f8')]",
            "[(('a', 'b'), '<i4'), ('a', '<f8')]",
            "[('a', '<i4', (-1,))]",
            "[('a', '<i4', -1)]",
            "[('a', '<i4', (1.5,))]",
            "[('a', '<i4', ('x',))]",
            "[('a', '<i4', [3])]",
            "[('a', '<i4', (18446744073709551616,))]",
            "[('a', [])]",
            "[('a', '<f3')]",
        ] {
            match Dtype::parse_descr(text) {
                Err(FormatError::Malformed { .. }) => {}
                other => panic!("{text} should be malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn itemsize_overflow() {
        let huge = "[('a', '|V18446744073709551615'), ('b', '|u1')]";
        assert!(parse(huge).itemsize().is_err());
        let huge = "[('a', '<f8', (4294967296, 4294967296))]";
        assert!(parse(huge).itemsize().is_err());
        assert_eq!(
            parse("'|V18446744073709551615'").itemsize().unwrap(),
            u64::MAX
        );
        assert_eq!(parse("'<U5'").itemsize().unwrap(), 20);
    }

    #[test]
    fn display() {
        assert_eq!(parse("'<f4'").to_string(), "<f4");
        assert_eq!(parse("'a3'").to_string(), "|S3");
        assert_eq!(parse("'<M8[us]'").to_string(), "<M8[us]");
        assert_eq!(parse("[('a', '<i4')]").to_string(), "[('a', '<i4')]");
    }

    #[test]
    fn repr_of_odd_names() {
        let d = Dtype::Structured(vec![
            field("tab\tquote'\"", sc(Kind::Int, LE, 4)),
            Field {
                title: Some("t\\".to_owned()),
                ..field("\u{1}", sc(Kind::Int, LE, 4))
            },
        ]);
        let repr = d.descr_repr();
        assert_eq!(
            repr,
            "[('tab\\tquote\\'\"', '<i4'), (('t\\\\', '\\x01'), '<i4')]"
        );
        assert_eq!(parse(&repr), d);
    }
}
