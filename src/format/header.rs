//! The NPY header: parsing it as numpy's `read_array_header` does, and
//! building it byte for byte as `np.save` does (numpy 1.24 and later).
//!
//! Layout: the magic string [`MAGIC`], a major and a minor version byte, the
//! length of the header text (a little-endian `u16` in version 1.0, `u32` in
//! versions 2.0 and 3.0), then the header text itself: a Python dict literal
//! with the keys `'descr'`, `'fortran_order'` and `'shape'`, padded with
//! spaces and ending in `\n` so that the data that follows starts at a
//! multiple of [`ARRAY_ALIGN`] bytes. The text is latin-1 in versions 1.0 and
//! 2.0 and UTF-8 in version 3.0.
//!
//! Commits rewrite the row count in place while numpy readers read the
//! header: [`update_writes`] gives the order of writes that keeps what those
//! readers see, and what a power loss leaves, a header of committed rows or
//! one that does not parse.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use super::FormatError;
use super::dtype::Dtype;
use super::pyliteral::{self, PyValue};

/// The first six bytes of every NPY file.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Digits numpy reserves for the growth axis length: `np.save` pads the header
/// with spaces so that the first (C order) or last (Fortran order) dimension
/// can grow to this many digits without changing the header length.
pub const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// numpy pads the header so that the data starts at a multiple of this.
pub const ARRAY_ALIGN: usize = 64;

/// Magic plus the two version bytes.
const MAGIC_LEN: usize = 8;

/// An NPY format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// 1.0: latin-1 header text, `u16` length.
    V1,
    /// 2.0: latin-1 header text, `u32` length.
    V2,
    /// 3.0: UTF-8 header text, `u32` length.
    V3,
}

impl Version {
    /// Bytes before the header text: magic, version and length field
    /// (10 for version 1.0, 12 otherwise).
    #[must_use]
    pub const fn prefix_len(self) -> usize {
        match self {
            Self::V1 => 10,
            Self::V2 | Self::V3 => 12,
        }
    }

    /// The `(major, minor)` version bytes.
    #[must_use]
    pub const fn major_minor(self) -> (u8, u8) {
        match self {
            Self::V1 => (1, 0),
            Self::V2 => (2, 0),
            Self::V3 => (3, 0),
        }
    }

    /// Largest header text length the length field can hold.
    const fn max_text_len(self) -> u64 {
        match self {
            Self::V1 => 0xffff,
            Self::V2 | Self::V3 => 0xffff_ffff,
        }
    }

    /// Whether the header text is UTF-8 (else latin-1).
    const fn is_utf8(self) -> bool {
        matches!(self, Self::V3)
    }
}

impl fmt::Display for Version {
    /// `1.0`, `2.0` or `3.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.major_minor();
        write!(f, "{major}.{minor}")
    }
}

/// A parsed NPY header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The format version.
    pub version: Version,
    /// The element type.
    pub dtype: Dtype,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array shape; empty for a 0-d array.
    pub shape: Vec<u64>,
    /// Total bytes before the data: magic, version, length field and text.
    pub header_len: u64,
}

impl Header {
    /// Offset of the first data byte in the file (= [`Header::header_len`]).
    #[must_use]
    pub fn data_offset(&self) -> u64 {
        self.header_len
    }

    /// The shape of one row: the shape without the growth axis, which is the
    /// first dimension in C order and the last in Fortran order. Empty for
    /// 0-d and 1-d arrays.
    #[must_use]
    pub fn row_shape(&self) -> &[u64] {
        let shape = self.shape.as_slice();
        let rest = if self.fortran_order {
            shape.split_last().map(|(_, rest)| rest)
        } else {
            shape.split_first().map(|(_, rest)| rest)
        };
        rest.unwrap_or_default()
    }

    /// The length of the growth axis (first dimension in C order, last in
    /// Fortran order); `None` for a 0-d array.
    #[must_use]
    pub fn growth_len(&self) -> Option<u64> {
        growth_dim(&self.shape, self.fortran_order)
    }

    /// Whether `other` describes rows laid out as these are: the same
    /// header length, dtype, order and row shape (the row count may differ).
    #[must_use]
    pub fn same_layout(&self, other: &Self) -> bool {
        self.header_len == other.header_len
            && self.dtype == other.dtype
            && self.fortran_order == other.fortran_order
            && self.row_shape() == other.row_shape()
    }

    /// Whether the header can be rewritten in place, at its present length,
    /// for any length of the growth axis (20 digits): what appending needs.
    /// `np.save` from numpy 1.24 on writes such headers; older writers may
    /// not. True for a 0-d array, whose header has nothing to grow.
    #[must_use]
    pub fn has_growth_room(&self) -> bool {
        let mut widest = self.shape.clone();
        let growth = if self.fortran_order {
            widest.last_mut()
        } else {
            widest.first_mut()
        };
        if let Some(growth) = growth {
            *growth = u64::MAX;
        }
        build_with_len(
            self.version,
            &self.dtype,
            self.fortran_order,
            &widest,
            self.header_len,
        )
        .is_ok()
    }

    /// Bytes of array data the header describes: the product of the shape
    /// times the item size.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] if the product overflows `u64`.
    pub fn data_len(&self) -> Result<u64, FormatError> {
        let itemsize = self.dtype.itemsize()?;
        self.shape
            .iter()
            .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                FormatError::malformed(
                    None,
                    format!(
                        "array data size overflows 64 bits (shape {}, item size {itemsize})",
                        pyliteral::repr_tuple(&self.shape)
                    ),
                )
            })
    }
}

fn growth_dim(shape: &[u64], fortran_order: bool) -> Option<u64> {
    if fortran_order {
        shape.last().copied()
    } else {
        shape.first().copied()
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Reads the fixed-size start of an NPY file: checks the magic and version
/// and returns the version and the total header length (the offset of the
/// first data byte).
///
/// `bytes` needs at least [`Version::prefix_len`] bytes: 10 for version 1.0,
/// 12 otherwise (passing 12 or more always suffices).
///
/// # Errors
///
/// [`FormatError::Malformed`] if `bytes` is too short or does not start with
/// [`MAGIC`]; [`FormatError::Unsupported`] for a version other than 1.0, 2.0
/// or 3.0.
pub fn parse_prefix(bytes: &[u8]) -> Result<(Version, u64), FormatError> {
    if bytes.is_empty() {
        return Err(too_short(0, MAGIC_LEN));
    }
    let magic = bytes.get(..MAGIC.len()).unwrap_or(bytes);
    if !MAGIC.starts_with(magic) {
        return Err(FormatError::malformed(
            Some(0),
            "not an NPY file: it does not start with the magic string \\x93NUMPY",
        ));
    }
    let (Some(&major), Some(&minor)) = (bytes.get(6), bytes.get(7)) else {
        return Err(too_short(bytes.len(), MAGIC_LEN));
    };
    let version = match (major, minor) {
        (1, 0) => Version::V1,
        (2, 0) => Version::V2,
        (3, 0) => Version::V3,
        _ => {
            return Err(FormatError::unsupported(format!(
                "unsupported NPY version {major}.{minor} (only 1.0, 2.0 and 3.0 are known)"
            )));
        }
    };
    let prefix = version.prefix_len();
    let field = bytes
        .get(MAGIC_LEN..prefix)
        .ok_or_else(|| too_short(bytes.len(), prefix))?;
    let text_len = match *field {
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => return Err(too_short(bytes.len(), prefix)),
    };
    // At most 12 + 0xffff_ffff: cannot overflow.
    let total = to_u64(prefix).saturating_add(text_len);
    Ok((version, total))
}

fn too_short(have: usize, need: usize) -> FormatError {
    FormatError::malformed(
        Some(to_u64(have)),
        format!("NPY header truncated: need {need} bytes, have {have}"),
    )
}

/// Parses a complete NPY header.
///
/// `bytes` must hold at least the first `header_len` bytes of the file (as
/// returned by [`parse_prefix`]); anything after them is ignored.
///
/// # Errors
///
/// [`FormatError::Malformed`] if the header is truncated or breaks any rule
/// numpy's reader enforces (the text must be a dict literal with exactly the
/// keys `'descr'`, `'fortran_order'` and `'shape'`; `shape` a tuple of
/// non-negative ints; `fortran_order` a bool; `descr` a valid descriptor);
/// [`FormatError::Unsupported`] for unknown versions and for dtypes this crate
/// cannot append to (such as object arrays). Offsets are from the start of
/// `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Header, FormatError> {
    let (version, header_len) = parse_prefix(bytes)?;
    let prefix = version.prefix_len();
    let end = usize::try_from(header_len)
        .ok()
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            FormatError::malformed(
                Some(to_u64(bytes.len())),
                format!(
                    "NPY header truncated: the header is {header_len} bytes, only {} available",
                    bytes.len()
                ),
            )
        })?;
    let raw = bytes.get(prefix..end).unwrap_or_default();
    let base = to_u64(prefix);

    let value = if version.is_utf8() {
        let text = std::str::from_utf8(raw).map_err(|e| {
            FormatError::malformed(
                Some(base.saturating_add(to_u64(e.valid_up_to()))),
                format!("NPY version {version} header text is not valid UTF-8"),
            )
        })?;
        pyliteral::parse(text).map_err(|e| relocate(e, |off| base.saturating_add(off)))?
    } else {
        let text: String = raw.iter().copied().map(char::from).collect();
        pyliteral::parse_py2_compat(&text).map_err(|e| {
            relocate(e, |off| {
                // Byte offsets in the decoded text differ from file offsets
                // for characters >= 0x80 (one byte in latin-1, two in UTF-8).
                let chars = usize::try_from(off)
                    .ok()
                    .and_then(|off| text.get(..off))
                    .map_or(off, |s| to_u64(s.chars().count()));
                base.saturating_add(chars)
            })
        })?
    };
    let (dtype, fortran_order, shape) = header_fields(&value)?;
    Ok(Header {
        version,
        dtype,
        fortran_order,
        shape,
        header_len,
    })
}

fn relocate(err: FormatError, map: impl Fn(u64) -> u64) -> FormatError {
    match err {
        FormatError::Malformed {
            offset: Some(off),
            what,
        } => FormatError::Malformed {
            offset: Some(map(off)),
            what,
        },
        other => other,
    }
}

fn header_err(what: impl Into<String>) -> FormatError {
    FormatError::malformed(None, what)
}

