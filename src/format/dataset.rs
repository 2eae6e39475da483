//! The files of a sharded dataset: the schema and the manifest as JSON
//! (encode, decode, check), the naming rules, and the state a shard keeps
//! in its group cursor.
//!
//! ```text
//! <root>/schema.json           Schema: the columns, written once
//! <root>/manifest.json         Manifest: schema, shards in order, row counts
//! <root>/<shard>/shard.group   the shard's group journal
//! <root>/<shard>/<column>.npy  one plain .npy per column
//! ```
//!
//! ```json
//! {
//!   "format": "npy-append-dataset-schema",
//!   "version": 1,
//!   "columns": [
//!     {"name": "id", "dtype": "<i8", "shape": []},
//!     {"name": "feature", "dtype": "<f4", "shape": [128]}
//!   ]
//! }
//! ```
//!
//! The manifest adds `"rows"` (the total) and `"shards"`, a list of
//! `{"name": ..., "rows": ...}` in the dataset's row order.
//!
//! A shard's state is not a file of its own: every commit of a shard's
//! group carries a cursor whose first byte is [`SHARD_BUILDING`] or
//! [`SHARD_COMPLETE`], followed by the shard writer's own cursor, so that
//! "complete" and the rows it covers are one atomic journal record.
//! A dtype is numpy's type string (`"<f4"`, `"|b1"`) or, for a structured
//! dtype, the descr list as numpy writes it in a header
//! (`"[('id', '<i8'), ('xy', '<f4', (2,))]"`).
//!
//! Decoding is strict: an unknown key, a missing key, a value of the wrong
//! kind, a total that is not the sum of its shards or a version above
//! [`VERSION`] is an error, never guessed around.

use std::cmp::Ordering;

use super::FormatError;
use super::dtype::Dtype;
use super::json::{self, Fields, Json};
use super::pyliteral;

/// The version of the dataset files this library writes and reads.
pub const VERSION: u64 = 1;
/// The `"format"` of a schema file.
pub const SCHEMA_FORMAT: &str = "npy-append-dataset-schema";
/// The `"format"` of a manifest file.
pub const MANIFEST_FORMAT: &str = "npy-append-dataset-manifest";

/// The schema file at the dataset's root.
pub const SCHEMA_FILE: &str = "schema.json";
/// The manifest file at the dataset's root.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The group journal inside a shard directory.
pub const SHARD_JOURNAL: &str = "shard.group";
/// The lock file at the root that serializes creating the schema and
/// writing the manifest.
pub const LOCK_FILE: &str = ".dataset.lock";

/// Longest column name, in bytes (its file `<name>.npy` and the group's
/// marker beside it stay under the usual 255-byte file name limit).
pub const MAX_COLUMN_NAME: usize = 200;
/// Longest shard name, in bytes.
pub const MAX_SHARD_NAME: usize = 200;
/// Most columns in a dataset (a shard is an append group).
pub const MAX_COLUMNS: usize = super::group_journal::MAX_MEMBERS;