/// Checks the header dict and extracts its three entries.
fn header_fields(value: &PyValue) -> Result<(Dtype, bool, Vec<u64>), FormatError> {
    let PyValue::Dict(items) = value else {
        return Err(header_err(format!(
            "NPY header is not a dict but a {}",
            value.type_name()
        )));
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in items {
        let slot = match key {
            PyValue::Str(k) if k == "descr" => &mut descr,
            PyValue::Str(k) if k == "fortran_order" => &mut fortran,
            PyValue::Str(k) if k == "shape" => &mut shape,
            other => {
                return Err(header_err(format!(
                    "NPY header has an unexpected key {other}"
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(header_err(format!("NPY header has the key {key} twice")));
        }
    }
    let descr = descr.ok_or_else(|| header_err("NPY header has no 'descr' key"))?;
    let fortran = fortran.ok_or_else(|| header_err("NPY header has no 'fortran_order' key"))?;
    let shape = shape.ok_or_else(|| header_err("NPY header has no 'shape' key"))?;

    let PyValue::Bool(fortran) = *fortran else {
        return Err(header_err(format!(
            "NPY header 'fortran_order' is not a bool: {fortran}"
        )));
    };
    let bad_shape = || header_err(format!("NPY header 'shape' is not valid: {shape}"));
    let PyValue::Tuple(dims) = shape else {
        return Err(bad_shape());
    };
    let dims = dims
        .iter()
        .map(|d| match d {
            PyValue::Int(n) => u64::try_from(*n).map_err(|_| bad_shape()),
            _ => Err(bad_shape()),
        })
        .collect::<Result<Vec<u64>, _>>()?;
    let dtype = Dtype::from_literal(descr).map_err(|e| match e {
        FormatError::Malformed { offset, what } => FormatError::Malformed {
            offset,
            what: format!("NPY header 'descr' is not valid: {what}"),
        },
        other @ FormatError::Unsupported { .. } => other,
    })?;
    Ok((dtype, fortran, dims))
}

/// The header dict text numpy writes, without any padding.
fn dict_text(dtype: &Dtype, fortran_order: bool, shape: &[u64]) -> String {
    descr_dict_text(&dtype.descr_repr(), fortran_order, shape)
}

/// [`dict_text`] for a descriptor given as its text.
fn descr_dict_text(descr: &str, fortran_order: bool, shape: &[u64]) -> String {
    format!(
        "{{'descr': {descr}, 'fortran_order': {}, 'shape': {}, }}",
        if fortran_order { "True" } else { "False" },
        pyliteral::repr_tuple(shape),
    )
}

/// Encodes header text for `version`: latin-1 for 1.0 and 2.0, UTF-8 for 3.0.
/// `None` if a character is not latin-1 and the version needs latin-1.
fn encode(version: Version, text: &str) -> Option<Vec<u8>> {
    if version.is_utf8() {
        Some(text.as_bytes().to_vec())
    } else {
        text.chars().map(|c| u8::try_from(c).ok()).collect()
    }
}

/// Assembles prefix, text, `pad` spaces and the final newline. `None` if the
/// text length does not fit the version's length field.
fn assemble(version: Version, text: &[u8], pad: usize) -> Option<Vec<u8>> {
    let text_len = text.len().checked_add(pad)?.checked_add(1)?;
    if to_u64(text_len) > version.max_text_len() {
        return None;
    }
    let (major, minor) = version.major_minor();
    let mut out = Vec::with_capacity(version.prefix_len().checked_add(text_len)?);
    out.extend_from_slice(MAGIC);
    out.push(major);
    out.push(minor);
    match version {
        Version::V1 => out.extend_from_slice(&u16::try_from(text_len).ok()?.to_le_bytes()),
        Version::V2 | Version::V3 => {
            out.extend_from_slice(&u32::try_from(text_len).ok()?.to_le_bytes());
        }
    }
    out.extend_from_slice(text);
    out.resize(out.len().checked_add(pad)?, b' ');
    out.push(b'\n');
    Some(out)
}

/// Builds the header `np.save` writes for an array of this dtype, order and
/// shape, byte for byte (numpy 1.24 and later): the dict text, spaces for the
/// growth axis to reach [`GROWTH_AXIS_MAX_DIGITS`] digits, then spaces and a
/// newline up to a multiple of [`ARRAY_ALIGN`] bytes, in the lowest version
/// that can hold it (1.0; 2.0 if the text is longer than 65535 bytes; 3.0 if
/// a field name is not latin-1).
///
/// Because of the growth padding, headers for shapes that differ only in the
/// growth axis have the same length.
///
/// # Errors
///
/// [`FormatError::Unsupported`] if the header would be longer than 4 GiB.
pub fn build(dtype: &Dtype, fortran_order: bool, shape: &[u64]) -> Result<Vec<u8>, FormatError> {
    build_for_descr(&dtype.descr_repr(), fortran_order, shape)
}

/// [`build`] for a dtype given as the descriptor text numpy writes for it
/// (Python's `repr` of `numpy.lib.format.dtype_to_descr(dtype)`, such as
/// `'<f4'` or `'|O'`), also for dtypes [`Dtype`] does not hold (object
/// arrays). Its length is what decides, as numpy and npy-append-array see
/// it, whether a header can be rewritten in place as numpy writes it.
///
/// # Errors
///
/// [`FormatError::Unsupported`] if the header would be longer than 4 GiB.
pub fn build_for_descr(
    descr: &str,
    fortran_order: bool,
    shape: &[u64],
) -> Result<Vec<u8>, FormatError> {
    let mut text = descr_dict_text(descr, fortran_order, shape);
    if let Some(dim) = growth_dim(shape, fortran_order) {
        let digits = dim.to_string().len();
        let spaces = GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits);
        text.extend(std::iter::repeat_n(' ', spaces));
    }
    for version in [Version::V1, Version::V2, Version::V3] {
        let Some(encoded) = encode(version, &text) else {
            continue;
        };
        let fixed = version
            .prefix_len()
            .saturating_add(encoded.len())
            .saturating_add(1);
        let pad = ARRAY_ALIGN - fixed % ARRAY_ALIGN;
        if let Some(out) = assemble(version, &encoded, pad) {
            return Ok(out);
        }
    }
    Err(FormatError::unsupported(format!(
        "NPY header for dtype {descr} would be longer than 4 GiB"
    )))
}

/// Builds a header with the same text as [`build`] in the given version,
/// padded with spaces to exactly `header_len` bytes in total (ending in
/// `\n`), so it can overwrite an existing header of that length in place.
///
/// `header_len` is the length of a header the caller already holds (from
/// [`parse_prefix`]); this function allocates that many bytes.
///
/// # Errors
///
/// [`FormatError::Unsupported`] if the text does not fit in `header_len`
/// bytes, if `header_len` is too large for the version's length field, or if
/// the version cannot encode the text (a non-latin-1 field name in a version
/// 1.0 or 2.0 header).
pub fn build_with_len(
    version: Version,
    dtype: &Dtype,
    fortran_order: bool,
    shape: &[u64],
    header_len: u64,
) -> Result<Vec<u8>, FormatError> {
    let text = dict_text(dtype, fortran_order, shape);
    let encoded = encode(version, &text).ok_or_else(|| {
        FormatError::unsupported(format!(
            "NPY version {version} headers are latin-1 and cannot hold the field names of \
             dtype {dtype} (version 3.0 is needed)"
        ))
    })?;
    let prefix = version.prefix_len();
    let needed = to_u64(prefix)
        .saturating_add(to_u64(encoded.len()))
        .saturating_add(1);
    if header_len < needed {
        return Err(FormatError::unsupported(format!(
            "NPY header needs {needed} bytes but only {header_len} are available"
        )));
    }
    let too_long = || {
        FormatError::unsupported(format!(
            "NPY version {version} header cannot be {header_len} bytes long"
        ))
    };
    let pad = header_len
        .checked_sub(needed)
        .and_then(|p| usize::try_from(p).ok())
        .ok_or_else(too_long)?;
    assemble(version, &encoded, pad).ok_or_else(too_long)
}

/// A shape as numpy writes it (Python's `repr` of a tuple): `()`, `(3,)`,
/// `(3, 4)`.
#[must_use]
pub fn shape_repr(shape: &[u64]) -> String {
    pyliteral::repr_tuple(shape)
}

/// A header of fixed length, re-rendered for a new growth-axis length
/// without formatting its text again: what every commit writes.
///
/// Holds the header's bytes up to the first digit of the growth length and
/// the encoded text after its digits; [`GrowthTemplate::render`] puts the
/// digits between them and pads to the same length. The result equals
/// [`build_with_len`] for the same shape, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrowthTemplate {
    /// Prefix and text up to the growth length's first digit.
    head: Vec<u8>,
    /// Encoded text after the growth length's last digit.
    tail: Vec<u8>,
    /// Total header length, newline included.
    header_len: usize,
}

impl GrowthTemplate {
    /// The template of the header [`build_with_len`] builds for these
    /// arguments; `shape` must have at least one axis.
    ///
    /// # Errors
    ///
    /// What [`build_with_len`] returns for this shape;
    /// [`FormatError::Unsupported`] for a 0-d shape.
    pub fn new(
        version: Version,
        dtype: &Dtype,
        fortran_order: bool,
        shape: &[u64],
        header_len: u64,
    ) -> Result<Self, FormatError> {
        let growth = if fortran_order {
            shape.len().checked_sub(1)
        } else {
            (!shape.is_empty()).then_some(0)
        }
        .ok_or_else(|| FormatError::unsupported("a 0-d array (shape ()) has no axis to grow"))?;
        let whole = build_with_len(version, dtype, fortran_order, shape, header_len)?;
        let mut head_text = format!(
            "{{'descr': {}, 'fortran_order': {}, 'shape': (",
            dtype.descr_repr(),
            if fortran_order { "True" } else { "False" },
        );
        let mut tail_text = String::new();
        for (i, dim) in shape.iter().enumerate() {
            if i < growth {
                let _ = write!(head_text, "{dim}, ");
            } else if i > growth {
                let _ = write!(tail_text, ", {dim}");
            }
        }
        if shape.len() == 1 {
            tail_text.push(',');
        }
        tail_text.push_str("), }");
        let unencodable = || {
            FormatError::unsupported(format!(
                "NPY version {version} headers cannot hold the text of dtype {dtype}"
            ))
        };
        let head_len = version
            .prefix_len()
            .checked_add(encode(version, &head_text).ok_or_else(unencodable)?.len())
            .ok_or_else(unencodable)?;
        let template = Self {
            head: whole.get(..head_len).unwrap_or_default().to_vec(),
            tail: encode(version, &tail_text).ok_or_else(unencodable)?,
            header_len: whole.len(),
        };
        // Built from the same pieces as `dict_text`; checked against it.
        match shape.get(growth).and_then(|&rows| template.render(rows)) {
            Some(rendered) if rendered == whole => Ok(template),
            _ => Err(FormatError::unsupported(
                "the header text could not be split at its growth axis",
            )),
        }
    }

    /// The whole header for a growth length of `rows`; `None` when its
    /// digits do not fit in the header's length.
    #[must_use]
    pub fn render(&self, rows: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.render_into(rows, &mut out).then_some(out)
    }

    /// [`render`](Self::render) into `out`, which is cleared first; false
    /// (and `out` empty) when the digits do not fit.
    pub fn render_into(&self, rows: u64, out: &mut Vec<u8>) -> bool {
        out.clear();
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = rows;
        loop {
            start -= 1;
            let digit = u8::try_from(rest % 10).unwrap_or_default();
            if let Some(d) = digits.get_mut(start) {
                *d = b'0' + digit;
            }
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let digits = digits.get(start..).unwrap_or_default();
        let pad = self
            .head
            .len()
            .checked_add(digits.len())
            .and_then(|n| n.checked_add(self.tail.len()))
            .and_then(|n| n.checked_add(1))
            .and_then(|used| self.header_len.checked_sub(used));
        let Some(pad) = pad else {
            return false;
        };
        out.reserve(self.header_len);
        out.extend_from_slice(&self.head);
        out.extend_from_slice(digits);
        out.extend_from_slice(&self.tail);
        out.resize(out.len() + pad, b' ');
        out.push(b'\n');
        true
    }
}

/// One `pwrite` of an in-place header update: `bytes` at `offset` bytes
/// from the start of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderWrite<'a> {
    /// Offset from the start of the file.
    pub offset: usize,
    /// The bytes to write there.
    pub bytes: Cow<'a, [u8]>,
}

/// The byte a header update parks in the header while the text moves (the
/// row count gains or loses a digit): numpy refuses any header holding a
/// NUL byte (Python source cannot contain one).
pub const PARKED: u8 = 0;

/// The writes that turn the header `old` into `new` in place, in the order
/// they must be issued, one `pwrite` each, each returning before the next
/// starts: what a commit writes instead of the whole header text.
///
/// numpy readers re-read the header while it is rewritten, and a `read` is
/// not atomic with respect to a concurrent `write` of the same page (the
/// kernel copies without a lock). The order keeps every header such a
/// reader can see either unparsable or of the same dtype, order and row
/// shape with a growth length no larger than the larger of the two. The
/// reader model (see "Readers during a commit" in `docs/design.md`): the
/// bytes of one write land in any order, a write lands whole before the
/// next one starts, and a read copies forward (increasing offsets), each
/// byte as it is at the moment it is copied.
///
/// A power loss may keep any subset of the writes not yet synced (of this
/// update and of earlier ones), or tear one into zeros or garbage. Every
/// write of an update in place is therefore the whole header text after
/// the length field, as the single write of earlier versions was: the text
/// of `new`, of a header between `old` and `new`, or of a header holding a
/// NUL that only a later write clears. Each write rewrites the bytes it
/// does not change with the values they already hold, which a concurrent
/// reader cannot tell from no write at all; so a reader sees only the
/// changes listed below, while a write torn into garbage must spell the
/// whole dict again (the braces, the three keys in quotes, the dtype) to
/// parse, where a write of the changed bytes alone needs only digits (a
/// random byte is one in 10 times in 256). What a power loss leaves is a
/// header this writer wrote whole, or one that does not parse (recovery
/// rebuilds it from the journal's copy).
///
/// - Nothing differs: no write.
/// - One byte differs, or the differing bytes all lie in one run of digits
///   and each moves the same way (all up or all down): the text of `new`.
/// - The differing bytes lie in one run of digits otherwise (a carry, such
///   as `307950` to `308000`): first the text of a header between the two,
///   then the text of `new`. For a larger count the header between has the
///   new digits under the old first differing one (`307000`); for a
///   smaller count, that digit new and the old digits under it. A reader
///   then sees a count between the old and the new one, or below both:
///   under the model above, even when its read is suspended in the middle
///   for any time.
/// - The count gains or loses a digit (the text after it moves): the text
///   of `old` with [`PARKED`] at the last differing byte; then, right to
///   left, one write for each other differing byte, which changes that
///   byte to its value in `new` (the bytes after it up to the parked one
///   already hold theirs); then the text of `new`. Every header between the
///   first and the last write holds a NUL. A reader whose read is suspended
///   inside the header for the whole update can still join a prefix of
///   `old` to a suffix of `new`; no order of writes prevents that, and this
///   order adds no other view.
/// - Anything else (a repair: `old` does not parse, or describes other
///   rows): the text of `old` with the NUL, then the text holding all the
///   differing bytes of `new` and the NUL, then the text of `new`. A reader
///   that overlaps one write sees `old`, `new` or a header holding a NUL.
///
/// Headers of different lengths cannot be updated in place: the plan is
/// then all of `new` in one write, with no promise to readers.
#[must_use]
pub fn update_writes<'a>(old: &'a [u8], new: &'a [u8]) -> UpdateWrites<'a> {
    let mut plan = UpdateWrites {
        old,
        new,
        head: [None, None],
        rest: Vec::new().into_iter(),
    };
    if old.len() != new.len() {
        plan.head[0] = Some(Step::Text(0, None));
        return plan;
    }
    let differs = |i: &usize| old.get(*i) != new.get(*i);
    let pairs = || old.iter().zip(new);
    let (Some(first), Some(last)) = (
        pairs().position(|(a, b)| a != b),
        pairs().rposition(|(a, b)| a != b),
    ) else {
        return plan;
    };
    // The text starts after the prefix when the prefix is unchanged.
    let text = parse_prefix(new)
        .map(|(version, _)| version.prefix_len())
        .ok()
        .filter(|&n| n <= first)
        .unwrap_or(0);
    let whole = Step::Text(text, None);
    match kind_of_change(old, new, first, last) {
        Change::OneWay => plan.head = [Some(whole), None],
        Change::Carry(kept) => plan.head = [Some(Step::Text(text, Some(kept))), Some(whole)],
        Change::Other => {
            let mut steps = vec![Step::ParkOld(text, last)];
            if same_layout(old, new) {
                steps.extend(
                    (first..last)
                        .rev()
                        .filter(|i| differs(i))
                        .map(|i| Step::Parked(text, i, last)),
                );
            } else {
                steps.push(Step::Parked(text, first, last));
            }
            steps.push(whole);
            plan.rest = steps.into_iter();
        }
    }
    plan
}

/// Whether both headers parse and describe rows of the same layout (a
/// count update, not a repair).
fn same_layout(old: &[u8], new: &[u8]) -> bool {
    matches!((parse(old), parse(new)), (Ok(a), Ok(b)) if a.same_layout(&b))
}

/// What differs between two headers of the same length.
enum Change {
    /// One byte, or digits of one run all moving the same way.
    OneWay,
    /// Digits of one run moving both ways: the header between the two
    /// keeps the old bytes of this range.
    Carry((usize, usize)),
    /// Anything else.
    Other,
}

/// Classifies the differing bytes `first..=last`.
fn kind_of_change(old: &[u8], new: &[u8], first: usize, last: usize) -> Change {
    let (Some(o), Some(n)) = (old.get(first..=last), new.get(first..=last)) else {
        return Change::Other;
    };
    if first == last {
        return Change::OneWay;
    }
    if !(o.iter().all(u8::is_ascii_digit) && n.iter().all(u8::is_ascii_digit)) {
        return Change::Other;
    }
    // The bytes around the range are equal, so the runs of digits holding
    // it have the same extent: the digits compare as the numbers do.
    let up = o.first() < n.first();
    let same_way = o
        .iter()
        .zip(n)
        .all(|(a, b)| if up { a <= b } else { a >= b });
    if same_way {
        Change::OneWay
    } else if up {
        Change::Carry((first, first + 1))
    } else {
        Change::Carry((first + 1, last + 1))
    }
}

/// One write of a plan.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// `new[start..]`, with the bytes of the range, if any, as in `old`.
    Text(usize, Option<(usize, usize)>),
    /// `old[start..]` with [`PARKED`] at `last`.
    ParkOld(usize, usize),
    /// `old[text..]` with the bytes `from..last` as in `new` and
    /// [`PARKED`] at `last`: `Parked(text, from, last)`.
    Parked(usize, usize, usize),
}

/// The writes of [`update_writes`], in order.
#[derive(Debug, Clone)]
pub struct UpdateWrites<'a> {
    old: &'a [u8],
    new: &'a [u8],
    /// The one or two writes of most updates (no allocation)...
    head: [Option<Step>; 2],
    /// ...or the writes of a moving text.
    rest: std::vec::IntoIter<Step>,
}

impl<'a> Iterator for UpdateWrites<'a> {
    type Item = HeaderWrite<'a>;

    fn next(&mut self) -> Option<HeaderWrite<'a>> {
        let step = self
            .head
            .iter_mut()
            .find_map(Option::take)
            .or_else(|| self.rest.next())?;
        let (offset, bytes) = match step {
            Step::Text(start, None) => (start, Cow::Borrowed(self.new.get(start..)?)),
            Step::Text(start, Some((from, to))) => {
                let mut bytes = self.new.get(start..)?.to_vec();
                bytes
                    .get_mut(from.checked_sub(start)?..to.checked_sub(start)?)?
                    .copy_from_slice(self.old.get(from..to)?);
                (start, Cow::Owned(bytes))
            }
            Step::ParkOld(start, last) => {
                let mut bytes = self.old.get(start..)?.to_vec();
                *bytes.get_mut(last.checked_sub(start)?)? = PARKED;
                (start, Cow::Owned(bytes))
            }
            Step::Parked(start, from, last) => {
                let mut bytes = self.old.get(start..)?.to_vec();
                bytes
                    .get_mut(from.checked_sub(start)?..last.checked_sub(start)?)?
                    .copy_from_slice(self.new.get(from..last)?);
                *bytes.get_mut(last.checked_sub(start)?)? = PARKED;
                (start, Cow::Owned(bytes))
            }
        };
        Some(HeaderWrite { offset, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dtype::{ByteOrder, Kind};

    // Golden headers written by numpy 2.4 (np.save, or its _write_array_header
    // for shapes too large to allocate).
    const F4_3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }                                                            \x0a";
    const B1_0: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (0,), }                                                            \x0a";
    const U5_2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }                                                            \x0a";
    const STRUCT_7: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': [('a', '<i4'), ('b', '<f8', (3,))], 'fortran_order': False, 'shape': (7,), }                               \x0a";
    const FORTRAN_3X4: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4), }                                                           \x0a";
    const C_3X4: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }                                                          \x0a";
    const ALPHA_2: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': [('\xce\xb1', '<i4')], 'fortran_order': False, 'shape': (2,), }                                                \x0a";
    const EACUTE_2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': [('\xe9', '<i4')], 'fortran_order': False, 'shape': (2,), }                                                   \x0a";
    const SCALAR_0D: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (), }                                                              \x0a";
    const BE_I2_5: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>i2', 'fortran_order': False, 'shape': (5,), }                                                            \x0a";
    const M8NS_4: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (4,), }                                                        \x0a";
    const TITLED_1: &[u8] = b"\x93NUMPY\x01\x00\xb6\x00{'descr': [(('Title A', 'a'), '<i4'), ('', '|V4'), ('b', '|u1'), ('', '|V3')], 'fortran_order': False, 'shape': (1,), }                                                              \x0a";
    const NESTED_2: &[u8] = b"\x93NUMPY\x01\x00\xb6\x00{'descr': [('s', [('x', '<i2'), ('y', '|u1')], (2,)), ('t', '<c16')], 'fortran_order': False, 'shape': (2,), }                                                                       \x0a";
    const HUGE_GROWTH: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 2), }                                       \x0a";
    const GROWTH_1: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }                                                          \x0a";
    const FORTRAN_GROWTH: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 10000000000000000000), }                                        \x0a";
    const EMPTY_DIMS: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (0, 0, 0), }                                                       \x0a";

    const GOLDEN: &[&[u8]] = &[
        F4_3,
        B1_0,
        U5_2,
        STRUCT_7,
        FORTRAN_3X4,
        C_3X4,
        ALPHA_2,
        EACUTE_2,
        SCALAR_0D,
        BE_I2_5,
        M8NS_4,
        TITLED_1,
        NESTED_2,
        HUGE_GROWTH,
        GROWTH_1,
        FORTRAN_GROWTH,
        EMPTY_DIMS,
    ];

    fn f4() -> Dtype {
        Dtype::scalar(Kind::Float, ByteOrder::Little, 4)
    }

    /// numpy's own headers (1.24 and later) have room for any row count;
    /// a header padded only to its text does not; a 0-d header has nothing
    /// to grow.
    #[test]
    fn growth_room() {
        for golden in [
            F4_3,
            C_3X4,
            FORTRAN_3X4,
            STRUCT_7,
            ALPHA_2,
            HUGE_GROWTH,
            SCALAR_0D,
        ] {
            assert!(parse(golden).unwrap().has_growth_room(), "{golden:?}");
        }
        let tight = build_with_len(Version::V1, &f4(), false, &[3, 2], 73).unwrap();
        let h = parse(&tight).unwrap();
        assert_eq!(h.header_len, 73);
        assert!(!h.has_growth_room());
    }

    /// The template renders exactly what `build_with_len` builds, for every
    /// golden header (C and Fortran order, 1-D to 3-D, versions 1.0 and 3.0,
    /// structured and non-latin-1 names), at lengths of every digit count,
    /// and refuses exactly the lengths `build_with_len` cannot fit.
    #[test]
    fn growth_template_renders_what_build_with_len_builds() {
        let mut checked = 0;
        for golden in GOLDEN {
            let h = parse(golden).unwrap();
            if h.shape.is_empty() {
                assert!(
                    GrowthTemplate::new(
                        h.version,
                        &h.dtype,
                        h.fortran_order,
                        &h.shape,
                        h.header_len
                    )
                    .is_err()
                );
                continue;
            }
            let t =
                GrowthTemplate::new(h.version, &h.dtype, h.fortran_order, &h.shape, h.header_len)
                    .unwrap();
            let mut rows = vec![
                0,
                1,
                9,
                10,
                99,
                100,
                65_535,
                1 << 40,
                u64::MAX - 1,
                u64::MAX,
            ];
            rows.extend((0..20).map(|p| 10u64.pow(p)));
            for n in rows {
                let mut shape = h.shape.clone();
                let axis = if h.fortran_order { shape.len() - 1 } else { 0 };
                shape[axis] = n;
                let built =
                    build_with_len(h.version, &h.dtype, h.fortran_order, &shape, h.header_len).ok();
                assert_eq!(
                    t.render(n),
                    built,
                    "{:?} rows {n}",
                    String::from_utf8_lossy(golden)
                );
                checked += 1;
            }
        }
        assert!(checked > 400, "{checked}");
        // A header too short for 20 digits: the long lengths do not fit.
        // 70 bytes with one digit: 73 bytes fit four.
        let t = GrowthTemplate::new(Version::V1, &f4(), false, &[3, 2], 73).unwrap();
        let tight = build_with_len(Version::V1, &f4(), false, &[9999, 2], 73).unwrap();
        assert_eq!(t.render(9999).as_deref(), Some(&tight[..]));
        assert!(build_with_len(Version::V1, &f4(), false, &[10_000, 2], 73).is_err());
        assert_eq!(t.render(10_000), None);
        assert_eq!(t.render(u64::MAX), None);
    }

    fn malformed(bytes: &[u8]) -> FormatError {
        match parse(bytes) {
            Err(e @ FormatError::Malformed { .. }) => e,
            other => panic!(
                "{:?} should be malformed, got {other:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// Wraps `text` in a version 1.0 prefix (no padding or newline added).
    fn v1(text: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
        out.extend_from_slice(text);
        out
    }

    fn v3(text: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[3, 0]);
        out.extend_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
        out.extend_from_slice(text);
        out
    }

    #[test]
    fn f4_matches_numpy_by_arithmetic() {
        // The text is 57 characters, plus 21 - 1 growth spaces (the length 3
        // has one digit) = 77; plus the newline = 78; 10 + 78 = 88, so 40
        // more spaces reach 128. The length field is 118 = b'v', and 60
        // spaces precede the newline.
        let text = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        assert_eq!(text.len(), 57);
        let mut want = b"\x93NUMPY\x01\x00v\x00".to_vec();
        want.extend_from_slice(text.as_bytes());
        want.extend(std::iter::repeat_n(b' ', 60));
        want.push(b'\n');
        assert_eq!(want.len(), 128);
        assert_eq!(want, F4_3);
        assert_eq!(build(&f4(), false, &[3]).unwrap(), want);
    }

    #[test]
    fn build_for_descr_is_build_for_any_descriptor_text() {
        assert_eq!(
            build_for_descr("'<f4'", false, &[3]).unwrap(),
            build(&f4(), false, &[3]).unwrap()
        );
        // An object array, which `Dtype` does not hold: numpy writes the
        // same bytes as for '<f4' but for the descriptor.
        let mut want =
            b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"
                .to_vec();
        want.extend(std::iter::repeat_n(b' ', 61));
        want.push(b'\n');
        assert_eq!(build_for_descr("'|O'", false, &[3]).unwrap(), want);
        // A text whose prefix, growth padding and newline end exactly on
        // 64 bytes gets 64 more spaces, as numpy pads it.
        let descr = format!("'{}'", "x".repeat(43));
        let header = build_for_descr(&descr, false, &[3]).unwrap();
        let minimal = 10 + descr_dict_text(&descr, false, &[3]).len() + 20 + 1;
        assert_eq!(minimal % ARRAY_ALIGN, 0);
        assert_eq!(header.len(), minimal + ARRAY_ALIGN);
    }

    #[test]
    fn golden_round_trip() {
        for &golden in GOLDEN {
            let h = parse(golden).unwrap();
            assert_eq!(h.header_len, u64::try_from(golden.len()).unwrap());
            assert_eq!(h.data_offset() % 64, 0);
            assert_eq!(
                build(&h.dtype, h.fortran_order, &h.shape).unwrap(),
                golden,
                "{}",
                String::from_utf8_lossy(golden)
            );
            let again =
                build_with_len(h.version, &h.dtype, h.fortran_order, &h.shape, h.header_len)
                    .unwrap();
            assert_eq!(again, golden);
            assert_eq!(parse_prefix(golden).unwrap(), (h.version, h.header_len));
        }
    }

    #[test]
    fn golden_contents() {
        let h = parse(STRUCT_7).unwrap();
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.shape, [7]);
        assert!(!h.fortran_order);
        assert_eq!(h.dtype.itemsize().unwrap(), 28);
        assert_eq!(h.data_len().unwrap(), 196);
        assert_eq!(h.growth_len(), Some(7));
        assert!(h.row_shape().is_empty());

        let h = parse(FORTRAN_3X4).unwrap();
        assert!(h.fortran_order);
        assert_eq!(h.row_shape(), [3]);
        assert_eq!(h.growth_len(), Some(4));
        assert_eq!(h.data_len().unwrap(), 96);

        let h = parse(C_3X4).unwrap();
        assert_eq!(h.row_shape(), [4]);
        assert_eq!(h.growth_len(), Some(3));

        let h = parse(SCALAR_0D).unwrap();
        assert!(h.shape.is_empty());
        assert!(h.row_shape().is_empty());
        assert_eq!(h.growth_len(), None);
        assert_eq!(h.data_len().unwrap(), 8);

        let h = parse(ALPHA_2).unwrap();
        assert_eq!(h.version, Version::V3);
        assert!(h.dtype.has_non_latin1());
        assert_eq!(h.dtype.fields().unwrap()[0].name, "α");

        let h = parse(EACUTE_2).unwrap();
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.dtype.fields().unwrap()[0].name, "é");

        let h = parse(TITLED_1).unwrap();
        assert_eq!(h.dtype.itemsize().unwrap(), 12);
        assert_eq!(
            h.dtype.fields().unwrap()[0].title.as_deref(),
            Some("Title A")
        );

        let h = parse(HUGE_GROWTH).unwrap();
        assert!(h.data_len().is_err());
        assert_eq!(h.growth_len(), Some(u64::MAX));
        assert_eq!(parse(B1_0).unwrap().data_len().unwrap(), 0);
    }

    #[test]
    fn growth_axis_keeps_length() {
        let dtypes = [
            f4(),
            Dtype::parse_descr("[('a', '<i4'), ('b', '<f8', (3,))]").unwrap(),
            Dtype::parse_descr("[('α', '<i4')]").unwrap(),
        ];
        for dtype in &dtypes {
            for fortran in [false, true] {
                let lens: Vec<usize> = (0..20)
                    .map(|digits| {
                        let n = if digits == 0 {
                            0
                        } else {
                            10u64.pow(digits) - 1
                        };
                        let shape: &[u64] = if fortran { &[5, 2, n] } else { &[n, 5, 2] };
                        let built = build(dtype, fortran, shape).unwrap();
                        let h = parse(&built).unwrap();
                        assert_eq!(h.growth_len(), Some(n));
                        assert_eq!(h.shape, shape);
                        assert_eq!(&h.dtype, dtype);
                        assert_eq!(h.header_len % 64, 0);
                        built.len()
                    })
                    .chain([u64::MAX].map(|n| {
                        let shape: &[u64] = if fortran { &[5, 2, n] } else { &[n, 5, 2] };
                        build(dtype, fortran, shape).unwrap().len()
                    }))
                    .collect();
                assert!(lens.iter().all(|&l| l == lens[0]), "{lens:?}");
            }
        }
    }

    #[test]
    fn rewrite_in_place() {
        let dtype = f4();
        let old = build(&dtype, false, &[0, 3]).unwrap();
        let (version, len) = parse_prefix(&old).unwrap();
        let new = build_with_len(version, &dtype, false, &[123_456, 3], len).unwrap();
        assert_eq!(new.len(), old.len());
        assert_eq!(new, build(&dtype, false, &[123_456, 3]).unwrap());
        let h = parse(&new).unwrap();
        assert_eq!(h.shape, [123_456, 3]);
        // Odd lengths work too: the text is just padded.
        let odd = build_with_len(Version::V2, &dtype, true, &[7], 100).unwrap();
        assert_eq!(odd.len(), 100);
        assert_eq!(odd.last(), Some(&b'\n'));
        let h = parse(&odd).unwrap();
        assert_eq!(
            (h.version, h.header_len, h.fortran_order),
            (Version::V2, 100, true)
        );
        // Exactly fitting: prefix + text + newline.
        let text_len = dict_text(&dtype, false, &[7]).len();
        let tight = u64::try_from(10 + text_len + 1).unwrap();
        assert!(build_with_len(Version::V1, &dtype, false, &[7], tight).is_ok());
        assert!(matches!(
            build_with_len(Version::V1, &dtype, false, &[7], tight - 1),
            Err(FormatError::Unsupported { .. })
        ));
        assert!(build_with_len(Version::V1, &dtype, false, &[7], 0).is_err());
        assert!(build_with_len(Version::V1, &dtype, false, &[7], 10 + 65_536).is_err());
        assert!(build_with_len(Version::V1, &dtype, false, &[7], 10 + 65_535).is_ok());
        assert!(build_with_len(Version::V2, &dtype, false, &[7], u64::MAX).is_err());
        // Non-latin-1 names need version 3.0.
        let alpha = Dtype::parse_descr("[('α', '<i4')]").unwrap();
        assert!(matches!(
            build_with_len(Version::V1, &alpha, false, &[7], 128),
            Err(FormatError::Unsupported { .. })
        ));
        assert!(build_with_len(Version::V2, &alpha, false, &[7], 128).is_err());
        let v3 = build_with_len(Version::V3, &alpha, false, &[7], 128).unwrap();
        assert_eq!(parse(&v3).unwrap().dtype, alpha);
    }

    #[test]
    fn large_headers_use_v2_and_v3() {
        // numpy: 5000 fields 'f0'.. '<i4' -> version 2.0, 89024 bytes;
        // the same with 'α0'.. -> version 3.0, 94016 bytes.
        let fields = |prefix: &str| {
            let list: Vec<String> = (0..5000)
                .map(|i| format!("('{prefix}{i}', '<i4')"))
                .collect();
            Dtype::parse_descr(&format!("[{}]", list.join(", "))).unwrap()
        };
        let latin = fields("f");
        let built = build(&latin, false, &[1]).unwrap();
        assert_eq!(built.len(), 89_024);
        assert_eq!(&built[..12], b"\x93NUMPY\x02\x00\xb4[\x01\x00");
        let h = parse(&built).unwrap();
        assert_eq!((h.version, h.dtype), (Version::V2, latin));

        let greek = fields("α");
        let built = build(&greek, false, &[1]).unwrap();
        assert_eq!(built.len(), 94_016);
        assert_eq!(&built[..12], b"\x93NUMPY\x03\x004o\x01\x00");
        let h = parse(&built).unwrap();
        assert_eq!((h.version, h.dtype), (Version::V3, greek));
    }

    #[test]
    fn prefix_errors() {
        assert!(matches!(
            parse_prefix(b""),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"\x93"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"\x93NUMPY"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"\x93NUMPY\x01"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"\x93NUMPY\x01\x00v"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"\x93NUMPY\x02\x00v\x00\x00"),
            Err(FormatError::Malformed { .. })
        ));
        assert!(matches!(
            parse_prefix(b"PK\x03\x04NUMPY\x01\x00"),
            Err(FormatError::Malformed {
                offset: Some(0),
                ..
            })
        ));
        assert!(matches!(
            parse_prefix(b"x"),
            Err(FormatError::Malformed { .. })
        ));
        for (major, minor) in [(0, 0), (4, 0), (1, 5), (2, 1), (255, 255)] {
            let bytes = [0x93, b'N', b'U', b'M', b'P', b'Y', major, minor, 0, 0, 0, 0];
            match parse_prefix(&bytes) {
                Err(FormatError::Unsupported { what }) => {
                    assert!(what.contains(&format!("version {major}.{minor}")), "{what}");
                }
                other => panic!("{major}.{minor}: {other:?}"),
            }
        }
        assert_eq!(
            parse_prefix(b"\x93NUMPY\x01\x00\xff\xff").unwrap(),
            (Version::V1, 10 + 65_535)
        );
        assert_eq!(
            parse_prefix(b"\x93NUMPY\x02\x00\xff\xff\xff\xff").unwrap(),
            (Version::V2, 12 + 0xffff_ffff)
        );
        assert_eq!(
            parse_prefix(b"\x93NUMPY\x03\x00\x00\x00\x00\x00").unwrap(),
            (Version::V3, 12)
        );
        assert_eq!(Version::V1.to_string(), "1.0");
        assert_eq!(Version::V2.to_string(), "2.0");
        assert_eq!(Version::V3.to_string(), "3.0");
    }

    #[test]
    fn truncated_headers() {
        for cut in 0..F4_3.len() {
            assert!(parse(&F4_3[..cut]).is_err(), "cut at {cut}");
        }
        // The length field claims more than there is.
        let mut long = F4_3.to_vec();
        long[8] = 0xff;
        assert!(parse(&long).is_err());
        // Extra bytes after the header are ignored.
        let mut extra = F4_3.to_vec();
        extra.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(parse(&extra).unwrap(), parse(F4_3).unwrap());
    }

    #[test]
    fn malformed_headers() {
        let texts: &[&[u8]] = &[
            b"",
            b"   ",
            b"\n",
            b"[]",
            b"None",
            b"'descr'",
            b"{}",
            b"{'descr': '<f4', 'fortran_order': False}",
            b"{'descr': '<f4', 'shape': (3,)}",
            b"{'fortran_order': False, 'shape': (3,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 1: 1}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (3,)}",
            b"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': 3}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': [3]}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (1e3,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': ('3',)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (None,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': ((3,),)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (999999999999999999999999999999999999999999,)}",
            b"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
            b"{'descr': '<f4', 'fortran_order': 'False', 'shape': (3,)}",
            b"{'descr': '<f4', 'fortran_order': None, 'shape': (3,)}",
            b"{'descr': '<f3', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': 'x4', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': '', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': 4, 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': [], 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}\x00",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} # comment",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n\n x",
            b"{'descr': '<f4', 'fortran_order': Flase, 'shape': (3,)}",
            b"{\"descr\": '<f4', 'fortran_order': False, 'shape': (3,), 'shape ': ()}",
            b"{'descr': b'<f4', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr'; '<f4', 'fortran_order': False, 'shape': (3,)}",
            b"{'descr', '<f4', 'fortran_order', False, 'shape', (3,)}",
        ];
        for text in texts {
            malformed(&v1(text));
        }
        let deep = format!(
            "{{'descr': {}'<f4'{}, 'fortran_order': False, 'shape': (3,)}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        malformed(&v1(deep.as_bytes()));
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}3,){}}}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&u32::try_from(deep.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(deep.as_bytes());
        malformed(&bytes);
    }

    #[test]
    fn accepted_variants() {
        let ok = |text: &[u8]| match parse(&v1(text)) {
            Ok(h) => h,
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(text)),
        };
        // Any key order, double quotes, no trailing comma, no padding,
        // Python 2 long suffixes, whitespace anywhere.
        let text = b"{\"shape\": (3L, 4L), \"fortran_order\": True, \"descr\": \"<f8\"}";
        let h = ok(text);
        assert_eq!(h.shape, [3, 4]);
        assert!(h.fortran_order);
        assert_eq!(h.header_len, 10 + u64::try_from(text.len()).unwrap());
        let h = ok(b" {\n'descr' : '<i2' ,\t'fortran_order':False,'shape':( 5 , )}\n\n");
        assert_eq!(h.shape, [5]);
        let h = ok(b"{'descr': u'<f4', 'fortran_order': False, 'shape': (3,2,)}");
        assert_eq!(h.shape, [3, 2]);
        // Unsupported, not malformed: object arrays.
        assert!(matches!(
            parse(&v1(
                b"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}"
            )),
            Err(FormatError::Unsupported { .. })
        ));
    }

    #[test]
    fn encodings() {
        // Latin-1 in version 1.0: byte 0xE9 is 'é'.
        let h = parse(&v1(
            b"{'descr': [('\xe9', '<i4')], 'fortran_order': False, 'shape': (2,)}",
        ))
        .unwrap();
        assert_eq!(h.dtype.fields().unwrap()[0].name, "é");
        // The same bytes in version 3.0 are not UTF-8.
        let e = malformed(&v3(
            b"{'descr': [('\xe9', '<i4')], 'fortran_order': False, 'shape': (2,)}",
        ));
        assert!(
            matches!(
                e,
                FormatError::Malformed {
                    offset: Some(25),
                    ..
                }
            ),
            "{e:?}"
        );
        // UTF-8 in version 3.0.
        let h = parse(&v3(
            "{'descr': [('é', '<i4')], 'fortran_order': False, 'shape': (2,)}".as_bytes(),
        ))
        .unwrap();
        assert_eq!(h.dtype.fields().unwrap()[0].name, "é");
        // Error offsets are file offsets, also after latin-1 characters.
        let e = malformed(&v1(
            b"{'descr': [('\xe9', '<i4')], 'fortran_order': x, 'shape': (2,)}",
        ));
        assert!(
            matches!(
                e,
                FormatError::Malformed {
                    offset: Some(53),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// xorshift64*: a tiny deterministic generator for the fuzz tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let alphabet: &[u8] = b"{}[]()',:\" \n0123456789-+TrueFalseNone<>|=fiuScUVMm8L\\x\x93\xe9";
        let mut parsed = 0usize;
        for case in 0..6000 {
            let golden = GOLDEN[case % GOLDEN.len()];
            let mut bytes = golden.to_vec();
            match case % 4 {
                // Flip random bytes.
                0 => {
                    for _ in 0..=rng.below(4) {
                        let i = rng.below(bytes.len());
                        bytes[i] = u8::try_from(rng.next() & 0xff).unwrap();
                    }
                }
                // Replace bytes in the text with syntax characters.
                1 => {
                    for _ in 0..=rng.below(6) {
                        let i = 10 + rng.below(bytes.len() - 10);
                        bytes[i] = alphabet[rng.below(alphabet.len())];
                    }
                }
                // Truncate, or cut a piece out of the middle.
                2 => {
                    let i = rng.below(bytes.len());
                    if rng.next().is_multiple_of(2) {
                        bytes.truncate(i);
                    } else {
                        let j = i + rng.below(bytes.len() - i);
                        bytes.drain(i..j);
                    }
                }
                // Random bytes behind a valid prefix of a random version.
                _ => {
                    let len = rng.below(200);
                    let mut text: Vec<u8> = (0..len)
                        .map(|_| alphabet[rng.below(alphabet.len())])
                        .collect();
                    if rng.next().is_multiple_of(3) {
                        text = (0..len)
                            .map(|_| u8::try_from(rng.next() & 0xff).unwrap())
                            .collect();
                    }
                    bytes = if rng.next().is_multiple_of(2) {
                        v1(&text)
                    } else {
                        v3(&text)
                    };
                }
            }
            if let Ok(h) = parse(&bytes) {
                parsed += 1;
                let _ = h.data_len();
                let _ = h.row_shape();
                let _ = h.dtype.descr_repr();
                let _ = build(&h.dtype, h.fortran_order, &h.shape);
                let _ =
                    build_with_len(h.version, &h.dtype, h.fortran_order, &h.shape, h.header_len);
            }
            let _ = parse_prefix(&bytes);
        }
        // Some mutations (e.g. in the padding) leave a valid header.
        assert!(parsed > 0);
    }

    // In-place header updates and readers that copy the header meanwhile
    // (`update_writes`). A plan is a list of pwrites, each a list of
    // (offset, byte) stores.

    /// One pwrite: its (offset, byte) stores.
    type Stores = [(usize, u8)];

    type Pwrites = Vec<Vec<(usize, u8)>>;

    fn stores(offset: usize, bytes: &[u8]) -> Vec<(usize, u8)> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| (offset + i, b))
            .collect()
    }

    /// The plan of `update_writes`.
    fn planned(old: &[u8], new: &[u8]) -> Pwrites {
        update_writes(old, new)
            .map(|w| stores(w.offset, &w.bytes))
            .collect()
    }

    /// The plan every commit used before: the header text in one write.
    fn whole(_old: &[u8], new: &[u8]) -> Pwrites {
        let skip = parse_prefix(new).unwrap().0.prefix_len();
        vec![stores(skip, &new[skip..])]
    }

    /// How a reader's copy of the header may interleave with the writes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Model {
        /// The copy overlaps at most one write, and sees any subset of that
        /// write's bytes: the header before the write with some of its
        /// bytes changed.
        OneWrite,
        /// The copy runs forward through the header and may be suspended
        /// anywhere for any time: each byte is as it is at the moment it is
        /// copied, those moments increasing with the offset; the bytes of
        /// one write land in any order, and a write lands whole before the
        /// next starts.
        Forward,
    }

    /// Header updates one after another, as the writer issues them: the
    /// pwrites of each, with the rows the file holds while it runs.
    struct Timeline {
        start: Vec<u8>,
        start_rows: u64,
        pwrites: Vec<(Vec<(usize, u8)>, u64)>,
    }

    impl Timeline {
        fn new(headers: &[(Vec<u8>, u64)], plan: fn(&[u8], &[u8]) -> Pwrites) -> Self {
            let mut pwrites = Vec::new();
            for pair in headers.windows(2) {
                let (old, new) = (&pair[0], &pair[1]);
                let mut at = old.0.clone();
                for w in plan(&old.0, &new.0) {
                    for &(i, b) in &w {
                        at[i] = b;
                    }
                    // Data before header: the file holds the new rows.
                    pwrites.push((w, old.1.max(new.1)));
                }
                assert_eq!(at, new.0, "the plan must end at the new header");
            }
            Self {
                start: headers[0].0.clone(),
                start_rows: headers[0].1,
                pwrites,
            }
        }

        /// Rows in the file when the reader's last copied byte was copied
        /// in write `k` (having seen one of its stores, or not).
        fn rows(&self, k: usize, observed: bool) -> u64 {
            match (observed, k) {
                (true, k) => self.pwrites[k].1,
                (false, 0) => self.start_rows,
                (false, k) => self.pwrites[k - 1].1,
            }
        }

        /// Calls `f` with every header a reader can copy under `model` and
        /// the rows the file holds then; stops at the first `false`.
        /// Returns how many were seen, or `None` when `f` stopped.
        fn each_view(&self, model: Model, f: &mut dyn FnMut(&[u8], u64) -> bool) -> Option<u64> {
            let n = self.pwrites.len();
            let mut by_pos: std::collections::BTreeMap<usize, Vec<(usize, u8)>> =
                std::collections::BTreeMap::new();
            for (k, (w, _)) in self.pwrites.iter().enumerate() {
                for &(i, b) in w {
                    by_pos.entry(i).or_default().push((k, b));
                }
            }
            let positions: Vec<(usize, Vec<(usize, u8)>)> = by_pos.into_iter().collect();
            let mut view = self.start.clone();
            let mut seen = 0;
            let ok = match model {
                Model::Forward => self.forward(&positions, 0, 0, false, &mut view, &mut seen, f),
                Model::OneWrite => (0..=n).all(|k| {
                    // The header after the first k writes, then any subset
                    // of write k's changes.
                    let mut base = self.start.clone();
                    for (w, _) in &self.pwrites[..k] {
                        for &(i, b) in w {
                            base[i] = b;
                        }
                    }
                    let changes: Vec<(usize, u8)> = self
                        .pwrites
                        .get(k)
                        .map(|(w, _)| w.iter().copied().filter(|&(i, b)| base[i] != b).collect())
                        .unwrap_or_default();
                    // Every subset; all changes first, then with the last
                    // ones left out (a plan that fails mostly fails early).
                    assert!(changes.len() < 64);
                    (0u64..1 << changes.len()).rev().all(|mask| {
                        let mut v = base.clone();
                        for (bit, &(i, b)) in changes.iter().rev().enumerate() {
                            if mask & (1 << bit) != 0 {
                                v[i] = b;
                            }
                        }
                        seen += 1;
                        let rows = if k == n {
                            self.rows(n, false)
                        } else {
                            self.rows(k, mask != 0)
                        };
                        f(&v, rows)
                    })
                }),
            };
            ok.then_some(seen)
        }

        /// The forward copy from `positions[idx]` on, the reader at write
        /// `k` (`observed`: it has seen one of write k's stores).
        #[expect(
            clippy::too_many_arguments,
            reason = "the recursion's state, spelled out"
        )]
        fn forward(
            &self,
            positions: &[(usize, Vec<(usize, u8)>)],
            idx: usize,
            k: usize,
            observed: bool,
            view: &mut Vec<u8>,
            seen: &mut u64,
            f: &mut dyn FnMut(&[u8], u64) -> bool,
        ) -> bool {
            let Some((pos, history)) = positions.get(idx) else {
                *seen += 1;
                return f(view, self.rows(k, observed));
            };
            // The byte as of write k (before it), then each later store;
            // each value at the earliest moment it can be copied, which
            // leaves the most freedom for the bytes after it.
            let before = history
                .iter()
                .take_while(|&&(w, _)| w < k)
                .last()
                .map_or(self.start[*pos], |&(_, b)| b);
            let mut options = vec![(before, k, observed)];
            for &(w, b) in history.iter().filter(|&&(w, _)| w >= k) {
                if options.iter().all(|&(v, _, _)| v != b) {
                    options.push((b, w, true));
                }
            }
            let keep = view[*pos];
            for (b, w, obs) in options {
                view[*pos] = b;
                if !self.forward(positions, idx + 1, w, obs, view, seen, f) {
                    view[*pos] = keep;
                    return false;
                }
            }
            view[*pos] = keep;
            true
        }
    }

    /// Whether `view` joins pieces of `headers` left to right, each piece
    /// from the same header as the one before it or a later one: what a
    /// forward copy suspended for the whole of the updates between them
    /// sees, whatever the writes.
    fn joins(view: &[u8], headers: &[(Vec<u8>, u64)]) -> bool {
        let mut k = 0;
        view.iter().enumerate().all(|(i, &b)| {
            while k < headers.len() && headers[k].0[i] != b {
                k += 1;
            }
            k < headers.len()
        })
    }

    /// What a reader may see: a header numpy refuses, or one of the same
    /// layout whose count the file holds.
    fn judge(view: &[u8], rows: u64, layout: &Header) -> Result<(), String> {
        match parse(view) {
            Err(_) => Ok(()),
            Ok(h) if h.same_layout(layout) && h.growth_len().is_some_and(|n| n <= rows) => Ok(()),
            Ok(h) => Err(format!(
                "{:?} parses to shape {:?} (file holds {rows} rows of {:?})",
                String::from_utf8_lossy(&view[h.version.prefix_len()..]).trim_end(),
                h.shape,
                layout.row_shape()
            )),
        }
    }

    /// The layouts the updates are checked on: versions 1.0, 2.0 and 3.0,
    /// 1-D to 3-D, C and Fortran order (where the count is the last axis).
    fn update_layouts() -> Vec<(Version, Dtype, bool, Vec<u64>, u64)> {
        let alpha = Dtype::parse_descr("[('α', '<i4'), ('b', '<f8', (3,))]").unwrap();
        let f8 = Dtype::parse_descr("'<f8'").unwrap();
        let mut out = Vec::new();
        for (dtype, fortran, shape) in [
            (f4(), false, vec![0]),
            (f4(), false, vec![0, 16]),
            (f8.clone(), false, vec![0, 3, 10]),
            (f4(), true, vec![16, 0]),
            (f8, true, vec![2, 3, 0]),
            (alpha, false, vec![0, 4]),
        ] {
            let built = build(&dtype, fortran, &shape).unwrap();
            let (version, len) = parse_prefix(&built).unwrap();
            out.push((version, dtype.clone(), fortran, shape.clone(), len));
            if version == Version::V1 && shape.len() == 2 {
                // The same text in a version 2.0 header.
                out.push((Version::V2, dtype, fortran, shape, len + 64));
            }
        }
        assert!(out.iter().any(|l| l.0 == Version::V3));
        out
    }

    /// Row counts of each update checked: every digit count, carries,
    /// the count gaining one digit and several, and random pairs.
    fn update_transitions() -> Vec<(u64, u64)> {
        let mut out = vec![
            (307_950, 308_000),
            (0, 1),
            (0, 10),
            (9, 100_000),
            (99, 10_000_000_000_000_000_000),
            (u64::MAX - 1, u64::MAX),
            (18_446_744_073_709_551_599, u64::MAX),
            (1_999_999_999, 2_000_000_000),
        ];
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        for d in 1..=19u32 {
            let p = 10u64.pow(d);
            let lo = p / 10;
            out.extend([(p - 1, p), (p.saturating_sub(50), p + 37), (lo, lo + 1)]);
            // A carry through up to 12 digits (each changes; the views
            // double with each digit).
            let carry = lo.min(10u64.pow(12));
            out.push((lo + carry - 1, lo + carry));
            // Commits of up to a million rows: up to 7 digits change.
            for _ in 0..3 {
                let a = lo + rng.next() % (p - lo);
                let room = (p - 1 - a).min(1_000_000);
                if room > 0 {
                    out.push((a, a + 1 + rng.next() % room));
                }
            }
        }
        out
    }

    fn header_at(layout: &(Version, Dtype, bool, Vec<u64>, u64), rows: u64) -> Vec<u8> {
        let (version, dtype, fortran, shape, len) = layout;
        let mut shape = shape.clone();
        let axis = if *fortran { shape.len() - 1 } else { 0 };
        shape[axis] = rows;
        build_with_len(*version, dtype, *fortran, &shape, *len).unwrap()
    }

    fn digits(n: u64) -> usize {
        n.to_string().len()
    }

    /// Checks every header a reader can see during the updates through
    /// `counts` (each count's header rewritten to the next); `Err` names
    /// the first header it must not see. Under `Forward`, a header joining
    /// pieces of the updates' endpoints is allowed when the count changes
    /// its number of digits (no plan can prevent those).
    fn check_updates(
        layout: &(Version, Dtype, bool, Vec<u64>, u64),
        counts: &[u64],
        plan: fn(&[u8], &[u8]) -> Pwrites,
        model: Model,
    ) -> Result<u64, String> {
        let headers: Vec<(Vec<u8>, u64)> =
            counts.iter().map(|&n| (header_at(layout, n), n)).collect();
        let first = parse(&headers[0].0).unwrap();
        let shifts = counts.windows(2).any(|w| digits(w[0]) != digits(w[1]));
        let timeline = Timeline::new(&headers, plan);
        let mut bad = None;
        let seen = timeline.each_view(model, &mut |view, rows| match judge(view, rows, &first) {
            Ok(()) => true,
            Err(_) if model == Model::Forward && shifts && joins(view, &headers) => true,
            Err(e) => {
                bad = Some(e);
                false
            }
        });
        match (seen, bad) {
            (Some(n), _) => Ok(n),
            (None, Some(e)) => Err(e),
            (None, None) => unreachable!(),
        }
    }

    /// Every header a reader can see while a commit rewrites the count in
    /// place is refused by numpy or describes the same rows, no more than
    /// the file holds: for every transition of `update_transitions` in
    /// every layout, under both reader models (the forward model allowing
    /// only what no plan avoids when the digit count changes).
    #[test]
    fn update_writes_shows_readers_no_rows_beyond_the_file() {
        let mut views = 0;
        for layout in update_layouts() {
            for &(a, b) in &update_transitions() {
                for model in [Model::OneWrite, Model::Forward] {
                    match check_updates(&layout, &[a, b], planned, model) {
                        Ok(n) => views += n,
                        Err(e) => panic!("{a} -> {b} in {:?} ({model:?}): {e}", layout.3),
                    }
                }
            }
        }
        assert!(views > 100_000, "{views}");
    }

    /// Several commits in a row, a slow reader's copy spanning them all:
    /// carries of +50 and +1 rows, and the count gaining a digit.
    #[test]
    fn update_writes_over_several_commits() {
        let runs: &[&[u64]] = &[
            &[307_900, 307_950, 308_000, 308_050, 308_100],
            &[1_998, 1_999, 2_000, 2_001, 2_002],
            &[189, 199, 200, 290, 300],
            &[99_950, 100_000, 100_050, 100_100],
            &[9_999_998, 9_999_999, 10_000_000, 10_000_001],
        ];
        for layout in update_layouts() {
            for counts in runs {
                for model in [Model::OneWrite, Model::Forward] {
                    if let Err(e) = check_updates(&layout, counts, planned, model) {
                        panic!("{counts:?} in {:?} ({model:?}): {e}", layout.3);
                    }
                }
            }
        }
    }

    /// Shrinking counts (a recovery's rewrite): no header above the old
    /// count when the copy overlaps one write.
    #[test]
    fn update_writes_shrinking() {
        for layout in update_layouts() {
            for &(a, b) in &update_transitions() {
                let headers = [(header_at(&layout, b), b), (header_at(&layout, a), b)];
                let first = parse(&headers[0].0).unwrap();
                let timeline = Timeline::new(&headers, planned);
                let mut bad = None;
                timeline.each_view(
                    Model::OneWrite,
                    &mut |view, _| match judge(view, b, &first) {
                        Ok(()) => true,
                        Err(e) => {
                            bad = Some(e);
                            false
                        }
                    },
                );
                assert_eq!(bad, None, "{b} -> {a} in {:?}", layout.3);
            }
        }
    }

    /// The single write every commit issued before fails the same check:
    /// a reader can copy "308" of the new count and "950" of the old one,
    /// 308950 rows where the file holds 308000 (what a probe once saw);
    /// and where the count gains a digit, other row shapes.
    #[test]
    fn one_write_of_the_whole_text_shows_rows_beyond_the_file() {
        let layouts = update_layouts();
        let nd = &layouts[1];
        assert_eq!(nd.3, [0, 16]);
        let headers = [307_950, 308_000].map(|n| (header_at(nd, n), n));
        for model in [Model::OneWrite, Model::Forward] {
            let mut ahead = Vec::new();
            Timeline::new(&headers, whole).each_view(model, &mut |view, rows| {
                let n = parse(view).unwrap().growth_len().unwrap();
                if n > rows {
                    ahead.push(n);
                }
                true
            });
            ahead.sort_unstable();
            assert_eq!(ahead, [308_050, 308_900, 308_950], "{model:?}");
        }
        // Wherever the count gains a digit, in every layout (from 0, a 1-D
        // header shows at most the new count: "(0,), }" to "(10,), }").
        for layout in &layouts {
            for &(a, b) in update_transitions()
                .iter()
                .filter(|(a, b)| *a > 0 && digits(*a) != digits(*b))
            {
                assert!(
                    check_updates(layout, &[a, b], whole, Model::OneWrite).is_err(),
                    "{a} -> {b} in {:?}",
                    layout.3
                );
            }
        }
    }

    /// Every header a power loss can leave after the updates through
    /// `counts`, none of them synced: any subset of their writes, applied
    /// in order, each write whole or torn into zeros across its range
    /// (tears into random bytes: [`each_garbage_tear`]). The tests' headers
    /// lie in one 512-byte sector.
    fn crash_images(
        layout: &(Version, Dtype, bool, Vec<u64>, u64),
        counts: &[u64],
    ) -> std::collections::BTreeSet<Vec<u8>> {
        let headers: Vec<Vec<u8>> = counts.iter().map(|&n| header_at(layout, n)).collect();
        crash_images_of(&headers)
    }

    /// [`crash_images`] for updates through any `headers`.
    fn crash_images_of(headers: &[Vec<u8>]) -> std::collections::BTreeSet<Vec<u8>> {
        let mut images = std::collections::BTreeSet::from([headers[0].clone()]);
        each_write(headers, planned, &mut |w| {
            add_written(&mut images, w);
            true
        });
        images
    }

    /// Adds to `images` each of them with the write `w` on top, whole and
    /// torn into zeros.
    fn add_written(images: &mut std::collections::BTreeSet<Vec<u8>>, w: &Stores) {
        let written: Vec<Vec<u8>> = images
            .iter()
            .flat_map(|image| {
                let (mut whole, mut zeros) = (image.clone(), image.clone());
                for &(i, b) in w {
                    whole[i] = b;
                    zeros[i] = 0;
                }
                [whole, zeros]
            })
            .collect();
        images.extend(written);
    }

    /// Calls `f` with each write of the updates through `headers`, in
    /// order, as `plan` makes them; stops at the first `false`.
    fn each_write(
        headers: &[Vec<u8>],
        plan: fn(&[u8], &[u8]) -> Pwrites,
        f: &mut dyn FnMut(&Stores) -> bool,
    ) -> bool {
        headers
            .windows(2)
            .all(|pair| plan(&pair[0], &pair[1]).iter().all(|w| f(w)))
    }

    /// Calls `f` with headers a power loss leaves when one write of the
    /// updates through `headers` is torn into random bytes (`draws` fills
    /// of its range, as the sector model of `tests/crash_states.rs` draws
    /// them) on top of any subset of the writes before it, each whole or
    /// torn into zeros; stops at the first `false`.
    fn each_garbage_tear(
        headers: &[Vec<u8>],
        plan: fn(&[u8], &[u8]) -> Pwrites,
        draws: usize,
        f: &mut dyn FnMut(&[u8]) -> bool,
    ) -> bool {
        let mut rng = Rng(0x6a7b_a6e0_0000_0001);
        let mut images = std::collections::BTreeSet::from([headers[0].clone()]);
        each_write(headers, plan, &mut |w| {
            for image in &images {
                for _ in 0..draws {
                    let mut torn = image.clone();
                    for &(i, _) in w {
                        torn[i] = rng.next() as u8;
                    }
                    if !f(&torn) {
                        return false;
                    }
                }
            }
            add_written(&mut images, w);
            true
        })
    }

    /// A plan that writes only the bytes that change, in one write: what a
    /// reader could not tell from `update_writes` for most commits, but a
    /// power loss can tear its few bytes into random ones, digits one time
    /// in 25.6.
    fn changed_only(old: &[u8], new: &[u8]) -> Pwrites {
        let differs = |i: &usize| old[*i] != new[*i];
        match (
            (0..new.len()).find(differs),
            (0..new.len()).rev().find(differs),
        ) {
            (Some(first), Some(last)) => vec![stores(first, &new[first..=last])],
            _ => Vec::new(),
        }
    }

    /// The runs of counts the power-loss tests update through.
    fn power_loss_runs() -> Vec<Vec<u64>> {
        let runs: &[&[u64]] = &[
            &[307_900, 307_950, 308_000, 308_050, 308_100],
            &[1_998, 1_999, 2_000, 2_001, 2_002],
            &[5, 9, 10, 99, 100, 1000, 1050, 1100],
            &[99_950, 100_000, 100_050, 100_100],
            &[9_999_998, 9_999_999, 10_000_000, 10_000_001, 10_000_100],
            &[99, 10_199, 10_234],
        ];
        let mut runs: Vec<Vec<u64>> = runs.iter().map(|r| r.to_vec()).collect();
        runs.extend(update_transitions().iter().map(|&(a, b)| vec![a, b]));
        runs
    }

    /// What recovery accepts of a header a power loss left (see
    /// [`update_writes_survive_a_power_cut_in_any_subset`]): one that does
    /// not parse, or one of the layout of `first` whose count is at most
    /// `limit`; else the shape it shows.
    fn recoverable(image: &[u8], first: &Header, limit: u64) -> Result<(), Vec<u64>> {
        match parse(image) {
            Err(_) => Ok(()),
            Ok(h) if h.same_layout(first) && h.growth_len().is_some_and(|g| g <= limit) => Ok(()),
            Ok(h) => Err(h.shape),
        }
    }

    /// A power loss in the middle of updates leaves a header that recovery
    /// takes as a torn one (it does not parse: the journal's copy replaces
    /// it) or one of the same layout with no more rows than the newest
    /// update's count, which the journal's newest record holds (at Fsync
    /// durability, one update's writes are unsynced at a time; at Process
    /// durability, several, and the journal's count wins). A header of
    /// another layout, or one ahead of a synced record, would be refused as
    /// another program's.
    #[test]
    fn update_writes_survive_a_power_cut_in_any_subset() {
        let mut images = 0;
        for layout in update_layouts() {
            let first = parse(&header_at(&layout, 0)).unwrap();
            for counts in power_loss_runs() {
                let limit = *counts.last().unwrap();
                for image in crash_images(&layout, &counts) {
                    images += 1;
                    if let Err(shape) = recoverable(&image, &first, limit) {
                        panic!("{counts:?} in {:?}: a power cut leaves {shape:?}", layout.3);
                    }
                }
            }
        }
        assert!(images > 10_000, "{images}");
    }

    /// Every write of an update in place is the whole header text after
    /// the length field: torn into random bytes, it parses only if they
    /// spell the whole dict again (braces, quoted keys, dtype).
    #[test]
    fn every_write_in_place_is_the_whole_text() {
        let mut writes = 0;
        for layout in update_layouts() {
            let text = layout.0.prefix_len();
            for counts in power_loss_runs() {
                let headers: Vec<Vec<u8>> = counts.iter().map(|&n| header_at(&layout, n)).collect();
                for pair in headers.windows(2) {
                    for w in update_writes(&pair[0], &pair[1]) {
                        writes += 1;
                        assert_eq!(w.offset, text, "{counts:?} in {:?}", layout.3);
                        assert_eq!(w.offset + w.bytes.len(), pair[1].len());
                    }
                }
            }
        }
        assert!(writes > 1_000, "{writes}");
    }

    /// A power loss that tears one write into random bytes (the model of
    /// `tests/crash_states.rs`), after any subset of the writes before it:
    /// the header does not parse, or shows no more rows than the newest
    /// update's count. 64 fills of every write of every run in every
    /// layout.
    #[test]
    fn update_writes_survive_garbage_tears() {
        let mut images = 0u64;
        for layout in update_layouts() {
            let first = parse(&header_at(&layout, 0)).unwrap();
            for counts in power_loss_runs() {
                let limit = *counts.last().unwrap();
                let headers: Vec<Vec<u8>> = counts.iter().map(|&n| header_at(&layout, n)).collect();
                each_garbage_tear(&headers, planned, 64, &mut |image| {
                    images += 1;
                    if let Err(shape) = recoverable(image, &first, limit) {
                        panic!(
                            "{counts:?} in {:?}: a garbage tear leaves {shape:?}",
                            layout.3
                        );
                    }
                    true
                });
            }
        }
        assert!(images > 100_000, "{images}");
    }

    /// The same tears show why every write carries the whole text: with
    /// only the changed byte written (which readers could not tell from
    /// `update_writes` here), a tear turns the digit into another one, and
    /// the header claims rows the journal never committed (308000 to
    /// 308050: "3080d0" for d > 5, each digit one tear in 256), or, torn
    /// into a comma, another row shape ("3080,0, 16": 3-D).
    #[test]
    fn a_garbage_tear_of_the_changed_bytes_alone_claims_rows_never_committed() {
        let layout = &update_layouts()[1];
        let first = parse(&header_at(layout, 0)).unwrap();
        let headers = [308_000, 308_050].map(|n| header_at(layout, n));
        assert_eq!(changed_only(&headers[0], &headers[1]), [vec![(65, b'5')]]);
        let (mut tears, mut ahead) = (0, std::collections::BTreeMap::new());
        each_garbage_tear(&headers, changed_only, 4096, &mut |image| {
            tears += 1;
            if let Err(shape) = recoverable(image, &first, 308_050) {
                *ahead.entry(shape).or_insert(0) += 1;
            }
            true
        });
        assert_eq!(tears, 4096);
        let counts: Vec<Vec<u64>> = ahead.keys().cloned().collect();
        let mut want = vec![vec![3080, 0, 16]];
        want.extend([308_060, 308_070, 308_080, 308_090].map(|n| vec![n, 16]));
        assert_eq!(counts, want);
        // update_writes under the same tears, and across a moving text:
        // nothing.
        for counts in [[308_000, 308_050], [99_950, 100_000]] {
            let headers = counts.map(|n| header_at(layout, n));
            let mut bad = 0;
            each_garbage_tear(&headers, planned, 4096, &mut |image| {
                bad += usize::from(recoverable(image, &first, counts[1]).is_err());
                true
            });
            assert_eq!(bad, 0, "{counts:?}");
        }
    }

    /// Headers that differ in more than the count (a recovery rewriting a
    /// header that another layout's bytes or garbage replaced): a reader
    /// overlapping one write, and a power loss, see the old header, the new
    /// one, or one that does not parse; never a third that parses.
    #[test]
    fn update_writes_between_other_headers() {
        let f8 = Dtype::parse_descr("'<f8'").unwrap();
        let i2 = Dtype::parse_descr("'>i2'").unwrap();
        let at = |dtype: &Dtype, fortran: bool, shape: &[u64]| {
            build_with_len(Version::V1, dtype, fortran, shape, 128).unwrap()
        };
        let mut torn = at(&f4(), false, &[7, 16]);
        torn[61..70].copy_from_slice(b"\xa5\x00 9, 3,(");
        let pairs = [
            (at(&f4(), false, &[7, 16]), at(&f4(), false, &[7, 3])),
            (at(&f4(), false, &[7, 3]), at(&f4(), false, &[7, 16])),
            (at(&f4(), false, &[70, 3]), at(&f4(), false, &[7, 30])),
            (at(&f4(), false, &[12, 4]), at(&f8, false, &[12, 5])),
            (at(&i2, false, &[12]), at(&f4(), false, &[12])),
            (at(&f4(), true, &[16, 7]), at(&f4(), true, &[17, 7])),
            (at(&f4(), false, &[7, 16, 1]), at(&f4(), false, &[7, 16])),
            (torn, at(&f4(), false, &[7, 16])),
        ];
        for (old, new) in &pairs {
            let one_of_them = |view: &[u8]| view == old || view == new || parse(view).is_err();
            let said = |view: &[u8]| String::from_utf8_lossy(&view[10..90]).into_owned();
            let timeline = Timeline::new(&[(old.clone(), 0), (new.clone(), 0)], planned);
            timeline.each_view(Model::OneWrite, &mut |view, _| {
                assert!(one_of_them(view), "a reader sees {:?}", said(view));
                true
            });
            for image in crash_images_of(&[old.clone(), new.clone()]) {
                assert!(one_of_them(&image), "a power cut leaves {:?}", said(&image));
            }
        }
    }

    /// The plan's shape: the text after the length field in every write,
    /// the fewest writes for the common updates, and the parked byte only
    /// when the text moves.
    #[test]
    fn update_writes_plans() {
        let layout = &update_layouts()[1];
        let plan = |a: u64, b: u64| -> Vec<(usize, String)> {
            let (old, new) = (header_at(layout, a), header_at(layout, b));
            update_writes(&old, &new)
                .map(|w| (w.offset, String::from_utf8_lossy(&w.bytes).into_owned()))
                .collect()
        };
        // Digits start at 61 in "{'descr': '<f4', 'fortran_order': False, 'shape': (";
        // the text after the 10-byte prefix is the last write of every plan.
        let w = |offset: usize, bytes: &str| (offset, bytes.to_owned());
        let text = |n: u64| w(10, &String::from_utf8_lossy(&header_at(layout, n)[10..]));
        assert_eq!(plan(308_000, 308_050), [text(308_050)]);
        assert_eq!(plan(308_000, 309_150), [text(309_150)]);
        // Carries: first the header with the new low digits under the old
        // leading one (or, going down, the new leading digit over the old
        // low ones).
        assert_eq!(plan(308_050, 308_100), [text(308_000), text(308_100)]);
        assert_eq!(plan(307_950, 308_000), [text(307_000), text(308_000)]);
        assert_eq!(plan(308_000, 307_950), [text(307_000), text(307_950)]);
        assert_eq!(plan(308_000, 308_000), []);
        // "99950, 16), } " to "100000, 16), }": the last change is at 74;
        // each write in between changes one byte, right to left, and
        // rewrites the rest of the text as it is.
        let (old, new) = (header_at(layout, 99_950), header_at(layout, 100_000));
        let parked_from = |from: usize| {
            let mut h = old.clone();
            h[from..74].copy_from_slice(&new[from..74]);
            h[74] = 0;
            w(10, &String::from_utf8_lossy(&h[10..]))
        };
        let mut want = vec![parked_from(74)];
        want.extend(
            (61..74)
                .rev()
                .filter(|&i| old[i] != new[i])
                .map(parked_from),
        );
        want.push(text(100_000));
        assert_eq!(plan(99_950, 100_000), want);
        assert_eq!(want.len(), 2 + 12);
        let starts = |i: usize, with: &str| {
            let t = &want[i].1;
            assert!(t.starts_with(with), "{t:?}");
            assert!(t.ends_with(" \n"), "{t:?}");
        };
        starts(
            0,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99950, 16), }\0 ",
        );
        starts(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99950, 16),  \0 ",
        );
        starts(
            12,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 16), \0 ",
        );
        // Headers of other lengths: all of the new one.
        let (old, new) = (header_at(layout, 5), build(&f4(), false, &[5]).unwrap());
        let all: Vec<_> = update_writes(&old[..100], &new).collect();
        assert_eq!(
            all,
            [HeaderWrite {
                offset: 0,
                bytes: Cow::Borrowed(&new[..])
            }]
        );
    }
}