/// One column: a name, a dtype and the shape of one row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// The column's name; its file in each shard is `<name>.npy`.
    pub name: String,
    /// The element type.
    pub dtype: Dtype,
    /// The shape of one row (`[]` for one value per row).
    pub row_shape: Vec<u64>,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, dtype: Dtype, row_shape: &[u64]) -> Self {
        Self {
            name: name.into(),
            dtype,
            row_shape: row_shape.to_vec(),
        }
    }

    /// The file name of this column in a shard: `<name>.npy`.
    pub fn file_name(&self) -> String {
        format!("{}.npy", self.name)
    }

    /// Bytes per row.
    ///
    /// # Errors
    ///
    /// [`FormatError::Unsupported`] when it overflows or is zero.
    pub fn row_bytes(&self) -> Result<u64, FormatError> {
        let bytes = self
            .row_shape
            .iter()
            .try_fold(self.dtype.itemsize()?, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                FormatError::unsupported(format!("column {:?}: a row overflows 64 bits", self.name))
            })?;
        if bytes == 0 {
            return Err(FormatError::unsupported(format!(
                "column {:?}: rows of zero bytes",
                self.name
            )));
        }
        Ok(bytes)
    }

    fn to_json(&self) -> Json {
        Json::Object(vec![
            ("name".into(), Json::Str(self.name.clone())),
            ("dtype".into(), Json::Str(dtype_text(&self.dtype))),
            (
                "shape".into(),
                Json::Array(self.row_shape.iter().map(|&d| Json::UInt(d)).collect()),
            ),
        ])
    }

    fn from_json(value: &Json, what: &str) -> Result<Self, FormatError> {
        let mut f = Fields::of(value, what)?;
        let name = f.string("name")?.to_owned();
        let dtype = parse_dtype_text(f.string("dtype")?)
            .map_err(|e| FormatError::malformed(None, format!("{what}: dtype: {e}")))?;
        let row_shape = f
            .array("shape")?
            .iter()
            .map(|d| match d {
                Json::UInt(n) => Ok(*n),
                other => Err(FormatError::malformed(
                    None,
                    format!("{what}: a dimension must be a number, not {}", other.kind()),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        f.finish()?;
        Ok(Self {
            name,
            dtype,
            row_shape,
        })
    }
}

/// A dtype as the dataset files write it: numpy's type string for a plain
/// dtype, the header's descr list for a structured one.
pub fn dtype_text(dtype: &Dtype) -> String {
    match dtype.as_scalar() {
        Some(s) => s.type_str(),
        None => dtype.descr_repr(),
    }
}

/// Parses a dtype written by [`dtype_text`] (a type string such as `"<f4"`,
/// or a descr list starting with `[`).
///
/// # Errors
///
/// As [`Dtype::parse_descr`].
pub fn parse_dtype_text(text: &str) -> Result<Dtype, FormatError> {
    if text.starts_with('[') {
        Dtype::parse_descr(text)
    } else {
        Dtype::parse_descr(&pyliteral::repr_str(text))
    }
}

/// Whether `name` can name a column: 1 to [`MAX_COLUMN_NAME`] bytes, no
/// path separator, NUL or control character, not starting with `.`.
pub fn check_column_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_COLUMN_NAME {
        return Err(format!(
            "column name {name:?} must have 1 to {MAX_COLUMN_NAME} bytes"
        ));
    }
    if name.starts_with('.')
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(format!(
            "column name {name:?} must not start with '.' nor hold '/', '\\' or control characters"
        ));
    }
    Ok(())
}

/// Whether `name` can name a shard: 1 to [`MAX_SHARD_NAME`] ASCII letters,
/// digits and `-_.=+`, not starting with `.` or `-`.
pub fn check_shard_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SHARD_NAME
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "shard name {name:?} must have 1 to {MAX_SHARD_NAME} ASCII letters, digits and -_.=+, \
             and not start with '.' or '-'"
        ))
    }
}

/// The order of shards in a dataset: names compared piece by piece, runs of
/// digits by their value (so `rank-2` comes before `rank-10`), everything
/// else byte by byte; names whose pieces are equal (`7` and `007`) by their
/// bytes. A total order: equal only for equal names.
pub fn shard_order(a: &str, b: &str) -> Ordering {
    fn pieces(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.bytes().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .bytes()
                .position(|b| b.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (piece, tail) = rest.split_at(end);
            rest = tail;
            Some((digit, piece))
        })
    }
    let mut pa = pieces(a);
    let mut pb = pieces(b);
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            (Some((_, x)), Some((_, y))) => {
                let ord = x.cmp(y);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// The columns of a dataset, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    /// The columns; every shard has one `.npy` per column.
    pub columns: Vec<Column>,
}

impl Schema {
    /// A schema of `columns`, checked.
    ///
    /// # Errors
    ///
    /// [`FormatError::Unsupported`] for no columns or too many, a bad or
    /// repeated name (names that differ only in ASCII case are one name on
    /// some file systems), or a dtype a row cannot be made of.
    pub fn new(columns: Vec<Column>) -> Result<Self, FormatError> {
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(FormatError::unsupported(format!(
                "a dataset has 1 to {MAX_COLUMNS} columns, not {}",
                columns.len()
            )));
        }
        for (i, c) in columns.iter().enumerate() {
            check_column_name(&c.name).map_err(FormatError::unsupported)?;
            if let Some(other) = columns
                .iter()
                .take(i)
                .find(|o| o.name.eq_ignore_ascii_case(&c.name))
            {
                return Err(FormatError::unsupported(format!(
                    "columns {:?} and {:?}: names must differ in more than letter case",
                    other.name, c.name
                )));
            }
            c.row_bytes()?;
        }
        Ok(Self { columns })
    }

    /// The index of the column named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column names, in order, joined for messages.
    pub fn describe(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c.name,
                    dtype_text(&c.dtype),
                    super::header::shape_repr(&c.row_shape)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn columns_json(&self) -> Json {
        Json::Array(self.columns.iter().map(Column::to_json).collect())
    }

    fn columns_from_json(items: &[Json]) -> Result<Self, FormatError> {
        let columns = items
            .iter()
            .enumerate()
            .map(|(i, c)| Column::from_json(c, &format!("column {i}")))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(columns).map_err(|e| FormatError::malformed(None, e.to_string()))
    }

    /// The schema file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Json::Object(vec![
            ("format".into(), Json::Str(SCHEMA_FORMAT.into())),
            ("version".into(), Json::UInt(VERSION)),
            ("columns".into(), self.columns_json()),
        ])
        .render()
        .into_bytes()
    }

    /// Decodes a schema file.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] for anything but a schema file of this
    /// format; [`FormatError::Unsupported`] for a newer version.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let value = json::parse(bytes)?;
        let mut f = Fields::of(&value, "the schema")?;
        check_header(&mut f, SCHEMA_FORMAT)?;
        let schema = Self::columns_from_json(f.array("columns")?)?;
        f.finish()?;
        Ok(schema)
    }
}

/// Checks `"format"` and `"version"`.
fn check_header(f: &mut Fields<'_>, format: &str) -> Result<(), FormatError> {
    let found = f.string("format")?;
    if found != format {
        return Err(FormatError::malformed(
            None,
            format!("\"format\" is {found:?}, expected {format:?}"),
        ));
    }
    let version = f.uint("version")?;
    if version > VERSION {
        return Err(FormatError::unsupported(format!(
            "{format} version {version}, written by a newer npy-append (this one reads up to {VERSION})"
        )));
    }
    if version == 0 {
        return Err(FormatError::malformed(None, "version 0"));
    }
    Ok(())
}

/// One shard in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestShard {
    /// The shard's name (its directory under the root).
    pub name: String,
    /// Its rows.
    pub rows: u64,
}

/// The published dataset: its schema and its shards in row order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// The dataset's columns.
    pub schema: Schema,
    /// The shards, in the dataset's row order.
    pub shards: Vec<ManifestShard>,
}

impl Manifest {
    /// All rows.
    pub fn rows(&self) -> u64 {
        // Checked when the manifest was made or decoded.
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.saturating_add(s.rows))
    }

    /// A manifest, checked: shard names valid and different, the total
    /// within `u64`.
    ///
    /// # Errors
    ///
    /// [`FormatError::Unsupported`] naming the problem.
    pub fn new(schema: Schema, shards: Vec<ManifestShard>) -> Result<Self, FormatError> {
        let mut total: u64 = 0;
        for (i, s) in shards.iter().enumerate() {
            check_shard_name(&s.name).map_err(FormatError::unsupported)?;
            if shards.iter().take(i).any(|o| o.name == s.name) {
                return Err(FormatError::unsupported(format!(
                    "shard {:?} is listed twice",
                    s.name
                )));
            }
            total = total.checked_add(s.rows).ok_or_else(|| {
                FormatError::unsupported("the shards hold more than 2^64 - 1 rows")
            })?;
        }
        Ok(Self { schema, shards })
    }

    /// The manifest file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        Json::Object(vec![
            ("format".into(), Json::Str(MANIFEST_FORMAT.into())),
            ("version".into(), Json::UInt(VERSION)),
            ("columns".into(), self.schema.columns_json()),
            ("rows".into(), Json::UInt(self.rows())),
            (
                "shards".into(),
                Json::Array(
                    self.shards
                        .iter()
                        .map(|s| {
                            Json::Object(vec![
                                ("name".into(), Json::Str(s.name.clone())),
                                ("rows".into(), Json::UInt(s.rows)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
        .render()
        .into_bytes()
    }

    /// Decodes a manifest file.
    ///
    /// # Errors
    ///
    /// [`FormatError::Malformed`] for anything but a manifest of this format
    /// (a total that is not the sum of the shards' rows included);
    /// [`FormatError::Unsupported`] for a newer version.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let value = json::parse(bytes)?;
        let mut f = Fields::of(&value, "the manifest")?;
        check_header(&mut f, MANIFEST_FORMAT)?;
        let schema = Schema::columns_from_json(f.array("columns")?)?;
        let rows = f.uint("rows")?;
        let shards = f
            .array("shards")?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let what = format!("shard {i} of the manifest");
                let mut g = Fields::of(s, &what)?;
                let shard = ManifestShard {
                    name: g.string("name")?.to_owned(),
                    rows: g.uint("rows")?,
                };
                g.finish()?;
                Ok(shard)
            })
            .collect::<Result<Vec<_>, FormatError>>()?;
        f.finish()?;
        let manifest =
            Self::new(schema, shards).map_err(|e| FormatError::malformed(None, e.to_string()))?;
        if manifest.rows() != rows {
            return Err(FormatError::malformed(
                None,
                format!("\"rows\" is {rows} but the shards hold {}", manifest.rows()),
            ));
        }
        Ok(manifest)
    }
}

/// The first byte of a shard's group cursor while the shard is being
/// built.
pub const SHARD_BUILDING: u8 = 0;
/// The first byte of a shard's group cursor once the shard is complete.
pub const SHARD_COMPLETE: u8 = 1;
/// Longest cursor a shard's writer can commit (the group cursor holds one
/// more byte, the shard's state).
pub const MAX_SHARD_CURSOR_LEN: usize = super::group_journal::MAX_CURSOR_LEN - 1;

/// The group cursor that records a shard's state and its writer's cursor:
/// [`SHARD_BUILDING`] or [`SHARD_COMPLETE`], then the writer's bytes.
pub fn shard_cursor(complete: bool, cursor: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cursor.len() + 1);
    out.push(if complete {
        SHARD_COMPLETE
    } else {
        SHARD_BUILDING
    });
    out.extend_from_slice(cursor);
    out
}

/// Splits a shard's group cursor into whether the shard is complete and
/// the writer's cursor. An empty group cursor is a shard being built that
/// has no cursor yet (the group's first record).
///
/// # Errors
///
/// [`FormatError::Malformed`] when the first byte is not a shard state.
pub fn parse_shard_cursor(bytes: &[u8]) -> Result<(bool, &[u8]), FormatError> {
    match bytes.split_first() {
        None => Ok((false, &[])),
        Some((&SHARD_BUILDING, rest)) => Ok((false, rest)),
        Some((&SHARD_COMPLETE, rest)) => Ok((true, rest)),
        Some((other, _)) => Err(FormatError::malformed(
            Some(0),
            format!("the group cursor starts with {other}, which is not a shard state (0 or 1)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Column::new("id", parse_dtype_text("<i8").unwrap(), &[]),
            Column::new("feature", parse_dtype_text("<f4").unwrap(), &[2, 3]),
            Column::new(
                "rec",
                parse_dtype_text("[('a', '<i4'), ('b', '<f8', (3,))]").unwrap(),
                &[],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn schema_round_trips() {
        let s = schema();
        let bytes = s.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"dtype\": \"<i8\""), "{text}");
        assert!(
            text.contains("\"[('a', '<i4'), ('b', '<f8', (3,))]\""),
            "{text}"
        );
        assert_eq!(Schema::decode(&bytes).unwrap(), s);
        assert_eq!(s.columns[1].row_bytes().unwrap(), 24);
        assert_eq!(s.columns[1].file_name(), "feature.npy");
    }

    #[test]
    fn schema_checks() {
        let i8 = parse_dtype_text("<i8").unwrap();
        assert!(Schema::new(vec![]).is_err());
        for bad in ["", ".hidden", "a/b", "a\\b", "a\nb", &"x".repeat(201)] {
            assert!(
                Schema::new(vec![Column::new(bad, i8.clone(), &[])]).is_err(),
                "{bad:?}"
            );
        }
        let e = Schema::new(vec![
            Column::new("X", i8.clone(), &[]),
            Column::new("x", i8.clone(), &[]),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("letter case"), "{e}");
        assert!(Schema::new(vec![Column::new("z", i8.clone(), &[0])]).is_err());
        assert!(parse_dtype_text("|O").is_err());
    }

    #[test]
    fn strict_decoding() {
        let good = String::from_utf8(schema().encode()).unwrap();
        for (from, to, why) in [
            ("\"version\": 1", "\"version\": 2", "newer npy-append"),
            ("\"version\": 1", "\"version\": 0", "version 0"),
            (
                "npy-append-dataset-schema",
                "npy-append-dataset-manifest",
                "expected",
            ),
            (
                "\"shape\": []",
                "\"shape\": [], \"extra\": 1",
                "unknown key",
            ),
            ("\"shape\": [2, 3]", "\"shape\": [2, \"3\"]", "dimension"),
            ("\"dtype\": \"<i8\"", "\"dtype\": \"<q9\"", "dtype"),
            ("\"version\": 1,", "", "has no \"version\""),
        ] {
            let text = good.replacen(from, to, 1);
            assert_ne!(text, good, "{from}");
            let e = Schema::decode(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{from} -> {to}: {e}");
        }
    }

    #[test]
    fn manifest_round_trips_and_checks_the_total() {
        let m = Manifest::new(
            schema(),
            vec![
                ManifestShard {
                    name: "a".into(),
                    rows: 3,
                },
                ManifestShard {
                    name: "b".into(),
                    rows: 4,
                },
            ],
        )
        .unwrap();
        assert_eq!(m.rows(), 7);
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        let text = String::from_utf8(bytes).unwrap();
        let e = Manifest::decode(text.replacen("\"rows\": 7", "\"rows\": 8", 1).as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("the shards hold 7"), "{e}");
        let twice = Manifest::new(
            schema(),
            vec![
                ManifestShard {
                    name: "a".into(),
                    rows: 1,
                },
                ManifestShard {
                    name: "a".into(),
                    rows: 1,
                },
            ],
        );
        assert!(twice.is_err());
        let overflow = Manifest::new(
            schema(),
            vec![
                ManifestShard {
                    name: "a".into(),
                    rows: u64::MAX,
                },
                ManifestShard {
                    name: "b".into(),
                    rows: 1,
                },
            ],
        );
        assert!(overflow.is_err());
    }

    #[test]
    fn shard_cursor_round_trips() {
        assert_eq!(parse_shard_cursor(&[]).unwrap(), (false, &[][..]));
        for complete in [false, true] {
            for cursor in [&b""[..], b"abc"] {
                let bytes = shard_cursor(complete, cursor);
                assert_eq!(bytes.len(), cursor.len() + 1);
                assert_eq!(parse_shard_cursor(&bytes).unwrap(), (complete, cursor));
            }
        }
        assert!(parse_shard_cursor(&[2, 0]).is_err());
    }

    #[test]
    fn shard_names() {
        for ok in [
            "0",
            "rank-3",
            "part=00017",
            "a.b_c+d",
            "train-00001-of-00064",
        ] {
            check_shard_name(ok).unwrap();
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"x".repeat(201)] {
            assert!(check_shard_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shard_order_is_natural_and_total() {
        let mut names = vec![
            "rank-10", "rank-2", "rank-1", "a", "rank-02", "b1", "b", "10", "9",
        ];
        names.sort_by(|a, b| shard_order(a, b));
        assert_eq!(
            names,
            [
                "9", "10", "a", "b", "b1", "rank-1", "rank-02", "rank-2", "rank-10"
            ]
        );
        assert_eq!(shard_order("x", "x"), Ordering::Equal);
        assert_ne!(shard_order("07", "7"), Ordering::Equal);
    }
}
